//! The rmcp `ServerHandler`: lists the tools, runs each call on a blocking thread, checks the
//! caller's token scope, reports reindex progress and records writes in the audit log.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codemem_service::{IndexEvent, Workspace};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, DiscoverRequestMethod, DiscoverResult,
    Implementation, InitializeRequestParams, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::audit::{AuditLog, AuditRecord};
use crate::auth::Principal;
use crate::tools::{self, failure_result, parse_args, ToolFailure, ToolResult};

const INSTRUCTIONS: &str = "codemem indexes this workspace's code and docs (local embeddings + identifier-aware lexical index) and keeps durable notes (memories). Start with `recall` to learn what is known about a task, use `search_code` for questions about the code and `find_symbol` for definitions by name, and `remember` what you learn that the next session should know.";

#[derive(Clone)]
pub struct CodememServer {
    ws: Arc<Workspace>,
    /// This session's choice of projects (HTTP only): `None` on stdio, where the session's
    /// roots come from the front end.
    selection: Option<Arc<Selection>>,
    audit: Arc<AuditLog>,
    /// The caller when the transport has no tokens (stdio: the user who started the process).
    transport_principal: Option<Principal>,
    tools: Arc<Vec<Tool>>,
}

impl CodememServer {
    pub fn new(
        ws: Arc<Workspace>,
        audit: Arc<AuditLog>,
        transport_principal: Option<Principal>,
    ) -> Self {
        CodememServer {
            ws,
            selection: None,
            audit,
            transport_principal,
            tools: Arc::new(tools::tools()),
        }
    }

    /// A copy for one new HTTP session, which may pick its projects through the `root` query
    /// parameter of the endpoint URL or through MCP roots (see [`Selection`]).
    pub(crate) fn for_http_session(&self) -> Self {
        CodememServer {
            selection: Some(Arc::new(Selection::default())),
            ..self.clone()
        }
    }

    /// The workspace this call works on: the session's chosen projects, else every project
    /// of the server. Waits (up to [`ROOTS_WAIT`]) while the client's MCP roots are listed.
    async fn workspace(&self) -> Arc<Workspace> {
        let Some(sel) = &self.selection else {
            return self.ws.clone();
        };
        // Listing the roots is bounded by ROOTS_WAIT; opening the chosen projects (a data-dir
        // lock, the first model load) may take longer, and a call must not run on every
        // project meanwhile.
        let mut rx = sel.pending.subscribe();
        let _ = tokio::time::timeout(SELECT_WAIT, rx.wait_for(|pending| !pending)).await;
        sel.chosen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| self.ws.clone())
    }

    /// Narrows this session to `roots` (policy in `Workspace::select`).
    async fn select(&self, roots: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
        let Some(sel) = self.selection.clone() else {
            return Ok(Vec::new());
        };
        let base = self.ws.clone();
        let may_open = sel.may_open.load(Ordering::SeqCst);
        let view = tokio::task::spawn_blocking(move || base.select(&roots, may_open))
            .await
            .map_err(|e| format!("internal error opening the projects: {e}"))?
            .map_err(|e| e.to_string())?;
        let chosen = view.roots();
        *sel.chosen.write().unwrap_or_else(|e| e.into_inner()) = Some(view);
        Ok(chosen)
    }

    /// Asks the client for its MCP roots and narrows the session to their `file://` folders.
    /// A client without roots, or one that fails to answer, keeps every project.
    // MCP roots are deprecated by SEP-2577 but are what today's agents (and the SDKs) send.
    #[allow(deprecated)]
    async fn select_client_roots(&self, peer: &rmcp::Peer<RoleServer>) {
        let Some(sel) = self.selection.clone() else {
            return;
        };
        let me = sel.listing.fetch_add(1, Ordering::SeqCst) + 1;
        let listed = tokio::time::timeout(ROOTS_WAIT, peer.list_roots()).await;
        let paths: Option<Vec<PathBuf>> = match listed {
            Ok(Ok(list)) => Some(
                list.roots
                    .iter()
                    .filter_map(|r| file_uri_path(&r.uri))
                    .collect(),
            ),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "the MCP client did not list its roots; the session's projects stay as they were");
                None
            }
            Err(_) => {
                tracing::info!("the MCP client did not list its roots in time; the session's projects stay as they were");
                None
            }
        };
        // A newer listing started meanwhile: it decides.
        if sel.listing.load(Ordering::SeqCst) == me {
            match paths {
                Some(p) if p.is_empty() => {
                    tracing::info!("the MCP client listed no file:// roots; the session's projects stay as they were")
                }
                Some(p) => match self.select(p).await {
                    Ok(chosen) => {
                        tracing::info!(roots = ?chosen, "MCP session narrowed to its client's roots")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the MCP client's roots cannot be selected; the session's projects stay as they were")
                    }
                },
                None => {}
            }
            sel.pending.send_replace(false);
        }
    }

    fn principal(&self, ctx: &RequestContext<RoleServer>) -> Option<Principal> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Principal>().cloned())
            .or_else(|| self.transport_principal.clone())
    }

    async fn blocking<F>(&self, f: F) -> ToolResult
    where
        F: FnOnce(&Workspace) -> ToolResult + Send + 'static,
    {
        let ws = self.workspace().await;
        match tokio::task::spawn_blocking(move || f(&ws)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("tool call failed inside the service: {e}");
                Err(ToolFailure("codemem hit an internal error answering this call; the server keeps running, try again or report it".into()))
            }
        }
    }

    async fn call(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(who) = self.principal(&ctx) else {
            return Ok(failure_result(ToolFailure(
                "no credentials on this request".into(),
            )));
        };
        let name = req.name.to_string();
        let args = req.arguments;
        let result: ToolResult = match name.as_str() {
            "search_code" => self.read(&name, args, who, tools::search_code).await,
            "find_symbol" => self.read(&name, args, who, tools::find_symbol).await,
            "get_context" => self.read(&name, args, who, tools::get_context).await,
            "find_references" => self.read(&name, args, who, tools::find_references).await,
            "callers" => self.read(&name, args, who, tools::callers).await,
            "callees" => self.read(&name, args, who, tools::callees).await,
            "recall" => self.read(&name, args, who, tools::recall).await,
            "index_status" => {
                self.read(&name, args, who, |ws, who, _: tools::NoArgs| {
                    tools::index_status(ws, who)
                })
                .await
            }
            "list_namespaces" => {
                self.read(&name, args, who, |ws, who, _: tools::NoArgs| {
                    tools::list_namespaces(ws, who)
                })
                .await
            }
            "remember" => match parse_args::<tools::RememberArgs>(&name, args) {
                Ok(a) => {
                    let ns = a.namespace.clone();
                    let w = who.clone();
                    let r = self.blocking(move |ws| tools::remember(ws, &w, a)).await;
                    let id = r.as_ref().ok().and_then(|r| {
                        r.structured_content
                            .as_ref()?
                            .get("id")?
                            .as_str()
                            .map(String::from)
                    });
                    self.audit(&who, &name, Some(&ns), id.as_deref(), &r);
                    r
                }
                Err(e) => self.audited_failure(&who, &name, e),
            },
            "forget" => match parse_args::<tools::ForgetArgs>(&name, args) {
                Ok(a) => {
                    let id = a.id.clone();
                    let w = who.clone();
                    let r = self.blocking(move |ws| tools::forget(ws, &w, a)).await;
                    self.audit(&who, &name, None, Some(&id), &r);
                    r
                }
                Err(e) => self.audited_failure(&who, &name, e),
            },
            "reindex" => match parse_args::<tools::ReindexArgs>(&name, args) {
                Ok(a) => {
                    let r = self.reindex(&who, a, &ctx).await;
                    self.audit(&who, &name, None, None, &r);
                    r
                }
                Err(e) => self.audited_failure(&who, &name, e),
            },
            other => {
                let known: Vec<String> = self.tools.iter().map(|t| t.name.to_string()).collect();
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool `{other}`; available tools: {}",
                        known.join(", ")
                    ),
                    None,
                ));
            }
        };
        Ok(match result {
            Ok(r) => r,
            Err(f) => failure_result(f),
        })
    }

    /// A read-only tool: parse its arguments, run it on a blocking thread.
    async fn read<A, F>(
        &self,
        name: &str,
        args: Option<rmcp::model::JsonObject>,
        who: Principal,
        tool: F,
    ) -> ToolResult
    where
        A: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: FnOnce(&Workspace, &Principal, A) -> ToolResult + Send + 'static,
    {
        let a = parse_args::<A>(name, args)?;
        self.blocking(move |ws| tool(ws, &who, a)).await
    }

    /// A write refused while reading its arguments is still a write attempt: it goes to the
    /// audit log (ok = false, with the error) like any other.
    fn audited_failure(&self, who: &Principal, tool: &str, e: ToolFailure) -> ToolResult {
        let r = Err(e);
        self.audit(who, tool, None, None, &r);
        r
    }

    fn audit(
        &self,
        who: &Principal,
        tool: &str,
        namespace: Option<&str>,
        id: Option<&str>,
        r: &ToolResult,
    ) {
        let cancelled = r
            .as_ref()
            .ok()
            .and_then(|r| r.structured_content.as_ref()?.get("cancelled")?.as_bool())
            .unwrap_or(false);
        let err = match r {
            Err(f) => Some(f.0.as_str()),
            Ok(_) if cancelled => Some("cancelled"),
            Ok(_) => None,
        };
        self.audit.record(AuditRecord {
            time: String::new(),
            token: &who.name,
            tool,
            namespace,
            id,
            ok: r.is_ok() && !cancelled,
            error: err,
        });
    }

    async fn reindex(
        &self,
        who: &Principal,
        a: tools::ReindexArgs,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        who.require_write("reindex")?;
        if who.namespaces.is_some() {
            // A run covers every namespace of a root, and its counters and progress describe them all.
            return Err(ToolFailure(format!(
                "the token `{}` is limited to namespaces and cannot reindex (a run covers every namespace); \
                 the index follows file changes by itself, or use an unrestricted write token",
                who.name
            )));
        }
        let ws = self.workspace().await;
        let target = {
            let ws = ws.clone();
            match tokio::task::spawn_blocking(move || tools::reindex_target(&ws, &a)).await {
                Ok(t) => t?,
                Err(_) => return Err(ToolFailure("internal error resolving the path".into())),
            }
        };
        let token: Option<ProgressToken> = ctx.meta.get_progress_token();
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, String)>();
        // Cancellation (notifications/cancelled, or the client going away) stops the run.
        let ct = ctx.ct.clone();
        let flag = cancel.clone();
        let watcher = tokio::spawn(async move {
            ct.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        });
        let forward = {
            let peer = ctx.peer.clone();
            tokio::spawn(async move {
                while let Some((progress, message)) = rx.recv().await {
                    if let Some(t) = &token {
                        let p = ProgressNotificationParam::new(t.clone(), progress)
                            .with_total(100.0)
                            .with_message(message);
                        if peer.notify_progress(p).await.is_err() {
                            break;
                        }
                    }
                }
            })
        };
        let flag = cancel.clone();
        let run = tokio::task::spawn_blocking(move || {
            let last = std::sync::Mutex::new(0.0f64);
            let sink = |e: IndexEvent| {
                let p = e.progress();
                let (pct, msg) = (p.percent, p.message);
                // Progress must only grow, also across several roots.
                let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                if pct > *l {
                    *l = pct;
                    let _ = tx.send((pct, msg));
                }
            };
            let r = tools::reindex(&ws, target, &sink, &flag);
            // A run that had nothing to do may skip the last events; the client still sees 100 %.
            if r.is_ok() && *last.lock().unwrap_or_else(|p| p.into_inner()) < 100.0 {
                let _ = tx.send((100.0, "done".to_string()));
            }
            r
        })
        .await;
        watcher.abort();
        let _ = forward.await;
        match run {
            Ok(r) => r,
            Err(_) => Err(ToolFailure(
                "internal error while re-indexing; the next run resumes".into(),
            )),
        }
    }
}

/// How long the client has to list its MCP roots.
const ROOTS_WAIT: Duration = Duration::from_secs(5);
/// How long a call waits for the session's projects to be chosen and opened.
const SELECT_WAIT: Duration = Duration::from_secs(120);

/// One HTTP session's choice of projects.
struct Selection {
    chosen: std::sync::RwLock<Option<Arc<Workspace>>>,
    /// True from `initialize` (the client declared roots) until its roots are listed.
    pending: tokio::sync::watch::Sender<bool>,
    /// The session's caller may open projects that are not open yet (an unrestricted write
    /// token); set at `initialize`.
    may_open: std::sync::atomic::AtomicBool,
    /// The URL named the projects: MCP roots (and their changes) are not asked for.
    from_url: std::sync::atomic::AtomicBool,
    /// Numbers root listings, so an older one never overwrites a newer one.
    listing: std::sync::atomic::AtomicU64,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            chosen: std::sync::RwLock::new(None),
            pending: tokio::sync::watch::Sender::new(false),
            may_open: std::sync::atomic::AtomicBool::new(false),
            from_url: std::sync::atomic::AtomicBool::new(false),
            listing: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// The path part of a `file://` URI: `file:///p` (empty host) or `file://localhost/p`;
/// `None` for other schemes.
fn file_scheme_path(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("file://")?;
    Some(rest.strip_prefix("localhost").unwrap_or(rest))
}

/// The local path of a `file://` URI (percent-decoded); `None` for other schemes.
fn file_uri_path(uri: &str) -> Option<PathBuf> {
    let path = file_scheme_path(uri)?;
    if !path.starts_with('/') {
        return None;
    }
    Some(PathBuf::from(percent_decode(path)?))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `root` query parameters of the request that opened an HTTP session
/// (`/mcp?root=/abs/project&root=...`); a `file://` URI is accepted too.
fn url_roots(ctx: &RequestContext<RoleServer>) -> Result<Vec<PathBuf>, String> {
    let Some(parts) = ctx.extensions.get::<axum::http::request::Parts>() else {
        return Ok(Vec::new());
    };
    let Some(query) = parts.uri.query() else {
        return Ok(Vec::new());
    };
    let mut roots = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "root" {
            continue;
        }
        // Decoded once (a `file://` value too); `+` stays `+` (send a space as `%20`).
        let decoded = percent_decode(v).ok_or_else(|| {
            format!("the `root` URL parameter `{v}` is not valid percent-encoded UTF-8")
        })?;
        roots.push(PathBuf::from(
            file_scheme_path(&decoded).unwrap_or(&decoded),
        ));
    }
    Ok(roots)
}

impl ServerHandler for CodememServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("codemem", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// The handshake-era protocol versions: the tools need a session (progress, cancellation).
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    /// An HTTP session picks its projects here: the endpoint URL's `root` parameters, else
    /// (when the client declares the capability) its MCP roots, listed once it is initialized.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        ctx.peer.set_peer_info(request.clone());
        let answer = self.negotiate_initialize(&request)?;
        if let Some(sel) = &self.selection {
            let who = self.principal(&ctx);
            sel.may_open.store(
                who.is_some_and(|w| w.can_write() && w.namespaces.is_none()),
                Ordering::SeqCst,
            );
            let roots = url_roots(&ctx).map_err(|e| ErrorData::invalid_params(e, None))?;
            if !roots.is_empty() {
                sel.from_url.store(true, Ordering::SeqCst);
                self.select(roots)
                    .await
                    .map_err(|e| ErrorData::invalid_params(e, None))?;
            } else if request.capabilities.roots.is_some() {
                sel.pending.send_replace(true);
            }
        }
        Ok(answer)
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        if self.selection.as_ref().is_some_and(|s| *s.pending.borrow()) {
            let this = self.clone();
            tokio::spawn(async move { this.select_client_roots(&ctx.peer).await });
        }
    }

    async fn on_roots_list_changed(&self, ctx: NotificationContext<RoleServer>) {
        if let Some(sel) = self
            .selection
            .as_ref()
            .filter(|s| !s.from_url.load(Ordering::SeqCst))
        {
            sel.pending.send_replace(true);
            let this = self.clone();
            tokio::spawn(async move { this.select_client_roots(&ctx.peer).await });
        }
    }

    /// Clients that probe with `server/discover` first get "method not found" and fall back
    /// to `initialize` on the same connection.
    async fn discover(
        &self,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        Err(ErrorData::method_not_found::<DiscoverRequestMethod>())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, ctx).await.map(CallToolResponse::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_become_local_paths() {
        for (uri, want) in [
            ("file:///home/me/proj", Some("/home/me/proj")),
            ("file://localhost/srv/a%20b", Some("/srv/a b")),
            ("file:///caf%C3%A9", Some("/café")),
            ("https://example.com/x", None),
            ("file://server/share", None),
            ("file:///bad%zz", None),
            ("file:///cut%2", None),
        ] {
            assert_eq!(file_uri_path(uri), want.map(PathBuf::from), "{uri}");
        }
    }
}
