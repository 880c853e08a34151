//! Remote backend on a Qdrant server (gRPC, qdrant-client): one collection per
//! (project, namespace), named `<prefix>_<namespace>`, with the same `dense` + sparse `lexical`
//! (IDF modifier) vectors and keyword payload indexes as the embedded store.
//!
//! Every call goes through a [`CircuitBreaker`]: transport failures (refused, timeout,
//! unavailable) count against it, answers from the server (even errors such as a wrong
//! dimension) count as healthy. While the breaker is open, calls fail at once with
//! [`StoreError::Unavailable`] naming the URL and the breaker state.
//!
//! A health task on the store's runtime calls the server's health RPC every `health_interval`
//! (default 30 s; zero disables it) under the breaker, like any call: a failure counts, a
//! success after the recovery time closes it, and while it is open the task does nothing.
//! [`QdrantStore::health_stats`] reports what it did.
//!
//! The trait is synchronous; the async client runs on a small runtime owned by the store. A call
//! made from inside another tokio runtime is driven on a scoped helper thread, so it never
//! panics there (callers should still use `spawn_blocking`, as for every `VectorStore`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use codemem_core::{lexical::SparseVec, Namespace};
use codemem_resilience::{
    BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, ClientRuntime,
};
use qdrant_client::qdrant::{
    point_id::PointIdOptions, vectors_config::Config as VectorsConfigKind, Condition,
    CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePayloadPointsBuilder, DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder,
    Modifier, NamedVectors, PointId, PointStruct, PointVectors, PointsIdsList, Query,
    QueryPointsBuilder, ScrollPointsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
    UpdatePointVectorsBuilder, UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder,
    VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::{Map, Value};

use crate::{
    ScoredPoint, SearchFilter, SearchVector, StoreError, StorePoint, VectorStore, DENSE_VECTOR,
    LEXICAL_VECTOR, STATIC_FLAG,
};

/// Keyword-indexed payload fields on the server (the embedded store's [`crate::INDEXED_FIELDS`]
/// plus `tags`), and the boolean flags the filters use.
const KEYWORD_FIELDS: [&str; 5] = ["path", "language", "symbol_lc", "kind", "tags"];
const BOOL_FIELDS: [&str; 3] = ["memory", "unsaved", STATIC_FLAG];

/// Points per upsert request.
const WRITE_BATCH: usize = 256;

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct QdrantOptions {
    /// gRPC endpoint, e.g. `http://127.0.0.1:6334`.
    pub url: String,
    pub api_key: Option<String>,
    /// Collections are named `<prefix>_<namespace>` (one project per prefix).
    pub prefix: String,
    /// gRPC channels in the client's pool.
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub breaker: BreakerConfig,
    /// How often the health RPC runs in the background; zero disables it.
    pub health_interval: Duration,
}

impl QdrantOptions {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> QdrantOptions {
        QdrantOptions {
            url: url.into(),
            api_key: None,
            prefix: prefix.into(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            breaker: BreakerConfig::default(),
            health_interval: Duration::from_secs(30),
        }
    }
}

/// The Qdrant-server vector store.
pub struct QdrantStore {
    opts: QdrantOptions,
    dim: usize,
    client: Qdrant,
    rt: ClientRuntime,
    breaker: Arc<CircuitBreaker>,
    health: Arc<HealthCounters>,
    /// Collections known to exist (created or seen).
    known: RwLock<HashSet<String>>,
}

/// What the background health task has done since the store was opened (for `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QdrantHealth {
    /// Health calls made.
    pub checks: u64,
    /// Rounds skipped because the breaker was open (or another call held its trial).
    pub skipped_open: u64,
    /// Health calls that did not reach the server (each counted against the breaker).
    pub failures: u64,
}

#[derive(Default)]
struct HealthCounters {
    checks: AtomicU64,
    skipped_open: AtomicU64,
    failures: AtomicU64,
}

/// The background health task: the health RPC under the breaker, every `every`.
async fn health_task(
    url: String,
    client: Qdrant,
    breaker: Arc<CircuitBreaker>,
    counters: Arc<HealthCounters>,
    every: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snap = breaker.snapshot();
        let waiting =
            snap.state == BreakerState::Open && snap.retry_in.is_some_and(|d| !d.is_zero());
        if waiting || breaker.acquire().is_err() {
            counters.skipped_open.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        counters.checks.fetch_add(1, Ordering::Relaxed);
        match client.health_check().await {
            Err(e) if is_transport(&e) => {
                breaker.on_failure();
                counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %url, error = %short(&e), "Qdrant health check failed");
            }
            _ => breaker.on_success(),
        }
    }
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore")
            .field("url", &self.opts.url)
            .field("prefix", &self.opts.prefix)
            .finish()
    }
}

/// Errors that say the server could not be reached (as opposed to an answer from it).
fn is_transport(e: &QdrantError) -> bool {
    match e {
        QdrantError::ResponseError { status } => {
            matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unknown
                    | tonic::Code::Cancelled
            ) || (status.code() == tonic::Code::Internal && {
                // The client reports a refused or dropped connection as Internal.
                let m = status.message().to_ascii_lowercase();
                m.contains("failed to connect")
                    || m.contains("transport")
                    || m.contains("connection")
            })
        }
        QdrantError::ResourceExhaustedError { .. } => true,
        QdrantError::ConversionError(_) | QdrantError::InvalidUri(_) => false,
        _ => true,
    }
}

fn short(e: &QdrantError) -> String {
    match e {
        QdrantError::ResponseError { status } => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

/// A collection-name-safe form of `s`.
pub fn collection_prefix(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(100);
    out
}

impl QdrantStore {
    /// Connects (checking the server answers and that existing collections of this prefix hold
    /// `dim`-dimensional vectors).
    pub fn open(opts: QdrantOptions, dim: usize) -> crate::Result<QdrantStore> {
        let url = opts.url.clone();
        let open_err = move |reason: String| StoreError::Open {
            path: url.clone(),
            reason,
        };
        if dim == 0 {
            return Err(open_err("dense dimension must be positive".into()));
        }
        let rt = ClientRuntime::new("codemem-qdrant")
            .map_err(|e| open_err(format!("cannot start the client runtime: {e}")))?;
        let mut cfg = qdrant_client::config::QdrantConfig::from_url(&opts.url)
            .timeout(opts.request_timeout)
            .connect_timeout(opts.connect_timeout)
            .skip_compatibility_check();
        if let Some(k) = opts.api_key.as_deref().filter(|k| !k.is_empty()) {
            cfg.set_api_key(k);
        }
        cfg.set_pool_size(opts.pool_size.max(1));
        let client = {
            let _g = rt.runtime().enter();
            Qdrant::new(cfg).map_err(|e| open_err(e.to_string()))?
        };
        let breaker = Arc::new(CircuitBreaker::new(
            format!("Qdrant at {}", opts.url),
            opts.breaker,
        ));
        let health = Arc::new(HealthCounters::default());
        if !opts.health_interval.is_zero() {
            // Lives on the store's runtime: it ends when the store (and so the runtime) is dropped.
            rt.runtime().spawn(health_task(
                opts.url.clone(),
                client.clone(),
                breaker.clone(),
                health.clone(),
                opts.health_interval,
            ));
        }
        let store = QdrantStore {
            opts,
            dim,
            client,
            rt,
            breaker,
            health,
            known: RwLock::new(HashSet::new()),
        };
        let existing = match store.call("open", None, |c| async move { c.list_collections().await })
        {
            Ok(e) => e,
            // Down now: open anyway (writes can queue in an outbox; reads fail fast until it is
            // back). The dimension check then happens on the server, at the first write.
            Err(e @ StoreError::Unavailable { .. }) => {
                tracing::warn!(error = %e, "Qdrant server unreachable at open");
                return Ok(store);
            }
            Err(e) => return Err(e),
        };
        let mine = format!("{}_", store.opts.prefix);
        for col in existing.collections {
            if !col.name.starts_with(&mine) {
                continue;
            }
            let name = col.name.clone();
            let info = store.call(
                "open",
                None,
                |c| async move { c.collection_info(name).await },
            )?;
            let size = info
                .result
                .and_then(|r| r.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config)
                .and_then(|k| match k {
                    VectorsConfigKind::ParamsMap(m) => {
                        m.map.get(DENSE_VECTOR).map(|p| p.size as usize)
                    }
                    VectorsConfigKind::Params(_) => None,
                });
            match size {
                Some(s) if s == dim => {}
                Some(s) => {
                    return Err(open_err(format!(
                        "collection `{}` holds {s}-dimensional vectors, this store uses {dim} \
                         (the embedding model changed: re-index under a new project or delete the collection)",
                        col.name
                    )))
                }
                None => return Err(open_err(format!("collection `{}` has no `{DENSE_VECTOR}` vector", col.name))),
            }
            store
                .known
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(col.name);
        }
        Ok(store)
    }

    pub fn url(&self) -> &str {
        &self.opts.url
    }

    /// The breaker guarding this server (for status reports).
    pub fn breaker(&self) -> BreakerSnapshot {
        self.breaker.snapshot()
    }

    /// What the background health task has done so far.
    pub fn health_stats(&self) -> QdrantHealth {
        let c = &self.health;
        QdrantHealth {
            checks: c.checks.load(Ordering::Relaxed),
            skipped_open: c.skipped_open.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }

    /// Server version (a health call that bypasses nothing: it goes through the breaker).
    pub fn health(&self) -> crate::Result<String> {
        let r = self.call("health", None, |c| async move { c.health_check().await })?;
        Ok(r.version)
    }

    fn collection(&self, ns: &Namespace) -> String {
        format!("{}_{}", self.opts.prefix, ns.as_str())
    }

    /// One request under the breaker.
    fn call<T, Fut>(
        &self,
        op: &'static str,
        ns: Option<&Namespace>,
        f: impl FnOnce(Qdrant) -> Fut + Send,
    ) -> crate::Result<T>
    where
        Fut: Future<Output = Result<T, QdrantError>> + Send,
        T: Send,
    {
        if let Err(rej) = self.breaker.acquire() {
            return Err(StoreError::Unavailable {
                backend: "Qdrant",
                url: self.opts.url.clone(),
                reason: format!(
                    "circuit breaker open after {} consecutive failures; next attempt in {:.1} s",
                    rej.failures,
                    rej.retry_in.as_secs_f64()
                ),
            });
        }
        let client = self.client.clone();
        match self.rt.block(f(client)) {
            Ok(v) => {
                self.breaker.on_success();
                Ok(v)
            }
            Err(e) if is_transport(&e) => {
                self.breaker.on_failure();
                let snap = self.breaker.snapshot();
                Err(StoreError::Unavailable {
                    backend: "Qdrant",
                    url: self.opts.url.clone(),
                    reason: format!(
                        "{} (breaker {}, {} consecutive failures)",
                        short(&e),
                        snap.state,
                        snap.consecutive_failures
                    ),
                })
            }
            Err(e) => {
                self.breaker.on_success();
                Err(StoreError::Operation {
                    op,
                    namespace: ns.map(|n| n.to_string()).unwrap_or_default(),
                    reason: format!("Qdrant at {}: {}", self.opts.url, short(&e)),
                })
            }
        }
    }

    fn is_known(&self, name: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// Whether the collection of `ns` exists (asks the server once, then remembers a yes).
    fn exists(&self, ns: &Namespace, op: &'static str) -> crate::Result<bool> {
        let name = self.collection(ns);
        if self.is_known(&name) {
            return Ok(true);
        }
        let n = name.clone();
        let yes = self.call(
            op,
            Some(ns),
            |c| async move { c.collection_exists(n).await },
        )?;
        if yes {
            self.known
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name);
        }
        Ok(yes)
    }

    fn ensure(&self, ns: &Namespace, op: &'static str) -> crate::Result<String> {
        let name = self.collection(ns);
        if self.exists(ns, op)? {
            return Ok(name);
        }
        let dim = self.dim as u64;
        let n = name.clone();
        let created = self.call(op, Some(ns), |c| async move {
            let mut vectors = VectorsConfigBuilder::default();
            vectors.add_named_vector_params(
                DENSE_VECTOR,
                VectorParamsBuilder::new(dim, Distance::Cosine),
            );
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(
                LEXICAL_VECTOR,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            c.create_collection(
                CreateCollectionBuilder::new(n)
                    .vectors_config(vectors)
                    .sparse_vectors_config(sparse),
            )
            .await
        });
        match created {
            Ok(_) => {}
            // Another process created it meanwhile.
            Err(StoreError::Operation { reason, .. }) if reason.contains("already exists") => {}
            Err(e) => return Err(e),
        }
        for (fields, ty) in [
            (&KEYWORD_FIELDS[..], FieldType::Keyword),
            (&BOOL_FIELDS[..], FieldType::Bool),
        ] {
            for field in fields {
                let n = name.clone();
                self.call(op, Some(ns), |c| async move {
                    c.create_field_index(
                        CreateFieldIndexCollectionBuilder::new(n, *field, ty).wait(true),
                    )
                    .await
                })?;
            }
        }
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone());
        Ok(name)
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

impl crate::outbox::GuardedStore for QdrantStore {
    fn breaker_snapshot(&self) -> Option<BreakerSnapshot> {
        Some(self.breaker.snapshot())
    }
}

fn sparse_vector(v: &SparseVec) -> Vector {
    Vector::new_sparse(v.indices.clone(), v.values.clone())
}

/// The embedded store's `build_filter`, in the server's terms. `None` = matches nothing.
fn build_filter(f: &SearchFilter) -> Option<Option<Filter>> {
    let mut must = Vec::new();
    if let Some(paths) = &f.paths {
        if paths.is_empty() {
            return None;
        }
        must.push(Condition::matches("path", paths.clone()));
    }
    if let Some(lang) = &f.language {
        must.push(Condition::matches("language", lang.clone()));
    }
    if let Some(sym) = &f.symbol_lc {
        must.push(Condition::matches("symbol_lc", sym.clone()));
    }
    if let Some(kind) = &f.kind {
        must.push(Condition::matches("kind", kind.clone()));
    }
    if let Some(tags) = &f.tags {
        if tags.is_empty() {
            return None;
        }
        must.push(Condition::matches("tags", tags.clone()));
    }
    let mut must_not = Vec::new();
    // Flags are absent on ordinary chunks, so "false" is expressed as "not true".
    for (field, want) in [
        ("memory", f.memory),
        ("unsaved", f.unsaved),
        (STATIC_FLAG, f.static_dense),
    ] {
        match want {
            Some(true) => must.push(Condition::matches(field, true)),
            Some(false) => must_not.push(Condition::matches(field, true)),
            None => {}
        }
    }
    if must.is_empty() && must_not.is_empty() {
        return Some(None);
    }
    Some(Some(Filter {
        must,
        must_not,
        ..Default::default()
    }))
}

fn num_id(id: Option<PointId>) -> Option<u64> {
    match id?.point_id_options? {
        PointIdOptions::Num(n) => Some(n),
        PointIdOptions::Uuid(_) => None,
    }
}

fn payload_map(
    p: std::collections::HashMap<String, qdrant_client::qdrant::Value>,
) -> Map<String, Value> {
    p.into_iter().map(|(k, v)| (k, Value::from(v))).collect()
}

impl VectorStore for QdrantStore {
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
        let name = self.ensure(ns, OP)?;
        let converted: Vec<PointStruct> = points
            .into_iter()
            .map(|p| {
                let mut v =
                    NamedVectors::default().add_vector(LEXICAL_VECTOR, sparse_vector(&p.sparse));
                if let Some(d) = p.dense {
                    v = v.add_vector(DENSE_VECTOR, Vector::new_dense(d));
                }
                PointStruct::new(p.id, v, Payload::from(p.payload))
            })
            .collect();
        for batch in converted.chunks(WRITE_BATCH) {
            let n = name.clone();
            let batch = batch.to_vec();
            self.call(OP, Some(ns), |c| async move {
                c.upsert_points(UpsertPointsBuilder::new(n, batch).wait(true))
                    .await
            })?;
        }
        Ok(())
    }

    fn set_dense(&self, ns: &Namespace, vectors: Vec<(u64, Vec<f32>)>) -> crate::Result<()> {
        const OP: &str = "set_dense";
        if vectors.is_empty() {
            return Ok(());
        }
        for (_, v) in &vectors {
            self.check_dim(v)?;
        }
        if !self.exists(ns, OP)? {
            return Ok(());
        }
        let name = self.collection(ns);
        for batch in vectors.chunks(WRITE_BATCH) {
            // The server refuses vectors for missing points; skip ids deleted meanwhile.
            let ids: Vec<PointId> = batch.iter().map(|(id, _)| PointId::from(*id)).collect();
            let n = name.clone();
            let got = self.call(OP, Some(ns), |c| async move {
                c.get_points(
                    GetPointsBuilder::new(n, ids)
                        .with_payload(false)
                        .with_vectors(false),
                )
                .await
            })?;
            let present: HashSet<u64> = got
                .result
                .into_iter()
                .filter_map(|r| num_id(r.id))
                .collect();
            let points: Vec<PointVectors> = batch
                .iter()
                .filter(|(id, _)| present.contains(id))
                .map(|(id, v)| PointVectors {
                    id: Some(PointId::from(*id)),
                    vectors: Some(
                        NamedVectors::default()
                            .add_vector(DENSE_VECTOR, Vector::new_dense(v.clone()))
                            .into(),
                    ),
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let ids: Vec<PointId> = points.iter().filter_map(|p| p.id.clone()).collect();
            let n = name.clone();
            self.call(OP, Some(ns), |c| async move {
                c.update_vectors(UpdatePointVectorsBuilder::new(n, points).wait(true))
                    .await
            })?;
            let n = name.clone();
            self.call(OP, Some(ns), |c| async move {
                c.delete_payload(
                    DeletePayloadPointsBuilder::new(n, vec![STATIC_FLAG.to_string()])
                        .points_selector(PointsIdsList { ids })
                        .wait(true),
                )
                .await
            })?;
        }
        Ok(())
    }

    fn delete_paths(&self, ns: &Namespace, paths: &[String]) -> crate::Result<()> {
        const OP: &str = "delete_paths";
        if paths.is_empty() || !self.exists(ns, OP)? {
            return Ok(());
        }
        let n = self.collection(ns);
        let filter = Filter::must([Condition::matches("path", paths.to_vec())]);
        self.call(OP, Some(ns), |c| async move {
            c.delete_points(DeletePointsBuilder::new(n).points(filter).wait(true))
                .await
        })?;
        Ok(())
    }

    fn delete_ids(&self, ns: &Namespace, ids: &[u64]) -> crate::Result<()> {
        const OP: &str = "delete_ids";
        if ids.is_empty() || !self.exists(ns, OP)? {
            return Ok(());
        }
        let n = self.collection(ns);
        let list: Vec<PointId> = ids.iter().map(|i| PointId::from(*i)).collect();
        self.call(OP, Some(ns), |c| async move {
            c.delete_points(DeletePointsBuilder::new(n).points(list).wait(true))
                .await
        })?;
        Ok(())
    }

    fn search(
        &self,
        ns: &Namespace,
        vector: &SearchVector,
        filter: &SearchFilter,
        limit: usize,
    ) -> crate::Result<Vec<ScoredPoint>> {
        const OP: &str = "search";
        let (input, using) = match vector {
            SearchVector::Dense(v) => {
                self.check_dim(v)?;
                (VectorInput::new_dense(v.clone()), DENSE_VECTOR)
            }
            SearchVector::Sparse(v) => {
                if v.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    VectorInput::new_sparse(v.indices.clone(), v.values.clone()),
                    LEXICAL_VECTOR,
                )
            }
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(filter) = build_filter(filter) else {
            return Ok(Vec::new());
        };
        if !self.exists(ns, OP)? {
            return Ok(Vec::new());
        }
        let mut req = QueryPointsBuilder::new(self.collection(ns))
            .query(Query::new_nearest(input))
            .using(using)
            .limit(limit as u64)
            .with_payload(true);
        if let Some(f) = filter {
            req = req.filter(f);
        }
        let r = self.call(OP, Some(ns), |c| async move { c.query(req).await })?;
        Ok(r.result
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
        let Some(filter) = build_filter(filter) else {
            return Ok(Vec::new());
        };
        if !self.exists(ns, OP)? {
            return Ok(Vec::new());
        }
        let mut req = ScrollPointsBuilder::new(self.collection(ns))
            .limit(limit as u32)
            .with_payload(true)
            .with_vectors(false);
        if let Some(f) = filter {
            req = req.filter(f);
        }
        let r = self.call(OP, Some(ns), |c| async move { c.scroll(req).await })?;
        Ok(r.result
            .into_iter()
            .filter_map(|p| {
                Some(ScoredPoint {
                    id: num_id(p.id)?,
                    score: 0.0,
                    payload: payload_map(p.payload),
                })
            })
            .collect())
    }

    fn count(&self, ns: &Namespace) -> crate::Result<u64> {
        const OP: &str = "count";
        if !self.exists(ns, OP)? {
            return Ok(0);
        }
        let n = self.collection(ns);
        let r = self.call(OP, Some(ns), |c| async move {
            c.count(CountPointsBuilder::new(n).exact(true)).await
        })?;
        Ok(r.result.map(|r| r.count).unwrap_or(0))
    }

    /// Writes are made with `wait = true`: acknowledged means applied and in the server's WAL.
    fn flush(&self) -> crate::Result<()> {
        Ok(())
    }

    /// The server optimizes in the background.
    fn optimize(&self, _ns: &Namespace) -> crate::Result<()> {
        Ok(())
    }
}
