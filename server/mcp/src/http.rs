//! Streamable HTTP: an axum router with the guard (Host, Origin, body size, bearer token)
//! in front of rmcp's session-based streamable HTTP service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use codemem_core::config::McpConfig;
use codemem_service::Workspace;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::auth::{Gate, OriginPolicy, SharedGate, TokenSet};
use crate::handler::CodememServer;
use crate::sessions::Sessions;
use crate::stdio::id_of;
use crate::McpError;

pub const DEFAULT_PATH: &str = "/mcp";

/// Where and how to serve. `config` carries host, port, tokens and limits (`[mcp]`).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The codemem home: default token file and audit log.
    pub home: PathBuf,
    pub config: McpConfig,
    /// URL path of the endpoint, `/mcp`.
    pub path: String,
}

impl HttpOptions {
    pub fn new(home: PathBuf, config: McpConfig) -> HttpOptions {
        HttpOptions {
            home,
            config,
            path: DEFAULT_PATH.into(),
        }
    }
}

/// A running endpoint. Dropping it does not stop it; cancel the token given to `serve_http`.
pub struct HttpServer {
    addr: SocketAddr,
    path: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// Waits until the server stops (its shutdown token was cancelled).
    pub async fn wait(self) -> Result<(), McpError> {
        match self.task.await {
            Ok(r) => r.map_err(|e| McpError::Server(e.to_string())),
            Err(e) => Err(McpError::Server(e.to_string())),
        }
    }
}

fn plain(status: StatusCode, msg: String) -> Response {
    let mut r = (status, format!("{msg}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"codemem\""),
        );
    }
    r
}

/// A JSON-RPC error as the whole HTTP response.
fn rpc_error(status: StatusCode, id: serde_json::Value, code: i64, message: String) -> Response {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// Checks a POST body: `Ok(true)` for an `initialize` request (it creates a session),
/// `Ok(false)` for any other message rmcp can read, `Err` = the 400 answer.
#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, built once per bad request
fn check_body(bytes: &[u8]) -> Result<bool, Response> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            serde_json::Value::Null,
            -32700,
            format!("parse error: {e}; the body must be one JSON-RPC message"),
        )
    })?;
    match serde_json::from_value::<ClientJsonRpcMessage>(v.clone()) {
        Ok(_) => Ok(v.get("method").and_then(|m| m.as_str()) == Some("initialize")),
        Err(e) => Err(rpc_error(
            StatusCode::BAD_REQUEST,
            id_of(&v),
            -32600,
            format!("invalid request: {e}; send a JSON-RPC 2.0 request, notification or response object"),
        )),
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

async fn guard(State(gate): State<SharedGate>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| {
            // HTTP/2 carries the authority in the URI instead.
            req.uri().authority().map(|a| a.to_string())
        });
    if let Err(why) = gate.origins.check_host(host.as_deref()) {
        tracing::warn!("refused a request: {why}");
        return plain(StatusCode::FORBIDDEN, why);
    }
    let origin = match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => None,
        Some(Ok(o)) => Some(o),
        Some(Err(_)) => {
            return plain(
                StatusCode::FORBIDDEN,
                "the Origin header is not valid text".into(),
            )
        }
    };
    if let Err(why) = gate.origins.check_origin(origin) {
        tracing::warn!("refused a request: {why}");
        return plain(StatusCode::FORBIDDEN, why);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gate.max_body_bytes as u64) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes (mcp.max_body_bytes); send less",
                gate.max_body_bytes
            ),
        );
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(principal) = gate.tokens.authenticate(auth) else {
        let msg = if auth.is_none() {
            "missing bearer token: send `Authorization: Bearer <token>`; `codemem token` prints the token"
        } else {
            "wrong bearer token: `codemem token` prints the right one (or see [[mcp.token]] in codemem.toml)"
        };
        return plain(StatusCode::UNAUTHORIZED, msg.into());
    };
    // A session belongs to the token that created it; to any other it does not exist.
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if session
        .as_deref()
        .is_some_and(|s| !gate.sessions.may_use(s, &principal.name))
    {
        return plain(
            StatusCode::NOT_FOUND,
            "session not found for this token; start a new session with `initialize` (a session belongs to the token that created it)".into(),
        );
    }
    let is_delete = req.method() == Method::DELETE;
    let mut reservation = None;
    let mut req = req;
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, gate.max_body_bytes).await {
            Ok(b) => b,
            Err(e) if e.to_string().contains("length limit") => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is larger than {} bytes (mcp.max_body_bytes); send less",
                        gate.max_body_bytes
                    ),
                )
            }
            Err(e) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            }
        };
        let initialize = match check_body(&bytes) {
            Ok(i) => i,
            Err(answer) => return answer,
        };
        if initialize && session.is_none() {
            match gate.sessions.reserve(&principal.name).await {
                Ok(r) => reservation = Some(r),
                Err(full) => {
                    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                        .map(|v| id_of(&v))
                        .unwrap_or_default();
                    return rpc_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        id,
                        -32000,
                        format!(
                            "the token `{}` already holds {} live MCP sessions (mcp.max_sessions_per_token = {}); reuse one, \
                             close idle ones with DELETE {} and their Mcp-Session-Id header, or wait until they expire after 5 minutes idle",
                            principal.name,
                            full.live,
                            full.max,
                            req_path(&parts)
                        ),
                    );
                }
            }
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(principal);
    let resp = next.run(req).await;
    if let Some(r) = reservation {
        if let Some(id) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            r.created(id);
        }
    }
    if is_delete && resp.status().is_success() {
        if let Some(s) = &session {
            gate.sessions.closed(s);
        }
    }
    resp
}

fn req_path(parts: &axum::http::request::Parts) -> String {
    parts.uri.path().to_string()
}

/// Binds `opts.config.host:port` and serves MCP at `opts.path` until `shutdown` is cancelled.
pub async fn serve_http(
    ws: Arc<Workspace>,
    opts: HttpOptions,
    shutdown: CancellationToken,
) -> Result<HttpServer, McpError> {
    let cfg = &opts.config;
    let tokens = TokenSet::load(&opts.home, cfg)?;
    let bind = format!("{}:{}", cfg.host, cfg.port);
    let listener = match tokio::net::TcpListener::bind(bind.as_str()).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(McpError::PortInUse {
                host: cfg.host.clone(),
                port: cfg.port,
            })
        }
        Err(e) => {
            return Err(McpError::Bind {
                addr: bind,
                source: e,
            })
        }
    };
    let addr = listener.local_addr().map_err(|e| McpError::Bind {
        addr: bind.clone(),
        source: e,
    })?;
    if !addr.ip().is_loopback() && tokens.is_open() {
        return Err(McpError::InsecureBind {
            addr: addr.to_string(),
        });
    }
    let manager = Arc::new(LocalSessionManager::default());
    let gate: SharedGate = Arc::new(Gate {
        origins: OriginPolicy::new(cfg, &cfg.host),
        tokens,
        max_body_bytes: cfg.max_body_bytes,
        sessions: Arc::new(Sessions::new(manager.clone(), cfg.max_sessions_per_token)),
    });
    let audit = Arc::new(AuditLog::new(&opts.home));
    let server = CodememServer::new(ws, audit, None);
    let mut rmcp_cfg = StreamableHttpServerConfig::default()
        // The guard checks Host against loopback names plus mcp.allowed_hosts.
        .disable_allowed_hosts()
        .with_cancellation_token(shutdown.child_token());
    rmcp_cfg.max_request_body_bytes = cfg.max_body_bytes;
    let service: StreamableHttpService<CodememServer, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.for_http_session()), manager, rmcp_cfg);
    let path = if opts.path.starts_with('/') {
        opts.path.clone()
    } else {
        format!("/{}", opts.path)
    };
    let router = axum::Router::new()
        .nest_service(&path, service)
        .layer(axum::middleware::from_fn_with_state(gate, guard))
        .fallback(|| async {
            plain(
                StatusCode::NOT_FOUND,
                "not found; the MCP endpoint is /mcp".into(),
            )
        });
    let task = tokio::spawn(async move {
        // Small SSE frames must not wait for the client's delayed ACK (Nagle: +40 ms per call).
        let listener =
            axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY not set: {e}");
                }
            });
        axum::serve(listener, router.into_make_service())
            .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
            .await
    });
    tracing::info!("MCP over streamable HTTP at http://{addr}{path}");
    Ok(HttpServer { addr, path, task })
}
