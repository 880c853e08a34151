//! The `VectorStore` contract against a real Qdrant server (../shared/bin/qdrant or
//! $CODEMEM_QDRANT_BIN), plus its failure behaviour: a down server fails fast with the URL and
//! the breaker state, and the breaker closes by itself once the server is back.

use std::path::Path;
use std::time::{Duration, Instant};

use codemem_core::Namespace;
use codemem_resilience::{BreakerConfig, BreakerState};
use codemem_store::testing::QdrantServer;
use codemem_store::{
    collection_prefix, QdrantOptions, QdrantStore, SearchFilter, SearchVector, StoreError,
    StorePoint, VectorStore,
};

fn opts(server: &QdrantServer, dir: &Path) -> QdrantOptions {
    QdrantOptions::new(
        server.url(),
        format!("t{}", collection_prefix(&dir.display().to_string())),
    )
}

#[test]
fn contract_suite_against_qdrant_server() {
    let server = QdrantServer::start();
    let url = server.url();
    codemem_store::contract::run_all(&move |dir: &Path,
                                            dim: usize|
          -> codemem_store::Result<Box<dyn VectorStore>> {
        let mut o = QdrantOptions::new(
            url.clone(),
            format!("t{}", collection_prefix(&dir.display().to_string())),
        );
        o.pool_size = 4;
        Ok(Box::new(QdrantStore::open(o, dim)?))
    });
}

fn point(id: u64) -> StorePoint {
    let mut payload = serde_json::Map::new();
    payload.insert("path".into(), format!("src/{id}.rs").into());
    StorePoint {
        id,
        dense: Some(codemem_store::contract::pseudo_random_vector(id, 8)),
        sparse: codemem_core::lexical::document_vector("x.rs", None, &format!("token{id} shared")),
        payload,
    }
}

/// One batch of writes, applied alike to the store under test and to the embedded reference:
/// 25 points, and every fourth batch also deletes ids and a path and sets a dense vector
/// (later writes change earlier ones: order matters).
fn write_batch(remote: &dyn VectorStore, reference: &dyn VectorStore, ns: &Namespace, batch: u64) {
    let pts: Vec<StorePoint> = (batch * 25..batch * 25 + 25).map(point).collect();
    remote
        .upsert(ns, pts.clone())
        .expect("a write is acknowledged even while the server is down");
    reference.upsert(ns, pts).unwrap();
    if batch % 4 == 3 {
        let gone: Vec<u64> = (batch * 25 - 30..batch * 25 - 20).collect();
        remote.delete_ids(ns, &gone).unwrap();
        reference.delete_ids(ns, &gone).unwrap();
        let paths = vec![format!("src/{}.rs", batch * 25 + 1)];
        remote.delete_paths(ns, &paths).unwrap();
        reference.delete_paths(ns, &paths).unwrap();
        let dense = vec![(
            batch * 25 + 2,
            codemem_store::contract::pseudo_random_vector(999 + batch, 8),
        )];
        remote.set_dense(ns, dense.clone()).unwrap();
        reference.set_dense(ns, dense).unwrap();
    }
}

/// The replayed store holds what the reference holds: the count, the ids, and the dense vector
/// `write_batch` set in `dense_batch`. Returns the count.
fn same_as_reference(
    remote: &dyn VectorStore,
    reference: &dyn VectorStore,
    ns: &Namespace,
    dense_batch: u64,
) -> u64 {
    let want = reference.count(ns).unwrap();
    assert_eq!(
        remote.count(ns).unwrap(),
        want,
        "final point count equals the embedded reference"
    );
    let ids = |s: &dyn VectorStore| {
        let mut v: Vec<u64> = s
            .scroll(ns, &SearchFilter::default(), 10_000)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(remote), ids(reference));
    let q = SearchVector::Dense(codemem_store::contract::pseudo_random_vector(
        999 + dense_batch,
        8,
    ));
    assert_eq!(
        remote.search(ns, &q, &SearchFilter::default(), 1).unwrap()[0].id,
        reference
            .search(ns, &q, &SearchFilter::default(), 1)
            .unwrap()[0]
            .id,
        "the replayed set_dense landed"
    );
    want
}

#[test]
fn down_server_fails_fast_and_breaker_recovers() {
    let mut server = QdrantServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&server, dir.path());
    o.breaker = BreakerConfig {
        failure_threshold: 5,
        recovery: Duration::from_millis(1500),
    };
    o.connect_timeout = Duration::from_millis(500);
    o.request_timeout = Duration::from_secs(2);
    let store = QdrantStore::open(o, 8).unwrap();
    let ns = Namespace::coding();
    store.upsert(&ns, (0..10).map(point).collect()).unwrap();
    assert_eq!(store.count(&ns).unwrap(), 10);
    assert!(!store.health().unwrap().is_empty());

    server.kill();
    let q = SearchVector::Sparse(codemem_core::lexical::query_vector("token3"));
    for i in 0..5 {
        let t = Instant::now();
        let e = store
            .search(&ns, &q, &SearchFilter::default(), 5)
            .unwrap_err();
        eprintln!("failure {i}: {e} ({:?})", t.elapsed());
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        assert!(
            e.to_string().contains(&server.url()),
            "the error names the URL: {e}"
        );
    }
    assert_eq!(store.breaker().state, BreakerState::Open);
    let t = Instant::now();
    let e = store
        .search(&ns, &q, &SearchFilter::default(), 5)
        .unwrap_err();
    let fast = t.elapsed();
    eprintln!("while open: {e} ({fast:?})");
    assert!(
        fast < Duration::from_millis(100),
        "an open breaker answers at once, took {fast:?}"
    );
    assert!(
        e.to_string().contains("circuit breaker open") && e.to_string().contains(&server.url()),
        "{e}"
    );

    server.restart();
    std::thread::sleep(Duration::from_millis(1600));
    // One request after the recovery time closes the breaker.
    let hits = store.search(&ns, &q, &SearchFilter::default(), 5).unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(3));
    assert_eq!(store.breaker().state, BreakerState::Closed);
    assert_eq!(
        store.count(&ns).unwrap(),
        10,
        "acknowledged writes survived the kill"
    );
}

/// Qdrant is killed while writes arrive: every write is acknowledged (applied or queued in the
/// durable outbox), the outbox is replayed in order once the server is back, and the server
/// ends up holding exactly what the embedded reference holds.
#[test]
fn qdrant_killed_while_writes_arrive_outbox_replays_to_reference() {
    use codemem_store::{EdgeStore, Outbox};
    let mut server = QdrantServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&server, dir.path());
    o.breaker = BreakerConfig {
        failure_threshold: 5,
        recovery: Duration::from_millis(500),
    };
    o.connect_timeout = Duration::from_millis(300);
    o.request_timeout = Duration::from_secs(2);
    let remote = Outbox::open(
        std::sync::Arc::new(QdrantStore::open(o.clone(), 8).unwrap()),
        &dir.path().join("outbox.redb"),
    )
    .unwrap();
    let reference = EdgeStore::open(&dir.path().join("edge"), 8).unwrap();
    let ns = Namespace::coding();
    let mut queued_max = 0;
    for batch in 0..40u64 {
        if batch == 10 {
            server.kill();
        }
        if batch == 30 {
            server.restart();
        }
        let t = Instant::now();
        write_batch(&remote, &reference, &ns, batch);
        queued_max = queued_max.max(remote.pending());
        if (10..30).contains(&batch) {
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "writes while down stay fast: {:?}",
                t.elapsed()
            );
        }
    }
    eprintln!(
        "outbox peaked at {queued_max} writes; {} still queued after the restart",
        remote.pending()
    );
    assert!(
        queued_max >= 20,
        "writes were queued while the server was down ({queued_max})"
    );
    let t = Instant::now();
    while remote.pending() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "outbox not drained: {} left",
            remote.pending()
        );
        std::thread::sleep(Duration::from_millis(200));
        remote.replay().unwrap();
    }
    let want = same_as_reference(&remote, &reference, &ns, 35);
    eprintln!(
        "{} writes replayed; {want} points on both",
        remote.replayed()
    );

    // A restart of this process with writes still queued replays them from the file.
    drop(remote);
    let remote = Outbox::open(
        std::sync::Arc::new(QdrantStore::open(o, 8).unwrap()),
        &dir.path().join("outbox.redb"),
    )
    .unwrap();
    assert_eq!(remote.pending(), 0);
}

/// The health timer alone (no calls) counts failed health calls against the breaker, leaves
/// the server alone while the breaker is open, and closes it once the server is back.
#[test]
fn health_timer_opens_skips_and_closes_the_breaker_without_calls() {
    let mut server = QdrantServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&server, dir.path());
    o.breaker = BreakerConfig {
        failure_threshold: 3,
        recovery: Duration::from_secs(4),
    };
    o.connect_timeout = Duration::from_millis(300);
    o.request_timeout = Duration::from_secs(2);
    o.health_interval = Duration::from_millis(100);
    let store = QdrantStore::open(o, 8).unwrap();

    server.kill();
    let t = Instant::now();
    while store.breaker().state != BreakerState::Open {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "failed health calls did not open the breaker: {:?}",
            store.health_stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        store.health_stats().failures >= 3,
        "{:?}",
        store.health_stats()
    );
    std::thread::sleep(Duration::from_millis(200));
    let before = store.health_stats();
    std::thread::sleep(Duration::from_millis(600));
    let during = store.health_stats();
    eprintln!("while open: {before:?} -> {during:?}");
    assert_eq!(
        store.breaker().state,
        BreakerState::Open,
        "recovery time not over yet"
    );
    assert_eq!(
        during.checks, before.checks,
        "no health call while the breaker is open"
    );
    assert!(
        during.skipped_open > before.skipped_open,
        "the timer kept running: {during:?}"
    );

    server.restart();
    let t = Instant::now();
    while store.breaker().state != BreakerState::Closed {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the health timer did not close the breaker: {:?}",
            store.breaker()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(store.health_stats().checks > during.checks);
}

/// Qdrant is killed while writes arrive and restarted afterwards; with no further call, the
/// outbox's background replayer drains the queue in order and the server ends up holding
/// exactly what the embedded reference holds.
#[test]
fn outbox_replays_by_itself_once_qdrant_is_back() {
    use codemem_store::{EdgeStore, Outbox};
    let mut server = QdrantServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&server, dir.path());
    o.breaker = BreakerConfig {
        failure_threshold: 5,
        recovery: Duration::from_millis(500),
    };
    o.connect_timeout = Duration::from_millis(300);
    o.request_timeout = Duration::from_secs(2);
    // No health timer: the replayer alone must get past the open breaker.
    o.health_interval = Duration::ZERO;
    let remote = Outbox::open_with(
        std::sync::Arc::new(QdrantStore::open(o, 8).unwrap()),
        &dir.path().join("outbox.redb"),
        Duration::from_millis(200),
    )
    .unwrap();
    let reference = EdgeStore::open(&dir.path().join("edge"), 8).unwrap();
    let ns = Namespace::coding();
    for batch in 0..30u64 {
        if batch == 10 {
            server.kill();
        }
        write_batch(&remote, &reference, &ns, batch);
    }
    let queued = remote.pending();
    eprintln!("{queued} writes queued while the server is down");
    assert!(
        queued >= 20,
        "writes were queued while the server was down ({queued})"
    );

    server.restart();
    let t = Instant::now();
    while remote.pending() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "outbox not drained by itself: {} left",
            remote.pending()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        remote.replayed(),
        queued,
        "every queued write was replayed, once"
    );
    assert_eq!(remote.inner().breaker().state, BreakerState::Closed);
    same_as_reference(&remote, &reference, &ns, 27);
}
