//! Code-aware ranking: how the lexical and dense candidate lists become one ranked answer.
//!
//! Every front end gets this through `Project::search`; nothing else ranks. The signals, each
//! shown by `Query::explain`:
//! - **intent**: an identifier (`symbol`), words plus identifiers (`mixed`), a question about
//!   the implementation, or one about usage ("how do I ...");
//! - **fusion**: weighted reciprocal-rank fusion, with its own lexical weight for queries that
//!   name identifiers;
//! - **definition**: the chunk that defines a queried identifier is lifted, more when the file
//!   is named after it;
//! - **path match**: query words found in the file's name or its last folders;
//! - **priors**: tests, examples, website folders, benchmarks and fixtures, vendored and legacy
//!   code, re-export stubs, and docs for an implementation question rank lower;
//! - **diversity**: each further chunk of one file counts less, so more files make the top k.
//!
//! The weights live in `[search.ranking]` and were chosen on the training half of
//! `scripts/eval`.

use codemem_core::config::RankingConfig;
use codemem_core::lexical::{
    content_tokens, identifier_query, query_identifiers, symbol_leaf, tokens,
};
use codemem_core::Explain;

/// Reciprocal rank fusion constant (the usual 60).
pub(crate) const RRF_K: f32 = 60.0;

/// What a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// One identifier: `parse_body`, `Router::route`.
    Symbol,
    /// Words that name identifiers among other words.
    Mixed,
    /// A question about how or where something is done.
    Implementation,
    /// A question about how to use something.
    Usage,
}

impl Intent {
    /// A usage phrase wins over identifiers: "how do I configure Redis" asks for the docs
    /// even though it names something.
    pub(crate) fn of(text: &str) -> Intent {
        if identifier_query(text).is_some() {
            return Intent::Symbol;
        }
        let t = format!(" {} ", text.to_lowercase());
        const USAGE: &[&str] = &[
            " how do i ",
            " how can i ",
            " how should i ",
            " how do we ",
            " how can we ",
            " how should we ",
            " how to ",
            " how do you ",
            " can i ",
            " example ",
            " examples ",
            " usage ",
            " tutorial ",
            " guide ",
            " configure ",
            " install ",
            " set up ",
            " setup ",
            " getting started ",
        ];
        if USAGE.iter().any(|p| t.contains(p)) {
            Intent::Usage
        } else if !query_identifiers(text).is_empty() {
            Intent::Mixed
        } else {
            Intent::Implementation
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Intent::Symbol => "symbol",
            Intent::Mixed => "mixed",
            Intent::Implementation => "implementation",
            Intent::Usage => "usage",
        }
    }
}

/// What the ranker knows of one candidate chunk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidate {
    pub path: String,
    pub namespace: String,
    pub symbol: Option<String>,
    /// 0-based ranks in the two lists.
    pub lexical_rank: Option<usize>,
    pub dense_rank: Option<usize>,
    /// In the first-pass list (chunks the model has not embedded yet).
    pub first_pass_rank: Option<usize>,
    /// The list's own score (BM25 or cosine); the fused score when only one list is searched,
    /// so lexical-only and dense-only answers keep their natural scale.
    pub list_score: f32,
}

/// The query, read once for all candidates.
pub(crate) struct QueryFeatures<'a> {
    pub intent: Intent,
    /// The whole-identifier query's leaf (`Symbol`), or the identifiers among the words.
    pub identifiers: Vec<&'a str>,
    pub words: Vec<String>,
    /// `words` from plain words only: a part of an identifier (`TestClient`, `site_config`)
    /// does not ask for a kind of file.
    pub asking: Vec<String>,
}

impl<'a> QueryFeatures<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let intent = Intent::of(text);
        let identifiers = match identifier_query(text) {
            Some(leaf) => vec![leaf],
            None => query_identifiers(text)
                .into_iter()
                .map(symbol_leaf)
                .collect(),
        };
        let plain: Vec<&str> = text
            .split_whitespace()
            .filter(|w| tokens(w).len() <= 1)
            .collect();
        QueryFeatures {
            intent,
            identifiers,
            words: content_tokens(text),
            asking: content_tokens(&plain.join(" ")),
        }
    }
}

/// Scores every candidate; returns `(score, explain)` in the input order. `single_list`: only
/// one list was searched (lexical or dense mode), whose own scores stand in for the fusion.
pub(crate) fn score_all(
    q: &QueryFeatures<'_>,
    cands: &[Candidate],
    w: &RankingConfig,
    single_list: bool,
) -> Vec<(f32, Explain)> {
    let lexical_w = if !q.identifiers.is_empty() {
        w.identifier_lexical_weight
    } else {
        w.lexical_weight
    };
    let fused: Vec<f32> = cands
        .iter()
        .map(|c| {
            if single_list {
                return if c.lexical_rank.is_some()
                    || c.dense_rank.is_some()
                    || c.first_pass_rank.is_some()
                {
                    c.list_score.max(0.0)
                } else {
                    0.0
                };
            }
            c.lexical_rank
                .map_or(0.0, |r| lexical_w / (RRF_K + r as f32 + 1.0))
                + c.dense_rank
                    .map_or(0.0, |r| w.dense_weight / (RRF_K + r as f32 + 1.0))
                + c.first_pass_rank
                    .map_or(0.0, |r| w.first_pass_weight / (RRF_K + r as f32 + 1.0))
        })
        .collect();
    let top = fused.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    let mut out: Vec<(f32, Explain)> = cands
        .iter()
        .zip(&fused)
        .map(|(c, &f)| {
            let definition = definition_bonus(q, c, top, w);
            let path_match = path_match(&q.words, &c.path, w.path_match);
            let (prior, prior_reasons) = prior(&c.path, &c.namespace, q.intent, &q.asking, w);
            let score = (f + definition) * path_match * prior;
            (
                score,
                Explain {
                    intent: q.intent.as_str().to_string(),
                    lexical_rank: c.lexical_rank.map(|r| r as u32 + 1),
                    dense_rank: c.dense_rank.map(|r| r as u32 + 1),
                    first_pass_rank: c.first_pass_rank.map(|r| r as u32 + 1),
                    fused: f,
                    definition,
                    path_match,
                    prior,
                    prior_reasons,
                    diversity: 1.0,
                },
            )
        })
        .collect();
    diversify(cands, &mut out, w.same_file);
    // An exact identifier query puts every definition of it above every other chunk, whatever
    // the list's scale (BM25, cosine or fused), the priors and the per-file decay: each
    // definition is lifted by the best score of the chunks that are not definitions.
    if q.intent == Intent::Symbol {
        let best_other = out
            .iter()
            .filter(|(_, e)| e.definition == 0.0)
            .map(|(s, _)| *s)
            .fold(0.0f32, f32::max);
        for (s, _) in out.iter_mut().filter(|(_, e)| e.definition > 0.0) {
            *s += best_other;
        }
    }
    out
}

/// An exact identifier query puts its definition above everything the lists found (product
/// code above a same-named test helper); an identifier among other words lifts its definition
/// by `definition_boost` of the best fused score. Either way more when the file is named after it.
fn definition_bonus(q: &QueryFeatures<'_>, c: &Candidate, top: f32, w: &RankingConfig) -> f32 {
    let Some(sym) = c.symbol.as_deref() else {
        return 0.0;
    };
    let leaf = symbol_leaf(sym);
    let Some(ident) = q.identifiers.iter().find(|i| leaf.eq_ignore_ascii_case(i)) else {
        return 0.0;
    };
    let exact = leaf == *ident;
    let named_file = file_stem(&c.path)
        .replace(['_', '-'], "")
        .eq_ignore_ascii_case(&ident.replace(['_', '-'], ""));
    match q.intent {
        Intent::Symbol => {
            let home = if c.namespace == "coding" { 0.25 } else { 0.0 };
            top + if exact { 1.0 } else { 0.5 } + home + if named_file { 0.25 } else { 0.0 }
        }
        _ => {
            let base = w.definition_boost * top * if exact { 1.0 } else { 0.5 };
            base * if named_file { 1.5 } else { 1.0 }
        }
    }
}

fn file_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split('.').next().unwrap_or(name)
}

const MAX_PATH_WORDS: usize = 2;

/// `1 + (boost - 1) × n` for the n (at most 2) query words found in the file's name or its
/// two innermost folders.
pub(crate) fn path_match(words: &[String], path: &str, boost: f32) -> f32 {
    if words.is_empty() || boost <= 1.0 {
        return 1.0;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let from = parts.len().saturating_sub(3);
    let mut path_tokens: Vec<String> = Vec::new();
    for (i, p) in parts[from..].iter().enumerate() {
        let last = i + from == parts.len() - 1;
        let p = if last { file_stem(p) } else { p };
        path_tokens.extend(codemem_core::lexical::tokens(p));
    }
    let n = words
        .iter()
        .filter(|w| w.len() >= 3 && path_tokens.contains(w))
        .count()
        .min(MAX_PATH_WORDS);
    1.0 + (boost - 1.0) * n as f32
}

const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "__tests__",
    "spec",
    "specs",
    "testing",
    "e2e",
    "integration_tests",
];
const EXAMPLE_DIRS: &[&str] = &[
    "example",
    "examples",
    "demo",
    "demos",
    "sample",
    "samples",
    "playground",
    "playgrounds",
    "starter",
    "starters",
    "cookbook",
    "template",
    "_examples",
    "docs_src",
];
const WEBSITE_DIRS: &[&str] = &["website", "site", "www", "docs-site", "docsite", "homepage"];
const BENCH_DIRS: &[&str] = &[
    "bench",
    "benches",
    "benchmark",
    "benchmarks",
    "fixture",
    "fixtures",
    "__fixtures__",
    "testdata",
    "test-data",
    "mocks",
    "__mocks__",
    "snapshots",
    "__snapshots__",
];
const LEGACY_DIRS: &[&str] = &[
    "vendor",
    "vendored",
    "third_party",
    "thirdparty",
    "external",
    "compat",
    "legacy",
    "deprecated",
];
/// Stemmed as `lexical::tokens` stems name parts ("deprecated" → "deprecat", "shims" → "shim").
const LEGACY_STEMS: &[&str] = &["compat", "legacy", "deprecat", "shim", "polyfill"];

/// A file named for compat/legacy code: a whole part of its name (`py_compat`, `legacyApi`,
/// `shims`), not a substring (`compatible`, `shimmer`).
fn legacy_name(stem: &str) -> bool {
    tokens(stem)
        .iter()
        .any(|t| LEGACY_STEMS.contains(&t.as_str()))
}

/// A folder named with a test word and a qualifier: `test-shrinker`, `integration_tests`,
/// `e2e-tests` (a folder called just `tests` is matched by `TEST_DIRS`).
fn compound_of(dir: &str, words: &[&str]) -> bool {
    let parts: Vec<&str> = dir.split(['-', '_']).collect();
    parts.len() > 1 && parts.iter().any(|p| words.contains(p))
}

/// Is this a test file by its own name (`test_x.py`, `x_test.go`, `x.spec.ts`, `XTest.java`)?
fn test_file_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    let lower = name.to_ascii_lowercase();
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || lower.contains(".test.")
        || lower.contains(".spec.")
        || (stem.len() > 4 && (stem.ends_with("Test") || stem.ends_with("Tests")))
        || stem == "conftest"
}

/// Query words (stemmed) that ask for a kind of file the priors would otherwise push down:
/// "which test covers ...", "the benchmarks that ...", "an example of ...".
const ASKS_FOR: &[(&str, &[&str])] = &[
    ("tests", &["test", "tests", "spec", "unittest"]),
    ("examples", &["example", "demo", "sample", "playground"]),
    ("website", &["website", "site"]),
    (
        "benchmarks or fixtures",
        &["benchmark", "bench", "fixture", "testdata"],
    ),
    (
        "vendored or legacy",
        &["legacy", "deprecat", "compat", "vendor"],
    ),
];

/// Does the query (its `content_tokens`) ask for this kind of file (`tests`, `examples`, ...)?
pub(crate) fn asks_for(words: &[String], kind: &str) -> bool {
    ASKS_FOR
        .iter()
        .find(|(k, _)| *k == kind)
        .is_some_and(|(_, ws)| words.iter().any(|w| ws.contains(&w.as_str())))
}

/// The multiplier for where a file lives, and why. A kind of file the query asks for by name
/// (`words`, from [`content_tokens`]) is not pushed down.
pub(crate) fn prior(
    path: &str,
    namespace: &str,
    intent: Intent,
    words: &[String],
    w: &RankingConfig,
) -> (f32, Vec<String>) {
    // Docs are left to the intent: "doc" and "guide" name code as often as they ask for docs.
    let asked = |reason: &str| asks_for(words, reason);
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let (dirs, name) = parts.split_at(parts.len() - 1);
    let name = name[0];
    let in_dir = |set: &[&str]| dirs.iter().any(|d| set.contains(d));
    let mut m = 1.0f32;
    let mut why = Vec::new();
    let mut apply = |on: bool, f: f32, reason: &str| {
        if on && f != 1.0 && !asked(reason) {
            m *= f;
            why.push(reason.to_string());
        }
    };
    apply(
        namespace == "testing"
            || in_dir(TEST_DIRS)
            || dirs.iter().any(|d| compound_of(d, &["test", "tests"]))
            || test_file_name(path.rsplit('/').next().unwrap_or(path)),
        w.tests,
        "tests",
    );
    // `com/example/...` is a Java package named after a domain, not a folder of examples.
    let examples = dirs.iter().enumerate().any(|(i, d)| {
        EXAMPLE_DIRS.contains(d)
            && !(i > 0 && matches!(dirs[i - 1], "com" | "org" | "net" | "io" | "dev"))
    });
    apply(examples, w.examples, "examples");
    apply(in_dir(WEBSITE_DIRS), w.website, "website");
    apply(in_dir(BENCH_DIRS), w.benchmarks, "benchmarks or fixtures");
    apply(
        in_dir(LEGACY_DIRS) || legacy_name(file_stem(path)),
        w.legacy,
        "vendored or legacy",
    );
    apply(
        name == "__init__.py" || name.ends_with(".d.ts") || name == "package-info.java",
        w.stubs,
        "re-export stub",
    );
    let docs = namespace == "documentation" || namespace == "architecture";
    match intent {
        Intent::Usage => apply(docs, w.docs_for_usage, "docs for a usage question"),
        _ => apply(docs, w.docs_for_code, "docs for a question about code"),
    }
    (m, why)
}

/// The n-th chunk (0-based) of a file, in score order, is multiplied by `same_file`ⁿ.
fn diversify(cands: &[Candidate], scored: &mut [(f32, Explain)], same_file: f32) {
    if same_file >= 1.0 {
        return;
    }
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[b].0.total_cmp(&scored[a].0));
    let mut seen: std::collections::HashMap<&str, i32> = std::collections::HashMap::new();
    for i in order {
        let n = seen.entry(cands[i].path.as_str()).or_insert(0);
        if *n > 0 {
            let f = same_file.powi(*n);
            scored[i].0 *= f;
            scored[i].1.diversity = f;
        }
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> RankingConfig {
        RankingConfig::default()
    }

    #[test]
    fn intents() {
        let table = [
            ("parse_body", Intent::Symbol),
            ("Router::route", Intent::Symbol),
            ("how does ShouldBindJSON pick a decoder", Intent::Mixed),
            (
                "where are gitignore rules from parent directories combined",
                Intent::Implementation,
            ),
            ("What happens when a handler panics", Intent::Implementation),
            ("how do I serve static files", Intent::Usage),
            ("how do we release to production", Intent::Usage),
            ("how to configure the dev server port", Intent::Usage),
            ("example of a custom theme", Intent::Usage),
            // A usage phrase wins over a name in the question.
            ("how do I configure Redis", Intent::Usage),
            ("how to use ShouldBindJSON", Intent::Usage),
        ];
        for (q, want) in table {
            assert_eq!(Intent::of(q), want, "{q}");
        }
        // It still counts as naming code for the list weights and the definition lift.
        assert_eq!(
            QueryFeatures::new("how to use ShouldBindJSON").identifiers,
            ["ShouldBindJSON"]
        );
    }

    #[test]
    fn legacy_names_are_whole_parts_of_the_name() {
        let w = w();
        for (path, legacy) in [
            ("src/py_compat.py", true),
            ("src/legacyApi.ts", true),
            ("lib/shims.js", true),
            ("polyfill.ts", true),
            ("src/compatible.rs", false),
            ("ui/shimmer.tsx", false),
            ("src/incompatibility.go", false),
        ] {
            let (_, why) = prior(path, "coding", Intent::Implementation, &[], &w);
            assert_eq!(
                why.iter().any(|r| r == "vendored or legacy"),
                legacy,
                "{path}: {why:?}"
            );
        }
    }

    #[test]
    fn priors() {
        let w = w();
        // (path, namespace, intent, multiplier below 1?, reason)
        let table: &[(&str, &str, Intent, bool, &str)] = &[
            ("src/router.rs", "coding", Intent::Implementation, false, ""),
            (
                "tests/router.rs",
                "testing",
                Intent::Implementation,
                true,
                "tests",
            ),
            (
                "pkg/context_test.go",
                "coding",
                Intent::Implementation,
                true,
                "tests",
            ),
            (
                "src/Foo.spec.ts",
                "coding",
                Intent::Implementation,
                true,
                "tests",
            ),
            (
                "gson/src/test/java/GsonTest.java",
                "coding",
                Intent::Implementation,
                true,
                "tests",
            ),
            (
                "examples/todo/app.py",
                "coding",
                Intent::Implementation,
                true,
                "examples",
            ),
            (
                "website/pages/index.tsx",
                "coding",
                Intent::Implementation,
                true,
                "website",
            ),
            (
                "benchmarks/simple.ts",
                "coding",
                Intent::Implementation,
                true,
                "benchmarks or fixtures",
            ),
            (
                "internal/compat/old.go",
                "coding",
                Intent::Implementation,
                true,
                "vendored or legacy",
            ),
            (
                "deprecated.go",
                "coding",
                Intent::Implementation,
                true,
                "vendored or legacy",
            ),
            (
                "src/flask/__init__.py",
                "coding",
                Intent::Implementation,
                true,
                "re-export stub",
            ),
            (
                "types/index.d.ts",
                "coding",
                Intent::Implementation,
                true,
                "re-export stub",
            ),
            (
                "docs/routing.md",
                "documentation",
                Intent::Implementation,
                true,
                "docs for a question about code",
            ),
            ("docs/routing.md", "documentation", Intent::Usage, false, ""),
            ("src/latest.rs", "coding", Intent::Implementation, false, ""),
            (
                "test-shrinker/src/main/java/com/example/Main.java",
                "coding",
                Intent::Implementation,
                true,
                "tests",
            ),
            (
                "integration_tests/src/lib.rs",
                "coding",
                Intent::Implementation,
                true,
                "tests",
            ),
            (
                "src/contest-entry/lib.rs",
                "coding",
                Intent::Implementation,
                false,
                "",
            ),
            (
                "java/src/main/java/com/example/cache/LruCache.java",
                "coding",
                Intent::Implementation,
                false,
                "",
            ),
            (
                "examples/java/com/example/Demo.java",
                "coding",
                Intent::Implementation,
                true,
                "examples",
            ),
            (
                "src/contest.py",
                "coding",
                Intent::Implementation,
                false,
                "",
            ),
        ];
        for (path, ns, intent, lower, reason) in table {
            let (m, why) = prior(path, ns, *intent, &[], &w);
            assert_eq!(m < 1.0, *lower, "{path}: {m} {why:?}");
            if *lower {
                assert!(why.iter().any(|r| r == reason), "{path}: {why:?}");
            }
        }
    }

    #[test]
    fn a_kind_of_file_the_query_names_is_not_pushed_down() {
        let w = w();
        // (query, path, namespace, multiplier stays 1)
        let table = [
            (
                "benchmarks that model file discovery",
                "benches/workloads.rs",
                "coding",
                true,
            ),
            (
                "which test covers the retry policy",
                "tests/retry.rs",
                "testing",
                true,
            ),
            (
                "an example of a custom extractor",
                "examples/auth/main.rs",
                "coding",
                true,
            ),
            (
                "where does the doc footer pick its links",
                "docs/footer.md",
                "documentation",
                false,
            ),
            (
                "how is the retry policy applied",
                "tests/retry.rs",
                "testing",
                false,
            ),
            (
                "how is a custom extractor written",
                "examples/auth/main.rs",
                "coding",
                false,
            ),
            // A part of an identifier does not ask for its kind of file.
            (
                "how does TestClient send requests",
                "tests/test_client.py",
                "testing",
                false,
            ),
            (
                "where is site_config merged",
                "website/config.ts",
                "coding",
                false,
            ),
        ];
        for (q, path, ns, neutral) in table {
            let f = QueryFeatures::new(q);
            let (m, why) = prior(path, ns, f.intent, &f.asking, &w);
            assert_eq!(m == 1.0, neutral, "{q} / {path}: {m} {why:?}");
        }
    }

    #[test]
    fn path_matches_name_and_folders() {
        let words = content_tokens("how are routes matched in the tree");
        let table = [
            ("src/tree.go", 1.3),
            ("routing/tree.go", 1.3),
            ("route/tree.go", 1.6),
            ("src/context.go", 1.0),
            ("a/route/b/c/e.go", 1.0), // only the two innermost folders count
        ];
        for (path, want) in table {
            let got = path_match(&words, path, 1.3);
            assert!((got - want).abs() < 1e-5, "{path}: {got}");
        }
        assert_eq!(path_match(&words, "route/tree.go", 1.0), 1.0);
    }

    fn cand(
        path: &str,
        ns: &str,
        sym: Option<&str>,
        l: Option<usize>,
        d: Option<usize>,
    ) -> Candidate {
        Candidate {
            path: path.into(),
            namespace: ns.into(),
            symbol: sym.map(str::to_string),
            lexical_rank: l,
            dense_rank: d,
            first_pass_rank: None,
            list_score: 0.0,
        }
    }

    fn order(q: &str, cands: &[Candidate], w: &RankingConfig) -> Vec<String> {
        let f = QueryFeatures::new(q);
        let scored = score_all(&f, cands, w, false);
        let mut idx: Vec<usize> = (0..cands.len()).collect();
        idx.sort_by(|&a, &b| scored[b].0.total_cmp(&scored[a].0));
        idx.into_iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    cands[i].path,
                    cands[i].symbol.as_deref().unwrap_or("")
                )
            })
            .collect()
    }

    #[test]
    fn fusion_rewards_agreement() {
        let cands = [
            cand("a.rs", "coding", None, Some(0), None),
            cand("b.rs", "coding", None, Some(1), Some(1)),
            cand("c.rs", "coding", None, None, Some(0)),
        ];
        assert_eq!(order("how are things merged", &cands, &w())[0], "b.rs:");
        // Only lexical: its order stands.
        let lex = [
            cand("a.rs", "coding", None, Some(0), None),
            cand("b.rs", "coding", None, Some(1), None),
        ];
        assert_eq!(
            order("how are things merged", &lex, &w()),
            ["a.rs:", "b.rs:"]
        );
    }

    #[test]
    fn one_list_keeps_its_own_scores() {
        // Dense-only: cosine scores stand (no prior or decay applies to these two files).
        let mut a = cand("a.rs", "coding", None, None, Some(0));
        a.list_score = 0.82;
        let mut b = cand("b.rs", "coding", None, None, Some(1));
        b.list_score = 0.40;
        let f = QueryFeatures::new("how are things merged");
        let s = score_all(&f, &[a, b], &w(), true);
        assert!((s[0].0 - 0.82).abs() < 1e-6, "{s:?}");
        assert!((s[1].0 - 0.40).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn list_weights_follow_the_intent() {
        // Lexical #1 vs dense #1. Each weight applies to its own kind of query only.
        let cands = [
            cand("lex.rs", "coding", None, Some(0), Some(30)),
            cand("dense.rs", "coding", None, Some(30), Some(0)),
        ];
        let mut wt = w();
        (
            wt.lexical_weight,
            wt.identifier_lexical_weight,
            wt.dense_weight,
        ) = (1.0, 2.0, 1.0);
        // (query, winner with lexical weight 1 for questions and 2 for identifiers)
        let table = [
            ("how does ParseBody decode", Some("lex.rs:")), // mixed: identifier weight
            ("ParseBody", Some("lex.rs:")),                 // symbol: identifier weight
            ("how is the body decoded", None),              // question: a tie
        ];
        for (q, want) in table {
            let f = QueryFeatures::new(q);
            let s = score_all(&f, &cands, &wt, false);
            match want {
                Some(p) => assert_eq!(order(q, &cands, &wt)[0], p, "{q}"),
                None => assert!((s[0].0 - s[1].0).abs() < 1e-6, "{q}: {s:?}"),
            }
        }
        // The shipped weights: questions lean on the lexical list.
        assert_eq!(order("how is the body decoded", &cands, &w())[0], "lex.rs:");
    }

    #[test]
    fn definitions_first_and_product_code_over_tests() {
        let cands = [
            cand(
                "tests/test_body.py",
                "testing",
                Some("parse_body"),
                Some(0),
                Some(0),
            ),
            cand("docs/body.md", "documentation", None, Some(1), Some(1)),
            cand(
                "src/body.py",
                "coding",
                Some("parse_body"),
                Some(5),
                Some(9),
            ),
            cand(
                "src/other.py",
                "coding",
                Some("Parser.parse_body_x"),
                Some(2),
                Some(2),
            ),
        ];
        let got = order("parse_body", &cands, &w());
        assert_eq!(got[0], "src/body.py:parse_body");
        assert_eq!(got[1], "tests/test_body.py:parse_body");
        // In a sentence the definition is lifted, not forced first.
        let got = order("where does parse_body strip the header", &cands, &w());
        assert_eq!(got[0], "src/body.py:parse_body");
    }

    #[test]
    fn an_exact_identifier_puts_its_definitions_first_in_one_list_modes_too() {
        // Lexical-only (BM25 scale) and dense-only (cosine scale): a definition found only by
        // the symbol lookup, in a pushed-down place (a stub, examples), still beats the best
        // other chunk of the list.
        for scale in [25.0f32, 0.9] {
            let mut top = cand("src/uses.ts", "coding", None, Some(0), Some(0));
            top.list_score = scale;
            let mut def = cand(
                "types/index.d.ts",
                "coding",
                Some("createStore"),
                Some(7),
                Some(7),
            );
            def.list_score = 0.0;
            let mut ex = cand(
                "examples/store.ts",
                "coding",
                Some("createStore"),
                Some(8),
                Some(8),
            );
            ex.list_score = scale * 0.1;
            let cands = [top, def, ex];
            let f = QueryFeatures::new("createStore");
            let s = score_all(&f, &cands, &w(), true);
            assert!(s[1].0 > s[0].0 && s[2].0 > s[0].0, "scale {scale}: {s:?}");
        }
    }

    #[test]
    fn implementation_before_examples_and_docs() {
        let cands = [
            cand("examples/basic/main.go", "coding", None, Some(0), Some(0)),
            cand(
                "docs/en/routing.md",
                "documentation",
                None,
                Some(1),
                Some(1),
            ),
            cand("tree.go", "coding", None, Some(2), Some(2)),
        ];
        assert_eq!(order("how are routes matched", &cands, &w())[0], "tree.go:");
        // A usage question keeps the docs page near the top.
        let got = order("how do I group routes", &cands, &w());
        assert!(
            got.iter().position(|p| p.starts_with("docs/")).unwrap() < 2,
            "{got:?}"
        );
    }

    #[test]
    fn more_files_make_the_top() {
        let cands = [
            cand("big.rs", "coding", None, Some(0), Some(0)),
            cand("big.rs", "coding", None, Some(1), Some(1)),
            cand("big.rs", "coding", None, Some(2), Some(2)),
            cand("small.rs", "coding", None, Some(3), Some(3)),
        ];
        let got = order("how are things merged", &cands, &w());
        assert_eq!(got[1], "small.rs:", "{got:?}");
        let f = QueryFeatures::new("how are things merged");
        let s = score_all(&f, &cands, &w(), false);
        assert_eq!(s[0].1.diversity, 1.0);
        assert!((s[2].1.diversity - w().same_file.powi(2)).abs() < 1e-6);
    }
}
