//! A durable local outbox in front of a remote vector store.
//!
//! Writes that cannot reach the server (it is down, or its circuit breaker is open) are
//! appended to a redb file in the data dir and acknowledged: a write returns `Ok` only once it
//! is either applied by the server or durable in the outbox. While the outbox holds anything,
//! new writes queue behind it, so the server sees every write in the order it was made. The
//! outbox is replayed, oldest first, before each later call, by [`Outbox::replay`], and by a
//! background replayer thread: while writes are queued it tries every `replay_interval`
//! (default 5 s), never while the store's circuit breaker is open, and as soon as the breaker
//! lets a call through again, so queued writes reach the server without waiting for another
//! call. One replay runs at a time (they share the lock that orders writes). An entry is
//! removed only after the server applied it, so a crash mid-replay re-applies it, which is
//! harmless (upserts and deletes by id or path are idempotent).
//!
//! Reads are not queued: they go to the server (after a replay attempt) and fail fast with the
//! server's `Unavailable` error while it is down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

use codemem_core::{lexical::SparseVec, Namespace};
use codemem_resilience::{BreakerSnapshot, BreakerState};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde_json::{json, Map, Value};

use crate::{ScoredPoint, SearchFilter, SearchVector, StoreError, StorePoint, VectorStore};

const OPS: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// One queued write.
enum Op {
    Upsert(Vec<StorePoint>),
    SetDense(Vec<(u64, Vec<f32>)>),
    DeletePaths(Vec<String>),
    DeleteIds(Vec<u64>),
}

fn encode(ns: &Namespace, op: &Op) -> Vec<u8> {
    let body = match op {
        Op::Upsert(points) => json!({"upsert": points.iter().map(|p| json!({
            "id": p.id, "dense": p.dense, "si": p.sparse.indices, "sv": p.sparse.values, "payload": p.payload,
        })).collect::<Vec<_>>()}),
        Op::SetDense(v) => json!({"set_dense": v}),
        Op::DeletePaths(p) => json!({"delete_paths": p}),
        Op::DeleteIds(i) => json!({"delete_ids": i}),
    };
    serde_json::to_vec(&json!({"ns": ns.as_str(), "op": body})).expect("JSON of plain data")
}

fn from<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8]) -> Result<(Namespace, Op), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let ns = Namespace::new(v["ns"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    let op = &v["op"];
    let op = if let Some(points) = op.get("upsert").and_then(Value::as_array) {
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            out.push(StorePoint {
                id: from(&p["id"])?,
                dense: from(&p["dense"])?,
                sparse: SparseVec {
                    indices: from(&p["si"])?,
                    values: from(&p["sv"])?,
                },
                payload: from::<Map<String, Value>>(&p["payload"])?,
            });
        }
        Op::Upsert(out)
    } else if let Some(v) = op.get("set_dense") {
        Op::SetDense(from(v)?)
    } else if let Some(v) = op.get("delete_paths") {
        Op::DeletePaths(from(v)?)
    } else if let Some(v) = op.get("delete_ids") {
        Op::DeleteIds(from(v)?)
    } else {
        return Err("unknown outbox operation".into());
    };
    Ok((ns, op))
}

/// Pause between background replay attempts while writes are queued.
pub const DEFAULT_REPLAY_INTERVAL: Duration = Duration::from_secs(5);

/// How often the replayer looks again while another call's trial decides a half-open breaker.
const TRIAL_POLL: Duration = Duration::from_millis(50);

/// A store behind a circuit breaker, as the outbox's replayer sees it.
pub trait GuardedStore: VectorStore {
    /// The breaker's state; `None`: no breaker (the replayer just tries every interval).
    fn breaker_snapshot(&self) -> Option<BreakerSnapshot> {
        None
    }
}

/// A remote store with a durable outbox for writes it cannot take right now.
pub struct Outbox<S: VectorStore> {
    shared: Arc<Shared<S>>,
    replayer: Option<JoinHandle<()>>,
}

/// What the callers and the replayer thread share.
struct Shared<S: VectorStore> {
    inner: Arc<S>,
    db: Database,
    path: String,
    /// Held while appending or replaying: keeps the order of writes.
    order: Mutex<()>,
    pending: AtomicU64,
    replayed: AtomicU64,
    /// Set when the outbox is dropped: the replayer stops (also between two replayed entries).
    stop: AtomicBool,
    /// The replayer sleeps on this; dropping the outbox wakes it.
    idle: Mutex<()>,
    wake: Condvar,
}

fn db_err(path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.to_string(),
        reason: format!("outbox: {e}"),
    }
}

impl<S: GuardedStore + 'static> Outbox<S> {
    /// Opens (creating) the outbox file at `path` in front of `inner`, with a background
    /// replayer every [`DEFAULT_REPLAY_INTERVAL`].
    pub fn open(inner: Arc<S>, path: &std::path::Path) -> crate::Result<Outbox<S>> {
        Outbox::open_with(inner, path, DEFAULT_REPLAY_INTERVAL)
    }

    /// [`open`](Self::open) with the replayer's interval; zero: no background replayer.
    pub fn open_with(
        inner: Arc<S>,
        path: &std::path::Path,
        replay_interval: Duration,
    ) -> crate::Result<Outbox<S>> {
        let shared = Arc::new(Shared::open(inner, path)?);
        let replayer = if replay_interval.is_zero() {
            None
        } else {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name("codemem-outbox".into())
                .spawn(move || replayer(s, replay_interval))
                .map_err(|e| {
                    db_err(
                        &shared.path,
                        format!("cannot start the replayer thread: {e}"),
                    )
                })?;
            Some(h)
        };
        Ok(Outbox { shared, replayer })
    }
}

impl<S: VectorStore> Outbox<S> {
    pub fn inner(&self) -> &Arc<S> {
        &self.shared.inner
    }

    /// Writes waiting for the server.
    pub fn pending(&self) -> u64 {
        self.shared.pending()
    }

    /// Writes replayed to the server since this process opened the outbox.
    pub fn replayed(&self) -> u64 {
        self.shared.replayed.load(Ordering::Relaxed)
    }

    /// Replays what it can now; returns how many writes were applied.
    pub fn replay(&self) -> crate::Result<u64> {
        let _o = self
            .shared
            .order
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.shared.replay_locked()
    }
}

impl<S: VectorStore> Drop for Outbox<S> {
    fn drop(&mut self) {
        let Some(h) = self.replayer.take() else {
            return;
        };
        {
            let _g = self
                .shared
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.stop.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
        }
        if h.join().is_err() {
            tracing::error!("the outbox replayer thread panicked");
        }
    }
}

/// The background replayer: while writes are queued, a replay every `interval`; none while
/// the breaker is open, one as soon as it lets a call through (that replay makes the trial).
fn replayer<S: GuardedStore>(shared: Arc<Shared<S>>, interval: Duration) {
    let mut wait = interval;
    loop {
        if shared.sleep(wait) {
            return;
        }
        wait = interval;
        if shared.pending() == 0 {
            continue;
        }
        match shared.inner.breaker_snapshot() {
            Some(b)
                if b.state == BreakerState::Open && b.retry_in.is_some_and(|d| !d.is_zero()) =>
            {
                wait = b.retry_in.unwrap_or(interval).min(interval);
                continue;
            }
            Some(b) if b.state == BreakerState::HalfOpen => {
                wait = TRIAL_POLL.min(interval);
                continue;
            }
            _ => {}
        }
        // A write holding the lock replays the queue itself.
        let _o = match shared.order.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => continue,
        };
        if let Err(e) = shared.replay_locked() {
            tracing::warn!(error = %e, "outbox replay failed");
        }
    }
}

impl<S: VectorStore> Shared<S> {
    fn open(inner: Arc<S>, path: &std::path::Path) -> crate::Result<Shared<S>> {
        let p = path.display().to_string();
        let db = Database::create(path).map_err(|e| db_err(&p, e))?;
        let pending = {
            let w = db.begin_write().map_err(|e| db_err(&p, e))?;
            let n = w
                .open_table(OPS)
                .map_err(|e| db_err(&p, e))?
                .len()
                .map_err(|e| db_err(&p, e))?;
            w.commit().map_err(|e| db_err(&p, e))?;
            n
        };
        if pending > 0 {
            tracing::info!(
                pending,
                "vector writes waiting in the outbox from a previous run"
            );
        }
        Ok(Shared {
            inner,
            db,
            path: p,
            order: Mutex::new(()),
            pending: AtomicU64::new(pending),
            replayed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            idle: Mutex::new(()),
            wake: Condvar::new(),
        })
    }

    fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Sleeps `d` or until the outbox is dropped; true when it was.
    fn sleep(&self, d: Duration) -> bool {
        let g = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if !d.is_zero() && !self.stop.load(Ordering::SeqCst) {
            let _ = self
                .wake
                .wait_timeout_while(g, d, |_| !self.stop.load(Ordering::SeqCst));
        }
        self.stop.load(Ordering::SeqCst)
    }

    fn append(&self, ns: &Namespace, op: &Op) -> crate::Result<()> {
        let e = |e: &dyn std::fmt::Display| StoreError::Operation {
            op: "outbox",
            namespace: ns.to_string(),
            reason: format!("{}: {e}", self.path),
        };
        let w = self.db.begin_write().map_err(|x| e(&x))?;
        {
            let mut t = w.open_table(OPS).map_err(|x| e(&x))?;
            let next = t
                .last()
                .map_err(|x| e(&x))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(0);
            t.insert(next, encode(ns, op).as_slice())
                .map_err(|x| e(&x))?;
        }
        w.commit().map_err(|x| e(&x))?;
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn apply(&self, ns: &Namespace, op: Op) -> crate::Result<()> {
        match op {
            Op::Upsert(p) => self.inner.upsert(ns, p),
            Op::SetDense(v) => self.inner.set_dense(ns, v),
            Op::DeletePaths(p) => self.inner.delete_paths(ns, &p),
            Op::DeleteIds(i) => self.inner.delete_ids(ns, &i),
        }
    }

    /// Replays queued writes in order until the outbox is empty, the server is unavailable or
    /// the outbox is being dropped. Returns how many were applied. Must be called with `order`
    /// held.
    fn replay_locked(&self) -> crate::Result<u64> {
        let mut applied = 0;
        while self.pending.load(Ordering::Relaxed) > 0 && !self.stop.load(Ordering::Relaxed) {
            let head = {
                let r = self.db.begin_read().map_err(|e| db_err(&self.path, e))?;
                let t = r.open_table(OPS).map_err(|e| db_err(&self.path, e))?;
                let first = t.first().map_err(|e| db_err(&self.path, e))?;
                first.map(|(k, v)| (k.value(), v.value().to_vec()))
            };
            let Some((key, bytes)) = head else {
                self.pending.store(0, Ordering::Relaxed);
                break;
            };
            match decode(&bytes) {
                Ok((ns, op)) => match self.apply(&ns, op) {
                    Ok(()) => {}
                    Err(e @ StoreError::Unavailable { .. }) => {
                        tracing::debug!(error = %e, "outbox replay paused");
                        return Ok(applied);
                    }
                    // The server refused this write for good (it would refuse it forever):
                    // drop it rather than block every later write.
                    Err(e) => {
                        tracing::error!(error = %e, "outbox entry refused by the server; dropped")
                    }
                },
                Err(e) => tracing::error!(error = %e, "unreadable outbox entry; dropped"),
            }
            let w = self.db.begin_write().map_err(|e| db_err(&self.path, e))?;
            w.open_table(OPS)
                .map_err(|e| db_err(&self.path, e))?
                .remove(key)
                .map_err(|e| db_err(&self.path, e))?;
            w.commit().map_err(|e| db_err(&self.path, e))?;
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.replayed.fetch_add(1, Ordering::Relaxed);
            applied += 1;
        }
        if applied > 0 {
            tracing::info!(applied, "outbox replayed to the vector server");
        }
        Ok(applied)
    }

    /// A write: straight to the server when nothing is queued, else (or when the server is
    /// unavailable) into the outbox.
    fn write(&self, ns: &Namespace, op: Op) -> crate::Result<()> {
        let _o = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        if self.pending.load(Ordering::Relaxed) > 0 {
            self.replay_locked()?;
        }
        if self.pending.load(Ordering::Relaxed) > 0 {
            return self.append(ns, &op);
        }
        // Keep a copy only if the call may need queuing (the server being unavailable).
        let copy = encode(ns, &op);
        match self.apply(ns, op) {
            Err(StoreError::Unavailable { .. }) => {
                let (ns2, op) = decode(&copy).map_err(|e| db_err(&self.path, e))?;
                self.append(&ns2, &op)
            }
            other => other,
        }
    }

    fn before_read(&self) {
        if self.pending.load(Ordering::Relaxed) > 0 {
            if let Ok(_o) = self.order.try_lock() {
                let _ = self.replay_locked();
            }
        }
    }
}

impl<S: VectorStore> VectorStore for Outbox<S> {
    fn upsert(&self, ns: &Namespace, points: Vec<StorePoint>) -> crate::Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.shared.write(ns, Op::Upsert(points))
    }
    fn set_dense(&self, ns: &Namespace, vectors: Vec<(u64, Vec<f32>)>) -> crate::Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        self.shared.write(ns, Op::SetDense(vectors))
    }
    fn delete_paths(&self, ns: &Namespace, paths: &[String]) -> crate::Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        self.shared.write(ns, Op::DeletePaths(paths.to_vec()))
    }
    fn delete_ids(&self, ns: &Namespace, ids: &[u64]) -> crate::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.shared.write(ns, Op::DeleteIds(ids.to_vec()))
    }
    fn search(
        &self,
        ns: &Namespace,
        vector: &SearchVector,
        filter: &SearchFilter,
        limit: usize,
    ) -> crate::Result<Vec<ScoredPoint>> {
        self.shared.before_read();
        self.shared.inner.search(ns, vector, filter, limit)
    }
    fn scroll(
        &self,
        ns: &Namespace,
        filter: &SearchFilter,
        limit: usize,
    ) -> crate::Result<Vec<ScoredPoint>> {
        self.shared.before_read();
        self.shared.inner.scroll(ns, filter, limit)
    }
    fn count(&self, ns: &Namespace) -> crate::Result<u64> {
        self.shared.before_read();
        self.shared.inner.count(ns)
    }
    fn flush(&self) -> crate::Result<()> {
        self.shared.before_read();
        self.shared.inner.flush()
    }
    fn optimize(&self, ns: &Namespace) -> crate::Result<()> {
        self.shared.before_read();
        self.shared.inner.optimize(ns)
    }
}
