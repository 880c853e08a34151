//! The rmcp `ServerHandler`: lists the tools, runs each call on a blocking thread, checks the
//! caller's token scope, reports reindex progress and records writes in the audit log.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use codemem_service::{IndexEvent, Workspace};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, DiscoverRequestMethod, DiscoverResult,
    Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProgressToken, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::audit::{AuditLog, AuditRecord};
use crate::auth::Principal;
use crate::tools::{self, failure_result, parse_args, ToolFailure, ToolResult};

const INSTRUCTIONS: &str = "codemem indexes this workspace's code and docs (local embeddings + identifier-aware lexical index) and keeps durable notes (memories). Start with `recall` to learn what is known about a task, use `search_code` for questions about the code and `find_symbol` for definitions by name, and `remember` what you learn that the next session should know.";

#[derive(Clone)]
pub struct CodememServer {
    ws: Arc<Workspace>,
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
            audit,
            transport_principal,
            tools: Arc::new(tools::tools()),
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
        let ws = self.ws.clone();
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
            "search_code" => match parse_args(&name, args) {
                Ok(a) => {
                    self.blocking(move |ws| tools::search_code(ws, &who, a))
                        .await
                }
                Err(e) => Err(e),
            },
            "find_symbol" => match parse_args(&name, args) {
                Ok(a) => {
                    self.blocking(move |ws| tools::find_symbol(ws, &who, a))
                        .await
                }
                Err(e) => Err(e),
            },
            "recall" => match parse_args(&name, args) {
                Ok(a) => self.blocking(move |ws| tools::recall(ws, &who, a)).await,
                Err(e) => Err(e),
            },
            "index_status" => match parse_args::<tools::NoArgs>(&name, args) {
                Ok(_) => self.blocking(move |ws| tools::index_status(ws, &who)).await,
                Err(e) => Err(e),
            },
            "list_namespaces" => match parse_args::<tools::NoArgs>(&name, args) {
                Ok(_) => {
                    self.blocking(move |ws| tools::list_namespaces(ws, &who))
                        .await
                }
                Err(e) => Err(e),
            },
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
        let target = {
            let ws = self.ws.clone();
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
        let ws = self.ws.clone();
        let flag = cancel.clone();
        let run = tokio::task::spawn_blocking(move || {
            let last = std::sync::Mutex::new(0.0f64);
            let sink = |e: IndexEvent| {
                let (pct, msg) = match &e {
                    IndexEvent::Scanned {
                        files,
                        changed,
                        deleted,
                    } => (
                        1.0,
                        format!("scanned {files} files: {changed} changed, {deleted} deleted"),
                    ),
                    IndexEvent::Lexical { done, total } => (
                        1.0 + 49.0 * ratio(*done, *total),
                        format!("lexical index: {done}/{total} files"),
                    ),
                    IndexEvent::Embed { done, total } => (
                        50.0 + 49.0 * ratio(*done, *total),
                        format!("embeddings: {done}/{total} chunks"),
                    ),
                    IndexEvent::Done { .. } => (100.0, "done".to_string()),
                };
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

fn ratio(done: usize, total: usize) -> f64 {
    if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    }
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
