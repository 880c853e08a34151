//! (d) Incremental indexing: an unchanged tree embeds nothing; a modified file is the only one
//! re-indexed and its new code is searchable; a deleted file's chunks disappear; the counters
//! in the `done` event, `status --json` and the namespace point sums agree throughout.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::Value;

/// The counters of `stats` must be what `status --json` shows as `last_run`, and the point and
/// file totals must add up.
fn check_consistent(home: &Home, root: &Path, stats: &Stats, what: &str) -> Value {
    let status = home.status(root);
    let last = Stats(status["last_run"].clone());
    for k in [
        "files_scanned",
        "files_indexed",
        "files_unchanged",
        "files_deleted",
        "chunks_upserted",
        "chunks_embedded",
        "cache_hits",
        "points_total",
    ] {
        assert_eq!(
            last.n(k),
            stats.n(k),
            "{what}: status.last_run.{k} differs from the done event\nstatus: {status}\nstats: {}",
            stats.0
        );
    }
    assert_eq!(
        points_sum(&status),
        stats.n("points_total"),
        "{what}: namespace points vs points_total\n{status}"
    );
    let files: u64 = namespace_counts(&status).values().map(|(f, _)| f).sum();
    assert_eq!(
        status["files_indexed"].as_u64(),
        Some(files),
        "{what}: files_indexed vs namespace files\n{status}"
    );
    assert_eq!(
        status["pending_files"].as_u64(),
        Some(0),
        "{what}: nothing pending after a complete run\n{status}"
    );
    assert_eq!(stats.n("embed_errors"), 0, "{what}");
    assert!(!stats.cancelled(), "{what}");
    status
}

fn cache_entries(status: &Value) -> u64 {
    status["embedding_cache_entries"]
        .as_u64()
        .expect("embedding_cache_entries")
}

/// Number of chunks (points) of one file, via a dense query filtered to that path.
fn chunks_of(home: &Home, root: &Path, path: &str) -> usize {
    home.search(
        root,
        "code",
        &["--path", path, "--mode", "dense", "-k", "200"],
    )
    .hits()
    .len()
}

const NEW_FUNCTION: &str = r#"

def compute_carbon_offset_surcharge(shipping_weight_grams: int, distance_km: int) -> int:
    """Surcharge in cents for offsetting the CO2 of a parcel: 0.4 cents per kilogram and
    100 kilometres, at least 5 cents for any parcel that travels."""
    if shipping_weight_grams <= 0 or distance_km <= 0:
        return 0
    kilo_hectometres = Decimal(shipping_weight_grams) / 1000 * Decimal(distance_km) / 100
    return max(5, _round_cents(kilo_hectometres * Decimal("0.4")))
"#;

#[test]
fn incremental_reindex_embeds_only_what_changed() {
    let home = Home::with_assets();
    let (_dir, root) = copy_polyglot();

    // Full index.
    let first = home.index(&root);
    let n_files = first.stats.n("files_indexed");
    assert!(n_files >= 25, "{}", first.stats.0);
    assert!(first.stats.n("chunks_embedded") > 0);
    // The first pass is off by default.
    assert_eq!(first.stats.n("chunks_first_pass"), 0, "{}", first.stats.0);
    let status = check_consistent(&home, &root, &first.stats, "first run");
    let cache0 = cache_entries(&status);
    assert_eq!(cache0, first.stats.n("chunks_embedded"), "{status}");

    // Unchanged tree: nothing is read again, nothing is embedded.
    let again = home.index(&root);
    let st = &again.stats;
    assert_eq!(st.n("files_indexed"), 0, "unchanged tree: {}", st.0);
    assert_eq!(st.n("chunks_embedded"), 0, "unchanged tree: {}", st.0);
    assert_eq!(st.n("chunks_first_pass"), 0, "unchanged tree: {}", st.0);
    assert_eq!(st.n("chunks_upserted"), 0, "unchanged tree: {}", st.0);
    assert_eq!(st.n("files_unchanged"), n_files, "{}", st.0);
    assert_eq!(st.n("files_deleted"), 0, "{}", st.0);
    assert_eq!(
        st.n("points_total"),
        first.stats.n("points_total"),
        "{}",
        st.0
    );
    assert_eq!(
        again.events[0]["changed"].as_u64(),
        Some(0),
        "{}",
        again.events[0]
    );
    let status = check_consistent(&home, &root, st, "unchanged re-run");
    assert_eq!(cache_entries(&status), cache0);

    // A touched but unmodified file (new mtime, same bytes) embeds nothing either.
    let touched = root.join("src/ratelimit.rs");
    std::fs::File::options()
        .write(true)
        .open(&touched)
        .and_then(|f| f.set_modified(SystemTime::now() + Duration::from_secs(5)))
        .expect("set mtime");
    let touch = home.index(&root);
    assert_eq!(
        touch.stats.n("chunks_embedded"),
        0,
        "same bytes, new mtime: {}",
        touch.stats.0
    );
    assert_eq!(
        touch.stats.n("chunks_upserted"),
        0,
        "same bytes, new mtime: {}",
        touch.stats.0
    );
    check_consistent(&home, &root, &touch.stats, "touched file");

    // Modify one file: only it is re-indexed, and the new function is searchable.
    let chunks_before = chunks_of(&home, &root, "billing/invoice.py");
    let path = root.join("billing/invoice.py");
    let mut text = std::fs::read_to_string(&path).expect("read invoice.py");
    text.push_str(NEW_FUNCTION);
    std::fs::write(&path, text).expect("write invoice.py");
    let modified = home.index(&root);
    let st = &modified.stats;
    assert_eq!(st.n("files_indexed"), 1, "only the modified file: {}", st.0);
    assert_eq!(st.n("files_unchanged"), n_files - 1, "{}", st.0);
    assert_eq!(st.n("files_deleted"), 0, "{}", st.0);
    assert!(
        st.n("chunks_embedded") >= 1,
        "the new code needs a vector: {}",
        st.0
    );
    assert_eq!(
        st.n("cache_hits") + st.n("chunks_embedded"),
        st.n("chunks_upserted"),
        "{}",
        st.0
    );
    let chunks_after = chunks_of(&home, &root, "billing/invoice.py");
    assert_eq!(st.n("chunks_upserted") as usize, chunks_after, "{}", st.0);
    if chunks_before >= 2 {
        // The file's untouched functions keep their text, so their vectors come from the cache.
        assert!(
            st.n("cache_hits") >= 1,
            "unchanged chunks of a modified file must come from the cache: {}",
            st.0
        );
        assert!(
            st.n("chunks_embedded") < st.n("chunks_upserted"),
            "{}",
            st.0
        );
    }
    assert_eq!(
        st.n("points_total"),
        first.stats.n("points_total") - chunks_before as u64 + chunks_after as u64,
        "{}",
        st.0
    );
    let status = check_consistent(&home, &root, st, "modified file");
    assert_eq!(
        cache_entries(&status),
        cache0 + st.n("chunks_embedded"),
        "{status}"
    );

    let r = home.search(&root, "compute_carbon_offset_surcharge", &["-k", "5"]);
    let top = r
        .hits()
        .first()
        .unwrap_or_else(|| panic!("the new function is not found"));
    assert_eq!(top["path"], "billing/invoice.py", "{}", r.summary());
    assert!(
        top["snippet"]
            .as_str()
            .unwrap_or("")
            .contains("def compute_carbon_offset_surcharge"),
        "{}",
        r.summary()
    );
    let r = home.search(
        &root,
        "surcharge for offsetting the CO2 of a parcel by weight and distance",
        &["-k", "3", "--mode", "dense"],
    );
    assert!(
        r.rank_of(&["billing/invoice.py"]).is_some(),
        "the new function has a dense vector:\n{}",
        r.summary()
    );

    // Delete one file: its chunks disappear.
    let gone = "native/linalg/matrix.cpp";
    let gone_chunks = chunks_of(&home, &root, gone) as u64;
    assert!(gone_chunks >= 1);
    let before = home.search(&root, "multiply two matrices", &["-k", "10"]);
    assert!(before.rank_of(&[gone]).is_some(), "{}", before.summary());
    std::fs::remove_file(root.join(gone)).expect("delete matrix.cpp");
    let deleted = home.index(&root);
    let st = &deleted.stats;
    assert_eq!(st.n("files_deleted"), 1, "{}", st.0);
    assert_eq!(st.n("files_indexed"), 0, "{}", st.0);
    assert_eq!(st.n("chunks_embedded"), 0, "{}", st.0);
    assert_eq!(st.n("files_unchanged"), n_files - 1, "{}", st.0);
    assert_eq!(
        st.n("points_total"),
        modified.stats.n("points_total") - gone_chunks,
        "{}",
        st.0
    );
    assert_eq!(
        deleted.events[0]["deleted"].as_u64(),
        Some(1),
        "{}",
        deleted.events[0]
    );
    let status = check_consistent(&home, &root, st, "deleted file");
    assert_eq!(
        status["files_indexed"].as_u64(),
        Some(n_files - 1),
        "{status}"
    );
    let after = home.search(&root, "multiply two matrices", &["-k", "50"]);
    assert!(
        after.rank_of(&[gone]).is_none(),
        "deleted file still found:\n{}",
        after.summary()
    );
    let mut args = vec!["--path", gone, "-k", "50"];
    args.extend([
        "--ns",
        "coding",
        "--ns",
        "testing",
        "--ns",
        "documentation",
        "--ns",
        "architecture",
    ]);
    assert!(home.search(&root, "matrix", &args).hits().is_empty());
    assert!(home
        .search(&root, "matrix", &["--path", gone, "--mode", "lexical"])
        .hits()
        .is_empty());
}
