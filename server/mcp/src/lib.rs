//! codemem-mcp: the MCP adapter (rmcp). Tools over stdio and streamable HTTP, translated to
//! `codemem_service::Workspace` calls; bearer tokens, Host/Origin checks, scopes and the
//! audit log of writes.
//!
//! It knows no storage, ranking or indexing: a tool parses its arguments, checks the caller's
//! scope, calls the workspace on a blocking thread and renders the answer as text plus
//! `structuredContent`.

mod audit;
mod auth;
mod handler;
mod http;
mod tools;

use std::sync::Arc;

use codemem_service::Workspace;
use rmcp::ServiceExt;

pub use audit::{AuditLog, AUDIT_FILE};
pub use auth::{default_token, Principal, DEFAULT_TOKEN_NAME, TOKEN_FILE};
pub use handler::CodememServer;
pub use http::{serve_http, HttpOptions, HttpServer, DEFAULT_PATH};

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(
        "port {port} on {host} is already in use (another `codemem serve` or `codemem lsp`?); choose another \
         with `--port N`, CODEMEM_MCP_PORT=N or `port = N` under [mcp] in codemem.toml (0 picks a free port)"
    )]
    PortInUse { host: String, port: u16 },
    #[error("cannot listen on {addr}: {source}; check mcp.host / --host")]
    Bind { addr: String, source: std::io::Error },
    #[error(
        "refusing to serve MCP on {addr} without a bearer token: a non-loopback address is reachable from \
         other machines; set `require_token = true` under [mcp] (the default) or bind 127.0.0.1"
    )]
    InsecureBind { addr: String },
    #[error("{0}")]
    Config(String),
    #[error("I/O error on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("MCP over stdio failed: {0}")]
    Stdio(String),
    #[error("the MCP HTTP server failed: {0}")]
    Server(String),
}

/// Serves MCP on stdin/stdout until the client closes stdin. stdout carries only protocol
/// messages; the caller is the local user, with full access (writes are still audited).
pub async fn serve_stdio(ws: Arc<Workspace>) -> Result<(), McpError> {
    let home = codemem_embed::assets::codemem_home();
    let server = CodememServer::new(ws, Arc::new(AuditLog::new(&home)), Some(Principal::full("stdio")));
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| McpError::Stdio(e.to_string()))?;
    running.waiting().await.map_err(|e| McpError::Stdio(e.to_string()))?;
    Ok(())
}
