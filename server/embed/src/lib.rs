//! codemem-embed: text → dense vectors, locally.
//!
//! Owns the `Embedder` trait, the ONNX Runtime implementation (`OnnxEmbedder`, fastembed with
//! all-MiniLM-L6-v2, 384 dims), asset discovery/verification under the codemem home
//! (`assets`), and a deterministic `HashEmbedder` for unit tests of other layers.
//!
//! It must not know about storage, chunking rules, LSP or MCP.

pub mod assets;
mod hash;
mod onnx;
pub mod static_model;

pub use hash::HashEmbedder;
pub use onnx::OnnxEmbedder;
pub use static_model::StaticEmbedder;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{what} not found at {path}; run `scripts/setup` (or set CODEMEM_HOME to where it installed the assets)")]
    MissingAsset { what: String, path: String },
    #[error("{what} at {path} is corrupt (sha256 {got}, expected {expected}); run `scripts/setup --force`")]
    CorruptAsset {
        what: String,
        path: String,
        got: String,
        expected: String,
    },
    #[error("could not load ONNX Runtime from {path}: {reason}. Run `scripts/setup --force` to reinstall it")]
    Runtime { path: String, reason: String },
    #[error("could not load the embedding model: {0}")]
    Model(String),
    #[error("embedding failed: {0}")]
    Inference(String),
}

pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// Turns texts into L2-normalised vectors of `dim()` dimensions.
pub trait Embedder: Send + Sync {
    /// Identifies model + settings that change outputs; part of the embedding cache key.
    fn model_id(&self) -> &str;
    fn dim(&self) -> usize;
    /// One call per batch; callers bound the batch size.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// One search query. Implementations may use a separate session so a query does not
    /// wait behind an indexing batch.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self.embed(&[text.to_string()])?.pop().unwrap_or_default())
    }
    /// A much faster, weaker model whose vectors stand in until this one's are computed (the
    /// static table: [`StaticEmbedder`]); `None` when there is none. Its vectors have the same
    /// dimension but are comparable only with each other. A text it knows nothing of gets an
    /// all-zero vector.
    fn first_pass(&self) -> Option<&dyn Embedder> {
        None
    }
}
