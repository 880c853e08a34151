//! The index pipeline.
//!
//! Phase 1 (lexical): walk → diff against the manifest → read, chunk, sparse-vectorise and
//! upsert every changed file, reusing cached embeddings. Lexical search covers the whole tree
//! after this phase, which takes seconds.
//! Phase 2 (dense): embed the chunks the cache did not have, in bounded batches on a worker
//! thread while this thread stores the previous batch; a file is marked complete once all its
//! vectors are stored.
//!
//! Durability: every ~2 s (and at the end) the store is flushed *then* the manifest and cache
//! entries are committed, so after kill -9 the manifest never claims more than the store holds;
//! a re-run redoes only incomplete files and finds finished embeddings in the cache.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use codemem_core::chunk::{chunk_file_with_definitions, ChunkOptions};
use codemem_core::lexical::document_vector;
use codemem_core::{Chunk, Namespace};
use codemem_kv::WriteOp;
use codemem_store::{StorePoint, STATIC_FLAG};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::cache;
use crate::error::{Result, ServiceError};
use crate::manifest::{self, FileEntry};
use crate::project::{git_head, Project};
use crate::symbols::SymbolDef;
use crate::walk::{self, WalkedFile};

pub use crate::walk::Skipped;

const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
const FILES_PER_BATCH: usize = 64;
const MAX_SKIPPED_LISTED: usize = 50;
/// A namespace gets its HNSW index built once it holds this many points (see `optimize`).
const HNSW_MIN_POINTS: u64 = 30_000;

/// Counters of one index run (also persisted as the project's `last_run`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IndexStats {
    pub files_scanned: usize,
    pub files_unchanged: usize,
    pub files_indexed: usize,
    pub files_deleted: usize,
    pub files_skipped: usize,
    pub chunks_upserted: usize,
    /// Chunk texts sent to the model in this run.
    pub chunks_embedded: usize,
    /// Chunks whose vector came from the embedding cache.
    pub cache_hits: usize,
    pub embed_errors: usize,
    pub points_total: u64,
    pub elapsed_ms: u64,
    /// Time spent inside the embedding model.
    pub embed_ms: u64,
    /// Chunks that got a first-pass (static) vector while they wait for the model.
    #[serde(default)]
    pub chunks_first_pass: usize,
    /// Time spent computing first-pass vectors (part of the lexical phase).
    #[serde(default)]
    pub first_pass_ms: u64,
    /// When phase 1 ended: from here on lexical search covers the whole tree.
    pub lexical_ready_ms: u64,
    /// Time spent keeping the vector index's search structures (HNSW, merged segments) up to
    /// date after the run's writes.
    #[serde(default)]
    pub optimize_ms: u64,
    pub cancelled: bool,
    /// The first skipped files and why (the count is `files_skipped`).
    pub skipped: Vec<Skipped>,
}

/// Progress of an index run, for progress bars and JSON event streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IndexEvent {
    Scanned {
        files: usize,
        changed: usize,
        deleted: usize,
    },
    Lexical {
        done: usize,
        total: usize,
    },
    Embed {
        done: usize,
        total: usize,
    },
    Done {
        stats: IndexStats,
    },
}

/// Where an index run stands, the same for every front end's progress bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// 0–100: scanning 1, the lexical phase up to 50, embedding up to 99, done 100. Never
    /// goes back within a run.
    pub percent: f64,
    pub message: String,
    /// The last event of its phase (worth showing even when reports are throttled).
    pub phase_end: bool,
}

impl IndexEvent {
    pub fn progress(&self) -> Progress {
        let ratio = |done: usize, total: usize| {
            if total == 0 {
                1.0
            } else {
                (done as f64 / total as f64).clamp(0.0, 1.0)
            }
        };
        let (percent, message, phase_end) = match self {
            IndexEvent::Scanned {
                files,
                changed,
                deleted,
            } => (
                1.0,
                format!("{changed} of {files} files changed, {deleted} deleted"),
                *changed == 0,
            ),
            IndexEvent::Lexical { done, total } => (
                1.0 + 49.0 * ratio(*done, *total),
                format!("{done}/{total} files"),
                done == total,
            ),
            IndexEvent::Embed { done, total } => (
                50.0 + 49.0 * ratio(*done, *total),
                format!("embedding {done}/{total} chunks"),
                done == total,
            ),
            IndexEvent::Done { .. } => (100.0, "done".to_string(), true),
        };
        Progress {
            percent,
            message,
            phase_end,
        }
    }
}

pub trait ProgressSink: Sync {
    fn event(&self, e: IndexEvent);
}

impl<F: Fn(IndexEvent) + Sync> ProgressSink for F {
    fn event(&self, e: IndexEvent) {
        self(e)
    }
}

pub struct IndexOptions<'a> {
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn ProgressSink,
}

/// A chunk waiting for its dense vector.
struct Pending {
    ns: Namespace,
    id: u64,
    path: String,
    key: Vec<u8>,
    text: String,
}

enum Prepared {
    Skip(String),
    /// Same bytes as indexed before; only the mtime moved.
    Touch,
    /// Chunks, definitions, blake3 of the bytes, line count.
    Chunks(Vec<Chunk>, Vec<SymbolDef>, String, u32),
}

/// Writes buffered until the next checkpoint.
#[derive(Default)]
struct Journal {
    ops: Vec<WriteOp>,
    entries: Vec<(String, Option<FileEntry>)>,
    last: Option<Instant>,
}

impl Project {
    /// Brings the index in line with the workspace. Safe to interrupt at any point.
    pub fn index(&self, opts: IndexOptions<'_>) -> Result<IndexStats> {
        let started = Instant::now();
        let mut stats = IndexStats::default();
        // Team mode: one indexer per project at a time; then start from what the last one wrote.
        let _lease = match &self.team {
            Some(t) => {
                let lease = t.lease(opts.cancel);
                if opts.cancel.load(Ordering::Relaxed) {
                    stats.cancelled = true;
                    return Ok(stats);
                }
                self.sync_team_state(t.kv.take_out_of_sync())?;
                lease
            }
            None => None,
        };
        let walk = walk::walk(&self.root, &self.cfg);
        stats.files_scanned = walk.files.len();
        let mut skipped = walk.skipped;
        let known = self.files.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut journal = Journal {
            last: Some(Instant::now()),
            ..Default::default()
        };

        // Vanished files.
        let present: HashSet<&str> = walk.files.iter().map(|f| f.rel.as_str()).collect();
        let vanished: Vec<(&String, &FileEntry)> = known
            .iter()
            .filter(|(p, _)| !present.contains(p.as_str()))
            .collect();
        let mut by_ns: HashMap<&str, Vec<String>> = HashMap::new();
        for (p, e) in &vanished {
            by_ns
                .entry(e.namespace.as_str())
                .or_default()
                .push((*p).clone());
            journal.entries.push(((*p).clone(), None));
        }
        for (ns, paths) in by_ns {
            if let Ok(ns) = Namespace::new(ns) {
                self.store.delete_paths(&ns, &paths)?;
                self.restore_overlay(&ns, &paths)?;
            }
        }
        stats.files_deleted = vanished.len();

        let changed: Vec<&WalkedFile> = walk
            .files
            .iter()
            .filter(|f| match known.get(&f.rel) {
                Some(e) => !(e.complete && e.size == f.size && e.mtime_ns == f.mtime_ns),
                None => true,
            })
            .collect();
        stats.files_unchanged = walk.files.len() - changed.len();
        opts.progress.event(IndexEvent::Scanned {
            files: walk.files.len(),
            changed: changed.len(),
            deleted: vanished.len(),
        });

        // Phase 1: lexical.
        let model_id = self
            .embedder
            .as_ref()
            .map(|e| e.model_id().to_string())
            .unwrap_or_default();
        let dim = self
            .embedder
            .as_ref()
            .map(|e| e.dim())
            .unwrap_or(crate::project::DEFAULT_DIM);
        let mut pending: Vec<Pending> = Vec::new();
        let mut remaining: HashMap<String, (FileEntry, usize)> = HashMap::new();
        let mut done = 0;
        for batch in changed.chunks(FILES_PER_BATCH) {
            if opts.cancel.load(Ordering::Relaxed) {
                return self.finish_cancelled(journal, stats, started);
            }
            let prepared: Vec<(&WalkedFile, Prepared)> = std::thread::scope(|s| {
                let half = batch.len().div_ceil(2);
                let (a, b) = batch.split_at(half);
                let h = s.spawn(|| {
                    a.iter()
                        .map(|f| (*f, self.prepare(f, known.get(&f.rel))))
                        .collect::<Vec<_>>()
                });
                let mut rest: Vec<_> = b
                    .iter()
                    .map(|f| (*f, self.prepare(f, known.get(&f.rel))))
                    .collect();
                let mut out = h.join().unwrap_or_default();
                out.append(&mut rest);
                out
            });
            let mut deletes: HashMap<String, Vec<String>> = HashMap::new();
            let mut chunks_all: Vec<Chunk> = Vec::new();
            let mut new_entries: Vec<(String, FileEntry)> = Vec::new();
            for (f, p) in prepared {
                let old = known.get(&f.rel);
                match p {
                    Prepared::Skip(reason) => {
                        stats.files_skipped += 1;
                        if skipped.len() < MAX_SKIPPED_LISTED {
                            skipped.push(Skipped {
                                path: f.rel.clone(),
                                reason,
                            });
                        }
                        if let Some(e) = old {
                            deletes
                                .entry(e.namespace.clone())
                                .or_default()
                                .push(f.rel.clone());
                            journal.entries.push((f.rel.clone(), None));
                        }
                    }
                    Prepared::Touch => {
                        let mut e = old.expect("Touch implies an entry").clone();
                        e.mtime_ns = f.mtime_ns;
                        journal.entries.push((f.rel.clone(), Some(e)));
                    }
                    Prepared::Chunks(chunks, defs, hash, lines) => {
                        let ns = chunks
                            .first()
                            .map(|c| c.namespace.to_string())
                            .unwrap_or_else(|| self.router.route(&f.rel, f.language).to_string());
                        if let Some(e) = old {
                            if e.namespace != ns {
                                deletes
                                    .entry(e.namespace.clone())
                                    .or_default()
                                    .push(f.rel.clone());
                            }
                        }
                        // Always clear the target namespace: a crash may have left points without an entry.
                        deletes.entry(ns.clone()).or_default().push(f.rel.clone());
                        new_entries.push((
                            f.rel.clone(),
                            FileEntry {
                                size: f.size,
                                mtime_ns: f.mtime_ns,
                                hash,
                                namespace: ns,
                                language: f.language,
                                chunks: chunks.len() as u32,
                                complete: false,
                                symbols: defs,
                                lines: Some(lines),
                            },
                        ));
                        chunks_all.extend(chunks);
                    }
                }
            }
            for (ns, paths) in deletes {
                if let Ok(ns) = Namespace::new(&ns) {
                    self.store.delete_paths(&ns, &paths)?;
                    self.restore_overlay(&ns, &paths)?;
                }
            }
            let keys: Vec<Vec<u8>> = chunks_all
                .iter()
                .map(|c| cache::cache_key(&model_id, &c.content_hash))
                .collect();
            let cached = if self.embedder.is_some() {
                cache::lookup(self.kv.as_ref(), &keys, dim)?
            } else {
                vec![None; keys.len()]
            };
            // What the transformer still has to embed; the first pass stands in meanwhile.
            let texts: Vec<Option<String>> = cached
                .iter()
                .zip(&chunks_all)
                .map(|(d, c)| d.is_none().then(|| c.embedding_text()))
                .collect();
            let first = self
                .embedder
                .as_ref()
                .and_then(|e| e.first_pass())
                .filter(|_| self.cfg.embed.first_pass);
            let standins = match first {
                Some(fp) => {
                    let t = Instant::now();
                    let v = first_pass_vectors(fp, &texts);
                    stats.first_pass_ms += t.elapsed().as_millis() as u64;
                    v
                }
                None => vec![None; texts.len()],
            };
            let mut per_ns: HashMap<Namespace, Vec<StorePoint>> = HashMap::new();
            let mut waiting: HashMap<&str, usize> = HashMap::new();
            for ((((c, key), dense), text), standin) in chunks_all
                .iter()
                .zip(keys)
                .zip(cached)
                .zip(texts)
                .zip(standins)
            {
                let id = c.point_id();
                let mut payload = payload(c);
                let dense = match (dense, text) {
                    (Some(d), _) => {
                        stats.cache_hits += 1;
                        Some(d)
                    }
                    (None, text) => {
                        *waiting.entry(c.path.as_str()).or_default() += 1;
                        pending.push(Pending {
                            ns: c.namespace.clone(),
                            id,
                            path: c.path.clone(),
                            key,
                            text: text.unwrap_or_default(),
                        });
                        if standin.is_some() {
                            stats.chunks_first_pass += 1;
                            payload.insert(STATIC_FLAG.into(), Value::Bool(true));
                        }
                        standin
                    }
                };
                per_ns
                    .entry(c.namespace.clone())
                    .or_default()
                    .push(StorePoint {
                        id,
                        dense,
                        sparse: document_vector(&c.path, c.symbol.as_deref(), &c.content),
                        payload,
                    });
            }
            for (ns, points) in per_ns {
                stats.chunks_upserted += points.len();
                self.store.upsert(&ns, points)?;
            }
            for (path, mut entry) in new_entries {
                let w = waiting.get(path.as_str()).copied().unwrap_or(0);
                entry.complete = w == 0;
                if w > 0 {
                    remaining.insert(path.clone(), (entry.clone(), w));
                }
                stats.files_indexed += 1;
                journal.entries.push((path, Some(entry)));
            }
            done += batch.len();
            opts.progress.event(IndexEvent::Lexical {
                done,
                total: changed.len(),
            });
            self.maybe_checkpoint(&mut journal, false)?;
        }
        self.maybe_checkpoint(&mut journal, true)?;
        stats.lexical_ready_ms = started.elapsed().as_millis() as u64;

        // Phase 2: dense (the model replaces the first-pass vectors), unless turned off.
        if let Some(embedder) = self.embedder.as_ref().filter(|_| self.cfg.embed.refine) {
            self.embed_pending(
                embedder.as_ref(),
                pending,
                &mut remaining,
                &mut journal,
                &mut stats,
                &opts,
            )?;
            if stats.cancelled {
                return self.finish_cancelled(journal, stats, started);
            }
        }
        self.maybe_checkpoint(&mut journal, true)?;
        if stats.files_deleted > 0 || !changed.is_empty() {
            stats.optimize_ms = self.optimize(opts.cancel);
        }

        if stats.files_deleted > 0 || !changed.is_empty() {
            // A moved file takes the memories pinned to its symbols along.
            if let Err(e) = self.relocate_memories() {
                tracing::warn!(error = %e, "memories of moved symbols were not moved; the next run retries");
            }
        }
        stats.skipped = skipped.into_iter().take(MAX_SKIPPED_LISTED).collect();
        stats.files_skipped = stats.files_skipped.max(stats.skipped.len());
        stats.points_total = self.total_points()?;
        stats.elapsed_ms = started.elapsed().as_millis() as u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.kv.write(vec![
            manifest::meta_op("last_run", &stats),
            manifest::meta_op("indexed_at", &now),
            manifest::meta_op("last_commit", &git_head(&self.root)),
        ])?;
        opts.progress.event(IndexEvent::Done {
            stats: stats.clone(),
        });
        Ok(stats)
    }

    /// After a run's writes, in a namespace of at least [`HNSW_MIN_POINTS`] points: the
    /// embedded store builds the HNSW graph of every segment past its indexing threshold and
    /// merges or vacuums small and deleted-heavy segments. Below that size brute force is
    /// fast (p50 1.4 ms at 20k points, 7.8 ms at 100k; 1.7 ms with HNSW at 100k: the
    /// `bench_points` test in codemem-store), and the build is not worth its CPU (~25 s at
    /// 20k, minutes at 100k). Searches go on meanwhile; a failure is logged, never fatal
    /// (search stays correct, only slower). A server store optimizes by itself.
    /// Returns the time spent.
    fn optimize(&self, cancel: &AtomicBool) -> u64 {
        let t = Instant::now();
        for ns in self.cfg.index_namespaces() {
            // A cancelled run (closing, stopping, another run asked for) skips the rest.
            if cancel.load(Ordering::Relaxed)
                || self.store.count(&ns).unwrap_or(0) < HNSW_MIN_POINTS
            {
                continue;
            }
            if let Err(e) = self.store.optimize(&ns) {
                tracing::warn!(namespace = %ns, error = %e, "optimizing the vector index failed; dense search stays correct but slower");
            }
        }
        let ms = t.elapsed().as_millis() as u64;
        tracing::debug!(ms, "vector index optimized");
        ms
    }

    fn total_points(&self) -> Result<u64> {
        let mut n = 0;
        for ns in self.cfg.index_namespaces() {
            match self.store.count(&ns) {
                Ok(c) => n += c,
                // A vector server that is down does not fail the run: its writes wait in the
                // outbox, and the count is only a statistic.
                Err(codemem_store::StoreError::Unavailable { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    fn finish_cancelled(
        &self,
        mut journal: Journal,
        mut stats: IndexStats,
        started: Instant,
    ) -> Result<IndexStats> {
        self.maybe_checkpoint(&mut journal, true)?;
        stats.cancelled = true;
        stats.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(stats)
    }

    /// Reads, decodes and chunks one file. Never fails: problems become `Skip` reasons.
    fn prepare(&self, f: &WalkedFile, old: Option<&FileEntry>) -> Prepared {
        let bytes = match std::fs::read(&f.abs) {
            Ok(b) => b,
            Err(e) => return Prepared::Skip(format!("cannot read: {e}")),
        };
        if bytes.len() as u64 > self.cfg.index.max_file_bytes {
            return Prepared::Skip("grew over index.max_file_bytes while indexing".into());
        }
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if let Some(e) = old {
            if e.complete && e.hash == hash {
                return Prepared::Touch;
            }
        }
        let text = match walk::decode_text(&bytes) {
            Ok(t) => t,
            Err(reason) => return Prepared::Skip(reason.into()),
        };
        if walk::is_generated(&text) {
            return Prepared::Skip("generated file (marked @generated / DO NOT EDIT)".into());
        }
        if let Some(why) = walk::minified(&text, f.language) {
            return Prepared::Skip(format!("minified ({why})"));
        }
        let lines = walk::line_count(&text);
        let (chunks, defs) = self.chunk_text(&f.rel, f.language, &text);
        Prepared::Chunks(chunks, defs, hash, lines)
    }

    /// Chunks of one file's text, routed to its namespace, and its definitions (also used
    /// for unsaved buffers).
    pub(crate) fn chunk_text(
        &self,
        rel: &str,
        language: codemem_core::Language,
        text: &str,
    ) -> (Vec<Chunk>, Vec<SymbolDef>) {
        let opts = ChunkOptions {
            max_lines: self.cfg.index.max_chunk_lines,
            min_lines: self.cfg.index.min_chunk_lines,
        };
        let ns = self.router.route(rel, language);
        let (drafts, defs) = chunk_file_with_definitions(language, text, &opts);
        let chunks = drafts
            .into_iter()
            .filter(|d| !d.content.trim().is_empty())
            .map(|d| {
                let content_hash = blake3::hash(
                    codemem_core::embedding_text(rel, d.kind, d.symbol.as_deref(), &d.content)
                        .as_bytes(),
                )
                .to_hex()
                .to_string();
                Chunk {
                    path: rel.to_string(),
                    namespace: ns.clone(),
                    language,
                    symbol: d.symbol,
                    kind: d.kind,
                    start_line: d.start_line,
                    end_line: d.end_line,
                    content: d.content,
                    content_hash,
                }
            })
            .collect();
        (chunks, defs.into_iter().map(SymbolDef::from).collect())
    }

    fn embed_pending(
        &self,
        embedder: &dyn codemem_embed::Embedder,
        pending: Vec<Pending>,
        remaining: &mut HashMap<String, (FileEntry, usize)>,
        journal: &mut Journal,
        stats: &mut IndexStats,
        opts: &IndexOptions<'_>,
    ) -> Result<()> {
        // The same text (license headers, copies) is embedded once.
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut targets: Targets = HashMap::new();
        for p in pending {
            let slot = targets.entry(p.key.clone()).or_insert_with(|| {
                order.push(p.key.clone());
                (p.text, Vec::new())
            });
            slot.1.push((p.ns, p.id, p.path));
        }
        schedule(&mut order, &targets, self.cfg.embed.batch_size);
        let total = order.len();
        let batch_size = self.cfg.embed.batch_size;
        let batches: Vec<&[Vec<u8>]> = order.chunks(batch_size).collect();
        let (tx, rx) =
            crossbeam_channel::bounded::<(usize, std::result::Result<Vec<Vec<f32>>, String>, u64)>(
                2,
            );
        let mut done = 0;
        let mut first_error: Option<ServiceError> = None;
        std::thread::scope(|s| {
            let targets_ref = &targets;
            let batches_ref = &batches;
            s.spawn(move || {
                for (i, keys) in batches_ref.iter().enumerate() {
                    if opts.cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let texts: Vec<String> =
                        keys.iter().map(|k| targets_ref[k].0.clone()).collect();
                    let t = Instant::now();
                    let out = embedder.embed(&texts).map_err(|e| e.to_string());
                    if tx.send((i, out, t.elapsed().as_millis() as u64)).is_err() {
                        break;
                    }
                }
            });
            for (i, out, ms) in rx.iter() {
                stats.embed_ms += ms;
                let keys = batches[i];
                let vectors = match out {
                    Ok(v) if v.len() == keys.len() => v,
                    Ok(_) | Err(_) => {
                        // Leave these files incomplete; the next run retries them.
                        stats.embed_errors += keys.len();
                        tracing::warn!(batch = i, "embedding batch failed; its files stay pending");
                        continue;
                    }
                };
                let mut per_ns: HashMap<Namespace, Vec<(u64, Vec<f32>)>> = HashMap::new();
                for (key, v) in keys.iter().zip(vectors) {
                    journal.ops.push(cache::put_op(key.clone(), &v));
                    for (ns, id, path) in &targets[key].1 {
                        per_ns.entry(ns.clone()).or_default().push((*id, v.clone()));
                        if let Some((entry, left)) = remaining.get_mut(path) {
                            *left -= 1;
                            if *left == 0 {
                                entry.complete = true;
                                journal.entries.push((path.clone(), Some(entry.clone())));
                            }
                        }
                    }
                }
                for (ns, vs) in per_ns {
                    if let Err(e) = self.store.set_dense(&ns, vs) {
                        first_error.get_or_insert(e.into());
                    }
                }
                stats.chunks_embedded += keys.len();
                done += keys.len();
                opts.progress.event(IndexEvent::Embed { done, total });
                if first_error.is_none() {
                    if let Err(e) = self.maybe_checkpoint(journal, false) {
                        first_error = Some(e);
                    }
                }
                if first_error.is_some() {
                    break;
                }
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        if opts.cancel.load(Ordering::Relaxed) && done < total {
            stats.cancelled = true;
        }
        Ok(())
    }

    /// Flushes the store, then commits journaled manifest/cache writes (in that order).
    fn maybe_checkpoint(&self, j: &mut Journal, force: bool) -> Result<()> {
        let due = force || j.last.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
        if !due || (j.ops.is_empty() && j.entries.is_empty()) {
            return Ok(());
        }
        self.store.flush()?;
        let mut ops = std::mem::take(&mut j.ops);
        let entries = std::mem::take(&mut j.entries);
        for (path, e) in &entries {
            ops.push(match e {
                Some(e) => manifest::put_op(path, e),
                None => manifest::delete_op(path),
            });
        }
        self.kv.write(ops)?;
        let paths: Vec<String> = match &self.team {
            Some(_) => entries.iter().map(|(p, _)| p.clone()).collect(),
            None => Vec::new(),
        };
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        for (path, e) in entries {
            match e {
                Some(e) => files.insert(path, e),
                None => files.remove(&path),
            };
        }
        drop(files);
        if let (Some(t), false) = (&self.team, paths.is_empty()) {
            t.wrote_manifest();
            t.publish(crate::team::ChangeEvent {
                kind: "index".into(),
                paths,
                ..Default::default()
            });
        }
        j.last = Some(Instant::now());
        Ok(())
    }
}

/// First-pass vectors of the texts that have one to compute (`None` entries are skipped), on
/// two threads; an all-zero vector (no known token) is no vector.
fn first_pass_vectors(
    fp: &dyn codemem_embed::Embedder,
    texts: &[Option<String>],
) -> Vec<Option<Vec<f32>>> {
    let run = |part: &[Option<String>]| -> Vec<Option<Vec<f32>>> {
        let todo: Vec<String> = part.iter().flatten().cloned().collect();
        let mut out = match fp.embed(&todo) {
            Ok(v) if v.len() == todo.len() => v.into_iter(),
            Ok(_) | Err(_) => {
                tracing::warn!("first-pass vectors failed; these chunks wait for the model");
                Vec::new().into_iter()
            }
        };
        part.iter()
            .map(|t| {
                t.as_ref()?;
                out.next().filter(|v| v.iter().any(|x| *x != 0.0))
            })
            .collect()
    };
    let (a, b) = texts.split_at(texts.len() / 2);
    std::thread::scope(|s| {
        let h = s.spawn(|| run(a));
        let mut rest = run(b);
        let mut out = h.join().unwrap_or_else(|_| vec![None; a.len()]);
        out.append(&mut rest);
        out
    })
}

/// Cache key → (text to embed, the points that carry it: namespace, id, path).
type Targets = HashMap<Vec<u8>, (String, Vec<(Namespace, u64, String)>)>;

/// Chunks per window in which [`schedule`] sorts by length, in batches.
const LENGTH_WINDOW_BATCHES: usize = 16;

/// The order texts are embedded in: code first, then tests, architecture notes and docs, so
/// semantic search over the code is complete first; inside a namespace, files keep the walk's
/// order (their chunks stay together, so files complete early). Then, within windows of
/// [`LENGTH_WINDOW_BATCHES`] batches, texts are sorted by length, so a batch pads to a
/// similar length instead of to its longest member (compute grows with the padded length).
fn schedule(order: &mut [Vec<u8>], targets: &Targets, batch_size: usize) {
    let rank = |k: &Vec<u8>| {
        targets[k]
            .1
            .iter()
            .map(|(ns, _, _)| namespace_rank(ns.as_str()))
            .min()
            .unwrap_or(u8::MAX)
    };
    order.sort_by_key(&rank);
    for w in order.chunks_mut(batch_size.max(1) * LENGTH_WINDOW_BATCHES) {
        w.sort_by_key(|k| (rank(k), targets[k].0.len()));
    }
}

fn namespace_rank(ns: &str) -> u8 {
    match ns {
        "coding" => 0,
        "testing" => 1,
        "architecture" => 2,
        "documentation" => 3,
        _ => 4,
    }
}

pub(crate) fn payload(c: &Chunk) -> Map<String, Value> {
    let leaf = c
        .symbol
        .as_deref()
        .map(|s| codemem_core::lexical::symbol_leaf(s).to_lowercase());
    let v = json!({
        "path": c.path,
        "namespace": c.namespace.as_str(),
        "language": c.language.as_str(),
        "symbol": c.symbol,
        "symbol_lc": leaf,
        "kind": c.kind.as_str(),
        "start_line": c.start_line,
        "end_line": c.end_line,
        "content": c.content,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_embedded_first_and_batches_hold_similar_lengths() {
        let ns = |n: &str| Namespace::new(n).unwrap();
        let mut targets: Targets = HashMap::new();
        let mut order = Vec::new();
        // (key, namespace, text length), in walk order.
        let rows = [
            ("doc-a", "documentation", 10),
            ("code-long", "coding", 900),
            ("test-a", "testing", 50),
            ("code-short", "coding", 20),
            ("code-mid", "coding", 300),
            ("doc-b", "documentation", 5),
        ];
        for (i, (k, n, len)) in rows.iter().enumerate() {
            order.push(k.as_bytes().to_vec());
            targets.insert(
                k.as_bytes().to_vec(),
                (
                    "x".repeat(*len),
                    vec![(ns(n), i as u64, format!("{k}.txt"))],
                ),
            );
        }
        let names = |o: &[Vec<u8>]| -> Vec<String> {
            o.iter()
                .map(|k| String::from_utf8(k.clone()).unwrap())
                .collect()
        };
        // One window covers everything (batch 1 × 16 ≥ 6): namespaces first, then length.
        let mut one = order.clone();
        schedule(&mut one, &targets, 1);
        assert_eq!(
            names(&one),
            [
                "code-short",
                "code-mid",
                "code-long",
                "test-a",
                "doc-b",
                "doc-a"
            ]
        );
        // A text shared by code and docs counts as code.
        targets
            .get_mut(b"doc-a".as_slice())
            .unwrap()
            .1
            .push((ns("coding"), 9, "c.rs".into()));
        let mut shared = order.clone();
        schedule(&mut shared, &targets, 1);
        assert_eq!(names(&shared)[0], "doc-a");
    }
}
