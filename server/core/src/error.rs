//! Errors of the core layer.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CoreError {
    #[error("unknown namespace `{name}`; known namespaces: {known}")]
    UnknownNamespace { name: String, known: String },
    #[error("invalid namespace name `{0}`: use 1-32 characters from a-z, 0-9, '-' and '_'")]
    InvalidNamespace(String),
    #[error("invalid path glob `{glob}`: {reason}")]
    InvalidGlob { glob: String, reason: String },
    #[error("invalid configuration in {source_name}: {reason}")]
    Config { source_name: String, reason: String },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
