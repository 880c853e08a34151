//! Errors of the service layer; each says what the user can do next.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Core(#[from] codemem_core::CoreError),
    #[error(transparent)]
    Store(#[from] codemem_store::StoreError),
    #[error(transparent)]
    Kv(#[from] codemem_kv::KvError),
    #[error(transparent)]
    Embed(#[from] codemem_embed::EmbedError),
    #[error("the index at {data_dir} is in use by {holder}; wait for it to finish (or stop it) and try again")]
    Busy { data_dir: String, holder: String },
    #[error("{path} is not indexed yet; run `codemem index` in it first")]
    NotIndexed { path: String },
    #[error("workspace root {path}: {reason}")]
    Root { path: String, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("indexing was cancelled; run it again to resume where it stopped")]
    Cancelled,
    #[error("corrupt index metadata ({0}); delete the project's data dir and re-index")]
    Corrupt(String),
    /// A request argument is wrong; the message says what to send instead.
    #[error("{0}")]
    InvalidInput(String),
    #[error("{path} is outside the workspace roots ({roots}); give a path inside one of them")]
    OutsideWorkspace { path: String, roots: String },
    #[error("indexing {root} failed: {reason}")]
    IndexFailed { root: String, reason: String },
    #[error("no workspace folder is open; open a folder (or start codemem with --root PATH)")]
    NoRoot,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ServiceError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// True for errors caused by the request (bad query, unknown namespace, path outside the
    /// workspace), not by the system.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            ServiceError::Core(_)
                | ServiceError::InvalidInput(_)
                | ServiceError::OutsideWorkspace { .. }
        )
    }
}
