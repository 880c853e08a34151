//! A project's key-value state in a local store, with the embedding cache shared through Redis.
//!
//! Everything is written to the local store first (it stays authoritative: the manifest, the
//! memories and the metadata never depend on the network). Embedding-cache reads that miss
//! locally ask Redis, and embedding-cache writes are copied to Redis, so another process or
//! machine with the same model finds the vectors already computed. Redis is strictly a cache
//! here: when it is down (or its breaker is open) lookups are misses and copies are skipped —
//! indexing goes on, slower, never wrong.
//!
//! In team mode (a shared vector server too) the project's own tables — manifest, metadata,
//! memories — are also copied to the project's [`ProjectState`] after each local write, so the
//! other processes on the project can load them. A copy that fails marks the state out of
//! sync ([`SharedCacheKv::take_out_of_sync`]); the owner pushes it again later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::sync::atomic::AtomicBool;

use crate::{KeyValue, ProjectState, RedisStore, Result, Table, WriteOp};

pub struct SharedCacheKv {
    local: Arc<dyn KeyValue>,
    shared: Arc<RedisStore>,
    project: Option<ProjectState>,
    out_of_sync: AtomicBool,
    hits: AtomicU64,
    bypassed: AtomicU64,
}

/// Counters of the shared cache since this process opened it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedCacheStats {
    /// Vectors found in Redis (missing locally).
    pub hits: u64,
    /// Redis calls skipped or failed because Redis was unavailable.
    pub bypassed: u64,
}

impl SharedCacheKv {
    pub fn new(local: Arc<dyn KeyValue>, shared: Arc<RedisStore>) -> SharedCacheKv {
        SharedCacheKv {
            local,
            shared,
            project: None,
            out_of_sync: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
        }
    }

    /// Also copies the project's manifest, metadata and memories to `project`.
    pub fn with_project_state(mut self, project: ProjectState) -> SharedCacheKv {
        self.project = Some(project);
        self
    }

    /// The local store alone (writes there are not copied anywhere).
    pub fn local(&self) -> &Arc<dyn KeyValue> {
        &self.local
    }

    /// True (once) when a copy to the project state failed since the last call.
    pub fn take_out_of_sync(&self) -> bool {
        self.out_of_sync.swap(false, Ordering::Relaxed)
    }

    pub fn shared(&self) -> &Arc<RedisStore> {
        &self.shared
    }

    pub fn stats(&self) -> SharedCacheStats {
        SharedCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            bypassed: self.bypassed.load(Ordering::Relaxed),
        }
    }

    fn bypass(&self, what: &str, e: &crate::KvError) {
        self.bypassed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, "shared embedding cache bypassed for {what}");
    }
}

impl KeyValue for SharedCacheKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_many(table, &[key.to_vec()])?.pop().flatten())
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut got = self.local.get_many(table, keys)?;
        if table != Table::Embeddings {
            return Ok(got);
        }
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| got[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(got);
        }
        let ask: Vec<Vec<u8>> = missing.iter().map(|&i| keys[i].clone()).collect();
        match self.shared.get_many(Table::Embeddings, &ask) {
            Ok(remote) => {
                let mut keep = Vec::new();
                for (&i, v) in missing.iter().zip(remote) {
                    if let Some(v) = v {
                        keep.push(WriteOp::Put {
                            table: Table::Embeddings,
                            key: keys[i].clone(),
                            value: v.clone(),
                        });
                        got[i] = Some(v);
                    }
                }
                self.hits.fetch_add(keep.len() as u64, Ordering::Relaxed);
                // Keep a local copy so the next lookup stays local (best effort: it is a cache).
                if !keep.is_empty() {
                    if let Err(e) = self.local.write(keep) {
                        tracing::debug!(error = %e, "could not copy shared cache entries locally");
                    }
                }
            }
            Err(e) => self.bypass("a lookup", &e),
        }
        Ok(got)
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let copy: Vec<WriteOp> = ops
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    WriteOp::Put {
                        table: Table::Embeddings,
                        ..
                    }
                )
            })
            .cloned()
            .collect();
        let state: Vec<WriteOp> = match &self.project {
            Some(_) => ops
                .iter()
                .filter(|op| crate::team::op_table(op) != Table::Embeddings)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        self.local.write(ops)?;
        if !copy.is_empty() {
            if let Err(e) = self.shared.write(copy) {
                self.bypass("a write", &e);
            }
        }
        if let (Some(p), false) = (&self.project, state.is_empty()) {
            if let Err(e) = p.write(state) {
                self.out_of_sync.store(true, Ordering::Relaxed);
                self.bypass("a project state copy", &e);
            }
        }
        Ok(())
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.local.scan(table)
    }

    fn len(&self, table: Table) -> Result<u64> {
        self.local.len(table)
    }
}
