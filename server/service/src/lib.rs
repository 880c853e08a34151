//! codemem-service: the façade every protocol adapter calls.
//!
//! Owns a `Project` (one workspace root and its data dir): walking the workspace with
//! .gitignore rules, the incremental, resumable index pipeline (chunk → cache lookup →
//! embed → upsert), hybrid search with reciprocal rank fusion, status and freshness.
//!
//! It must not know LSP, MCP or the command line: adapters translate requests into these calls.

mod cache;
mod error;
mod indexer;
mod lock;
mod manifest;
pub mod paths;
mod project;
mod search;
mod walk;

pub use error::{ServiceError, Result};
pub use indexer::{IndexEvent, IndexOptions, IndexStats, ProgressSink, Skipped};
pub use lock::LockInfo;
pub use project::{NamespaceStatus, OpenOptions, Project, ProjectStatus};
pub use search::{Freshness, SearchResponse};
pub use walk::{decode_text, is_generated, walk, Walk, WalkedFile};
