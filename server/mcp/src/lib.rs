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
mod sessions;
mod stdio;
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
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "refusing to serve MCP on {addr} without a bearer token: a non-loopback address is reachable from \
         other machines; set `require_token = true` under [mcp] (the default) or bind 127.0.0.1"
    )]
    InsecureBind { addr: String },
    #[error("{0}")]
    Config(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("MCP over stdio failed: {0}")]
    Stdio(String),
    #[error("the MCP HTTP server failed: {0}")]
    Server(String),
}

/// Serves MCP on stdin/stdout until the client closes stdin. stdout carries only protocol
/// messages; the caller is the local user, with full access (writes are still audited).
pub async fn serve_stdio(ws: Arc<Workspace>) -> Result<(), McpError> {
    serve_io(ws, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one MCP session over a byte stream (stdin/stdout, or a daemon client's socket)
/// until the peer closes it. The caller is the local user, with full access.
pub async fn serve_io<R, W>(ws: Arc<Workspace>, reader: R, writer: W) -> Result<(), McpError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let home = codemem_service::paths::codemem_home();
    let server = CodememServer::new(
        ws,
        Arc::new(AuditLog::new(&home)),
        Some(Principal::full("stdio")),
    );
    // A line guard answers malformed lines itself (stdio.rs); rmcp reads only good ones through
    // an in-memory pipe, and its replies and the guard's errors are written whole, in turn.
    let (to_server, server_in) = tokio::io::duplex(1 << 20);
    let (server_out, from_server) = tokio::io::duplex(1 << 20);
    let (lines, rx) = tokio::sync::mpsc::unbounded_channel();
    let out = tokio::spawn(stdio::write_lines(writer, rx));
    let split = tokio::spawn(stdio::split_output(from_server, lines.clone()));
    let guard = tokio::spawn(stdio::guard_input(reader, to_server, lines));
    let served = async {
        let running = server
            .serve((server_in, server_out))
            .await
            .map_err(|e| McpError::Stdio(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| McpError::Stdio(e.to_string()))?;
        Ok::<(), McpError>(())
    }
    .await;
    // rmcp has stopped (the input ended): write every reply and guard error before returning.
    guard.abort();
    let _ = split.await;
    let _ = out.await;
    served
}
