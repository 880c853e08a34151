//! (f) A workspace full of things that break naive indexers: non-UTF-8 text, garbage, empty
//! files, a 50 MB file, binary data with a source extension, a symlink loop, an unreadable
//! file, a FIFO named like source, and paths with spaces and non-ASCII characters. Indexing
//! must finish (no hang, no crash), skip what cannot be indexed with a reason, and keep
//! everything else searchable.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// The whole run on this small tree must be quick; a hang (e.g. opening the FIFO) fails fast.
const TIMEOUT: Duration = Duration::from_secs(120);

const UNICODE_DIR: &str = "dir with space";
const UNICODE_FILE: &str = "ünïcødé_mödule.py";

fn unicode_rel() -> String {
    format!("{UNICODE_DIR}/{UNICODE_FILE}")
}

/// Builds the nasty tree under `root`; returns whether the unreadable file really is unreadable
/// to us (not when running as root).
fn build_tree(root: &Path, follow_symlinks: bool) -> bool {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("codemem.toml"),
        format!("# test configuration\n[index]\nfollow_symlinks = {follow_symlinks}\n"),
    )
    .unwrap();

    std::fs::write(
        root.join("good.py"),
        "def reconcile_warehouse_inventory(expected: dict[str, int], counted: dict[str, int]) -> dict[str, int]:\n    \
         \"\"\"Differences between the stock we expect and what the scanners counted.\"\"\"\n    \
         skus = set(expected) | set(counted)\n    \
         return {s: counted.get(s, 0) - expected.get(s, 0) for s in skus if counted.get(s, 0) != expected.get(s, 0)}\n",
    )
    .unwrap();

    // Latin-1 text: valid except for a few bytes (é = 0xE9, ç = 0xE7, à = 0xE0).
    let mut latin1 = Vec::new();
    latin1.extend_from_slice(b"# Calcul du prix moyen du caf");
    latin1.push(0xE9);
    latin1.extend_from_slice(b" par r");
    latin1.push(0xE9);
    latin1.extend_from_slice(b"gion (fichier encod");
    latin1.push(0xE9);
    latin1.extend_from_slice(b" en Latin-1).\n\n");
    latin1.extend_from_slice(
        b"def calcular_precio_medio_cafe(precios_por_region):\n    \"\"\"Average coffee price over all regions, ignoring empty regions.\"\"\"\n    total = 0\n    count = 0\n    for region, precios in precios_por_region.items():\n        if not precios:\n            continue\n        total += sum(precios)\n        count += len(precios)\n    return total / count if count else 0.0\n\n\ndef fa",
    );
    latin1.push(0xE7);
    latin1.extend_from_slice(b"ade_label(region):\n    return \"Caf");
    latin1.push(0xE9);
    latin1.extend_from_slice(b" de \" + region.title()\n");
    // The rest of the module is plain ASCII: a few invalid bytes in a file of ordinary size.
    latin1.extend_from_slice(
        b"\n\ndef cheapest_region(precios_por_region):\n    \"\"\"The region whose lowest offer is the cheapest one overall.\"\"\"\n    best_region, best_price = None, None\n    for region, precios in precios_por_region.items():\n        if not precios:\n            continue\n        low = min(precios)\n        if best_price is None or low < best_price:\n            best_region, best_price = region, low\n    return best_region\n\n\ndef price_spread(precios):\n    \"\"\"Difference between the most and the least expensive offer of one region.\"\"\"\n    if not precios:\n        return 0.0\n    return max(precios) - min(precios)\n\n\ndef normalise_offers(precios_por_region, currency_rate):\n    \"\"\"Converts every offer to euros with the given exchange rate, rounded to cents.\"\"\"\n    return {\n        region: [round(p * currency_rate, 2) for p in precios]\n        for region, precios in precios_por_region.items()\n    }\n",
    );
    std::fs::write(root.join("latin1.py"), latin1).unwrap();

    // Mostly invalid UTF-8, no NUL bytes: not text.
    let mut rng = Rng::new(0xbad5eed);
    let garbage: Vec<u8> = (0..8192).map(|_| 0x80 + rng.below(0x80) as u8).collect();
    std::fs::write(root.join("garbage.rs"), garbage).unwrap();

    std::fs::write(root.join("empty.py"), b"").unwrap();

    // Binary data under a source extension.
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00".to_vec();
    png.extend((0..4096u32).map(|i| (i % 251) as u8));
    std::fs::write(root.join("logo.c"), png).unwrap();

    // 50 MB of text (over the 1 MiB default limit); generated here, never committed.
    std::fs::create_dir_all(root.join("data")).unwrap();
    {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(root.join("data/huge.txt")).unwrap());
        let line = b"sku-000000,espresso beans,2499,warehouse-7,shelf-12,2024-05-01T10:00:00Z,ok\n";
        let mut written = 0usize;
        while written < 50 * 1024 * 1024 {
            f.write_all(line).unwrap();
            written += line.len();
        }
        f.flush().unwrap();
    }

    // A directory symlink pointing at its own parent: a loop when links are followed.
    std::fs::create_dir_all(root.join("nested")).unwrap();
    std::fs::write(
        root.join("nested/inner.py"),
        "def nested_inner_helper_for_loop_check():\n    return 'inner'\n\n\n# padding\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("..", root.join("nested/loop")).unwrap();

    // A FIFO with a source extension: opening it for reading would block forever.
    let st = Command::new("mkfifo")
        .arg(root.join("pipe.rs"))
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo failed");

    // Spaces and non-ASCII characters in the path.
    std::fs::create_dir_all(root.join(UNICODE_DIR)).unwrap();
    std::fs::write(
        root.join(unicode_rel()),
        "def normalize_umlaut_transliteration(text: str) -> str:\n    \
         \"\"\"Replaces German umlauts with their two-letter spellings: ä → ae, ö → oe, ü → ue, ß → ss.\"\"\"\n    \
         table = str.maketrans({\"ä\": \"ae\", \"ö\": \"oe\", \"ü\": \"ue\", \"ß\": \"ss\"})\n    \
         return text.translate(table)\n",
    )
    .unwrap();

    // Unreadable (no effect when the tests run as root).
    let unreadable = root.join("unreadable.py");
    std::fs::write(
        &unreadable,
        "def rotate_unreadable_secret_schedule():\n    return 'weekly'\n\n\n# padding\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::read(&unreadable).is_err()
}

fn restore_permissions(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(
        root.join("unreadable.py"),
        std::fs::Permissions::from_mode(0o644),
    );
}

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    unreadable_for_us: bool,
}

impl Drop for Tree {
    fn drop(&mut self) {
        restore_permissions(&self.root);
    }
}

fn tree(follow: bool) -> Tree {
    let dir = tempdir("bad-inputs");
    let root = dir.path().join("ws");
    let unreadable_for_us = build_tree(&root, follow);
    Tree {
        _dir: dir,
        root,
        unreadable_for_us,
    }
}

fn top_path(home: &Home, root: &Path, query: &str) -> Option<String> {
    let r = home.search(root, query, &["-k", "3", "--mode", "lexical"]);
    r.paths().first().cloned()
}

fn check_run(home: &Home, t: &Tree, run: &IndexRun, label: &str) {
    let st = &run.stats;
    eprintln!("{label}: {}", st.0);
    assert!(!st.cancelled(), "{label}");
    let skipped = st.skipped();
    let reason = |p: &str| {
        st.skipped_reason(p)
            .unwrap_or_else(|| panic!("{label}: {p} should be listed as skipped: {skipped:?}"))
    };

    // Skipped, with a reason.
    let r = reason("data/huge.txt");
    assert!(
        r.contains("max_file_bytes") || r.contains("limit"),
        "{label}: huge.txt reason: {r}"
    );
    reason("garbage.rs");
    reason("logo.c");
    // The FIFO is never opened, and says so.
    let r = reason("pipe.rs");
    assert!(r.contains("FIFO"), "{label}: pipe.rs reason: {r}");
    assert!(st.n("files_skipped") >= 3, "{label}: {}", st.0);
    for p in [
        "good.py",
        "latin1.py",
        "empty.py",
        "nested/inner.py",
        unicode_rel().as_str(),
    ] {
        assert!(
            st.skipped_reason(p).is_none(),
            "{label}: {p} must not be skipped: {skipped:?}"
        );
    }

    // Indexed and searchable.
    assert_eq!(
        top_path(home, &t.root, "reconcile_warehouse_inventory").as_deref(),
        Some("good.py"),
        "{label}"
    );
    assert_eq!(
        top_path(home, &t.root, "nested_inner_helper_for_loop_check").as_deref(),
        Some("nested/inner.py"),
        "{label}"
    );
    // Latin-1: decoded lossily (the invalid bytes become U+FFFD) and indexed.
    let r = home.search(&t.root, "calcular_precio_medio_cafe", &["-k", "3"]);
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("latin1.py"),
        "{label}: {}",
        r.summary()
    );
    let snippet = r.hits()[0]["snippet"].as_str().unwrap_or("");
    assert!(
        snippet.contains("calcular_precio_medio_cafe"),
        "{label}: {snippet}"
    );
    let latin = home.search(
        &t.root,
        "Latin-1 caf",
        &["-k", "10", "--path", "latin1.py", "--mode", "lexical"],
    );
    assert!(
        latin
            .hits()
            .iter()
            .any(|h| h["snippet"].as_str().unwrap_or("").contains('\u{FFFD}')),
        "{label}: invalid bytes of latin1.py are replaced by U+FFFD: {}",
        latin.summary()
    );
    // Spaces and non-ASCII in the path: found by a search, path reported exactly.
    let r = home.search(
        &t.root,
        "replace German umlauts with two-letter spellings",
        &["-k", "3"],
    );
    assert_eq!(
        r.paths().first(),
        Some(&unicode_rel()),
        "{label}: {}",
        r.summary()
    );
    assert_eq!(
        top_path(home, &t.root, "normalize_umlaut_transliteration"),
        Some(unicode_rel()),
        "{label}"
    );
    // Never indexed.
    for (q, p) in [
        ("sku espresso beans warehouse shelf", "data/huge.txt"),
        ("PNG IHDR", "logo.c"),
    ] {
        let r = home.search(&t.root, q, &["-k", "20", "--mode", "lexical"]);
        assert!(
            r.rank_of(&[p]).is_none(),
            "{label}: {p} must not be indexed: {}",
            r.summary()
        );
    }
    // Link loops are not walked into: nothing is indexed twice under nested/loop/...
    let mut all = vec![
        "-k",
        "200",
        "--mode",
        "dense",
        "--ns",
        "coding",
        "--ns",
        "documentation",
        "--ns",
        "testing",
    ];
    all.extend(["--ns", "architecture"]);
    let r = home.search(&t.root, "anything", &all);
    assert!(
        r.paths().iter().all(|p| !p.contains("loop/")),
        "{label}: {}",
        r.summary()
    );

    // Unreadable file: skipped when we cannot read it, indexed when we can (root).
    let found = top_path(home, &t.root, "rotate_unreadable_secret_schedule").as_deref()
        == Some("unreadable.py");
    if t.unreadable_for_us {
        assert!(
            st.skipped_reason("unreadable.py").is_some(),
            "{label}: unreadable.py is listed as skipped: {skipped:?}"
        );
        assert!(!found, "{label}");
    } else {
        assert!(
            found,
            "{label}: running as root, unreadable.py is readable and must be indexed"
        );
    }

    // Status works and agrees.
    let status = home.status(&t.root);
    assert_eq!(
        points_sum(&status),
        st.n("points_total"),
        "{label}: {status}"
    );
    assert_eq!(
        status["pending_files"].as_u64(),
        Some(0),
        "{label}: {status}"
    );
}

#[test]
fn nasty_tree_indexes_without_hanging_or_crashing() {
    let home = Home::with_assets();
    let t = tree(false);
    let run = home.index_with_timeout(&t.root, TIMEOUT);
    check_run(&home, &t, &run, "default config");
    // A re-run over the same tree is a no-op and still does not hang.
    let again = home.index_with_timeout(&t.root, TIMEOUT);
    assert_eq!(again.stats.n("chunks_embedded"), 0, "{}", again.stats.0);
    assert_eq!(
        again.stats.n("files_indexed"),
        0,
        "skipped files are not counted as indexed: {}",
        again.stats.0
    );
}

#[test]
fn following_symlinks_terminates_on_a_loop() {
    let home = Home::with_assets();
    let t = tree(true);
    let out = home.run_with_timeout(&["--root", s(&t.root), "status", "--config"], TIMEOUT);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(
        out.stdout.contains("follow_symlinks = true"),
        "codemem.toml is read:\n{out}"
    );
    let run = home.index_with_timeout(&t.root, TIMEOUT);
    check_run(&home, &t, &run, "follow_symlinks = true");

    // The same tree without following links scans the same files: the loop adds nothing.
    let plain = tree(false);
    let home2 = Home::with_assets();
    let run2 = home2.index_with_timeout(&plain.root, TIMEOUT);
    assert_eq!(
        run.stats.n("files_scanned"),
        run2.stats.n("files_scanned"),
        "follow: {}\nno follow: {}",
        run.stats.0,
        run2.stats.0
    );
    assert_eq!(
        run.stats.n("points_total"),
        run2.stats.n("points_total"),
        "follow: {}\nno follow: {}",
        run.stats.0,
        run2.stats.0
    );
}
