//! Team mode: several codemem processes (two editors, an agent server, a teammate's machine)
//! on one project, sharing a Redis server and a Qdrant server.
//!
//! With both `redis_url` and `qdrant_url` set, the vectors live in the shared Qdrant
//! collections, and the project's manifest, metadata and memories are copied to Redis after
//! every local write (the local redb stays the record this process reads). On top of that:
//! - **one indexer at a time**: an indexing run holds a lease in Redis (`SET NX PX`, renewed
//!   while it runs, released at the end, expiring by itself if the holder dies); another
//!   process waits for it, then loads the manifest the holder wrote and finds nothing to redo;
//! - **change events**: after each checkpoint of a run and each memory change, a message on
//!   the project's channel lists the paths or memory ids; the other processes load those
//!   entries from Redis, and their editors refresh (status, code lenses);
//! - **one data dir per live process**: the first process uses the project's data dir, the
//!   next ones `instances/<n>` under it (their redb is a cache of the shared state);
//! - unsaved buffers stay private: their points carry the process's `owner`, and searches
//!   drop other owners' unsaved points.
//!
//! With Redis alone only the embedding cache is shared (the vectors are local, so is the
//! manifest that describes them). Redis being down never stops indexing or search: runs go on
//! without the lease, copies that fail are pushed again by this process's next run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codemem_kv::{KeyValue, Lease, ProjectState, SharedCacheKv, Table, WriteOp};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::manifest::{self, FileEntry};
use crate::memory::Memory;
use crate::project::Project;

/// A run publishes the list of changed paths up to this many; beyond it, "everything".
const MAX_EVENT_PATHS: usize = 2000;

pub(crate) struct Team {
    pub(crate) state: ProjectState,
    pub(crate) kv: Arc<SharedCacheKv>,
    /// Names this process on the project: `<host>#<slot>`; unique among live processes.
    pub(crate) owner: String,
    pub(crate) lease_ttl: Duration,
    /// The shared manifest's generation this process last loaded or wrote (0: never).
    pub(crate) seen_generation: std::sync::atomic::AtomicU64,
}

/// A message on the project's change channel.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The process that made the change (`owner`).
    pub origin: String,
    /// "index" (manifest entries of `paths` changed) or "memory" (memories `ids` changed).
    pub kind: String,
    #[serde(default)]
    pub paths: Vec<String>,
    /// Too many paths to list: load the whole manifest.
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub ids: Vec<String>,
}

/// What an event (or a catch-up) changed in this process.
#[derive(Debug, Default, Clone)]
pub struct Synced {
    pub paths: Vec<String>,
    /// Paths memories are pinned to, of memories that came, changed or went.
    pub memory_paths: Vec<String>,
    pub memories: usize,
}

/// This machine's name, for lease holders and unsaved-point owners.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Holds the indexing lease; renews it in the background and releases it on drop.
pub(crate) struct LeaseGuard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: ProjectState,
    holder: String,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        if let Err(e) = self.state.release_lease(&self.holder) {
            tracing::debug!(error = %e, "could not release the indexing lease; it expires by itself");
        }
    }
}

impl Team {
    /// The lease holder text: owner and process id, so a waiting user sees who indexes.
    fn holder(&self) -> String {
        format!("{} (pid {})", self.owner, std::process::id())
    }

    /// Takes the indexing lease, waiting while another process holds it. `None`: Redis is
    /// unreachable (the run goes on without a lease) or `cancel` was set while waiting.
    pub(crate) fn lease(&self, cancel: &AtomicBool) -> Option<LeaseGuard> {
        let holder = self.holder();
        let mut told = false;
        loop {
            match self.state.try_lease(&holder, self.lease_ttl) {
                Ok(Lease::Acquired) => break,
                Ok(Lease::HeldBy(other)) => {
                    if !told {
                        tracing::info!(
                            holder = other,
                            "another codemem process is indexing this project; waiting for it"
                        );
                        told = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "indexing without the team lease (Redis unavailable)");
                    return None;
                }
            }
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (state, h, ttl, stop2) = (
            self.state.clone(),
            holder.clone(),
            self.lease_ttl,
            stop.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("codemem-lease".into())
            .spawn(move || {
                let every = (ttl / 3).max(Duration::from_millis(50));
                let mut next = Instant::now() + every;
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
                    if stop2.load(Ordering::Relaxed) || Instant::now() < next {
                        continue;
                    }
                    next = Instant::now() + every;
                    match state.renew_lease(&h, ttl) {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("the indexing lease expired and was taken over; this run goes on (writes are idempotent)"),
                        Err(e) => tracing::debug!(error = %e, "could not renew the indexing lease"),
                    }
                }
            })
            .ok();
        Some(LeaseGuard {
            stop,
            thread,
            state: self.state.clone(),
            holder,
        })
    }

    /// After this process wrote manifest entries (under the lease): a new generation.
    pub(crate) fn wrote_manifest(&self) {
        if let Ok(g) = self.state.bump_generation() {
            self.seen_generation.store(g, Ordering::Relaxed);
        }
    }

    pub(crate) fn publish(&self, mut event: ChangeEvent) {
        event.origin = self.owner.clone();
        if event.paths.len() > MAX_EVENT_PATHS {
            event.paths.clear();
            event.all = true;
        }
        let text = serde_json::to_string(&event).expect("ChangeEvent serialises");
        if let Err(e) = self.state.publish(&text) {
            tracing::debug!(error = %e, "change event not sent (Redis unavailable); other processes catch up when they reconnect");
        }
    }
}

/// Applies `remote` (the shared copy of a table) to the local store without copying it back.
/// Only keys in `keys` (all when `None`) are considered; returns the keys that changed.
fn apply_remote(
    local: &dyn KeyValue,
    table: Table,
    remote: &[(Vec<u8>, Vec<u8>)],
    keys: Option<&HashSet<Vec<u8>>>,
    delete_missing: bool,
) -> Result<Vec<Vec<u8>>> {
    let mine: HashMap<Vec<u8>, Vec<u8>> = local.scan(table)?.into_iter().collect();
    let theirs: HashMap<&[u8], &[u8]> = remote
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let mut ops = Vec::new();
    let mut changed = Vec::new();
    for (k, v) in remote {
        if keys.is_some_and(|s| !s.contains(k)) {
            continue;
        }
        if mine.get(k) != Some(v) {
            ops.push(WriteOp::Put {
                table,
                key: k.clone(),
                value: v.clone(),
            });
            changed.push(k.clone());
        }
    }
    if delete_missing {
        for k in mine.keys() {
            if keys.is_some_and(|s| !s.contains(k)) {
                continue;
            }
            if !theirs.contains_key(k.as_slice()) {
                ops.push(WriteOp::Delete {
                    table,
                    key: k.clone(),
                });
                changed.push(k.clone());
            }
        }
    }
    local.write(ops)?;
    Ok(changed)
}

impl Project {
    /// Brings the local manifest, metadata and memories in line with the shared copy:
    /// the shared manifest wins (it describes the shared vectors); memories are merged (one
    /// written here while Redis was down is pushed). With `push`, or when the shared manifest
    /// is empty, this process's manifest is pushed instead. Redis down: nothing changes.
    pub(crate) fn sync_team_state(&self, push: bool) -> Result<Synced> {
        let Some(t) = &self.team else {
            return Ok(Synced::default());
        };
        let local = t.kv.local().clone();
        let mut out = Synced::default();
        let generation = t.state.generation().unwrap_or(0);
        let unchanged =
            !push && generation != 0 && generation == t.seen_generation.load(Ordering::Relaxed);
        let remote_files = match if unchanged {
            Ok(Vec::new())
        } else {
            t.state.scan(Table::Files)
        } {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "team state not loaded (Redis unavailable); using this machine's copy");
                return Ok(out);
            }
        };
        if unchanged {
            // Nobody wrote the shared manifest since this process last saw it.
        } else if push || remote_files.is_empty() {
            let mine = local.scan(Table::Files)?;
            if !mine.is_empty() || push {
                let theirs: HashSet<Vec<u8>> = remote_files.into_iter().map(|(k, _)| k).collect();
                let mut ops: Vec<WriteOp> = theirs
                    .iter()
                    .map(|k| WriteOp::Delete {
                        table: Table::Files,
                        key: k.clone(),
                    })
                    .collect();
                ops.extend(mine.into_iter().map(|(key, value)| WriteOp::Put {
                    table: Table::Files,
                    key,
                    value,
                }));
                ops.extend(
                    local
                        .scan(Table::Meta)?
                        .into_iter()
                        .map(|(key, value)| WriteOp::Put {
                            table: Table::Meta,
                            key,
                            value,
                        }),
                );
                match t.state.write(ops) {
                    Ok(()) => t.wrote_manifest(),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not push this process's manifest to Redis; the next run tries again")
                    }
                }
            }
        } else {
            let changed = apply_remote(local.as_ref(), Table::Files, &remote_files, None, true)?;
            if let Ok(meta) = t.state.scan(Table::Meta) {
                apply_remote(local.as_ref(), Table::Meta, &meta, None, false)?;
            }
            if !changed.is_empty() {
                *self.files.write().unwrap_or_else(|e| e.into_inner()) =
                    manifest::load(local.as_ref())?;
            }
            out.paths = changed
                .into_iter()
                .filter_map(|k| String::from_utf8(k).ok())
                .collect();
            t.seen_generation.store(generation, Ordering::Relaxed);
        }
        // Memories: union, then the shared copy wins for ids both have.
        if let Ok(remote) = t.state.scan(Table::Memories) {
            let theirs: HashSet<&[u8]> = remote.iter().map(|(k, _)| k.as_slice()).collect();
            let only_mine: Vec<WriteOp> = local
                .scan(Table::Memories)?
                .into_iter()
                .filter(|(k, _)| !theirs.contains(k.as_slice()))
                .map(|(key, value)| WriteOp::Put {
                    table: Table::Memories,
                    key,
                    value,
                })
                .collect();
            if !only_mine.is_empty() {
                if let Err(e) = t.state.write(only_mine) {
                    tracing::debug!(error = %e, "memories not pushed to Redis yet");
                }
            }
            let changed = apply_remote(local.as_ref(), Table::Memories, &remote, None, false)?;
            if !changed.is_empty() {
                let ids: Vec<String> = changed
                    .into_iter()
                    .filter_map(|k| String::from_utf8(k).ok())
                    .collect();
                let (n, paths) = self.reload_memories(&ids)?;
                out.memories = n;
                out.memory_paths = paths;
            }
        }
        Ok(out)
    }

    /// Applies a change event from another process. Events this process sent are ignored.
    pub fn apply_change_event(&self, text: &str) -> Result<Option<Synced>> {
        let Some(t) = &self.team else { return Ok(None) };
        let event: ChangeEvent = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "ignored a malformed change event");
                return Ok(None);
            }
        };
        if event.origin == t.owner {
            return Ok(None);
        }
        let local = t.kv.local().clone();
        let mut out = Synced::default();
        match event.kind.as_str() {
            "index" if event.all => return self.sync_team_state(false).map(Some),
            "index" => {
                let keys: Vec<Vec<u8>> =
                    event.paths.iter().map(|p| p.as_bytes().to_vec()).collect();
                let got = t.state.get_many(Table::Files, &keys)?;
                let mut ops = Vec::new();
                // The manifest mirror is locked only while it changes: the Redis call and the
                // local commit below must not hold up searches.
                let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
                for (path, v) in event.paths.iter().zip(got) {
                    match v {
                        Some(v) => {
                            let Ok(entry) = serde_json::from_slice::<FileEntry>(&v) else {
                                continue;
                            };
                            if files.get(path) != Some(&entry) {
                                ops.push(manifest::put_op(path, &entry));
                                files.insert(path.clone(), entry);
                                out.paths.push(path.clone());
                            }
                        }
                        None => {
                            if files.remove(path).is_some() {
                                ops.push(manifest::delete_op(path));
                                out.paths.push(path.clone());
                            }
                        }
                    }
                }
                drop(files);
                if let Ok(meta) = t.state.scan(Table::Meta) {
                    ops.extend(meta.into_iter().map(|(key, value)| WriteOp::Put {
                        table: Table::Meta,
                        key,
                        value,
                    }));
                }
                local.write(ops)?;
            }
            "memory" => {
                let keys: Vec<Vec<u8>> = event.ids.iter().map(|i| i.as_bytes().to_vec()).collect();
                let got = t.state.get_many(Table::Memories, &keys)?;
                let ops = keys
                    .into_iter()
                    .zip(got)
                    .map(|(key, v)| match v {
                        Some(value) => WriteOp::Put {
                            table: Table::Memories,
                            key,
                            value,
                        },
                        None => WriteOp::Delete {
                            table: Table::Memories,
                            key,
                        },
                    })
                    .collect();
                local.write(ops)?;
                let (n, paths) = self.reload_memories(&event.ids)?;
                out.memories = n;
                out.memory_paths = paths;
            }
            other => tracing::debug!(kind = other, "ignored a change event of an unknown kind"),
        }
        Ok(Some(out))
    }

    /// Re-reads memories `ids` from the local record into the in-memory map; returns how many
    /// changed and the paths they are (or were) pinned to.
    fn reload_memories(&self, ids: &[String]) -> Result<(usize, Vec<String>)> {
        let local = match &self.team {
            Some(t) => t.kv.local().clone(),
            None => return Ok((0, Vec::new())),
        };
        let mut map = self.memories.write().unwrap_or_else(|e| e.into_inner());
        let mut paths = Vec::new();
        let mut n = 0;
        for id in ids {
            let now: Option<Memory> = local
                .get(Table::Memories, id.as_bytes())?
                .and_then(|v| serde_json::from_slice(&v).ok());
            let before = map.get(id).cloned();
            if before == now {
                continue;
            }
            n += 1;
            paths.extend(before.as_ref().and_then(|m| m.path.clone()));
            paths.extend(now.as_ref().and_then(|m| m.path.clone()));
            match now {
                Some(m) => map.insert(id.clone(), m),
                None => map.remove(id),
            };
        }
        paths.sort();
        paths.dedup();
        Ok((n, paths))
    }

    /// The process name in team mode (`<host>#<slot>`).
    pub fn team_owner(&self) -> Option<&str> {
        self.team.as_ref().map(|t| t.owner.as_str())
    }

    /// Starts delivering the other processes' change events to `on_event` (team mode only).
    pub fn subscribe_changes(
        self: &Arc<Self>,
        on_event: impl Fn(&Project, Synced) + Send + Sync + 'static,
    ) -> Option<codemem_kv::Subscription> {
        let t = self.team.as_ref()?;
        let on_event = Arc::new(on_event);
        let (weak, weak2, cb2) = (Arc::downgrade(self), Arc::downgrade(self), on_event.clone());
        let first = Arc::new(AtomicBool::new(true));
        Some(t.state.subscribe(
            move |text| {
                let Some(p) = weak.upgrade() else { return };
                match p.apply_change_event(&text) {
                    Ok(Some(s)) if !s.paths.is_empty() || s.memories > 0 => on_event(&p, s),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not apply a change event from another process"),
                }
            },
            move || {
                // After a reconnection, catch up on what was published meanwhile.
                if first.swap(false, Ordering::Relaxed) {
                    return;
                }
                let Some(p) = weak2.upgrade() else { return };
                match p.sync_team_state(false) {
                    Ok(s) if !s.paths.is_empty() || s.memories > 0 => cb2(&p, s),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not catch up with the team state"),
                }
            },
        ))
    }
}
