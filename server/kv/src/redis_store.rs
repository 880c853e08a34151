//! Remote backend on Redis: each logical table is one Redis hash, `<prefix>:<table>`, whose
//! fields are the keys. A [`KeyValue::write`] is one MULTI/EXEC transaction (atomic, in order).
//!
//! Connections come from a deadpool-redis pool (`pool_size`, default 10): a connection is
//! PINGed before it is handed out again (a dead one is dropped and replaced, never handed out),
//! and checkout waits at most `checkout_timeout`. Every call runs under a [`CircuitBreaker`]:
//! refused connections and timeouts count against it; while it is open calls fail at once with
//! [`KvError::Unavailable`] naming the URL and the breaker state.
//!
//! A health task on the store's runtime runs every `health_interval` (default 30 s; zero
//! disables it): it PINGs the idle pooled connections and drops the dead ones, so a restarted
//! or vanished server does not leave stale connections waiting for the next checkout. When it
//! finds dead ones, or the breaker's recovery time is over, it makes one PING through the pool
//! and the breaker like any call (a failure counts). While the breaker is open it does nothing.
//! [`RedisStore::health_stats`] reports what it did.
//!
//! The trait is synchronous; the pool lives on a small tokio runtime owned by the store. Calls
//! made from inside another tokio runtime are driven on a scoped helper thread (never by
//! blocking that runtime's executor with `block_on`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codemem_resilience::{
    BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, ClientRuntime,
};
use deadpool_redis::{Config as PoolCfg, Pool, PoolConfig, Runtime, Timeouts};
use redis::AsyncCommands;

use crate::{KeyValue, KvError, Result, Table, WriteOp};

#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Hash names are `<prefix>:<table>`; two stores with one prefix share their data.
    pub prefix: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub checkout_timeout: Duration,
    pub breaker: BreakerConfig,
    /// How often idle pooled connections are PINGed; zero disables the health task.
    pub health_interval: Duration,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            prefix: prefix.into(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            checkout_timeout: Duration::from_secs(5),
            breaker: BreakerConfig::default(),
            health_interval: Duration::from_secs(30),
        }
    }
}

pub struct RedisStore {
    opts: RedisOptions,
    pool: Pool,
    rt: ClientRuntime,
    breaker: Arc<CircuitBreaker>,
    health: Arc<HealthCounters>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.opts.url)
            .field("prefix", &self.opts.prefix)
            .finish()
    }
}

/// Why a call failed.
enum CallError {
    /// Not reached: counts against the breaker.
    Transport(String),
    /// An answer from the server (wrong type, script error, ...).
    Server(String),
}

fn classify(e: redis::RedisError) -> CallError {
    if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
    {
        CallError::Transport(e.to_string())
    } else {
        CallError::Server(e.to_string())
    }
}

/// What the background health task has done since the store was built (for `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisHealth {
    /// Health rounds run (rounds skipped while the breaker was open not included).
    pub checks: u64,
    /// Rounds skipped because the breaker was open.
    pub skipped_open: u64,
    /// Rounds whose PING through the pool failed (each counted against the breaker).
    pub failures: u64,
    /// Idle pooled connections PINGed.
    pub connections_pinged: u64,
    /// Dead idle connections dropped from the pool.
    pub connections_dropped: u64,
}

#[derive(Default)]
struct HealthCounters {
    checks: AtomicU64,
    skipped_open: AtomicU64,
    failures: AtomicU64,
    pinged: AtomicU64,
    dropped: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// PING on a pooled connection (created if none is idle), like a call.
async fn ping_pooled(pool: &Pool, timeout: Duration) -> std::result::Result<(), CallError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| CallError::Transport(format!("no connection: {e}")))?;
    match tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut conn)).await {
        Ok(r) => r.map(drop).map_err(classify),
        Err(_) => Err(CallError::Transport(format!(
            "no answer within {timeout:?}"
        ))),
    }
}

/// The background health task's state.
struct HealthTask {
    url: String,
    pool: Pool,
    breaker: Arc<CircuitBreaker>,
    counters: Arc<HealthCounters>,
    /// For a PING on an idle connection (the pool's recycle timeout).
    ping_timeout: Duration,
    request_timeout: Duration,
}

impl HealthTask {
    async fn run(self, every: Duration) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.round().await;
        }
    }

    async fn round(&self) {
        let c = &self.counters;
        let snap = self.breaker.snapshot();
        if snap.state == BreakerState::Open && snap.retry_in.is_some_and(|d| !d.is_zero()) {
            bump(&c.skipped_open, 1);
            return;
        }
        bump(&c.checks, 1);
        if snap.state == BreakerState::Closed && self.drop_dead_idle().await == 0 {
            return;
        }
        // Dead connections found, or the recovery time is over: one PING through the pool
        // under the breaker, like any call (it opens a fresh connection if none is idle).
        if self.breaker.acquire().is_err() {
            return; // another call holds the half-open trial
        }
        match ping_pooled(&self.pool, self.request_timeout).await {
            Ok(()) | Err(CallError::Server(_)) => self.breaker.on_success(),
            Err(CallError::Transport(reason)) => {
                self.breaker.on_failure();
                bump(&c.failures, 1);
                tracing::warn!(url = %self.url, %reason, "Redis health check failed");
            }
        }
    }

    /// PINGs every idle pooled connection, concurrently, and drops the ones that do not
    /// answer. The PING goes through a clone (a multiplexed connection serves concurrent
    /// requests), so the pool keeps serving meanwhile. Returns how many did not answer.
    async fn drop_dead_idle(&self) -> usize {
        let mut idle = Vec::new();
        self.pool.retain(|conn, m| {
            idle.push((conn.clone(), (m.created, m.recycled)));
            true
        });
        if idle.is_empty() {
            return 0;
        }
        bump(&self.counters.pinged, idle.len() as u64);
        let mut pings = tokio::task::JoinSet::new();
        for (mut conn, key) in idle {
            let t = self.ping_timeout;
            pings.spawn(async move {
                let ok = matches!(
                    tokio::time::timeout(t, redis::cmd("PING").query_async::<String>(&mut conn))
                        .await,
                    Ok(Ok(_))
                );
                (key, ok)
            });
        }
        let mut dead: HashSet<(Instant, Option<Instant>)> = HashSet::new();
        while let Some(r) = pings.join_next().await {
            if let Ok((key, false)) = r {
                dead.insert(key);
            }
        }
        if dead.is_empty() {
            return 0;
        }
        // Only those still idle and not handed out since (a checkout PINGs them again anyway).
        let removed = self
            .pool
            .retain(|_, m| !dead.contains(&(m.created, m.recycled)))
            .removed
            .len();
        bump(&self.counters.dropped, removed as u64);
        tracing::info!(url = %self.url, dead = dead.len(), dropped = removed, "dropped dead pooled Redis connections");
        dead.len()
    }
}

impl RedisStore {
    /// Builds the pool and checks the server answers PING.
    pub fn open(opts: RedisOptions) -> Result<RedisStore> {
        let store = RedisStore::connect(opts)?;
        store.ping().map_err(|e| KvError::Open {
            path: store.opts.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(store)
    }

    /// Builds the pool without connecting (connections are made on first use).
    pub fn connect(opts: RedisOptions) -> Result<RedisStore> {
        let open_err = |reason: String| KvError::Open {
            path: opts.url.clone(),
            reason,
        };
        let rt = ClientRuntime::new("codemem-redis")
            .map_err(|e| open_err(format!("cannot start the client runtime: {e}")))?;
        let mut cfg = PoolCfg::from_url(opts.url.clone());
        cfg.pool = Some(PoolConfig {
            max_size: opts.pool_size.max(1),
            timeouts: Timeouts {
                wait: Some(opts.checkout_timeout),
                create: Some(opts.connect_timeout),
                recycle: Some(opts.connect_timeout),
            },
            ..Default::default()
        });
        let pool = {
            let _g = rt.runtime().enter();
            cfg.create_pool(Some(Runtime::Tokio1))
                .map_err(|e| open_err(e.to_string()))?
        };
        let breaker = Arc::new(CircuitBreaker::new(
            format!("Redis at {}", opts.url),
            opts.breaker,
        ));
        let health = Arc::new(HealthCounters::default());
        if !opts.health_interval.is_zero() {
            let task = HealthTask {
                url: opts.url.clone(),
                pool: pool.clone(),
                breaker: breaker.clone(),
                counters: health.clone(),
                ping_timeout: opts.connect_timeout,
                request_timeout: opts.request_timeout,
            };
            // Lives on the store's runtime: it ends when the store (and so the runtime) is dropped.
            rt.runtime().spawn(task.run(opts.health_interval));
        }
        Ok(RedisStore {
            opts,
            pool,
            rt,
            breaker,
            health,
        })
    }

    /// What the background health task has done so far.
    pub fn health_stats(&self) -> RedisHealth {
        let c = &self.health;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisHealth {
            checks: get(&c.checks),
            skipped_open: get(&c.skipped_open),
            failures: get(&c.failures),
            connections_pinged: get(&c.pinged),
            connections_dropped: get(&c.dropped),
        }
    }

    pub fn url(&self) -> &str {
        &self.opts.url
    }

    pub fn breaker(&self) -> BreakerSnapshot {
        self.breaker.snapshot()
    }

    /// Pool figures: (connections open, idle, max).
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size, s.available, s.max_size)
    }

    /// PING through the pool and the breaker.
    pub fn ping(&self) -> Result<()> {
        self.call("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })?;
        Ok(())
    }

    /// The server's version (`INFO server`).
    pub fn server_version(&self) -> Result<String> {
        let info: String = self.call("info", |mut c| async move {
            redis::cmd("INFO").arg("server").query_async(&mut c).await
        })?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string())
    }

    fn hash(&self, t: Table) -> String {
        format!("{}:{}", self.opts.prefix, t.name())
    }

    fn unavailable(&self, reason: String) -> KvError {
        KvError::Unavailable {
            backend: "Redis",
            url: self.opts.url.clone(),
            reason,
        }
    }

    /// One command (or transaction) on a pooled connection, under the breaker and a timeout.
    pub(crate) fn call<T, Fut>(
        &self,
        op: &'static str,
        f: impl FnOnce(deadpool_redis::Connection) -> Fut + Send,
    ) -> Result<T>
    where
        Fut: Future<Output = redis::RedisResult<T>> + Send,
        T: Send,
    {
        if let Err(rej) = self.breaker.acquire() {
            return Err(self.unavailable(format!(
                "circuit breaker open after {} consecutive failures; next attempt in {:.1} s",
                rej.failures,
                rej.retry_in.as_secs_f64()
            )));
        }
        let pool = self.pool.clone();
        let timeout = self.opts.request_timeout;
        let r = self.rt.block(async move {
            let conn = match pool.get().await {
                Ok(c) => c,
                Err(e) => return Err(CallError::Transport(format!("no connection: {e}"))),
            };
            match tokio::time::timeout(timeout, f(conn)).await {
                Ok(r) => r.map_err(classify),
                Err(_) => Err(CallError::Transport(format!(
                    "no answer within {timeout:?}"
                ))),
            }
        });
        match r {
            Ok(v) => {
                self.breaker.on_success();
                Ok(v)
            }
            Err(CallError::Transport(reason)) => {
                self.breaker.on_failure();
                let s = self.breaker.snapshot();
                Err(self.unavailable(format!(
                    "{reason} (breaker {}, {} consecutive failures)",
                    s.state, s.consecutive_failures
                )))
            }
            Err(CallError::Server(reason)) => {
                self.breaker.on_success();
                Err(KvError::Operation {
                    op,
                    reason: format!("Redis at {}: {reason}", self.opts.url),
                })
            }
        }
    }
}

/// Hash commands on any hash name (the tables of this store, or a project's shared state).
impl RedisStore {
    pub(crate) fn hash_get_many(
        &self,
        h: String,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.to_vec();
        self.call("get_many", |mut c| async move {
            redis::cmd("HMGET")
                .arg(h)
                .arg(keys)
                .query_async(&mut c)
                .await
        })
    }

    /// One MULTI/EXEC transaction over `(hash, op)` pairs, in order.
    pub(crate) fn hash_write(&self, ops: Vec<(String, WriteOp)>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (h, op) in ops {
            match op {
                WriteOp::Put { key, value, .. } => {
                    pipe.hset(h, key, value).ignore();
                }
                WriteOp::Delete { key, .. } => {
                    pipe.hdel(h, key).ignore();
                }
            }
        }
        self.call("write", |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
    }

    pub(crate) fn hash_scan(&self, h: String) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut all: Vec<(Vec<u8>, Vec<u8>)> = self.call("scan", |mut c| async move {
            c.hgetall::<_, Vec<(Vec<u8>, Vec<u8>)>>(h).await
        })?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    pub(crate) fn hash_len(&self, h: String) -> Result<u64> {
        self.call("len", |mut c| async move { c.hlen::<_, u64>(h).await })
    }
}

impl KeyValue for RedisStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_many(table, &[key.to_vec()])?.pop().flatten())
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.hash_get_many(self.hash(table), keys)
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.hash_write(
            ops.into_iter()
                .map(|op| (self.hash(crate::team::op_table(&op)), op))
                .collect(),
        )
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.hash_scan(self.hash(table))
    }

    fn len(&self, table: Table) -> Result<u64> {
        self.hash_len(self.hash(table))
    }
}
