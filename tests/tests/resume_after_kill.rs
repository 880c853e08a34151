//! (e) kill -9 in the middle of indexing, then resume; and (g) a second `index` on a project
//! that is being indexed exits 4 naming the holder's pid.
//!
//! A repository of 150 generated (distinct, non-identical) source files, ~340 chunks, is built
//! at test time so that embedding takes long enough to be interrupted. A reference home indexes
//! it without interruption; a second home is killed mid-embedding and resumed, and must end
//! with exactly the same index while embedding only what was left.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Generated files (spread over four languages) and functions per file.
const FILES: usize = 150;
const FUNCTIONS_PER_FILE: usize = 2;

#[rustfmt::skip]
const DOMAINS: &[&str] = &[
    "inventory", "shipment", "payroll", "telemetry", "invoice", "coupon", "warehouse",
    "subscription", "ledger", "catalog", "checkout", "refund", "supplier", "forecast", "routing",
    "loyalty", "audit", "notification", "session", "pricing", "customs", "returns", "fleet",
    "billing",
];
#[rustfmt::skip]
const VERBS: &[&str] = &[
    "reconcile", "aggregate", "validate", "normalize", "schedule", "estimate", "merge", "partition",
    "summarize", "throttle", "archive", "rebalance", "deduplicate", "score", "project", "rank",
];
#[rustfmt::skip]
const NOUNS: &[&str] = &[
    "batch", "window", "record", "threshold", "bucket", "snapshot", "entry", "quota", "report",
    "delta", "cursor", "tier", "manifest", "lane", "slot",
];
const WHY: &[&str] = &[
    "so the nightly job can compare it with yesterday's figures",
    "before the values are written to the reporting database",
    "because the upstream feed sometimes repeats rows",
    "to keep the dashboard responsive for large tenants",
    "which the finance team reconciles at the end of each month",
    "as required by the carrier's integration guide",
    "so that retries of the same message are harmless",
    "while respecting the per-tenant limits from the contract",
];
const FIELDS: &[&str] = &[
    "amount",
    "weight",
    "count",
    "latency_ms",
    "price",
    "score",
    "volume",
    "age_days",
];
const OPS: &[&str] = &["*", "+", "-", "/"];

/// The one function a query must find (same place in both indexes).
const NEEDLE_FILE: &str = "geo/haversine.py";
const NEEDLE: &str = r#"import math


def haversine_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two latitude/longitude points on Earth, in kilometres."""
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
"#;

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn camel(parts: &[&str]) -> String {
    let mut out = parts[0].to_string();
    for p in &parts[1..] {
        out.push_str(&title(p));
    }
    out
}

fn gen_function(rng: &mut Rng, ext: &str, file: usize, k: usize) -> String {
    let (verb, domain, noun) = (*rng.pick(VERBS), *rng.pick(DOMAINS), *rng.pick(NOUNS));
    let why = *rng.pick(WHY);
    let field = *rng.pick(FIELDS);
    let op = *rng.pick(OPS);
    let (c1, c2, c3) = (10 + rng.below(990), 2 + rng.below(97), 3 + rng.below(29));
    let doc = format!("{} the {domain} {noun}s by {field}, {why}.", title(verb));
    let snake = format!("{verb}_{domain}_{noun}_{file}_{k}");
    match ext {
        "py" => format!(
            "def {snake}(items, limit={c1}):\n    \"\"\"{doc}\"\"\"\n    result = []\n    total = 0\n    for item in items:\n        value = item.get(\"{field}\", 0) {op} {c2}\n        if value > limit or item[\"id\"] % {c3} == 0:\n            continue\n        total += value\n        result.append((item[\"id\"], value))\n    return {{\"count\": len(result), \"total\": total, \"entries\": result}}\n"
        ),
        "rs" => format!(
            "/// {doc}\npub fn {snake}(items: &[(u64, i64)], limit: i64) -> (usize, i64) {{\n    let mut total = 0i64;\n    let mut kept = 0usize;\n    for &(id, {field}) in items {{\n        let value = {field} {op} {c2};\n        if value > limit.min({c1}) || id % {c3} == 0 {{\n            continue;\n        }}\n        total += value;\n        kept += 1;\n    }}\n    (kept, total)\n}}\n"
        ),
        "go" => format!(
            "// {} {doc}\nfunc {}(items []Item, limit int64) (int, int64) {{\n\tvar total int64\n\tkept := 0\n\tfor _, it := range items {{\n\t\tvalue := it.{} {op} {c2}\n\t\tif value > limit || it.ID%{c3} == 0 || value > {c1} {{\n\t\t\tcontinue\n\t\t}}\n\t\ttotal += value\n\t\tkept++\n\t}}\n\treturn kept, total\n}}\n",
            camel(&[&title(verb), domain, noun]) + &format!("{file}x{k}"),
            camel(&[&title(verb), domain, noun]) + &format!("{file}x{k}"),
            title(&camel(&field.split('_').collect::<Vec<_>>()))
        ),
        _ => format!(
            "/** {doc} */\nexport function {}(items: Array<{{ id: number; {field}: number }}>, limit = {c1}): {{ kept: number; total: number }} {{\n  let total = 0;\n  let kept = 0;\n  for (const item of items) {{\n    const value = item.{field} {op} {c2};\n    if (value > limit || item.id % {c3} === 0) {{\n      continue;\n    }}\n    total += value;\n    kept += 1;\n  }}\n  return {{ kept, total }};\n}}\n",
            camel(&[verb, domain, noun]) + &format!("{file}x{k}")
        ),
    }
}

/// Writes the generated repository under `root`; returns the number of files.
fn generate_repo(root: &Path) -> usize {
    let mut rng = Rng::new(0x5eed_c0de_2024);
    let exts = ["py", "rs", "go", "ts"];
    for file in 0..FILES {
        let ext = exts[file % exts.len()];
        let domain = DOMAINS[file % DOMAINS.len()];
        let dir = root.join(format!("services/{domain}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = match ext {
            "go" => format!("package {domain}\n\n// Item is one row of the {domain} feed.\ntype Item struct {{\n\tID int64\n\tAmount, Weight, Count, LatencyMs, Price, Score, Volume, AgeDays int64\n}}\n\n"),
            "py" => format!("\"\"\"{} jobs, module {file}.\"\"\"\n\n", title(domain)),
            "rs" => format!("//! {} jobs, module {file}.\n\n", title(domain)),
            _ => format!("// {} jobs, module {file}.\n\n", title(domain)),
        };
        for k in 0..FUNCTIONS_PER_FILE {
            text.push_str(&gen_function(&mut rng, ext, file, k));
            text.push('\n');
        }
        std::fs::write(dir.join(format!("{domain}_jobs_{file:03}.{ext}")), text).unwrap();
    }
    std::fs::create_dir_all(root.join("geo")).unwrap();
    std::fs::write(root.join(NEEDLE_FILE), NEEDLE).unwrap();
    FILES + 1
}

fn cache_entries(status: &Value) -> u64 {
    status["embedding_cache_entries"]
        .as_u64()
        .unwrap_or_else(|| panic!("embedding_cache_entries: {status}"))
}

#[test]
fn kill9_mid_index_then_resume_matches_a_clean_run() {
    let dir = tempdir("big-repo");
    let root = dir.path().join("repo");
    let n_files = generate_repo(&root) as u64;

    // ---- Reference: one uninterrupted run. Meanwhile a second `index` must be refused. ----
    let ref_home = Home::with_assets();
    let mut reference = ref_home.spawn(&["--root", s(&root), "index", "--json"], DEFAULT_TIMEOUT);
    let mut ref_events = Vec::new();
    while let Some(line) = reference.next_line() {
        let ev = parse_event(&line);
        let first_embed = ev["event"] == "embed";
        ref_events.push(ev);
        if first_embed {
            break;
        }
    }
    assert!(
        ref_events.last().is_some_and(|e| e["event"] == "embed"),
        "the reference run ended before embedding anything: {ref_events:?}"
    );
    let second = ref_home.run(&["--root", s(&root), "index", "--json"]);
    assert_ne!(second.code, Some(EXIT_OK), "the reference run finished before the second index could collide with it; make the generated repo bigger\n{second}");
    assert_eq!(
        second.code,
        Some(EXIT_BUSY),
        "a second index on a busy project exits 4:\n{second}"
    );
    assert!(
        second.stderr.contains(&reference.pid.to_string()),
        "the busy message names the holder's pid {}:\n{second}",
        reference.pid
    );
    assert!(
        second
            .stdout
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{second}"
    );
    let (status, rest, stderr) = reference.wait();
    assert_eq!(
        status.code(),
        Some(EXIT_OK),
        "reference index failed:\n{stderr}"
    );
    ref_events.extend(rest.iter().map(|l| parse_event(l)));
    let ref_done = ref_events.last().expect("events");
    assert_eq!(ref_done["event"], "done", "{ref_done}");
    let ref_stats = Stats(ref_done["stats"].clone());
    eprintln!("reference run: {}", ref_stats.0);
    assert_eq!(ref_stats.n("files_indexed"), n_files, "{}", ref_stats.0);
    let total_unique = ref_stats.n("chunks_embedded");
    assert!(total_unique >= n_files, "{}", ref_stats.0);
    let ref_status = ref_home.status(&root);
    assert_eq!(cache_entries(&ref_status), total_unique, "{ref_status}");
    assert_eq!(
        points_sum(&ref_status),
        ref_stats.n("points_total"),
        "{ref_status}"
    );

    // ---- Interrupted run: SIGKILL once a checkpoint has certainly been written. ----
    // Progress is checkpointed every ~2 s during embedding. We kill at an embed event that
    // follows another embed event seen >= 2.5 s after the first one: that earlier event was
    // emitted >= 2 s after the lexical phase's checkpoint, so a checkpoint followed it.
    let home = Home::with_assets();
    let mut run = home.spawn(&["--root", s(&root), "index", "--json"], DEFAULT_TIMEOUT);
    let mut first_embed: Option<Instant> = None;
    let mut checkpoint_certain = false;
    let mut killed_at: Option<Value> = None;
    let mut lines = 0;
    while let Some(line) = run.next_line() {
        lines += 1;
        let ev = parse_event(&line);
        assert_ne!(
            ev["event"], "done",
            "the run finished before it could be interrupted; make the generated repo bigger"
        );
        if ev["event"] != "embed" {
            continue;
        }
        let now = Instant::now();
        let t0 = *first_embed.get_or_insert(now);
        if checkpoint_certain && ev["done"].as_u64() < ev["total"].as_u64() {
            killed_at = Some(ev);
            break;
        }
        if now.duration_since(t0) >= Duration::from_millis(2500) {
            checkpoint_certain = true;
        }
    }
    let killed_at =
        killed_at.unwrap_or_else(|| panic!("no point to interrupt the run (read {lines} lines)"));
    let exit = run.kill9();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "{exit:?}"
    );
    eprintln!(
        "killed -9 at {killed_at} after {:.1}s",
        run.started.elapsed().as_secs_f64()
    );
    drop(run);

    // The lock died with the process; status works and shows unfinished work.
    let after_kill = home.status(&root);
    eprintln!("status after kill: {after_kill}");
    let cache_after_kill = cache_entries(&after_kill);
    assert!(
        after_kill["pending_files"].as_u64().is_some_and(|p| p > 0),
        "files are pending after the kill: {after_kill}"
    );
    assert_eq!(
        after_kill["files_indexed"].as_u64(),
        Some(n_files),
        "the lexical phase was checkpointed: {after_kill}"
    );
    assert!(
        cache_after_kill > 0,
        "embeddings finished before the last checkpoint survive the kill: {after_kill}"
    );
    assert!(cache_after_kill < total_unique, "{after_kill}");
    // Lexical search already covers the whole tree.
    let r = home.search(
        &root,
        "haversine_distance_km",
        &["-k", "1", "--mode", "lexical"],
    );
    assert_eq!(r.paths(), [NEEDLE_FILE], "{}", r.summary());
    assert!(
        r.0["freshness"]["pending_files"]
            .as_u64()
            .is_some_and(|p| p > 0),
        "{}",
        r.0["freshness"]
    );

    // ---- Resume: finishes, embedding only what was left. ----
    let resumed = home.index(&root);
    let st = &resumed.stats;
    eprintln!("resumed run: {}", st.0);
    assert!(!st.cancelled());
    assert_eq!(st.n("embed_errors"), 0, "{}", st.0);
    let embedded = st.n("chunks_embedded");
    assert!(
        embedded < total_unique,
        "the resumed run re-embedded everything ({embedded} of {total_unique})"
    );
    assert!(
        st.n("files_indexed") < n_files,
        "files finished before the kill are not redone: {}",
        st.0
    );
    let end = home.status(&root);
    assert_eq!(
        embedded + cache_after_kill,
        cache_entries(&end),
        "embedded now + cached before == cached at the end\n{end}"
    );
    assert_eq!(cache_entries(&end), total_unique, "{end}");
    assert_eq!(end["pending_files"].as_u64(), Some(0), "{end}");
    assert_eq!(end["files_indexed"].as_u64(), Some(n_files), "{end}");
    assert_eq!(
        st.n("points_total"),
        ref_stats.n("points_total"),
        "same index as the reference run: {}",
        st.0
    );
    assert_eq!(
        namespace_counts(&end),
        namespace_counts(&ref_status),
        "per-namespace files and points"
    );

    // Both indexes answer a semantic query the same way.
    let q = "great-circle distance between two latitude longitude points";
    let a = ref_home.search(&root, q, &["-k", "1", "--mode", "dense"]);
    let b = home.search(&root, q, &["-k", "1", "--mode", "dense"]);
    assert_eq!(a.paths(), [NEEDLE_FILE], "{}", a.summary());
    assert_eq!(b.paths(), [NEEDLE_FILE], "{}", b.summary());

    // And a further run has nothing to do.
    let again = home.index(&root);
    assert_eq!(again.stats.n("chunks_embedded"), 0, "{}", again.stats.0);
    assert_eq!(again.stats.n("files_indexed"), 0, "{}", again.stats.0);
}
