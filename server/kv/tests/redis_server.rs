//! The `KeyValue` contract and the failure behaviour against a real redis-server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemem_kv::testing::RedisServer;
use codemem_kv::{
    KeyValue, KvError, RedbStore, RedisOptions, RedisStore, SharedCacheKv, Table, WriteOp,
};
use codemem_resilience::{BreakerConfig, BreakerState};

fn opts(server: &RedisServer, prefix: &str) -> RedisOptions {
    let mut o = RedisOptions::new(server.url(), prefix);
    o.connect_timeout = Duration::from_millis(500);
    o.request_timeout = Duration::from_secs(2);
    o
}

#[test]
fn contract_suite_against_redis() {
    let server = RedisServer::start();
    let kv = RedisStore::open(opts(&server, "contract")).unwrap();
    codemem_kv::contract::run_all(&kv);
    // Prefixes isolate stores on one server.
    let other = RedisStore::open(opts(&server, "other")).unwrap();
    assert_eq!(other.len(Table::Embeddings).unwrap(), 0);
    assert!(!server_version(&kv).is_empty());
}

fn server_version(kv: &RedisStore) -> String {
    let v = kv.server_version().unwrap();
    eprintln!("redis version {v}");
    v
}

#[test]
fn pool_exhaustion_waits_and_succeeds() {
    let server = RedisServer::start();
    let mut o = opts(&server, "pool");
    o.pool_size = 2;
    let kv = Arc::new(RedisStore::open(o).unwrap());
    let threads: Vec<_> = (0..16u32)
        .map(|t| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    let key = format!("{t}-{i}").into_bytes();
                    kv.write(vec![WriteOp::Put {
                        table: Table::Meta,
                        key: key.clone(),
                        value: vec![t as u8],
                    }])
                    .unwrap();
                    assert_eq!(kv.get(Table::Meta, &key).unwrap(), Some(vec![t as u8]));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(kv.len(Table::Meta).unwrap(), 800);
    let (size, _, max) = kv.pool_status();
    assert!(
        size <= 2 && max == 2,
        "never more connections than the pool holds: {size}/{max}"
    );
}

#[test]
fn redis_down_bypasses_the_shared_cache_and_breaker_recovers() {
    let mut server = RedisServer::start();
    let mut o = opts(&server, "codemem");
    o.breaker = BreakerConfig {
        failure_threshold: 5,
        recovery: Duration::from_millis(800),
    };
    let shared = Arc::new(RedisStore::open(o).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn KeyValue> = Arc::new(RedbStore::open(&dir.path().join("kv.redb")).unwrap());
    let kv = SharedCacheKv::new(local, shared.clone());
    let put = |k: &str| WriteOp::Put {
        table: Table::Embeddings,
        key: k.as_bytes().to_vec(),
        value: vec![1, 2, 3, 4],
    };

    kv.write(vec![put("a")]).unwrap();
    assert_eq!(
        shared.get(Table::Embeddings, b"a").unwrap(),
        Some(vec![1, 2, 3, 4]),
        "copied to Redis"
    );

    // A second project (its own local store) finds the vector through Redis.
    let dir2 = tempfile::tempdir().unwrap();
    let local2: Arc<dyn KeyValue> =
        Arc::new(RedbStore::open(&dir2.path().join("kv.redb")).unwrap());
    let kv2 = SharedCacheKv::new(local2.clone(), shared.clone());
    assert_eq!(
        kv2.get(Table::Embeddings, b"a").unwrap(),
        Some(vec![1, 2, 3, 4])
    );
    assert_eq!(kv2.stats().hits, 1);
    assert_eq!(
        local2.get(Table::Embeddings, b"a").unwrap(),
        Some(vec![1, 2, 3, 4]),
        "kept locally"
    );

    server.kill();
    // Writes and lookups go on without Redis: the local store answers, nothing fails.
    for i in 0..8 {
        let t = Instant::now();
        kv.write(vec![
            put(&format!("down{i}")),
            WriteOp::Put {
                table: Table::Files,
                key: b"f".to_vec(),
                value: vec![i],
            },
        ])
        .unwrap();
        assert_eq!(
            kv.get(Table::Embeddings, format!("down{i}").as_bytes())
                .unwrap(),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(
            kv.get(Table::Embeddings, b"never").unwrap(),
            None,
            "a miss, not an error"
        );
        eprintln!(
            "call {i} with Redis down: {:?}, breaker {}",
            t.elapsed(),
            shared.breaker().state
        );
    }
    assert_eq!(
        shared.breaker().state,
        BreakerState::Open,
        "5 failures open the breaker"
    );
    assert!(kv.stats().bypassed >= 8);
    let t = Instant::now();
    match shared.get(Table::Embeddings, b"a") {
        Err(e @ KvError::Unavailable { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&server.url()) && msg.contains("circuit breaker open"),
                "{msg}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "an open breaker fails fast: {:?}",
        t.elapsed()
    );

    server.restart();
    std::thread::sleep(Duration::from_millis(900));
    kv.write(vec![put("back")]).unwrap();
    assert_eq!(
        shared.breaker().state,
        BreakerState::Closed,
        "recovery time + one request closes it"
    );
    assert_eq!(
        shared.get(Table::Embeddings, b"back").unwrap(),
        Some(vec![1, 2, 3, 4])
    );
}

/// redis-server is killed and restarted on the same port: the health timer finds the pool's
/// idle connections dead and drops them by itself, so the next call gets a live connection.
#[test]
fn health_timer_drops_dead_idle_connections_after_a_restart() {
    let mut server = RedisServer::start();
    let mut o = opts(&server, "health");
    o.health_interval = Duration::from_millis(300);
    let kv = Arc::new(RedisStore::open(o).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 0..20u8 {
                    kv.write(vec![WriteOp::Put {
                        table: Table::Meta,
                        key: vec![t, i],
                        value: vec![i],
                    }])
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (size, idle, _) = kv.pool_status();
    eprintln!("pool before the restart: {size} connections, {idle} idle");
    assert!(idle >= 1, "idle connections wait in the pool");

    server.restart();
    let t = Instant::now();
    while kv.health_stats().connections_dropped == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the health timer dropped no dead connection: {:?}",
            kv.health_stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = kv.health_stats();
    eprintln!(
        "health after the restart: {stats:?}, breaker {:?}",
        kv.breaker()
    );
    assert!(stats.checks >= 1 && stats.connections_pinged >= stats.connections_dropped);

    // The first call after the restart succeeds: no dead connection is handed out.
    assert_eq!(
        kv.get(Table::Meta, &[0, 0]).unwrap(),
        None,
        "the restarted server is empty"
    );
    let b = kv.breaker();
    assert_eq!(
        (b.state, b.consecutive_failures, b.times_opened),
        (BreakerState::Closed, 0, 0)
    );
}

/// While the breaker is open the health timer leaves the server alone; once the recovery time
/// is over its trial PING closes the breaker without any call.
#[test]
fn health_timer_skips_while_open_and_closes_the_breaker_when_back() {
    let mut server = RedisServer::start();
    let mut o = opts(&server, "health-open");
    o.health_interval = Duration::from_millis(100);
    o.breaker = BreakerConfig {
        failure_threshold: 3,
        recovery: Duration::from_secs(4),
    };
    let kv = RedisStore::open(o).unwrap();

    server.kill();
    for _ in 0..3 {
        if kv.breaker().state == BreakerState::Open {
            break;
        }
        assert!(matches!(
            kv.get(Table::Meta, b"k"),
            Err(KvError::Unavailable { .. })
        ));
    }
    assert_eq!(kv.breaker().state, BreakerState::Open);
    std::thread::sleep(Duration::from_millis(200));
    let before = kv.health_stats();
    std::thread::sleep(Duration::from_millis(600));
    let during = kv.health_stats();
    eprintln!("while open: {before:?} -> {during:?}");
    assert_eq!(
        kv.breaker().state,
        BreakerState::Open,
        "recovery time not over yet"
    );
    assert_eq!(
        during.checks, before.checks,
        "no health check while the breaker is open"
    );
    assert!(
        during.skipped_open > before.skipped_open,
        "the timer kept running: {during:?}"
    );

    server.restart();
    let t = Instant::now();
    while kv.breaker().state != BreakerState::Closed {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the health timer did not close the breaker: {:?}",
            kv.breaker()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kv.health_stats().checks > during.checks);
    assert_eq!(kv.breaker().times_opened, 1);
}
