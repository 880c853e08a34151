//! Team mode across real `codemem` processes on one Redis + Qdrant (servers started by the
//! test on free ports; a missing redis-server or Qdrant binary fails the test, never skips it):
//! - two `codemem index` processes on one project at once: the lease makes them take turns and
//!   the second finds everything done (0 files indexed, 0 chunks embedded);
//! - a second clone (another machine: other home, other path) embeds nothing (shared cache);
//! - an indexer killed with SIGKILL leaves a lease that lapses: the next run completes.

mod common;

use std::path::Path;

use codemem_kv::testing::RedisServer;
use codemem_store::testing::QdrantServer;
use common::*;

/// `n` Python files of distinct functions (each needs its own embedding).
fn tree(root: &Path, n: usize) {
    for i in 0..n {
        let mut text = String::new();
        for f in 0..3 {
            text.push_str(&format!(
                "def settle_account_{i}_{f}(ledger, amount):\n    \"\"\"Settles account {i} step {f} and records the fee of tier {f}.\"\"\"\n    fee = amount * {f}.{i} + {i}\n    ledger.append((\"acct-{i}\", fee))\n    return ledger[-1]\n\n\n"
            ));
        }
        let p = root.join(format!("pkg/mod_{i}.py"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn team_toml(root: &Path, redis: &RedisServer, qdrant: &QdrantServer, lease_ttl_ms: u64) {
    std::fs::write(
        root.join("codemem.toml"),
        format!(
            "[backends]\nredis_url = \"{}\"\nqdrant_url = \"{}\"\nlease_ttl_ms = {lease_ttl_ms}\nbreaker_recovery_secs = 1\n",
            redis.url(),
            qdrant.url()
        ),
    )
    .unwrap();
}

#[test]
fn two_index_processes_on_one_project_take_turns_and_a_second_clone_embeds_nothing() {
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let home = Home::with_assets();
    let root = tempdir("team-root");
    tree(root.path(), 40);
    team_toml(root.path(), &redis, &qdrant, 30_000);

    // Two processes, one project, same moment.
    let (ra, rb) = std::thread::scope(|s| {
        let a = s.spawn(|| home.index(root.path()));
        let b = s.spawn(|| home.index(root.path()));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (fa, fb) = (ra.stats.n("files_indexed"), rb.stats.n("files_indexed"));
    report(&format!(
        "team: concurrent index runs: a {} files / {} embedded in {:?}; b {} files / {} embedded in {:?}",
        fa,
        ra.stats.n("chunks_embedded"),
        ra.elapsed,
        fb,
        rb.stats.n("chunks_embedded"),
        rb.elapsed
    ));
    let (first, second) = if fa >= fb { (&ra, &rb) } else { (&rb, &ra) };
    assert!(
        first.stats.n("files_indexed") >= 40,
        "one run indexes the tree: {}",
        first.stats.0
    );
    assert!(first.stats.n("chunks_embedded") > 0);
    assert_eq!(
        second.stats.n("files_indexed"),
        0,
        "the other waited for the lease, then found it done: {}",
        second.stats.0
    );
    assert_eq!(second.stats.n("chunks_embedded"), 0);
    assert_eq!(second.stats.n("chunks_upserted"), 0);

    // A search from a third process answers from the shared index.
    let hits = home.search(root.path(), "settle_account_17_2", &[]);
    assert_eq!(hits.0["hits"][0]["path"], "pkg/mod_17.py", "{}", hits.0);

    // Another machine: another home, another checkout path, same content.
    let home2 = Home::with_assets();
    let clone = tempdir("team-clone");
    tree(clone.path(), 40);
    team_toml(clone.path(), &redis, &qdrant, 30_000);
    let rc = home2.index(clone.path());
    report(&format!(
        "team: second clone: {} files, {} embedded, {} cache hits in {:?} (first: {:?})",
        rc.stats.n("files_indexed"),
        rc.stats.n("chunks_embedded"),
        rc.stats.n("cache_hits"),
        rc.elapsed,
        first.elapsed
    ));
    assert_eq!(
        rc.stats.n("chunks_embedded"),
        0,
        "every vector came from the shared cache: {}",
        rc.stats.0
    );
    assert_eq!(rc.stats.n("cache_hits"), first.stats.n("chunks_embedded"));
}

#[test]
fn a_killed_indexers_lease_lapses_and_the_next_run_completes() {
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let home = Home::with_assets();
    let root = tempdir("team-kill");
    tree(root.path(), 150);
    team_toml(root.path(), &redis, &qdrant, 3000);

    let mut p = home.spawn(
        &["--root", s(root.path()), "index", "--json"],
        DEFAULT_TIMEOUT,
    );
    // Wait until it is embedding (it holds the lease), then SIGKILL it: no release happens.
    loop {
        let line = p.next_line().expect("the indexer exited before embedding");
        if line.contains("\"embed\"") {
            break;
        }
    }
    p.kill9();
    let status = home.status(root.path());
    let team = status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "team state")
        .cloned();
    let detail = team
        .as_ref()
        .map(|b| b["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(
        detail.contains("lease held by"),
        "the dead indexer's lease is still there: {status}"
    );

    let r = home.index(root.path());
    assert_eq!(
        r.stats.n("files_indexed") + r.stats.n("files_unchanged"),
        151,
        "{}",
        r.stats.0
    );
    let status = home.status(root.path());
    assert_eq!(status["pending_files"], 0, "{status}");
}
