//! Memories: notes people and agents write on purpose (`remember`), optionally pinned to a
//! file and symbol, found again by `recall` and shown where the code is.
//!
//! The KV store is the record: `remember` returns only after the memory is committed there,
//! so it survives kill -9. The vector store holds a searchable copy (point flagged `memory`,
//! path `memory:<id>` so re-indexing the pinned file never deletes it); the copy is
//! reconciled with the record when the project opens.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use codemem_core::lexical::{document_vector, symbol_leaf};
use codemem_core::{Hit, Namespace, Query, SearchMode};
use codemem_kv::{Table, WriteOp};
use codemem_store::{SearchFilter, StorePoint};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::cache;
use crate::error::{Result, ServiceError};
use crate::project::Project;

pub const MAX_MEMORY_BYTES: usize = 16 * 1024;
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: String,
    pub text: String,
    pub namespace: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Absolute root of the project the memory belongs to.
    #[serde(default)]
    pub root: Option<String>,
    /// Workspace-relative file it is pinned to.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub symbol: Option<String>,
    /// 1-based line it is pinned to.
    #[serde(default)]
    pub line: Option<u32>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    #[serde(default)]
    pub author: Option<String>,
}

/// A memory to write. `path` must already be workspace-relative (the workspace sandboxes it).
#[derive(Debug, Clone, Default)]
pub struct NewMemory {
    pub text: String,
    pub namespace: String,
    pub tags: Vec<String>,
    pub path: Option<String>,
    pub symbol: Option<String>,
    pub line: Option<u32>,
    pub author: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RecallQuery {
    pub text: String,
    /// Empty: every namespace.
    pub namespaces: Vec<Namespace>,
    /// Non-empty: only memories with at least one of these tags (docs are left out).
    pub tags: Vec<String>,
    pub k: usize,
    /// Fit the answer's texts to this many tokens (200-100000; the service's estimate).
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallHit {
    pub score: f32,
    /// Set for a memory; `None` for a documentation chunk.
    pub memory: Option<Memory>,
    pub hit: Hit,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallResponse {
    pub hits: Vec<RecallHit>,
    /// Hits left out to fit `max_tokens`.
    pub omitted_hits: usize,
}

/// The OS user (`$USER`, else `$LOGNAME`), the author of a memory no front end named.
fn os_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|u| u.trim().to_string())
        .find(|u| !u.is_empty())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn new_id(text: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    h.update(&std::process::id().to_le_bytes());
    h.update(&SEQ.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(text.as_bytes());
    format!("mem_{}", &h.finalize().to_hex()[..16])
}

fn point_id(memory_id: &str) -> u64 {
    let b = blake3::hash(format!("memory\0{memory_id}").as_bytes());
    u64::from_le_bytes(b.as_bytes()[..8].try_into().expect("8 bytes")) >> 1
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidInput(msg.into())
}

pub fn validate_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "at most {MAX_TAGS} tags, got {}",
            tags.len()
        )));
    }
    for t in tags {
        let ok = !t.is_empty()
            && t.len() <= MAX_TAG_LEN
            && t.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
        if !ok {
            return Err(invalid(format!(
                "tag {t:?} is not valid: use 1-{MAX_TAG_LEN} letters, digits, or - _ . : /"
            )));
        }
    }
    Ok(())
}

impl Project {
    /// Writes a memory; durable when this returns.
    pub fn remember(&self, m: NewMemory) -> Result<Memory> {
        let text = m.text.trim();
        if text.is_empty() {
            return Err(invalid(
                "the memory text is empty; say what should be remembered",
            ));
        }
        if text.len() > MAX_MEMORY_BYTES {
            return Err(invalid(format!(
                "the memory text is {} bytes; the limit is {MAX_MEMORY_BYTES} — summarise it or split it",
                text.len()
            )));
        }
        let ns = self.cfg.namespace(&m.namespace)?;
        validate_tags(&m.tags)?;
        if m.symbol.as_ref().is_some_and(|s| s.len() > 512) {
            return Err(invalid("symbol names are limited to 512 bytes"));
        }
        let memory = Memory {
            id: new_id(text),
            text: text.to_string(),
            namespace: ns.to_string(),
            tags: m.tags,
            root: Some(self.root.display().to_string()),
            path: m.path,
            symbol: m.symbol,
            line: m.line,
            created_at: now(),
            // Who wrote it: the front end's name for the writer (an MCP token), else the OS user.
            author: m.author.or_else(os_user),
        };
        self.kv.write(vec![WriteOp::Put {
            table: Table::Memories,
            key: memory.id.as_bytes().to_vec(),
            value: serde_json::to_vec(&memory).expect("Memory serialises"),
        }])?;
        self.memories
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(memory.id.clone(), memory.clone());
        self.publish_memories(vec![memory.id.clone()]);
        // The record is durable; a failure below is repaired when the project next opens.
        if let Err(e) = self.index_memories(std::slice::from_ref(&memory), true) {
            tracing::warn!(id = memory.id, error = %e, "memory stored but not yet searchable");
        }
        Ok(memory)
    }

    /// Deletes a memory. `Ok(false)`: no memory has that id.
    pub fn forget(&self, id: &str) -> Result<bool> {
        let Some(m) = self
            .memories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
        else {
            return Ok(false);
        };
        self.kv.write(vec![WriteOp::Delete {
            table: Table::Memories,
            key: id.as_bytes().to_vec(),
        }])?;
        self.memories
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.publish_memories(vec![id.to_string()]);
        if let Ok(ns) = Namespace::new(&m.namespace) {
            self.store.delete_ids(&ns, &[point_id(id)])?;
        }
        Ok(true)
    }

    pub fn memory(&self, id: &str) -> Option<Memory> {
        self.memories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Memories pinned to the workspace-relative `rel`.
    pub fn memories_for(&self, rel: &str) -> Vec<Memory> {
        let mut v: Vec<Memory> = self
            .memories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.path.as_deref() == Some(rel))
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        v
    }

    pub fn memories_in(&self, namespace: &str) -> usize {
        self.memories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.namespace == namespace)
            .count()
    }

    pub fn memory_count(&self) -> usize {
        self.memories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Memories (and, without tags, documentation) relevant to a question.
    pub fn recall(&self, q: &RecallQuery) -> Result<RecallResponse> {
        validate_tags(&q.tags)?;
        let all = self.cfg.all_namespaces();
        let namespaces = if q.namespaces.is_empty() {
            all.clone()
        } else {
            self.resolve_namespaces(&q.namespaces)?
        };
        let query = Query {
            namespaces: namespaces.clone(),
            k: q.k,
            mode: SearchMode::Hybrid,
            ..Query::new(q.text.clone())
        };
        let mem_filter = SearchFilter {
            memory: Some(true),
            tags: (!q.tags.is_empty()).then(|| q.tags.clone()),
            ..Default::default()
        };
        let mut hits: Vec<RecallHit> = self
            .search_with(&query, mem_filter)?
            .hits
            .into_iter()
            .map(|h| RecallHit {
                score: h.score,
                memory: h.memory_id.as_deref().and_then(|id| self.memory(id)),
                hit: h,
            })
            .collect();
        let docs: Vec<Namespace> = namespaces
            .into_iter()
            .filter(|n| matches!(n.as_str(), "documentation" | "architecture"))
            .collect();
        if q.tags.is_empty() && !docs.is_empty() {
            let dq = Query {
                namespaces: docs,
                ..query
            };
            let doc_hits = self
                .search_with(
                    &dq,
                    SearchFilter {
                        memory: Some(false),
                        ..Default::default()
                    },
                )?
                .hits;
            hits.extend(doc_hits.into_iter().map(|h| RecallHit {
                score: h.score,
                memory: None,
                hit: h,
            }));
        }
        // Notes written on purpose win ties with documentation.
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| b.memory.is_some().cmp(&a.memory.is_some()))
        });
        hits.truncate(q.k);
        Ok(RecallResponse {
            hits,
            omitted_hits: 0,
        })
    }

    /// Loads the memory records and makes the vector store agree with them.
    pub(crate) fn load_memories(&self) -> Result<()> {
        let mut map = HashMap::new();
        for (k, v) in self.kv.scan(Table::Memories)? {
            match serde_json::from_slice::<Memory>(&v) {
                Ok(m) => {
                    map.insert(m.id.clone(), m);
                }
                Err(e) => {
                    tracing::warn!(key = %String::from_utf8_lossy(&k), error = %e, "unreadable memory record skipped")
                }
            }
        }
        let mut present: HashSet<u64> = HashSet::new();
        let wanted: HashMap<u64, &Memory> = map.values().map(|m| (point_id(&m.id), m)).collect();
        for ns in self.cfg.all_namespaces() {
            let points = match self.store.scroll(
                &ns,
                &SearchFilter {
                    memory: Some(true),
                    ..Default::default()
                },
                1_000_000,
            ) {
                Ok(p) => p,
                // A vector server that is down must not keep the project closed: the records
                // are here; their searchable copies are checked the next time it opens.
                Err(codemem_store::StoreError::Unavailable { .. }) => {
                    tracing::warn!(
                        "vector server unavailable; memories are not reconciled with it this time"
                    );
                    *self.memories.write().unwrap_or_else(|e| e.into_inner()) = map;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let stray: Vec<u64> = points
                .iter()
                .filter(|p| wanted.get(&p.id).is_none_or(|m| m.namespace != ns.as_str()))
                .map(|p| p.id)
                .collect();
            if !stray.is_empty() {
                self.store.delete_ids(&ns, &stray)?;
            }
            present.extend(
                points
                    .iter()
                    .filter(|p| p.payload.contains_key("memory_id"))
                    .map(|p| p.id),
            );
        }
        let missing: Vec<Memory> = map
            .values()
            .filter(|m| !present.contains(&point_id(&m.id)))
            .cloned()
            .collect();
        *self.memories.write().unwrap_or_else(|e| e.into_inner()) = map;
        if !missing.is_empty() {
            tracing::info!(
                count = missing.len(),
                "re-indexing memories missing from the vector store"
            );
            self.index_memories(&missing, false)?;
        }
        Ok(())
    }

    /// Memories pinned to a symbol in a file that is gone follow the symbol when exactly one
    /// definition of it exists now (the file was moved or renamed). Returns how many moved.
    pub(crate) fn relocate_memories(&self) -> Result<usize> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner()).clone();
        let stranded: Vec<Memory> = self
            .memories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| {
                m.symbol.is_some() && m.path.as_ref().is_some_and(|p| !files.contains_key(p))
            })
            .cloned()
            .collect();
        let mut moved = Vec::new();
        for mut m in stranded {
            let Some(symbol) = m.symbol.clone() else {
                continue;
            };
            let leaf = codemem_core::lexical::symbol_leaf(&symbol);
            // The new home routes to the namespace the old path did (a moved file, not an
            // unrelated definition of the same name elsewhere).
            let old_ns = m.path.as_deref().map(|p| {
                let lang =
                    codemem_core::Language::detect(p).unwrap_or(codemem_core::Language::Text);
                self.router.route(p, lang).to_string()
            });
            let homes: Vec<&String> = files
                .iter()
                .filter(|(_, e)| old_ns.as_deref() == Some(e.namespace.as_str()))
                .filter(|(_, e)| {
                    // A qualified name (`Class.method`) must match whole; a plain one may be
                    // the leaf of a qualified definition.
                    let norm = |s: &str| s.replace("::", ".").replace('#', ".");
                    e.symbols.iter().any(|s| {
                        norm(&s.name) == norm(&symbol)
                            || (leaf == symbol
                                && codemem_core::lexical::symbol_leaf(&s.name) == leaf)
                    })
                })
                .map(|(p, _)| p)
                .collect();
            if let [home] = homes.as_slice() {
                tracing::info!(id = m.id, from = ?m.path, to = %home, "memory follows its symbol");
                m.path = Some((*home).clone());
                m.line = None;
                moved.push(m);
            }
        }
        if moved.is_empty() {
            return Ok(0);
        }
        self.kv.write(
            moved
                .iter()
                .map(|m| WriteOp::Put {
                    table: Table::Memories,
                    key: m.id.as_bytes().to_vec(),
                    value: serde_json::to_vec(m).expect("Memory serialises"),
                })
                .collect(),
        )?;
        {
            let mut all = self.memories.write().unwrap_or_else(|e| e.into_inner());
            for m in &moved {
                all.insert(m.id.clone(), m.clone());
            }
        }
        self.index_memories(&moved, false)?;
        self.publish_memories(moved.iter().map(|m| m.id.clone()).collect());
        Ok(moved.len())
    }

    /// Team mode: tells the other processes which memories changed.
    fn publish_memories(&self, ids: Vec<String>) {
        if let Some(t) = &self.team {
            t.publish(crate::team::ChangeEvent {
                kind: "memory".into(),
                ids,
                ..Default::default()
            });
        }
    }

    /// Writes searchable copies of memories (dense from the cache, or the model when `embed`).
    fn index_memories(&self, memories: &[Memory], embed: bool) -> Result<()> {
        let model_id = self
            .embedder
            .as_ref()
            .map(|e| e.model_id().to_string())
            .unwrap_or_default();
        for m in memories {
            let Ok(ns) = Namespace::new(&m.namespace) else {
                continue;
            };
            let key = cache::cache_key(&model_id, &blake3::hash(m.text.as_bytes()).to_hex());
            let mut dense = match &self.embedder {
                Some(e) => cache::lookup(self.kv.as_ref(), std::slice::from_ref(&key), e.dim())?
                    .pop()
                    .flatten(),
                None => None,
            };
            if dense.is_none() {
                if let Some(e) = self.embedder.as_ref().filter(|_| embed) {
                    let v = e
                        .embed(std::slice::from_ref(&m.text))?
                        .pop()
                        .unwrap_or_default();
                    self.kv.write(vec![cache::put_op(key, &v)])?;
                    dense = Some(v);
                }
            }
            let point = StorePoint {
                id: point_id(&m.id),
                dense,
                sparse: document_vector(
                    m.path.as_deref().unwrap_or(""),
                    m.symbol.as_deref(),
                    &m.text,
                ),
                payload: memory_payload(m),
            };
            self.store.upsert(&ns, vec![point])?;
        }
        Ok(())
    }
}

fn memory_payload(m: &Memory) -> Map<String, Value> {
    let v = json!({
        "path": format!("memory:{}", m.id),
        "namespace": m.namespace,
        "language": "text",
        "symbol": m.symbol,
        "symbol_lc": m.symbol.as_deref().map(|s| symbol_leaf(s).to_lowercase()),
        "kind": "memory",
        "start_line": m.line.unwrap_or(0),
        "end_line": m.line.unwrap_or(0),
        "content": m.text,
        "memory": true,
        "memory_id": m.id,
        "tags": m.tags,
        "pinned_path": m.path,
    });
    match v {
        Value::Object(map) => map,
        _ => unreachable!("json! object"),
    }
}
