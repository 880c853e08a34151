//! Retrieval, identifier ranking, namespaces, filters and .gitignore on the polyglot fixture,
//! with the real embedding model. The fixture is indexed once per test binary (a shared,
//! read-only index); every test below only searches it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

struct Shared {
    home: Home,
    root: PathBuf,
    run: IndexRun,
}

/// The index is built once; if that fails, every test fails with the same message (instead of
/// each one re-running the index).
static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

fn shared() -> &'static Shared {
    let r = SHARED.get_or_init(|| {
        std::panic::catch_unwind(|| {
            let dir = persistent_dir("polyglot_search");
            let home = Home::with_assets_at(&dir);
            let root = copy_polyglot_into(&dir);
            let run = home.index(&root);
            report(&format!(
                "indexed the polyglot fixture in {:.1}s: {}",
                run.elapsed.as_secs_f64(),
                run.stats.0
            ));
            Shared { home, root, run }
        })
        .map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match r {
        Ok(s) => s,
        Err(e) => panic!("indexing the polyglot fixture failed:\n{e}"),
    }
}

fn search(query: &str, extra: &[&str]) -> SearchResult {
    let s = shared();
    s.home.search(&s.root, query, extra)
}

/// Test files of the fixture (routed to `testing`).
const TEST_FILES: &[&str] = &[
    "java/src/test/java/com/example/cache/LruCacheTest.java",
    "pkg/httpclient/retry_test.go",
    "tests/test_invoice.py",
    "tests/test_passwords.py",
    "web/src/utils/debounce.test.ts",
];

/// The namespace each fixture file must land in.
fn expected_namespace(path: &str) -> &'static str {
    if path.starts_with("docs/adr/") {
        "architecture"
    } else if TEST_FILES.contains(&path) {
        "testing"
    } else if path.ends_with(".md") {
        "documentation"
    } else {
        "coding"
    }
}

/// Every file of the committed fixture that codemem should index, by expected namespace.
fn expected_files() -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut m: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for f in list_files(&fixtures_dir().join("polyglot")) {
        if f == ".gitignore" {
            continue;
        }
        m.entry(expected_namespace(&f)).or_default().insert(f);
    }
    m
}

#[test]
fn first_index_run_counts() {
    let s = shared();
    let st = &s.run.stats;
    let expected: usize = expected_files().values().map(BTreeSet::len).sum();
    assert_eq!(
        st.n("files_scanned") as usize,
        expected,
        "files_scanned (build/ is git-ignored): {}",
        st.0
    );
    assert_eq!(st.n("files_indexed") as usize, expected, "{}", st.0);
    assert_eq!(st.n("files_deleted"), 0);
    assert_eq!(
        st.n("files_skipped"),
        0,
        "nothing in the fixture should be skipped: {:?}",
        st.skipped()
    );
    assert_eq!(st.n("embed_errors"), 0);
    assert!(!st.cancelled());
    assert!(
        st.n("chunks_upserted") >= expected as u64,
        "at least one chunk per file: {}",
        st.0
    );
    assert!(
        st.n("chunks_embedded") > 0,
        "a fresh home has an empty cache: {}",
        st.0
    );
    assert_eq!(
        st.n("cache_hits") + st.n("chunks_embedded"),
        st.n("chunks_upserted"),
        "fixture chunks are all distinct: {}",
        st.0
    );
    assert_eq!(st.n("points_total"), st.n("chunks_upserted"), "{}", st.0);
    // Progress events come before `done` and reach their totals.
    let last_embed = s
        .run
        .events
        .iter()
        .rev()
        .find(|e| e["event"] == "embed")
        .expect("an embed event");
    assert_eq!(last_embed["done"], last_embed["total"], "{last_embed}");
    let last_lex = s
        .run
        .events
        .iter()
        .rev()
        .find(|e| e["event"] == "lexical")
        .expect("a lexical event");
    assert_eq!(last_lex["done"], last_lex["total"], "{last_lex}");
    let scanned = &s.run.events[0];
    assert_eq!(
        scanned["files"].as_u64(),
        Some(expected as u64),
        "{scanned}"
    );
    assert_eq!(
        scanned["changed"].as_u64(),
        Some(expected as u64),
        "{scanned}"
    );

    let status = s.home.status(&s.root);
    assert_eq!(
        status["files_indexed"].as_u64(),
        Some(expected as u64),
        "{status}"
    );
    assert_eq!(status["pending_files"].as_u64(), Some(0), "{status}");
    assert_eq!(points_sum(&status), st.n("points_total"), "{status}");
    assert_eq!(
        status["embedding_cache_entries"].as_u64(),
        Some(st.n("chunks_embedded")),
        "{status}"
    );
    let model = status["model"].as_str().unwrap_or("");
    assert!(
        model.to_lowercase().contains("minilm"),
        "status.model: {status}"
    );
}

/// (query, files that count as the right answer). Some queries share words with the code's
/// comments, others are paraphrases that only the dense model connects to the code.
const NL_QUERIES: &[(&str, &[&str])] = &[
    (
        "throttle callers that make too many API calls",
        &["src/ratelimit.rs"],
    ),
    (
        "read settings from a config file and let environment variables override them",
        &["src/config.rs"],
    ),
    (
        "sum up what the customer owes including VAT",
        &["billing/invoice.py"],
    ),
    (
        "store user credentials safely so a database leak does not reveal them",
        &["auth/passwords.py"],
    ),
    (
        "wait until the user stops typing before calling the function",
        &["web/src/utils/debounce.ts"],
    ),
    (
        "cart with item quantities, remove button and subtotal",
        &["web/src/components/ShoppingCart.tsx"],
    ),
    (
        "spread out repeated attempts when the server is flaky",
        &["pkg/httpclient/retry.go"],
    ),
    (
        "keep only the most recently accessed items in memory",
        &["java/src/main/java/com/example/cache/LruCache.java"],
    ),
    (
        "fixed-size circular queue of bytes",
        &[
            "native/ringbuf/ring_buffer.c",
            "native/ringbuf/ring_buffer.h",
        ],
    ),
    (
        "multiply two matrices",
        &["native/linalg/matrix.cpp", "native/linalg/matrix.hpp"],
    ),
    (
        "escape HTML special characters to prevent cross-site scripting",
        &["web/src/markdown/escape.js"],
    ),
    (
        "how do we release to production and roll back a bad deploy",
        &["docs/deployment.md"],
    ),
];

fn rank_str(r: Option<usize>) -> String {
    r.map_or("-".into(), |r| r.to_string())
}

/// Runs `queries` in hybrid, lexical and dense mode; fails unless each finds its file in the
/// hybrid top 3. The ranks of all three modes are printed (uncaptured) for information.
fn check_natural_language(queries: &[(&str, &[&str])]) {
    let mut failures = Vec::new();
    let mut table = vec![format!(
        "{:<78} {:>6} {:>7} {:>5}",
        "query", "hybrid", "lexical", "dense"
    )];
    for (query, want) in queries {
        let hybrid = search(query, &["-k", "10"]);
        assert_eq!(hybrid.0["mode"], "hybrid");
        assert_eq!(
            hybrid.0["dense_available"], true,
            "the model is installed: {}",
            hybrid.0
        );
        let lexical = search(query, &["-k", "10", "--mode", "lexical"]);
        let dense = search(query, &["-k", "10", "--mode", "dense"]);
        let (h, l, d) = (
            hybrid.rank_of(want),
            lexical.rank_of(want),
            dense.rank_of(want),
        );
        table.push(format!(
            "{:<78} {:>6} {:>7} {:>5}",
            query,
            rank_str(h),
            rank_str(l),
            rank_str(d)
        ));
        if h.is_none_or(|r| r > 3) {
            failures.push(format!(
                "{query:?}: expected {want:?} in the top 3, got rank {}:\n{}",
                rank_str(h),
                hybrid.summary()
            ));
        }
    }
    report(&format!(
        "ranks of the right file (k = 10):\n{}",
        table.join("\n")
    ));
    assert!(
        failures.is_empty(),
        "{} of {} queries missed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

/// (a) natural-language queries find the right file in the top 3 (hybrid), in two halves so
/// they run in parallel.
#[test]
fn natural_language_queries_rust_python_typescript() {
    check_natural_language(&NL_QUERIES[..6]);
}

#[test]
fn natural_language_queries_go_java_c_cpp_js_docs() {
    check_natural_language(&NL_QUERIES[6..]);
}

/// (identifier, defining file, the other default-namespace files that mention it)
const IDENTIFIERS: &[(&str, &str, &[&str])] = &[
    (
        "TokenBucket",
        "src/ratelimit.rs",
        &["src/middleware.rs", "src/main.rs"],
    ),
    ("load_config", "src/config.rs", &["src/main.rs"]),
    (
        "calculate_invoice_total",
        "billing/invoice.py",
        &["billing/report.py"],
    ),
    ("hash_password", "auth/passwords.py", &["auth/signup.py"]),
    (
        "LruCache",
        "java/src/main/java/com/example/cache/LruCache.java",
        &["java/src/main/java/com/example/cache/SessionRegistry.java"],
    ),
    (
        "DoWithRetry",
        "pkg/httpclient/retry.go",
        &["cmd/pricefeed/main.go"],
    ),
    (
        "escapeHtml",
        "web/src/markdown/escape.js",
        &["web/src/markdown/preview.js"],
    ),
    (
        "debounce",
        "web/src/utils/debounce.ts",
        &[
            "web/src/components/ShoppingCart.tsx",
            "web/src/components/SearchBox.tsx",
        ],
    ),
];

/// (b) an exact identifier ranks its defining chunk first although other files use it.
#[test]
fn identifier_queries_rank_the_definition_first() {
    let mut failures = Vec::new();
    for (ident, def, users) in IDENTIFIERS {
        // Guard against a fixture that makes this trivial: the identifier must also be found
        // (lexically) in the files that only use it.
        let lexical = search(ident, &["-k", "50", "--mode", "lexical"]);
        let found = lexical.distinct_paths();
        for u in *users {
            assert!(
                found.contains(*u),
                "fixture check: {ident} should also be found in {u}; lexical hits:\n{}",
                lexical.summary()
            );
        }
        let r = search(ident, &["-k", "5"]);
        let Some(top) = r.hits().first() else {
            failures.push(format!("{ident}: no hits"));
            continue;
        };
        let path = top["path"].as_str().unwrap_or("");
        let sym = top["symbol"].as_str().unwrap_or("");
        if path != *def || symbol_leaf(sym) != *ident {
            failures.push(format!(
                "{ident}: expected the definition in {def} (symbol {ident}) first, got:\n{}",
                r.summary()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn all_ns_args() -> Vec<&'static str> {
    vec![
        "--ns",
        "coding",
        "--ns",
        "architecture",
        "--ns",
        "documentation",
        "--ns",
        "testing",
    ]
}

/// (c) every file lands in its namespace; namespace filters, defaults and errors.
#[test]
fn namespaces_route_and_filter() {
    let s = shared();
    let expected = expected_files();

    // Per-namespace file counts in status.
    let status = s.home.status(&s.root);
    let counts = namespace_counts(&status);
    for (ns, files) in &expected {
        assert_eq!(
            counts.get(*ns).map(|c| c.0),
            Some(files.len() as u64),
            "files in `{ns}`: {status}"
        );
    }
    for name in ["coding", "architecture", "documentation", "testing"] {
        assert!(
            counts.contains_key(name),
            "status lists namespace {name}: {status}"
        );
    }

    // The exact file set of each namespace: a dense query ranks every chunk of the namespace.
    for ns in ["coding", "architecture", "documentation", "testing"] {
        let r = search(
            "source code and documentation",
            &["--ns", ns, "--mode", "dense", "-k", "200"],
        );
        for h in r.hits() {
            assert_eq!(
                h["namespace"], ns,
                "hit of --ns {ns} in another namespace: {h}"
            );
        }
        let got = r.distinct_paths();
        let want = expected.get(ns).cloned().unwrap_or_default();
        assert_eq!(got, want, "files in namespace `{ns}`");
    }

    // --ns testing returns only testing hits, and finds the invoice tests.
    let r = search(
        "calculate invoice total unknown region",
        &["--ns", "testing", "-k", "20"],
    );
    assert!(!r.hits().is_empty());
    assert!(
        r.hits().iter().all(|h| h["namespace"] == "testing"),
        "{}",
        r.summary()
    );
    assert!(
        r.paths().iter().any(|p| p == "tests/test_invoice.py"),
        "{}",
        r.summary()
    );

    // The default (coding + documentation) never returns tests or ADRs, even for queries
    // that match them best, unless the query asks about tests (tests/ranking.rs covers that).
    for q in [
        "calculate invoice total unknown region is rejected",
        "why did we choose a token bucket for rate limiting, options considered",
        "Argon2id was considered and rejected",
        "DoWithRetry recovers from server errors",
    ] {
        let r = search(q, &["-k", "50"]);
        assert!(!r.hits().is_empty(), "{q}");
        for h in r.hits() {
            let ns = h["namespace"].as_str().unwrap_or("");
            assert!(
                ns == "coding" || ns == "documentation",
                "default search {q:?} returned a {ns} hit:\n{}",
                r.summary()
            );
        }
    }

    // Each namespace answers its own kind of question.
    let r = search(
        "why did we choose a token bucket for rate limiting",
        &["--ns", "architecture", "-k", "3"],
    );
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("docs/adr/0001-token-bucket-rate-limiting.md"),
        "{}",
        r.summary()
    );
    assert_eq!(r.hits()[0]["namespace"], "architecture");
    let r = search(
        "rolling back a release",
        &["--ns", "documentation", "-k", "3"],
    );
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("docs/deployment.md"),
        "{}",
        r.summary()
    );
    assert_eq!(r.hits()[0]["namespace"], "documentation");
    let r = search("TokenBucket", &["-k", "1"]);
    assert_eq!(r.hits()[0]["namespace"], "coding", "{}", r.summary());
    let mut args = all_ns_args();
    args.extend(["-k", "100", "--mode", "lexical"]);
    let r = search("password", &args);
    let seen: BTreeSet<&str> = r
        .hits()
        .iter()
        .filter_map(|h| h["namespace"].as_str())
        .collect();
    assert!(
        seen.contains("testing") && seen.contains("architecture") && seen.contains("coding"),
        "{}",
        r.summary()
    );
    for h in r.hits() {
        let p = h["path"].as_str().unwrap_or("");
        assert_eq!(
            h["namespace"].as_str(),
            Some(expected_namespace(p)),
            "namespace of {p}"
        );
    }
}

#[test]
fn unknown_namespace_is_a_usage_error() {
    let sh = shared();
    let out = sh.home.run(&[
        "--root",
        s(&sh.root),
        "search",
        "rate limit",
        "--ns",
        "bogus",
        "--json",
    ]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");
    assert!(
        out.stderr.contains("bogus"),
        "the message names the bad namespace:\n{out}"
    );
    for known in [
        "coding",
        "architecture",
        "documentation",
        "testing",
        "shared",
    ] {
        assert!(
            out.stderr.contains(known),
            "the message lists the known namespace {known}:\n{out}"
        );
    }
    assert!(out.stdout.trim().is_empty(), "no results on stdout:\n{out}");
}

/// (c) --path and --lang filters.
#[test]
fn path_and_language_filters() {
    let r = search(
        "rate limit configuration",
        &["--path", "src/**", "-k", "20"],
    );
    assert!(!r.hits().is_empty(), "src/ has matches");
    assert!(
        r.paths().iter().all(|p| p.starts_with("src/")),
        "{}",
        r.summary()
    );
    // Something that lives outside src/ is filtered out, not just ranked lower.
    let r = search("debounce", &["--path", "src/**", "-k", "20"]);
    assert!(
        r.paths().iter().all(|p| p.starts_with("src/")),
        "{}",
        r.summary()
    );
    let r = search("debounce", &["--path", "web/**/*.tsx", "-k", "20"]);
    assert!(!r.hits().is_empty());
    assert!(
        r.paths()
            .iter()
            .all(|p| p.starts_with("web/") && p.ends_with(".tsx")),
        "{}",
        r.summary()
    );

    let r = search(
        "hash a password and compute totals",
        &["--lang", "python", "-k", "20"],
    );
    assert!(!r.hits().is_empty());
    for h in r.hits() {
        assert_eq!(h["language"], "python", "{h}");
        assert!(h["path"].as_str().unwrap_or("").ends_with(".py"), "{h}");
    }
    let paths = r.distinct_paths();
    assert!(
        paths.contains("auth/passwords.py") && paths.contains("billing/invoice.py"),
        "{}",
        r.summary()
    );

    let r = search(
        "anything at all",
        &["--lang", "go", "--mode", "dense", "-k", "50"],
    );
    let want: BTreeSet<String> = ["pkg/httpclient/retry.go", "cmd/pricefeed/main.go"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        r.distinct_paths(),
        want,
        "--lang go in the default namespaces (retry_test.go is testing)"
    );

    let sh = shared();
    let out = sh
        .home
        .run(&["--root", s(&sh.root), "search", "x", "--lang", "klingon"]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");
}

/// .gitignore'd files (build/) are never indexed.
#[test]
fn gitignored_files_are_not_indexed() {
    let s = shared();
    assert!(
        s.root.join("build/bundle.js").is_file(),
        "the ignored file exists in the tree"
    );
    let mut args = all_ns_args();
    args.extend(["--path", "build/**"]);
    let r = search("escapeHtml", &args);
    assert!(
        r.hits().is_empty(),
        "build/ is git-ignored:\n{}",
        r.summary()
    );
    let mut args = all_ns_args();
    args.extend(["--mode", "lexical", "-k", "50"]);
    let r = search(IGNORED_MARKER, &args);
    assert!(
        r.paths().iter().all(|p| !p.starts_with("build/")),
        "{}",
        r.summary()
    );
    assert!(
        r.hits()
            .iter()
            .all(|h| !h["snippet"].as_str().unwrap_or("").contains(IGNORED_MARKER)),
        "{}",
        r.summary()
    );
}

/// Search output carries freshness information.
#[test]
fn search_reports_freshness() {
    let r = search("token bucket", &["-k", "3"]);
    let f: &Value = &r.0["freshness"];
    let expected: usize = expected_files().values().map(BTreeSet::len).sum();
    assert_eq!(f["indexed_files"].as_u64(), Some(expected as u64), "{f}");
    assert_eq!(f["pending_files"].as_u64(), Some(0), "{f}");
    assert!(
        f["last_indexed_at"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000),
        "{f}"
    );
    assert_eq!(f["stale"], false, "{f}");
    let h = &r.hits()[0];
    for k in [
        "path",
        "start_line",
        "end_line",
        "symbol",
        "kind",
        "namespace",
        "language",
        "score",
        "snippet",
        "unsaved",
    ] {
        assert!(h.get(k).is_some(), "hit lacks {k}: {h}");
    }
    assert!(
        h["start_line"].as_u64().unwrap_or(0) >= 1
            && h["end_line"].as_u64() >= h["start_line"].as_u64(),
        "{h}"
    );
    assert_eq!(h["unsaved"], false);
}
