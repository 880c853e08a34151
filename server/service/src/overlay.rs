//! Unsaved editor buffers, searchable without touching disk.
//!
//! A buffer that differs from the indexed file is chunked into the same shards as the file,
//! under separate point ids and flagged `unsaved`; search then hides the file's disk chunks.
//! Lexical vectors are written at once; dense vectors follow (cache first, then the model).
//! The indexer deletes points by path, so it re-applies overlays right after every such delete.
//! Overlay points left behind by a crash are purged when the project opens.

use std::collections::{HashMap, HashSet};

use codemem_core::lexical::document_vector;
use codemem_core::{Chunk, Language, Namespace};
use codemem_kv::WriteOp;
use codemem_store::{SearchFilter, StorePoint};
use serde_json::Value;

use crate::cache;
use crate::error::Result;
use crate::indexer::payload;
use crate::project::Project;
use crate::symbols::SymbolDef;

/// Keeps unsaved-buffer ids apart from the ids of the same chunk on disk.
const UNSAVED_SALT: u64 = 0x2545_f491_4f6c_dd1d;

pub(crate) struct OverlayEntry {
    pub namespace: Namespace,
    pub language: Language,
    /// blake3 of the buffer's bytes (compared with the manifest's file hash).
    pub hash: String,
    pub chunks: Vec<Chunk>,
    pub points: Vec<StorePoint>,
    pub symbols: Vec<SymbolDef>,
    /// The buffer's text (references are found in it instead of the file on disk).
    pub text: String,
}

/// What `set_overlay` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayChange {
    /// The buffer is indexed as unsaved.
    Indexed { chunks: usize },
    /// The buffer equals the indexed file (or is not indexable): no overlay.
    Cleared,
}

/// In team mode the salt also holds the owner, so two processes with the same unsaved text
/// never overwrite (or delete) each other's points in the shared store.
fn unsaved_id(c: &Chunk, owner: Option<&str>) -> u64 {
    let owner_salt = owner.map_or(0, |o| {
        u64::from_le_bytes(
            blake3::hash(o.as_bytes()).as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        )
    });
    (c.point_id() ^ UNSAVED_SALT ^ owner_salt) & (u64::MAX >> 1)
}

impl Project {
    /// Indexes `text` as the unsaved content of `rel` (lexical now; call `embed_overlay` for dense).
    pub fn set_overlay(&self, rel: &str, text: &str) -> Result<OverlayChange> {
        let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
        let on_disk = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(rel)
            .map(|e| e.hash.clone());
        let language = Language::detect(rel);
        let too_big = text.len() as u64 > self.cfg.index.max_file_bytes;
        if on_disk.as_deref() == Some(hash.as_str()) || too_big || language.is_none() {
            if too_big {
                tracing::info!(
                    path = rel,
                    bytes = text.len(),
                    "unsaved buffer over index.max_file_bytes; not indexed"
                );
            }
            self.clear_overlay(rel)?;
            return Ok(OverlayChange::Cleared);
        }
        let language = language.unwrap_or(Language::Text);
        if self
            .overlay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(rel)
            .is_some_and(|o| o.hash == hash)
        {
            let n = self
                .overlay
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(rel)
                .map_or(0, |o| o.chunks.len());
            return Ok(OverlayChange::Indexed { chunks: n });
        }
        let (chunks, symbols) = self.chunk_text(rel, language, text);
        let namespace = chunks
            .first()
            .map(|c| c.namespace.clone())
            .unwrap_or_else(|| self.router.route(rel, language));
        let model_id = self
            .embedder
            .as_ref()
            .map(|e| e.model_id().to_string())
            .unwrap_or_default();
        let keys: Vec<Vec<u8>> = chunks
            .iter()
            .map(|c| cache::cache_key(&model_id, &c.content_hash))
            .collect();
        let cached = match &self.embedder {
            Some(e) => cache::lookup(self.kv.as_ref(), &keys, e.dim())?,
            None => vec![None; keys.len()],
        };
        let points: Vec<StorePoint> = chunks
            .iter()
            .zip(cached)
            .map(|(c, dense)| {
                let mut payload = payload(c);
                payload.insert("unsaved".into(), Value::Bool(true));
                if let Some(owner) = self.team_owner() {
                    payload.insert("owner".into(), Value::String(owner.to_string()));
                }
                StorePoint {
                    id: unsaved_id(c, self.team_owner()),
                    dense,
                    sparse: document_vector(&c.path, c.symbol.as_deref(), &c.content),
                    payload,
                }
            })
            .collect();
        let entry = OverlayEntry {
            namespace,
            language,
            hash,
            symbols,
            chunks,
            points,
            text: text.to_string(),
        };
        let n = entry.chunks.len();
        // Hold the lock across the store writes so a concurrent restore sees old or new, never half.
        let mut overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = overlay.remove(rel) {
            let ids: Vec<u64> = old.points.iter().map(|p| p.id).collect();
            self.store.delete_ids(&old.namespace, &ids)?;
        }
        self.store.upsert(&entry.namespace, entry.points.clone())?;
        overlay.insert(rel.to_string(), entry);
        Ok(OverlayChange::Indexed { chunks: n })
    }

    /// Computes the dense vectors an overlay still lacks. Returns how many chunks were embedded.
    /// Skips the work if the buffer changed meanwhile (a newer `set_overlay` wins).
    pub fn embed_overlay(&self, rel: &str) -> Result<usize> {
        let Some(embedder) = &self.embedder else {
            return Ok(0);
        };
        let (hash, todo): (String, Vec<(u64, Chunk)>) = {
            let overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
            let Some(o) = overlay.get(rel) else {
                return Ok(0);
            };
            let todo = o
                .points
                .iter()
                .zip(&o.chunks)
                .filter(|(p, _)| p.dense.is_none())
                .map(|(p, c)| (p.id, c.clone()))
                .collect();
            (o.hash.clone(), todo)
        };
        if todo.is_empty() {
            return Ok(0);
        }
        let model_id = embedder.model_id().to_string();
        let mut embedded = 0;
        for batch in todo.chunks(self.cfg.embed.batch_size.max(1)) {
            let texts: Vec<String> = batch.iter().map(|(_, c)| c.embedding_text()).collect();
            let vectors = embedder.embed(&texts)?;
            let ops: Vec<WriteOp> = batch
                .iter()
                .zip(&vectors)
                .map(|((_, c), v)| cache::put_op(cache::cache_key(&model_id, &c.content_hash), v))
                .collect();
            self.kv.write(ops)?;
            let mut overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
            let Some(o) = overlay.get_mut(rel).filter(|o| o.hash == hash) else {
                return Ok(embedded);
            };
            let mut set = Vec::new();
            for ((id, _), v) in batch.iter().zip(vectors) {
                if let Some(p) = o.points.iter_mut().find(|p| p.id == *id) {
                    p.dense = Some(v.clone());
                    set.push((*id, v));
                }
            }
            self.store.set_dense(&o.namespace, set)?;
            embedded += batch.len();
        }
        Ok(embedded)
    }

    /// Removes the overlay of `rel` (the buffer was closed, or equals the file).
    pub fn clear_overlay(&self, rel: &str) -> Result<bool> {
        let mut overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        match overlay.remove(rel) {
            Some(old) => {
                let ids: Vec<u64> = old.points.iter().map(|p| p.id).collect();
                self.store.delete_ids(&old.namespace, &ids)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Re-writes overlays of `paths` after the indexer deleted those paths' points in `ns`.
    pub(crate) fn restore_overlay(&self, ns: &Namespace, paths: &[String]) -> Result<()> {
        let overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        for p in paths {
            if let Some(o) = overlay.get(p).filter(|o| &o.namespace == ns) {
                self.store.upsert(ns, o.points.clone())?;
            }
        }
        Ok(())
    }

    /// Drops overlays whose buffer now equals the indexed file (saved, then indexed).
    pub(crate) fn reconcile_overlay(&self) -> Result<Vec<String>> {
        let same: Vec<String> = {
            let overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
            let files = self.files.read().unwrap_or_else(|e| e.into_inner());
            overlay
                .iter()
                .filter(|(p, o)| files.get(*p).is_some_and(|e| e.hash == o.hash))
                .map(|(p, _)| p.clone())
                .collect()
        };
        for p in &same {
            self.clear_overlay(p)?;
        }
        Ok(same)
    }

    /// Removes unsaved points a previous process left behind (it died with buffers open).
    pub(crate) fn purge_stale_overlay(&self) -> Result<usize> {
        let mut n = 0;
        let f = SearchFilter {
            unsaved: Some(true),
            ..Default::default()
        };
        for ns in self.cfg.index_namespaces() {
            if let Some(owner) = self.team_owner() {
                // The shared store also holds other live processes' buffers: only ours go.
                let points = match self.store.scroll(&ns, &f, 100_000) {
                    Ok(p) => p,
                    Err(codemem_store::StoreError::Unavailable { .. }) => return Ok(n),
                    Err(e) => return Err(e.into()),
                };
                let ids: Vec<u64> = points
                    .into_iter()
                    .filter(|p| {
                        p.payload
                            .get("owner")
                            .and_then(Value::as_str)
                            .is_none_or(|o| o == owner)
                    })
                    .map(|p| p.id)
                    .collect();
                n += ids.len();
                self.store.delete_ids(&ns, &ids)?;
                continue;
            }
            loop {
                let ids: Vec<u64> = self
                    .store
                    .scroll(&ns, &f, 1000)?
                    .into_iter()
                    .map(|p| p.id)
                    .collect();
                if ids.is_empty() {
                    break;
                }
                n += ids.len();
                self.store.delete_ids(&ns, &ids)?;
            }
        }
        Ok(n)
    }

    pub(crate) fn overlay_paths(&self) -> HashSet<String> {
        self.overlay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// (path, namespace, (symbols, language)) of every overlay.
    pub(crate) fn overlay_symbols(&self) -> Vec<(String, String, (Vec<SymbolDef>, String))> {
        let overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        overlay
            .iter()
            .map(|(p, o)| {
                (
                    p.clone(),
                    o.namespace.to_string(),
                    (o.symbols.clone(), o.language.as_str().to_string()),
                )
            })
            .collect()
    }
}

impl Project {
    /// (path, language, text) of every unsaved buffer.
    pub(crate) fn overlay_texts(&self) -> Vec<(String, Language, String)> {
        let overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
        overlay
            .iter()
            .map(|(p, o)| (p.clone(), o.language, o.text.clone()))
            .collect()
    }
}

pub(crate) type Overlay = HashMap<String, OverlayEntry>;
