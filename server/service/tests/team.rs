//! Team mode with real servers: a redis-server and a Qdrant server started by the test on free
//! ports (see codemem_kv::testing / codemem_store::testing; both fail, never skip, when the
//! server binary is missing).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codemem_core::Config;
use codemem_embed::{Embedder, HashEmbedder};
use codemem_kv::testing::RedisServer;
use codemem_service::{IndexEvent, IndexOptions, IndexStats, OpenOptions, ProgressSink, Project};
use codemem_store::testing::QdrantServer;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `n` Rust files with a few functions each, plus docs and tests.
fn tree(root: &Path, n: usize) {
    for i in 0..n {
        let mut s = String::new();
        for f in 0..4 {
            s.push_str(&format!(
                "/// Handles request kind {i}/{f}.\npub fn handle_{i}_{f}(req: &Request) -> Response {{\n    let v = req.value * {f} + {i};\n    if v > 10 {{\n        return Response::ok(v);\n    }}\n    Response::err(\"small {i} {f}\")\n}}\n\n"
            ));
        }
        write(root, &format!("src/mod_{i}.rs"), &s);
    }
    write(
        root,
        "README.md",
        "# Team\n\nA project indexed in team mode.\n\n## Usage\n\nRun it.\n",
    );
    write(
        root,
        "tests/test_it.py",
        "def test_it():\n    assert handle(1) == 2\n",
    );
}

fn team_config(redis: Option<&str>, qdrant: Option<&str>) -> Config {
    let mut cfg = Config::default();
    cfg.backends.redis_url = redis.unwrap_or_default().to_string();
    cfg.backends.qdrant_url = qdrant.unwrap_or_default().to_string();
    cfg.backends.breaker_recovery_secs = 1;
    cfg.backends.connect_timeout_ms = 500;
    cfg.backends.request_timeout_ms = 3000;
    cfg
}

fn open(home: &Path, root: &Path, cfg: Config) -> Project {
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(384));
    Project::open(
        root,
        OpenOptions {
            home: home.to_path_buf(),
            embedder: Some(embedder),
            purpose: "test".into(),
            lock_wait: Duration::ZERO,
            create: true,
            config: Some(cfg),
        },
    )
    .unwrap()
}

fn index_with(p: &Project, progress: &dyn ProgressSink) -> IndexStats {
    let cancel = AtomicBool::new(false);
    p.index(IndexOptions {
        cancel: &cancel,
        progress,
    })
    .unwrap()
}

/// Indexes, calling `kill` once the first embedding batch is done; returns the stats and
/// whether `kill` ran.
fn index_killing_mid_run(p: &Project, kill: impl Fn() + Sync) -> (IndexStats, bool) {
    let killed = AtomicBool::new(false);
    let s = index_with(p, &|e: IndexEvent| {
        if let IndexEvent::Embed { done, .. } = e {
            if done > 0 && !killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                kill();
            }
        }
    });
    (s, killed.load(std::sync::atomic::Ordering::SeqCst))
}

fn points(p: &Project) -> Vec<(String, u64)> {
    p.status()
        .unwrap()
        .namespaces
        .into_iter()
        .map(|n| (n.name, n.points))
        .collect()
}

/// Two machines (two homes, two clones of the same tree) on one Redis + Qdrant: the second
/// embeds nothing, and both hold exactly what the embedded backend holds.
#[test]
fn second_clone_embeds_nothing_and_counts_match_embedded() {
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let cfg = team_config(Some(&redis.url()), Some(&qdrant.url()));

    let (home_a, home_b, home_ref) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (root_a, root_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tree(root_a.path(), 30);
    tree(root_b.path(), 30);

    let reference = open(home_ref.path(), root_a.path(), Config::default());
    let r = index_with(&reference, &|_: IndexEvent| {});
    let reference_points = points(&reference);
    drop(reference);

    let a = open(home_a.path(), root_a.path(), cfg.clone());
    let sa = index_with(&a, &|_: IndexEvent| {});
    assert_eq!(
        sa.chunks_embedded, r.chunks_embedded,
        "the first clone embeds everything"
    );
    assert_eq!(
        points(&a),
        reference_points,
        "Qdrant holds what the embedded store holds"
    );

    let b = open(home_b.path(), root_b.path(), cfg.clone());
    let sb = index_with(&b, &|_: IndexEvent| {});
    eprintln!(
        "first: {} embedded in {} ms; second: {} embedded, {} cache hits, {} ms",
        sa.chunks_embedded, sa.elapsed_ms, sb.chunks_embedded, sb.cache_hits, sb.elapsed_ms
    );
    assert_eq!(
        sb.chunks_embedded, 0,
        "every vector came from the shared cache"
    );
    assert_eq!(sb.cache_hits, sa.chunks_embedded);
    assert_eq!(points(&b), reference_points);

    let hits = b
        .search(&codemem_core::Query::new("handle_7_2"))
        .unwrap()
        .hits;
    assert_eq!(hits.first().map(|h| h.path.as_str()), Some("src/mod_7.rs"));
    let backends = b.backends();
    eprintln!("{backends:#?}");
    assert!(backends
        .iter()
        .any(|x| x.kind == "qdrant" && x.healthy && x.breaker.as_deref() == Some("closed")));
    assert!(backends
        .iter()
        .any(|x| x.kind == "redis" && x.healthy && x.breaker.as_deref() == Some("closed")));
}

/// Redis dies in the middle of an index run: the run completes (the cache is bypassed), the
/// breaker opens, and it closes by itself once Redis is back.
#[test]
fn redis_killed_mid_index_run_completes_and_breaker_recovers() {
    let redis = Mutex::new(RedisServer::start());
    let url = redis.lock().unwrap().url();
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    tree(root.path(), 40);
    let mut cfg = team_config(Some(&url), None);
    cfg.embed.batch_size = 2;
    let p = open(home.path(), root.path(), cfg);
    let (s, killed) = index_killing_mid_run(&p, || redis.lock().unwrap().kill());
    assert!(killed, "Redis was killed during the run");
    assert!(!s.cancelled && s.embed_errors == 0, "{s:?}");
    assert_eq!(s.files_indexed, 42);
    assert_eq!(
        p.status().unwrap().pending_files,
        0,
        "every file got its vectors"
    );
    let b = p
        .backends()
        .into_iter()
        .find(|b| b.kind == "redis")
        .unwrap();
    eprintln!("after the run: {b:?}");
    assert!(!b.healthy && b.detail.contains(&url), "{b:?}");
    // Every further call counts against the breaker until it opens (5 consecutive failures),
    // then status answers at once without touching Redis.
    let mut calls = 0;
    while p
        .backends()
        .into_iter()
        .find(|b| b.kind == "redis")
        .unwrap()
        .breaker
        .as_deref()
        != Some("open")
    {
        calls += 1;
        assert!(calls <= 5, "the breaker opens after 5 consecutive failures");
    }
    let t = std::time::Instant::now();
    let b = p
        .backends()
        .into_iter()
        .find(|b| b.kind == "redis")
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "an open breaker answers at once: {:?}",
        t.elapsed()
    );
    assert!(
        !b.healthy && b.detail.contains("circuit breaker open"),
        "{b:?}"
    );
    // Search goes on.
    assert!(!p
        .search(&codemem_core::Query::new("handle_3_1"))
        .unwrap()
        .hits
        .is_empty());

    redis.lock().unwrap().restart();
    std::thread::sleep(Duration::from_millis(1100));
    let b = p
        .backends()
        .into_iter()
        .find(|b| b.kind == "redis")
        .unwrap();
    assert!(b.healthy, "{b:?}");
    assert_eq!(b.breaker.as_deref(), Some("closed"));
}

/// Team-mode figures, not a test: `scripts/bench --only team` runs it with
/// CODEMEM_BENCH_CORPUS (a tree to index) and CODEMEM_BENCH_ASSETS (a codemem home holding the
/// model; without it the deterministic hash embedder stands in and the cold/warm ratio means
/// little). Prints search p50/p99 for the Qdrant server vs embedded, and cold vs warm (shared
/// Redis cache) index throughput.
#[test]
#[ignore]
fn bench_team() {
    use codemem_core::{Query, SearchMode};
    use std::time::Instant;
    let corpus = std::path::PathBuf::from(
        std::env::var("CODEMEM_BENCH_CORPUS").expect("CODEMEM_BENCH_CORPUS"),
    );
    let embedder: Arc<dyn Embedder> = match std::env::var_os("CODEMEM_BENCH_ASSETS") {
        Some(h) => Arc::new(
            codemem_embed::OnnxEmbedder::load(
                &codemem_embed::assets::AssetPaths::in_home(Path::new(&h)),
                0,
                256,
            )
            .expect("the model (run scripts/setup)"),
        ),
        None => Arc::new(HashEmbedder::new(384)),
    };
    let open_with = |home: &Path, root: &Path, cfg: Config| {
        Project::open(
            root,
            OpenOptions {
                home: home.to_path_buf(),
                embedder: Some(embedder.clone()),
                purpose: "bench".into(),
                lock_wait: Duration::ZERO,
                create: true,
                config: Some(cfg),
            },
        )
        .unwrap()
    };
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let team = team_config(Some(&redis.url()), Some(&qdrant.url()));
    let copy = |to: &Path| {
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", corpus.display()))
            .arg(to)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let (h1, h2, h3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (r1, r2, r3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    copy(r1.path());
    copy(r2.path());
    copy(r3.path());

    let embedded = open_with(h3.path(), r3.path(), Config::default());
    let se = index_with(&embedded, &|_: IndexEvent| {});
    let cold_p = open_with(h1.path(), r1.path(), team.clone());
    let cold = index_with(&cold_p, &|_: IndexEvent| {});
    let warm_p = open_with(h2.path(), r2.path(), team.clone());
    let warm = index_with(&warm_p, &|_: IndexEvent| {});
    let rate = |s: &IndexStats| s.chunks_upserted as f64 / (s.elapsed_ms.max(1) as f64 / 1000.0);
    println!(
        "BENCH team index: embedded {} chunks in {:.1} s; Redis+Qdrant cold {:.1} s ({:.0} chunks/s, {} embedded); \
         warm shared cache {:.1} s ({:.0} chunks/s, {} embedded, {} cache hits): warm is {:.1}x faster than cold",
        se.chunks_upserted,
        se.elapsed_ms as f64 / 1e3,
        cold.elapsed_ms as f64 / 1e3,
        rate(&cold),
        cold.chunks_embedded,
        warm.elapsed_ms as f64 / 1e3,
        rate(&warm),
        warm.chunks_embedded,
        warm.cache_hits,
        cold.elapsed_ms as f64 / warm.elapsed_ms.max(1) as f64
    );
    let words = [
        "parse",
        "config",
        "error handling",
        "read file",
        "buffer",
        "serialize",
        "thread pool",
        "timeout",
        "iterator",
        "hash map",
    ];
    for mode in [SearchMode::Lexical, SearchMode::Dense, SearchMode::Hybrid] {
        let mut line = format!("BENCH team search {mode:?}:");
        for (name, p) in [("embedded", &embedded), ("qdrant-server", &warm_p)] {
            let mut times: Vec<f64> = Vec::new();
            for round in 0..5 {
                for w in words {
                    let mut q = Query::new(format!("{w} {round}"));
                    q.mode = mode;
                    let t = Instant::now();
                    p.search(&q).unwrap();
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            times.sort_by(|a, b| a.total_cmp(b));
            let pct = |f: f64| times[((times.len() as f64 * f) as usize).min(times.len() - 1)];
            line.push_str(&format!(
                "  {name} p50 {:.1} ms p99 {:.1} ms",
                pct(0.5),
                pct(0.99)
            ));
        }
        println!("{line}");
    }
}

/// The Qdrant server dies in the middle of an index run: the run completes (writes wait in the
/// outbox), and once the server is back the outbox is replayed and the server holds exactly
/// what the embedded reference holds.
#[test]
fn qdrant_killed_mid_index_outbox_replays_to_embedded_reference() {
    let qdrant = Mutex::new(QdrantServer::start());
    let url = qdrant.lock().unwrap().url();
    let (home, home_ref) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = tempfile::tempdir().unwrap();
    tree(root.path(), 40);
    let reference = open(home_ref.path(), root.path(), Config::default());
    index_with(&reference, &|_: IndexEvent| {});
    let want = points(&reference);
    drop(reference);

    let mut cfg = team_config(None, Some(&url));
    cfg.embed.batch_size = 2;
    let p = open(home.path(), root.path(), cfg);
    let (s, killed) = index_killing_mid_run(&p, || qdrant.lock().unwrap().kill());
    assert!(killed);
    assert!(!s.cancelled, "{s:?}");
    let b = p
        .backends()
        .into_iter()
        .find(|b| b.kind == "qdrant")
        .unwrap();
    eprintln!("after the run: {b:?}");
    assert!(!b.healthy && b.detail.contains("outbox"), "{b:?}");
    let t = std::time::Instant::now();
    let e = p
        .search(&codemem_core::Query::new("handle_3_1"))
        .unwrap_err()
        .to_string();
    assert!(
        t.elapsed() < Duration::from_millis(100) && e.contains(&url),
        "fails fast, naming the URL: {e} ({:?})",
        t.elapsed()
    );

    qdrant.lock().unwrap().restart();
    let t = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        if points(&p) == want {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "outbox not replayed: {:?} vs {want:?}",
            points(&p)
        );
    }
    let b = p
        .backends()
        .into_iter()
        .find(|b| b.kind == "qdrant")
        .unwrap();
    assert!(b.healthy && !b.detail.contains("outbox"), "{b:?}");
    assert_eq!(
        p.search(&codemem_core::Query::new("handle_3_1"))
            .unwrap()
            .hits[0]
            .path,
        "src/mod_3.rs"
    );
}

/// Polls `f` until it returns true or `limit` passes.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Two codemem processes on one project (an editor and an agent server: same root, same
/// home) on one Redis + Qdrant: each gets its own local data dir; concurrent index runs take
/// turns through the lease and the second finds everything done; memories and index updates
/// of one reach the other through change events; unsaved buffers stay private.
#[test]
fn two_processes_on_one_project_share_lease_manifest_and_events() {
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let cfg = team_config(Some(&redis.url()), Some(&qdrant.url()));
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    tree(root.path(), 40);

    let a = Arc::new(open(home.path(), root.path(), cfg.clone()));
    let b = Arc::new(open(home.path(), root.path(), cfg.clone()));
    assert_ne!(
        a.data_dir(),
        b.data_dir(),
        "the second process gets its own data dir"
    );
    assert!(
        b.data_dir().starts_with(a.data_dir()),
        "{} is under the project's data dir",
        b.data_dir().display()
    );
    assert_ne!(a.team_owner(), b.team_owner());

    // Both index at once: the lease makes them take turns; the second finds nothing to do.
    let (sa, sb) = std::thread::scope(|s| {
        let ha = s.spawn(|| index_with(&a, &|_: IndexEvent| {}));
        let hb = s.spawn(|| index_with(&b, &|_: IndexEvent| {}));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    eprintln!(
        "a: {} indexed / {} embedded; b: {} indexed / {} embedded",
        sa.files_indexed, sa.chunks_embedded, sb.files_indexed, sb.chunks_embedded
    );
    let (first, second) = if sa.files_indexed >= sb.files_indexed {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    assert_eq!(first.files_indexed, 42, "one run indexes every file");
    assert_eq!(
        (
            second.files_indexed,
            second.chunks_embedded,
            second.chunks_upserted
        ),
        (0, 0, 0),
        "the other waited, then found it done"
    );
    assert_eq!(second.files_unchanged, 42);
    assert_eq!(
        a.status().unwrap().files_indexed,
        b.status().unwrap().files_indexed
    );

    // Change events: what A does, B sees.
    let (tx, rx) = crossbeam_channel::unbounded();
    let _sub = b.subscribe_changes(move |_, s| {
        let _ = tx.send(s);
    });
    assert!(_sub.is_some(), "team mode subscribes to change events");
    assert!(
        eventually(Duration::from_secs(10), || _sub
            .as_ref()
            .unwrap()
            .connected()),
        "subscribed"
    );

    let m = a
        .remember(codemem_service::NewMemory {
            text: "handle_3_1 must stay idempotent: the billing retries call it twice".into(),
            namespace: "shared".into(),
            path: Some("src/mod_3.rs".into()),
            symbol: Some("handle_3_1".into()),
            ..Default::default()
        })
        .unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("B hears about A's memory");
    assert_eq!(got.memories, 1);
    assert_eq!(got.memory_paths, vec!["src/mod_3.rs".to_string()]);
    assert_eq!(b.memory(&m.id).map(|x| x.text), Some(m.text.clone()));
    assert_eq!(b.memories_for("src/mod_3.rs").len(), 1);
    assert!(a.forget(&m.id).unwrap());
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("B hears about the forget");
    assert_eq!(got.memories, 1);
    assert!(b.memory(&m.id).is_none());

    // A re-indexes a changed file: B's manifest (symbols) follows without indexing.
    write(
        root.path(),
        "src/mod_5.rs",
        "pub fn freshly_added_settlement_hook(x: u32) -> u32 {\n    x * 2 + 1\n}\n",
    );
    let s = index_with(&a, &|_: IndexEvent| {});
    assert_eq!(s.files_indexed, 1);
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("B hears about A's run");
    assert!(got.paths.contains(&"src/mod_5.rs".to_string()), "{got:?}");
    let found = b.find_symbol("freshly_added_settlement_hook", None, 5);
    assert_eq!(
        found.first().map(|m| m.path.as_str()),
        Some("src/mod_5.rs"),
        "{found:?}"
    );

    // Unsaved buffers stay with the process that has them.
    a.set_overlay("src/mod_9.rs", "pub fn zanzibar_unsaved_only_here() {}\n")
        .unwrap();
    let q = codemem_core::Query::new("zanzibar_unsaved_only_here");
    assert!(
        a.search(&q).unwrap().hits.iter().any(|h| h.unsaved),
        "A finds its own unsaved buffer"
    );
    assert!(
        !b.search(&q).unwrap().hits.iter().any(|h| h.unsaved),
        "B never sees A's unsaved buffer"
    );
    // Reopening B purges only B's own leftovers: A's overlay survives.
    drop(_sub);
    drop(b);
    let b = open(home.path(), root.path(), cfg.clone());
    assert!(
        a.search(&q).unwrap().hits.iter().any(|h| h.unsaved),
        "A's overlay survives B reopening"
    );
    let backends = b.backends();
    assert!(
        backends
            .iter()
            .any(|x| x.name == "team state" && x.healthy && x.detail.contains("lease free")),
        "{backends:#?}"
    );
}

/// An indexer that dies keeps the lease at most `lease_ttl_ms`: another process then indexes.
#[test]
fn lease_of_a_dead_holder_lapses() {
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let mut cfg = team_config(Some(&redis.url()), Some(&qdrant.url()));
    cfg.backends.lease_ttl_ms = 3000;
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    tree(root.path(), 5);
    let a = open(home.path(), root.path(), cfg.clone());
    // A "holder" that never renews nor releases: what a kill -9 leaves behind.
    let r = codemem_kv::RedisStore::open(codemem_kv::RedisOptions::new(redis.url(), "x")).unwrap();
    let state =
        codemem_kv::ProjectState::new(Arc::new(r), format!("codemem:project:{}", a.id().as_str()));
    assert_eq!(
        state
            .try_lease("dead-host#0 (pid 1)", Duration::from_millis(3000))
            .unwrap(),
        codemem_kv::Lease::Acquired
    );
    assert_eq!(
        a.backends()
            .iter()
            .filter(|b| b.detail.contains("held by dead-host#0"))
            .count(),
        1
    );
    let t = std::time::Instant::now();
    let s = index_with(&a, &|_: IndexEvent| {});
    assert_eq!(s.files_indexed, 7);
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "the run waited for the lease ({:?})",
        t.elapsed()
    );
    assert_eq!(
        state.lease_holder().unwrap(),
        None,
        "released after the run"
    );
}

/// Turning a Qdrant server on for a project indexed with the embedded store: the new store
/// starts empty, so every file is stored again — from the embedding cache, nothing re-embedded.
#[test]
fn switching_to_a_qdrant_server_stores_every_file_again_from_the_cache() {
    let qdrant = QdrantServer::start();
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    tree(root.path(), 10);
    let p = open(home.path(), root.path(), Config::default());
    let first = index_with(&p, &|_: IndexEvent| {});
    let reference = points(&p);
    drop(p);

    let p = open(
        home.path(),
        root.path(),
        team_config(None, Some(&qdrant.url())),
    );
    let s = index_with(&p, &|_: IndexEvent| {});
    assert_eq!(
        s.files_indexed, first.files_indexed,
        "every file is stored in the new store"
    );
    assert_eq!(s.chunks_embedded, 0, "vectors came from the cache");
    assert_eq!(points(&p), reference);
    let again = index_with(&p, &|_: IndexEvent| {});
    assert_eq!(again.files_indexed, 0, "and only once");
}

fn git_clone_of(root: &Path, origin: &str) {
    write(
        root,
        ".git/config",
        &format!("[core]\n\tbare = false\n[remote \"origin\"]\n\turl = {origin}\n"),
    );
}

/// Two clones of one repository, at other paths under other homes, share the index and the
/// memories through their git remote: B sees A's memory at once and searches A's index
/// before indexing anything; its own run embeds nothing. Another repository sees none of it.
#[test]
fn clones_at_other_paths_share_index_and_memories_through_their_git_remote() {
    let redis = RedisServer::start();
    let qdrant = QdrantServer::start();
    let cfg = team_config(Some(&redis.url()), Some(&qdrant.url()));
    let (home_a, home_b, home_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (root_a, root_b, root_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for (r, origin) in [
        (root_a.path(), "git@github.com:acme/billing.git"),
        (root_b.path(), "https://github.com/acme/billing"),
        (root_c.path(), "https://github.com/acme/other"),
    ] {
        tree(r, 10);
        git_clone_of(r, origin);
    }

    let a = open(home_a.path(), root_a.path(), cfg.clone());
    let sa = index_with(&a, &|_: IndexEvent| {});
    assert!(sa.chunks_embedded > 0);
    let m = a
        .remember(codemem_service::NewMemory {
            text: "handle_3_1 must stay idempotent".into(),
            namespace: "shared".into(),
            path: Some("src/mod_3.rs".into()),
            symbol: Some("handle_3_1".into()),
            ..Default::default()
        })
        .unwrap();

    let b = open(home_b.path(), root_b.path(), cfg.clone());
    assert!(
        eventually(Duration::from_secs(1), || b
            .memories_for("src/mod_3.rs")
            .len()
            == 1),
        "clone B sees A's memory within 1 s"
    );
    assert_eq!(b.memory(&m.id).map(|x| x.text), Some(m.text.clone()));
    let hits = b
        .search(&codemem_core::Query::new("handle_7_2"))
        .unwrap()
        .hits;
    assert_eq!(
        hits.first().map(|h| h.path.as_str()),
        Some("src/mod_7.rs"),
        "B searches A's index before indexing"
    );
    let sb = index_with(&b, &|_: IndexEvent| {});
    assert_eq!(sb.chunks_embedded, 0, "{sb:?}");

    let c = open(home_c.path(), root_c.path(), cfg.clone());
    assert!(c.memories_for("src/mod_3.rs").is_empty());
    assert!(c.memory(&m.id).is_none());
}
