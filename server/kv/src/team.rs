//! A project's state shared through Redis in team mode: the manifest, the metadata and the
//! memories (one Redis hash per table, `<prefix>:<table>`), an indexing lease (only one process
//! indexes a project at a time; the lease expires if its holder dies) and a change channel
//! (pub/sub on `<prefix>:events`) that tells every other process on the project what changed.
//!
//! Calls go through the [`RedisStore`]'s pool and circuit breaker. The event subscription uses
//! a dedicated connection on its own thread (a pub/sub connection cannot be pooled) that
//! reconnects by itself with backoff.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{KeyValue, RedisStore, Result, Table, WriteOp};

/// Compare-and-expire: renews the lease only while `ARGV[1]` still holds it.
const RENEW: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#;
/// Compare-and-delete: releases the lease only while `ARGV[1]` still holds it.
const RELEASE: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// The state of one project on a Redis server.
#[derive(Clone)]
pub struct ProjectState {
    redis: Arc<RedisStore>,
    prefix: String,
}

/// Answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The caller holds the lease now (taken or renewed).
    Acquired,
    /// Someone else holds it (their holder text).
    HeldBy(String),
}

impl std::fmt::Debug for ProjectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectState")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl ProjectState {
    /// `prefix` names the project (e.g. `codemem:project:<id>`).
    pub fn new(redis: Arc<RedisStore>, prefix: impl Into<String>) -> ProjectState {
        ProjectState {
            redis,
            prefix: prefix.into(),
        }
    }

    pub fn redis(&self) -> &Arc<RedisStore> {
        &self.redis
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn hash(&self, t: Table) -> String {
        format!("{}:{}", self.prefix, t.name())
    }

    fn lease_key(&self) -> String {
        format!("{}:lease", self.prefix)
    }

    fn generation_key(&self) -> String {
        format!("{}:generation", self.prefix)
    }

    /// The pub/sub channel of this project's change events.
    pub fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// Takes the indexing lease for `ttl`, or renews it if `holder` has it already.
    pub fn try_lease(&self, holder: &str, ttl: Duration) -> Result<Lease> {
        let key = self.lease_key();
        let holder_s = holder.to_string();
        let ms = ttl.as_millis().max(1) as u64;
        let set: Option<String> = self.redis.call("lease", |mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&holder_s)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut c)
                .await
        })?;
        if set.is_some() {
            return Ok(Lease::Acquired);
        }
        if self.renew_lease(holder, ttl)? {
            return Ok(Lease::Acquired);
        }
        match self.lease_holder()? {
            Some(h) => Ok(Lease::HeldBy(h)),
            // Expired between the two calls: ask again next time.
            None => Ok(Lease::HeldBy("nobody (just released)".into())),
        }
    }

    /// Extends the lease by `ttl` if `holder` still has it; false if it expired or moved.
    pub fn renew_lease(&self, holder: &str, ttl: Duration) -> Result<bool> {
        let key = self.lease_key();
        let holder = holder.to_string();
        let ms = ttl.as_millis().max(1) as u64;
        let n: i64 = self.redis.call("lease", |mut c| async move {
            redis::Script::new(RENEW)
                .key(&key)
                .arg(&holder)
                .arg(ms)
                .invoke_async(&mut c)
                .await
        })?;
        Ok(n == 1)
    }

    /// Gives the lease up if `holder` has it.
    pub fn release_lease(&self, holder: &str) -> Result<()> {
        let key = self.lease_key();
        let holder = holder.to_string();
        let _: i64 = self.redis.call("lease", |mut c| async move {
            redis::Script::new(RELEASE)
                .key(&key)
                .arg(&holder)
                .invoke_async(&mut c)
                .await
        })?;
        Ok(())
    }

    /// Who holds the lease now, if anyone.
    pub fn lease_holder(&self) -> Result<Option<String>> {
        let key = self.lease_key();
        self.redis.call("lease", |mut c| async move {
            redis::cmd("GET").arg(&key).query_async(&mut c).await
        })
    }

    /// The manifest's generation: bumped by every indexer checkpoint, so a process can tell
    /// in one call whether the shared manifest moved since it last loaded it.
    pub fn generation(&self) -> Result<u64> {
        let key = self.generation_key();
        let v: Option<u64> = self.redis.call("generation", |mut c| async move {
            redis::cmd("GET").arg(&key).query_async(&mut c).await
        })?;
        Ok(v.unwrap_or(0))
    }

    pub fn bump_generation(&self) -> Result<u64> {
        let key = self.generation_key();
        self.redis.call("generation", |mut c| async move {
            redis::cmd("INCR").arg(&key).query_async(&mut c).await
        })
    }

    /// Sends a change event to every subscriber of the project; returns how many received it.
    pub fn publish(&self, message: &str) -> Result<u64> {
        let ch = self.channel();
        let message = message.to_string();
        self.redis.call("publish", |mut c| async move {
            redis::cmd("PUBLISH")
                .arg(&ch)
                .arg(&message)
                .query_async(&mut c)
                .await
        })
    }

    /// Delivers every message published on the project's channel to `on_message` from a
    /// background thread, reconnecting (with backoff) whenever Redis goes away, until the
    /// returned [`Subscription`] is dropped. `on_connect` runs after every (re)connection, so
    /// the caller can catch up on what it missed while disconnected.
    pub fn subscribe(
        &self,
        on_message: impl Fn(String) + Send + 'static,
        on_connect: impl Fn() + Send + 'static,
    ) -> Subscription {
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicBool::new(false));
        let url = self.redis.url().to_string();
        let channel = self.channel();
        let (stop2, connected2) = (stop.clone(), connected.clone());
        let thread = std::thread::Builder::new()
            .name("codemem-events".into())
            .spawn(move || {
                let mut pause = Duration::from_millis(200);
                while !stop2.load(Ordering::Relaxed) {
                    match listen(&url, &channel, &stop2, &connected2, &on_message, &on_connect) {
                        Ok(()) => break,
                        Err(e) => {
                            if connected2.swap(false, Ordering::Relaxed) {
                                tracing::warn!(error = %e, "change events from Redis interrupted; reconnecting");
                            } else {
                                tracing::debug!(error = %e, "change events: Redis not reachable yet");
                            }
                        }
                    }
                    // Sleep in small steps so a drop is not held up by the backoff.
                    let until = std::time::Instant::now() + pause;
                    while std::time::Instant::now() < until && !stop2.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            })
            .ok();
        Subscription {
            stop,
            connected,
            thread,
        }
    }
}

fn listen(
    url: &str,
    channel: &str,
    stop: &AtomicBool,
    connected: &AtomicBool,
    on_message: &dyn Fn(String),
    on_connect: &dyn Fn(),
) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let mut ps = con.as_pubsub();
    ps.subscribe(channel)?;
    // A short read timeout lets the loop notice a stop request.
    ps.set_read_timeout(Some(Duration::from_millis(250)))?;
    connected.store(true, Ordering::Relaxed);
    on_connect();
    while !stop.load(Ordering::Relaxed) {
        match ps.get_message() {
            Ok(msg) => match msg.get_payload::<String>() {
                Ok(text) => on_message(text),
                Err(e) => tracing::debug!(error = %e, "ignored a change event that is not text"),
            },
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A running subscription; dropping it stops the listener thread.
pub struct Subscription {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscription {
    /// True while the listener is connected and subscribed.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl KeyValue for ProjectState {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_many(table, &[key.to_vec()])?.pop().flatten())
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.redis.hash_get_many(self.hash(table), keys)
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.redis.hash_write(
            ops.into_iter()
                .map(|op| (self.hash(op_table(&op)), op))
                .collect(),
        )
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.redis.hash_scan(self.hash(table))
    }

    fn len(&self, table: Table) -> Result<u64> {
        self.redis.hash_len(self.hash(table))
    }
}

pub(crate) fn op_table(op: &WriteOp) -> Table {
    match op {
        WriteOp::Put { table, .. } | WriteOp::Delete { table, .. } => *table,
    }
}
