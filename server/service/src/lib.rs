//! codemem-service: the façade every protocol adapter calls.
//!
//! Owns a `Project` (one workspace root and its data dir): walking the workspace with
//! .gitignore rules, the incremental, resumable index pipeline (chunk → cache lookup →
//! embed → upsert), hybrid search with reciprocal rank fusion, status and freshness,
//! symbols (exact + fuzzy), memories (remember / recall / forget) and unsaved-buffer overlays.
//! A `Workspace` holds the projects of a long-running server: background indexing per root,
//! a file watcher, open documents (ropey) and an event bus.
//!
//! It must not know LSP, MCP or the command line: adapters translate requests into these calls.

mod cache;
pub mod context;
mod documents;
mod error;
mod indexer;
mod lock;
mod manifest;
mod memory;
mod overlay;
pub mod paths;
mod project;
mod rank;
pub mod refs;
mod scope;
mod search;
pub mod symbols;
mod team;
mod walk;
mod workspace;

/// The model type front ends pass around, so they need not depend on codemem-embed.
pub use codemem_embed::Embedder;
pub use context::ContextQuery;
pub use documents::{Position, TextChange};
pub use error::{Result, ServiceError};
pub use indexer::{IndexEvent, IndexOptions, IndexStats, Progress, ProgressSink, Skipped};
pub use lock::LockInfo;
pub use memory::{Memory, NewMemory, RecallHit, RecallQuery, RecallResponse};
pub use overlay::OverlayChange;
pub use project::{
    probe_backends, BackendProbe, NamespaceStatus, OpenOptions, Project, ProjectStatus,
};
pub use refs::{Callee, Callees, RefDefinition, RefQuery, RefSite, References};
pub use scope::NamespaceScope;
pub use search::{Freshness, SearchResponse};
pub use symbols::{match_score, SymbolDef, SymbolMatch};
pub use team::{ChangeEvent, Synced};
pub use walk::{decode_text, is_generated, walk, Walk, WalkedFile};
pub use workspace::{
    BackendStatus, Hub, LoadModel, NamespaceInfo, RootStatus, Workspace, WorkspaceEvent,
    WorkspaceOptions, WorkspaceStatus,
};
