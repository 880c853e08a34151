//! Embedded backend on qdrant-edge: one `EdgeShard` per namespace in `dir/<namespace>/`.
//!
//! Threading: every `EdgeShard` method takes `&self` and the shard is `Send + Sync`; reads run
//! concurrently (each shard has its own small search pool), writes are serialised by the shard's
//! WAL mutex. The store adds a per-namespace write mutex so that `set_dense` (look up which ids
//! still exist, then update their vectors) cannot interleave with a delete of the same
//! namespace. The namespace map sits behind an `RwLock` that is only write-locked to add a
//! shard.
//!
//! Cross-process: qdrant-edge takes an exclusive, non-blocking `flock` on the shard's `wal/`
//! directory, so a second opener (another process, or a second `EdgeStore` on the same dir in
//! this process) fails with an `Open` error. The lock is taken only *after* the segments have been
//! loaded (and, if needed, repaired), so callers must hold their own lock on the data dir before
//! opening it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use codemem_core::{lexical::SparseVec, Namespace};
use qdrant_edge::{
    Condition, CountRequestBuilder, DeletePayloadOp, Distance, EdgeConfig, EdgeShard,
    EdgeSparseVectorParams, EdgeVectorParams, FieldCondition, FieldIndexOperations, Filter,
    JsonPath, Match, Modifier, NamedQuery, Payload, PayloadFieldSchema, PayloadOps,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStructPersisted,
    PointVectorsPersisted, QueryEnum, QueryRequestBuilder, RetrieveRequestBuilder, ScoringQuery,
    ScrollRequestBuilder, SparseVector, UpdateOperation, UpdateVectorsOp, VectorInternal,
    VectorOperations, VectorPersisted, VectorStructPersisted, WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value};

use crate::{
    ScoredPoint, SearchFilter, SearchVector, StoreError, StorePoint, VectorStore, DENSE_VECTOR,
    INDEXED_FIELDS, LEXICAL_VECTOR, STATIC_FLAG,
};

/// File qdrant-edge writes when it creates a shard (its constant is crate-private).
const EDGE_CONFIG_FILE: &str = "edge_config.json";

/// Points per update operation: keeps WAL records and transient memory bounded on bulk loads.
const WRITE_BATCH: usize = 512;

struct NsShard {
    shard: EdgeShard,
    /// Serialises this store's writes to the shard (see the module docs).
    write: Mutex<()>,
}

/// Threads of each shard's search pool. qdrant-edge's default is 4 × CPUs per shard (8 on 2
/// cores, 64 on 16) and a project has a shard per namespace: a search runs one query per
/// shard, and the service already searches the namespaces in parallel.
const SEARCH_THREADS: usize = 1;

/// The embedded vector store: one qdrant-edge shard per namespace under `dir`.
pub struct EdgeStore {
    dir: PathBuf,
    dim: usize,
    shards: RwLock<HashMap<Namespace, Arc<NsShard>>>,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded: Vec<String> = self.read_map().keys().map(|n| n.to_string()).collect();
        f.debug_struct("EdgeStore")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .field("loaded", &loaded)
            .finish()
    }
}

fn op_err(op: &'static str, ns: &Namespace, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Operation {
        op,
        namespace: ns.to_string(),
        reason: reason.to_string(),
    }
}

fn open_err(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl EdgeStore {
    /// Opens (creating if needed) a store in `dir` holding `dim`-dimensional dense vectors.
    ///
    /// Shards that already exist under `dir` are loaded now, so an incompatible or locked data
    /// dir fails here rather than on the first request; new namespaces get a shard lazily on
    /// their first write.
    pub fn open(dir: &Path, dim: usize) -> crate::Result<EdgeStore> {
        if dim == 0 {
            return Err(open_err(dir, "dense dimension must be positive"));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| open_err(dir, format!("cannot create directory: {e}")))?;
        let store = EdgeStore {
            dir: dir.to_path_buf(),
            dim,
            shards: RwLock::new(HashMap::new()),
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| open_err(dir, format!("cannot list directory: {e}")))?;
        let mut map = HashMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| open_err(dir, format!("cannot list directory: {e}")))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(ns) = Namespace::new(&name) else {
                continue;
            };
            let path = entry.path();
            if path.join(EDGE_CONFIG_FILE).is_file() {
                map.insert(ns, Arc::new(store.load_shard(&path)?));
            }
        }
        *store.shards.write().unwrap_or_else(PoisonError::into_inner) = map;
        Ok(store)
    }

    /// The dense dimension this store was opened with.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Namespaces that currently have a shard.
    pub fn namespaces(&self) -> Vec<Namespace> {
        let mut v: Vec<Namespace> = self.read_map().keys().cloned().collect();
        v.sort();
        v
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Namespace, Arc<NsShard>>> {
        // A panic elsewhere while holding the lock cannot leave the map half-updated (inserts are
        // single operations), so a poisoned lock is still usable.
        self.shards.read().unwrap_or_else(PoisonError::into_inner)
    }

    #[allow(deprecated)] // EdgeConfig has deprecated fields; `Default` fills them.
    fn load_config() -> EdgeConfig {
        EdgeConfig {
            max_search_threads: Some(SEARCH_THREADS),
            ..Default::default()
        }
    }

    fn config(&self) -> EdgeConfig {
        EdgeConfig::builder()
            .vector(
                DENSE_VECTOR,
                // Cold: plain chunked mmap, paged in as it is read. The default (Cached) reads
                // each shard's whole 32 MiB vector chunk into memory when the shard is loaded,
                // however few points it holds: 5 namespaces made ~160 MiB of idle RSS.
                EdgeVectorParams::builder(self.dim, Distance::Cosine)
                    .memory(qdrant_edge::Memory::Cold)
                    .build(),
            )
            .sparse_vector(
                LEXICAL_VECTOR,
                EdgeSparseVectorParams::builder()
                    .modifier(Modifier::Idf)
                    .build(),
            )
            .max_search_threads(SEARCH_THREADS)
            .build()
    }

    fn load_shard(&self, path: &Path) -> crate::Result<NsShard> {
        // Settings not given here keep the shard's saved ones; shards created before the
        // search pool was capped get the cap too.
        let shard =
            EdgeShard::load(path, Some(Self::load_config())).map_err(|e| open_err(path, e))?;
        {
            let cfg = shard.config();
            match cfg.vectors.get(DENSE_VECTOR) {
                Some(p) if p.size == self.dim && p.distance == Distance::Cosine => {}
                Some(p) => {
                    return Err(open_err(
                        path,
                        format!(
                            "shard holds {}-dimensional {:?} vectors, this store uses {}-dimensional Cosine \
                             (the embedding model changed: re-index into a fresh data dir)",
                            p.size, p.distance, self.dim
                        ),
                    ))
                }
                None => return Err(open_err(path, format!("shard has no `{DENSE_VECTOR}` vector"))),
            }
            if !cfg.sparse_vectors.contains_key(LEXICAL_VECTOR) {
                return Err(open_err(
                    path,
                    format!("shard has no `{LEXICAL_VECTOR}` sparse vector"),
                ));
            }
        }
        // Indexes added to INDEXED_FIELDS after the shard was created.
        let existing = shard.info().map_err(|e| open_err(path, e))?.payload_schema;
        for field in INDEXED_FIELDS {
            if !existing.keys().any(|k| k.to_string() == field) {
                create_keyword_index(&shard, field).map_err(|e| open_err(path, e))?;
            }
        }
        Ok(NsShard {
            shard,
            write: Mutex::new(()),
        })
    }

    fn create_shard(&self, path: &Path) -> crate::Result<NsShard> {
        let shard = EdgeShard::new(path, self.config()).map_err(|e| open_err(path, e))?;
        for field in INDEXED_FIELDS {
            create_keyword_index(&shard, field).map_err(|e| open_err(path, e))?;
        }
        Ok(NsShard {
            shard,
            write: Mutex::new(()),
        })
    }

    /// The shard of `ns`, if it has one.
    fn existing(&self, ns: &Namespace) -> Option<Arc<NsShard>> {
        self.read_map().get(ns).cloned()
    }

    /// The shard of `ns`, created on first use.
    fn get_or_create(&self, ns: &Namespace, op: &'static str) -> crate::Result<Arc<NsShard>> {
        if let Some(s) = self.existing(ns) {
            return Ok(s);
        }
        let mut map = self.shards.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = map.get(ns) {
            return Ok(s.clone());
        }
        let path = self.dir.join(ns.as_str());
        // A shard dir that appeared after `open` (or an interrupted creation that did get as far
        // as writing its config) is loaded, not recreated.
        let shard = if path.join(EDGE_CONFIG_FILE).is_file() {
            self.load_shard(&path)
        } else {
            self.create_shard(&path)
        }
        .map_err(|e| op_err(op, ns, e))?;
        let shard = Arc::new(shard);
        map.insert(ns.clone(), shard.clone());
        Ok(shard)
    }

    fn check_dim(&self, v: &[f32]) -> crate::Result<()> {
        if v.len() == self.dim {
            Ok(())
        } else {
            Err(StoreError::Dimension {
                expected: self.dim,
                got: v.len(),
            })
        }
    }
}

fn create_keyword_index(shard: &EdgeShard, field: &str) -> Result<(), String> {
    let field_name = field
        .parse::<JsonPath>()
        .map_err(|e| format!("bad field name `{field}`: {e:?}"))?;
    shard
        .update(UpdateOperation::FieldIndexOperation(
            FieldIndexOperations::CreateIndex(qdrant_edge::CreateIndex {
                field_name,
                field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
            }),
        ))
        .map_err(|e| format!("cannot create keyword index on `{field}`: {e}"))
}

fn static_key() -> JsonPath {
    STATIC_FLAG
        .parse()
        .expect("STATIC_FLAG is a plain field name")
}

fn sparse(v: &SparseVec) -> Result<SparseVector, String> {
    SparseVector::new(v.indices.clone(), v.values.clone())
        .map_err(|e| format!("invalid sparse vector: {e}"))
}

fn field_match(key: &str, m: Match) -> Result<Condition, String> {
    let key = key
        .parse::<JsonPath>()
        .map_err(|e| format!("bad field name `{key}`: {e:?}"))?;
    Ok(Condition::Field(FieldCondition::new_match(key, m)))
}

/// `Ok(None)` when the filter can match nothing (an empty `paths` list).
fn build_filter(f: &SearchFilter) -> Result<Option<Option<Filter>>, String> {
    let mut must = Vec::new();
    if let Some(paths) = &f.paths {
        if paths.is_empty() {
            return Ok(None);
        }
        must.push(field_match("path", Match::from(paths.clone()))?);
    }
    if let Some(lang) = &f.language {
        must.push(field_match("language", Match::from(lang.clone()))?);
    }
    if let Some(sym) = &f.symbol_lc {
        must.push(field_match("symbol_lc", Match::from(sym.clone()))?);
    }
    if let Some(kind) = &f.kind {
        must.push(field_match("kind", Match::from(kind.clone()))?);
    }
    if let Some(tags) = &f.tags {
        if tags.is_empty() {
            return Ok(None);
        }
        must.push(field_match("tags", Match::from(tags.clone()))?);
    }
    let mut must_not = Vec::new();
    // Flags are absent on ordinary chunks, so "false" is expressed as "not true".
    for (field, want) in [
        ("memory", f.memory),
        ("unsaved", f.unsaved),
        (STATIC_FLAG, f.static_dense),
    ] {
        match want {
            Some(true) => must.push(field_match(field, Match::from(true))?),
            Some(false) => must_not.push(field_match(field, Match::from(true))?),
            None => {}
        }
    }
    if must.is_empty() && must_not.is_empty() {
        return Ok(Some(None));
    }
    let some = |v: Vec<Condition>| (!v.is_empty()).then_some(v);
    Ok(Some(Some(Filter {
        should: None,
        min_should: None,
        must: some(must),
        must_not: some(must_not),
    })))
}

fn num_id(id: PointId) -> Option<u64> {
    match id {
        PointId::NumId(n) => Some(n),
        // This store only writes numeric ids; anything else is not ours.
        PointId::Uuid(_) => None,
    }
}

fn payload_map(p: Option<Payload>) -> Map<String, Value> {
    p.map(|p| p.0).unwrap_or_default()
}

impl VectorStore for EdgeStore {
    fn upsert(&self, ns: &Namespace, points: Vec<StorePoint>) -> crate::Result<()> {
        const OP: &str = "upsert";
        if points.is_empty() {
            return Ok(());
        }
        for p in &points {
            if let Some(d) = &p.dense {
                self.check_dim(d)?;
            }
        }
        let mut converted = Vec::with_capacity(points.len());
        for p in points {
            let mut vectors = HashMap::with_capacity(2);
            vectors.insert(
                LEXICAL_VECTOR.to_string(),
                VectorPersisted::Sparse(
                    sparse(&p.sparse)
                        .map_err(|e| op_err(OP, ns, format!("point {}: {e}", p.id)))?,
                ),
            );
            if let Some(d) = p.dense {
                vectors.insert(DENSE_VECTOR.to_string(), VectorPersisted::Dense(d));
            }
            converted.push(PointStructPersisted {
                id: PointId::NumId(p.id),
                vector: VectorStructPersisted::Named(vectors),
                payload: Some(Payload::from(p.payload)),
            });
        }
        let s = self.get_or_create(ns, OP)?;
        let _w = s.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rest = converted;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(WRITE_BATCH));
            let batch = std::mem::replace(&mut rest, tail);
            s.shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(batch)),
                ))
                .map_err(|e| op_err(OP, ns, e))?;
        }
        Ok(())
    }

    /// Ids that no longer exist (deleted meanwhile) are skipped, not an error.
    fn set_dense(&self, ns: &Namespace, vectors: Vec<(u64, Vec<f32>)>) -> crate::Result<()> {
        const OP: &str = "set_dense";
        if vectors.is_empty() {
            return Ok(());
        }
        for (_, v) in &vectors {
            self.check_dim(v)?;
        }
        // No shard means no points: nothing to update.
        let Some(s) = self.existing(ns) else {
            return Ok(());
        };
        let _w = s.write.lock().unwrap_or_else(PoisonError::into_inner);
        for batch in vectors.chunks(WRITE_BATCH) {
            let ids: Vec<PointId> = batch.iter().map(|(id, _)| PointId::NumId(*id)).collect();
            let present: std::collections::HashSet<PointId> = s
                .shard
                .retrieve(
                    RetrieveRequestBuilder::new(ids)
                        .with_payload(WithPayloadInterface::Bool(false))
                        .with_vector(WithVector::Bool(false))
                        .build(),
                )
                .map_err(|e| op_err(OP, ns, e))?
                .into_iter()
                .map(|r| r.id)
                .collect();
            let points: Vec<PointVectorsPersisted> = batch
                .iter()
                .filter(|(id, _)| present.contains(&PointId::NumId(*id)))
                .map(|(id, v)| PointVectorsPersisted {
                    id: PointId::NumId(*id),
                    vector: VectorStructPersisted::Named(HashMap::from([(
                        DENSE_VECTOR.to_string(),
                        VectorPersisted::Dense(v.clone()),
                    )])),
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let ids: Vec<PointId> = points.iter().map(|p| p.id).collect();
            s.shard
                .update(UpdateOperation::VectorOperation(
                    VectorOperations::UpdateVectors(UpdateVectorsOp {
                        points,
                        update_filter: None,
                    }),
                ))
                .map_err(|e| op_err(OP, ns, e))?;
            s.shard
                .update(UpdateOperation::PayloadOperation(
                    PayloadOps::DeletePayload(DeletePayloadOp {
                        keys: vec![static_key()],
                        points: Some(ids),
                        filter: None,
                    }),
                ))
                .map_err(|e| op_err(OP, ns, e))?;
        }
        Ok(())
    }

    fn delete_paths(&self, ns: &Namespace, paths: &[String]) -> crate::Result<()> {
        const OP: &str = "delete_paths";
        if paths.is_empty() {
            return Ok(());
        }
        let Some(s) = self.existing(ns) else {
            return Ok(());
        };
        let filter = Filter::new_must(
            field_match("path", Match::from(paths.to_vec())).map_err(|e| op_err(OP, ns, e))?,
        );
        let _w = s.write.lock().unwrap_or_else(PoisonError::into_inner);
        s.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(filter),
            ))
            .map_err(|e| op_err(OP, ns, e))
    }

    fn delete_ids(&self, ns: &Namespace, ids: &[u64]) -> crate::Result<()> {
        const OP: &str = "delete_ids";
        if ids.is_empty() {
            return Ok(());
        }
        let Some(s) = self.existing(ns) else {
            return Ok(());
        };
        let _w = s.write.lock().unwrap_or_else(PoisonError::into_inner);
        s.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePoints {
                    ids: ids.iter().map(|i| PointId::NumId(*i)).collect(),
                },
            ))
            .map_err(|e| op_err(OP, ns, e))
    }

    fn search(
        &self,
        ns: &Namespace,
        vector: &SearchVector,
        filter: &SearchFilter,
        limit: usize,
    ) -> crate::Result<Vec<ScoredPoint>> {
        const OP: &str = "search";
        let query = match vector {
            SearchVector::Dense(v) => {
                self.check_dim(v)?;
                NamedQuery::new(VectorInternal::Dense(v.clone()), DENSE_VECTOR)
            }
            SearchVector::Sparse(v) => {
                if v.is_empty() {
                    return Ok(Vec::new());
                }
                NamedQuery::new(
                    VectorInternal::Sparse(sparse(v).map_err(|e| op_err(OP, ns, e))?),
                    LEXICAL_VECTOR,
                )
            }
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(filter) = build_filter(filter).map_err(|e| op_err(OP, ns, e))? else {
            return Ok(Vec::new());
        };
        let Some(s) = self.existing(ns) else {
            return Ok(Vec::new());
        };
        let mut req = QueryRequestBuilder::new(limit)
            .query(ScoringQuery::Vector(QueryEnum::Nearest(query)))
            .with_payload(WithPayloadInterface::Bool(true))
            .with_vector(WithVector::Bool(false));
        if let Some(f) = filter {
            req = req.filter(f);
        }
        let hits = s.shard.query(req.build()).map_err(|e| op_err(OP, ns, e))?;
        Ok(hits
            .into_iter()
            .filter_map(|h| {
                Some(ScoredPoint {
                    id: num_id(h.id)?,
                    score: h.score,
                    payload: payload_map(h.payload),
                })
            })
            .collect())
    }

    fn scroll(
        &self,
        ns: &Namespace,
        filter: &SearchFilter,
        limit: usize,
    ) -> crate::Result<Vec<ScoredPoint>> {
        const OP: &str = "scroll";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(filter) = build_filter(filter).map_err(|e| op_err(OP, ns, e))? else {
            return Ok(Vec::new());
        };
        let Some(s) = self.existing(ns) else {
            return Ok(Vec::new());
        };
        let mut req = ScrollRequestBuilder::new()
            .limit(limit)
            .with_payload(WithPayloadInterface::Bool(true))
            .with_vector(WithVector::Bool(false));
        if let Some(f) = filter {
            req = req.filter(f);
        }
        let (records, _next) = s.shard.scroll(req.build()).map_err(|e| op_err(OP, ns, e))?;
        Ok(records
            .into_iter()
            .filter_map(|r| {
                Some(ScoredPoint {
                    id: num_id(r.id)?,
                    score: 0.0,
                    payload: payload_map(r.payload),
                })
            })
            .collect())
    }

    fn count(&self, ns: &Namespace) -> crate::Result<u64> {
        let Some(s) = self.existing(ns) else {
            return Ok(0);
        };
        let n = s
            .shard
            .count(CountRequestBuilder::new().exact(true).build())
            .map_err(|e| op_err("count", ns, e))?;
        Ok(n as u64)
    }

    fn flush(&self) -> crate::Result<()> {
        let shards: Vec<(Namespace, Arc<NsShard>)> = self
            .read_map()
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        for (ns, s) in shards {
            s.shard.flush().map_err(|e| op_err("flush", &ns, e))?;
        }
        Ok(())
    }

    fn optimize(&self, ns: &Namespace) -> crate::Result<()> {
        let Some(s) = self.existing(ns) else {
            return Ok(());
        };
        s.shard.optimize().map_err(|e| op_err("optimize", ns, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::DIM;

    mod contract {
        crate::vector_store_contract!(|dir: &std::path::Path,
                                       dim: usize|
         -> crate::Result<Box<dyn crate::VectorStore>> {
            Ok(Box::new(crate::EdgeStore::open(dir, dim)?))
        });
    }

    fn pt(id: u64, dense: Option<Vec<f32>>) -> StorePoint {
        let mut payload = Map::new();
        payload.insert("path".into(), Value::from(format!("src/{id}.rs")));
        StorePoint {
            id,
            dense,
            sparse: codemem_core::lexical::document_vector(
                "x.rs",
                None,
                &format!("token{id} shared"),
            ),
            payload,
        }
    }

    #[test]
    fn creates_shards_lazily_and_loads_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EdgeStore::open(dir.path(), DIM).unwrap();
            assert!(store.namespaces().is_empty());
            assert_eq!(store.count(&Namespace::coding()).unwrap(), 0);
            assert!(!dir.path().join("coding").exists(), "reads create nothing");
            store
                .upsert(&Namespace::coding(), vec![pt(1, Some(vec![1.0; DIM]))])
                .unwrap();
            assert!(dir.path().join("coding").join(EDGE_CONFIG_FILE).is_file());
            assert_eq!(store.namespaces(), vec![Namespace::coding()]);
            // Without an explicit flush: dropping the shard flushes, and the WAL is replayed anyway.
        }
        std::fs::create_dir(dir.path().join("not a namespace")).unwrap();
        std::fs::write(dir.path().join("store.lock"), b"").unwrap();
        let store = EdgeStore::open(dir.path(), DIM).unwrap();
        assert_eq!(
            store.namespaces(),
            vec![Namespace::coding()],
            "existing shards load at open"
        );
        assert_eq!(store.count(&Namespace::coding()).unwrap(), 1);
        assert!(format!("{store:?}").contains("coding"));
    }

    #[test]
    fn wrong_dimension_on_reopen_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EdgeStore::open(dir.path(), DIM).unwrap();
            store
                .upsert(&Namespace::coding(), vec![pt(1, None)])
                .unwrap();
            store.flush().unwrap();
        }
        match EdgeStore::open(dir.path(), DIM + 1) {
            Err(StoreError::Open { reason, .. }) => {
                assert!(reason.contains("dimensional"), "{reason}")
            }
            other => panic!("expected an open error, got {other:?}"),
        }
        assert!(matches!(
            EdgeStore::open(dir.path(), 0),
            Err(StoreError::Open { .. })
        ));
        // The refused open damaged nothing.
        let store = EdgeStore::open(dir.path(), DIM).unwrap();
        assert_eq!(store.count(&Namespace::coding()).unwrap(), 1);
    }

    /// A second opener of the same data dir (another process, or another `EdgeStore` here: the
    /// WAL `flock` is per open file description) is refused with an error, not a panic, and the
    /// first opener keeps working.
    #[test]
    fn second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = EdgeStore::open(dir.path(), DIM).unwrap();
        first
            .upsert(
                &Namespace::coding(),
                vec![pt(1, Some(vec![1.0; DIM])), pt(2, None)],
            )
            .unwrap();
        first.flush().unwrap();
        first
            .upsert(&Namespace::coding(), vec![pt(3, None)])
            .unwrap(); // only in the WAL
        let err = EdgeStore::open(dir.path(), DIM).expect_err("the shard is locked by `first`");
        eprintln!("second opener: {err}");
        assert!(matches!(err, StoreError::Open { .. }));

        // Lazily created shards are guarded the same way.
        let other = tempfile::tempdir().unwrap();
        let a = EdgeStore::open(other.path(), DIM).unwrap();
        let b = EdgeStore::open(other.path(), DIM).unwrap();
        a.upsert(&Namespace::testing(), vec![pt(1, None)]).unwrap();
        let err = b
            .upsert(&Namespace::testing(), vec![pt(2, None)])
            .expect_err("locked by `a`");
        eprintln!("second lazy opener: {err}");
        assert!(matches!(err, StoreError::Operation { op: "upsert", .. }));

        first
            .upsert(&Namespace::coding(), vec![pt(4, None)])
            .unwrap();
        assert_eq!(first.count(&Namespace::coding()).unwrap(), 4);
        drop(first);
        let again = EdgeStore::open(dir.path(), DIM).unwrap();
        assert_eq!(again.count(&Namespace::coding()).unwrap(), 4);
        let hits = again
            .search(
                &Namespace::coding(),
                &SearchVector::Dense(vec![1.0; DIM]),
                &SearchFilter::default(),
                5,
            )
            .unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![1]);
    }
    /// Rough figures, not a test: `cargo test -p codemem-store [--release] -- --ignored --nocapture bench`.
    /// `CODEMEM_BENCH_POINTS=100000 cargo test --release -p codemem-store bench_points --
    /// --ignored --nocapture` prints upsert, flush and optimize times and search p50 before and
    /// after `optimize` (the HNSW build).
    #[test]
    #[ignore]
    fn bench_points() {
        use std::time::Instant;
        let n_points: u64 = std::env::var("CODEMEM_BENCH_POINTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000);
        #[allow(non_snake_case)]
        let N = n_points;
        const D: usize = 384;
        let rnd = |seed: u64| crate::contract::pseudo_random_vector(seed, D);
        let words = [
            "parse", "http", "request", "buffer", "socket", "read", "write", "config", "error",
            "value",
        ];
        let doc = |i: u64| {
            let mut s = format!("fn item_{i}(x: u32) {{ ");
            for k in 0..40 {
                s.push_str(words[((i * 7 + k * 13) % 10) as usize]);
                s.push(' ');
            }
            s
        };
        let dir = tempfile::tempdir().unwrap();
        let store = EdgeStore::open(dir.path(), D).unwrap();
        let ns = Namespace::coding();
        let points: Vec<StorePoint> = (0..N)
            .map(|i| {
                let mut payload = Map::new();
                payload.insert("path".into(), Value::from(format!("src/f{}.rs", i / 20)));
                payload.insert("content".into(), Value::from(doc(i)));
                StorePoint {
                    id: i,
                    dense: Some(rnd(i)),
                    sparse: codemem_core::lexical::document_vector(
                        "f.rs",
                        Some(&format!("item_{i}")),
                        &doc(i),
                    ),
                    payload,
                }
            })
            .collect();
        let t = Instant::now();
        for chunk in points.chunks(256) {
            store.upsert(&ns, chunk.to_vec()).unwrap();
        }
        let up = t.elapsed();
        let t = Instant::now();
        store.flush().unwrap();
        let fl = t.elapsed();
        let p50 = |store: &EdgeStore, v: &dyn Fn(u64) -> SearchVector| {
            let mut times: Vec<f64> = (0..200u64)
                .map(|q| {
                    let t = Instant::now();
                    let hits = store
                        .search(&ns, &v(q * 17 % N), &SearchFilter::default(), 10)
                        .unwrap();
                    assert!(!hits.is_empty());
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(|a, b| a.total_cmp(b));
            times[times.len() / 2]
        };
        let dense_q = |i: u64| SearchVector::Dense(rnd(i));
        let sparse_q = |i: u64| {
            SearchVector::Sparse(codemem_core::lexical::query_vector(&format!(
                "item_{i} socket"
            )))
        };
        let (d0, s0) = (p50(&store, &dense_q), p50(&store, &sparse_q));
        let t = Instant::now();
        store.optimize(&ns).unwrap();
        let opt = t.elapsed();
        let (d1, s1) = (p50(&store, &dense_q), p50(&store, &sparse_q));
        let t = Instant::now();
        drop(store);
        let store = EdgeStore::open(dir.path(), D).unwrap();
        let reopen = t.elapsed();
        assert_eq!(store.count(&ns).unwrap(), N);
        eprintln!(
            "BENCH {N} points dim {D}: upsert {:.0} points/s ({:.2} s), flush {:.2} s; p50 before optimize: dense {d0:.2} ms, \
             sparse {s0:.2} ms; optimize {:.1} s; p50 after: dense {d1:.2} ms, sparse {s1:.2} ms; drop+reopen {:.2} s",
            N as f64 / up.as_secs_f64(),
            up.as_secs_f64(),
            fl.as_secs_f64(),
            opt.as_secs_f64(),
            reopen.as_secs_f64()
        );
    }
}
