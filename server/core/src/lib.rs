//! codemem-core: the vocabulary every other crate shares.
//!
//! Owns the domain types (`Namespace`, `Chunk`, `Hit`, `Query`, `ProjectId`), configuration
//! (`codemem.toml` + `CODEMEM_*` overrides), file routing to namespaces, syntax-aware chunking
//! (tree-sitter) and the identifier-aware lexical tokenizer.
//!
//! It must not know about storage engines, embedding runtimes, async runtimes, the network,
//! LSP or MCP: everything here is pure and synchronous.

pub mod chunk;
pub mod config;
pub mod error;
pub mod lang;
pub mod lexical;
pub mod route;
pub mod types;

pub use config::Config;
pub use error::{CoreError, Result};
pub use lang::Language;
pub use types::*;
