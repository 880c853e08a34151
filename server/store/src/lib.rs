//! codemem-store: where chunk vectors live.
//!
//! Owns the `VectorStore` trait (one isolated collection/shard per namespace, each point with
//! an optional dense vector, a lexical sparse vector and a chunk payload) and its backends:
//! the embedded one on qdrant-edge (`EdgeStore`) and the Qdrant server (`QdrantStore`, gRPC), both
//! held to the same contract suite (`contract` module).
//!
//! It must not know how chunks are made or embedded, nor anything about LSP or MCP.

pub mod contract;
mod edge;
mod outbox;
mod server;
pub mod testing;

pub use edge::EdgeStore;
pub use outbox::{GuardedStore, Outbox, DEFAULT_REPLAY_INTERVAL};
pub use server::{collection_prefix, QdrantHealth, QdrantOptions, QdrantStore};

use codemem_core::{lexical::SparseVec, Namespace};
use serde_json::{Map, Value};

pub const DENSE_VECTOR: &str = "dense";
pub const LEXICAL_VECTOR: &str = "lexical";
/// Payload flag (`true`) of a point whose dense vector comes from the static first pass, not
/// the transformer. A query vector of one model is only compared with vectors of the same
/// model: searches filter on it ([`SearchFilter::static_dense`]), and `set_dense` clears it.
pub const STATIC_FLAG: &str = "static_dense";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("vector store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("vector store operation `{op}` on namespace `{namespace}` failed: {reason}")]
    Operation {
        op: &'static str,
        namespace: String,
        reason: String,
    },
    #[error("vector has {got} dimensions; this store holds {expected}-dimensional vectors")]
    Dimension { expected: usize, got: usize },
    /// The remote server could not be reached or its circuit breaker is open: the request was
    /// not applied (a write may be retried later).
    #[error("{backend} at {url} is unavailable: {reason}")]
    Unavailable {
        backend: &'static str,
        url: String,
        reason: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One point to write.
#[derive(Debug, Clone)]
pub struct StorePoint {
    pub id: u64,
    /// `None` while the chunk waits for its embedding; lexical search works meanwhile.
    pub dense: Option<Vec<f32>>,
    pub sparse: SparseVec,
    /// Chunk metadata (path, symbol, lines, content, ...); keyword-indexed fields are listed
    /// in [`INDEXED_FIELDS`].
    pub payload: Map<String, Value>,
}

/// Payload fields with a keyword index (filters on them are cheap).
pub const INDEXED_FIELDS: [&str; 4] = ["path", "language", "symbol_lc", "kind"];

/// Which vector a search ranks by.
#[derive(Debug, Clone)]
pub enum SearchVector {
    Dense(Vec<f32>),
    Sparse(SparseVec),
}

/// Conjunctive filter; every `Some` must match.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Path must be one of these.
    pub paths: Option<Vec<String>>,
    pub language: Option<String>,
    /// Lower-cased symbol must equal this.
    pub symbol_lc: Option<String>,
    /// Chunk kind must equal this (`"function"`, `"memory"`, ...).
    pub kind: Option<String>,
    /// `Some(true)`: only memories; `Some(false)`: no memories.
    pub memory: Option<bool>,
    /// `Some(true)`: only unsaved-buffer points; `Some(false)`: none of them.
    pub unsaved: Option<bool>,
    /// At least one of these tags.
    pub tags: Option<Vec<String>>,
    /// `Some(true)`: only points whose dense vector is the static one ([`STATIC_FLAG`]);
    /// `Some(false)`: none of them.
    pub static_dense: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ScoredPoint {
    pub id: u64,
    pub score: f32,
    pub payload: Map<String, Value>,
}

/// A namespace-partitioned vector store. All methods are synchronous and thread-safe;
/// callers on an async runtime use `spawn_blocking`.
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces points (by id) in `ns`.
    fn upsert(&self, ns: &Namespace, points: Vec<StorePoint>) -> Result<()>;
    /// Adds or replaces the dense vector of existing points, keeping the rest (but for
    /// [`STATIC_FLAG`], which it removes: the new vector is the transformer's).
    fn set_dense(&self, ns: &Namespace, vectors: Vec<(u64, Vec<f32>)>) -> Result<()>;
    /// Deletes every point whose `path` payload is one of `paths`.
    fn delete_paths(&self, ns: &Namespace, paths: &[String]) -> Result<()>;
    /// Deletes points by id.
    fn delete_ids(&self, ns: &Namespace, ids: &[u64]) -> Result<()>;
    /// Top `limit` points by `vector`, best first. Points without a dense vector never match
    /// a dense search.
    fn search(
        &self,
        ns: &Namespace,
        vector: &SearchVector,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>>;
    /// Points matching `filter` (no ranking), up to `limit`.
    fn scroll(
        &self,
        ns: &Namespace,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>>;
    /// Number of points in `ns`.
    fn count(&self, ns: &Namespace) -> Result<u64>;
    /// Makes every acknowledged write durable.
    fn flush(&self) -> Result<()>;
    /// Rebuilds search structures after bulk writes (may take seconds; call off the request path).
    fn optimize(&self, ns: &Namespace) -> Result<()>;
}
