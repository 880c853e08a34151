//! codemem-lsp: the LSP adapter (tower-lsp-server) behind `codemem lsp`.
//!
//! Handlers translate LSP to `codemem_service::Workspace` calls and back (`convert`), run
//! blocking work on tokio's blocking pool, and forward workspace events as `$/progress`,
//! `codemem/status` and code-lens refreshes (`events`). It knows no storage, no model and no
//! MCP: the binary passes in how to load the model and how to start the MCP endpoint.

mod convert;
mod events;
mod framing;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use codemem_core::{Namespace, Query, SearchMode};
use codemem_service::symbols::{enclosing, memories_of};
use codemem_service::{Embedder, Hub, NewMemory, ServiceError, Workspace, WorkspaceOptions};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub const COMMANDS: [&str; 5] = [
    "codemem.reindex",
    "codemem.status",
    "codemem.remember",
    "codemem.findSimilar",
    "codemem.showMemories",
];

/// Loads the embedding model (`Ok(None)`: not installed; lexical search only).
pub type LoadEmbedder =
    Arc<dyn Fn() -> std::result::Result<Option<Arc<dyn Embedder>>, String> + Send + Sync>;
/// Starts the MCP HTTP endpoint over the editor's workspace; returns its URL.
pub type StartMcp = Arc<
    dyn Fn(
            Arc<Workspace>,
            Value,
        ) -> Pin<Box<dyn Future<Output = std::result::Result<String, String>> + Send>>
        + Send
        + Sync,
>;

pub struct LspOptions {
    pub home: PathBuf,
    pub load_embedder: LoadEmbedder,
    pub start_mcp: Option<StartMcp>,
    /// The daemon's shared hub: the session attaches to it instead of opening its own roots
    /// (and the hub's model is used instead of `load_embedder`).
    pub hub: Option<Arc<Hub>>,
}

pub(crate) struct Shared {
    client: Client,
    opts: LspOptions,
    ws: OnceLock<Arc<Workspace>>,
    roots: Mutex<Vec<PathBuf>>,
    mcp: Mutex<Option<Value>>,
    mcp_url: Mutex<Option<String>>,
    work_done_progress: AtomicBool,
    lens_refresh: AtomicBool,
    progress: events::ProgressTokens,
}

pub struct Backend(Arc<Shared>);

/// Serves LSP on stdin/stdout until the client sends `exit` (or closes stdin). Returns the
/// process exit code the spec asks for: 1 when `exit` came without `shutdown`.
pub async fn run_stdio(opts: LspOptions) -> i32 {
    run(tokio::io::stdin(), tokio::io::stdout(), opts).await
}

/// Serves one LSP session over a byte stream (stdin/stdout, or a daemon client's socket);
/// returns the exit code the spec asks for.
pub async fn run<R, W>(input: R, output: W, opts: LspOptions) -> i32
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = LspService::build(|client| {
        Backend(Arc::new(Shared {
            client,
            opts,
            ws: OnceLock::new(),
            roots: Mutex::new(Vec::new()),
            mcp: Mutex::new(None),
            mcp_url: Mutex::new(None),
            work_done_progress: AtomicBool::new(false),
            lens_refresh: AtomicBool::new(false),
            progress: events::ProgressTokens::default(),
        }))
    })
    .custom_method("codemem/search", Backend::search)
    .custom_method("codemem/similar", Backend::similar)
    .custom_method("codemem/references", Backend::references)
    .custom_method("window/workDoneProgress/cancel", Backend::cancel_progress)
    .finish();
    // Malformed client messages are answered by the guard, never seen by the transport
    // (which would end the session on the first one).
    let (to_server, server_in) = tokio::io::duplex(1 << 20);
    let (server_out, from_server) = tokio::io::duplex(1 << 20);
    let (frames, rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(framing::write_frames(output, rx));
    tokio::spawn(framing::split_output(from_server, frames.clone()));
    let guard = tokio::spawn(framing::guard_input(input, to_server, frames));
    Server::new(server_in, server_out, socket)
        .serve(service)
        .await;
    let seen = guard.await.unwrap_or_default();
    // Let the last replies reach stdout.
    let _ = tokio::time::timeout(Duration::from_millis(500), writer).await;
    if seen.exit && !seen.shutdown {
        1
    } else {
        0
    }
}

fn service_error(e: ServiceError) -> Error {
    if e.is_invalid_input() || matches!(e, ServiceError::NoRoot) {
        Error::invalid_params(e.to_string())
    } else {
        let mut err = Error::internal_error();
        err.message = e.to_string().into();
        err
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    let mut err = Error::internal_error();
    err.message = format!("codemem worker failed: {e}").into();
    err
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, ServiceError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(join_error)?
        .map_err(service_error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SearchParams {
    query: String,
    #[serde(default)]
    namespaces: Vec<String>,
    path: Option<String>,
    language: Option<String>,
    k: Option<usize>,
    mode: Option<String>,
    /// Debug: each hit carries its ranking signals (`explain`).
    #[serde(default)]
    explain: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefsParams {
    text_document: TextDocumentIdentifier,
    position: Position,
    /// `references` (default), `callers` or `callees`.
    mode: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimilarParams {
    text_document: TextDocumentIdentifier,
    position: Option<Position>,
    range: Option<Range>,
    k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RememberArgs {
    uri: Uri,
    range: Option<Range>,
    note: String,
    #[serde(default)]
    tags: Vec<String>,
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct CancelParams {
    token: NumberOrString,
}

#[derive(Deserialize)]
struct ShowMemoriesArgs {
    uri: Uri,
    line: Option<u32>,
}

impl Backend {
    fn ws(&self) -> Result<Arc<Workspace>> {
        self.0.ws.get().cloned().ok_or_else(Error::invalid_request)
    }

    async fn search(&self, p: SearchParams) -> Result<Value> {
        let ws = self.ws()?;
        let mut q = Query::new(p.query);
        for n in p.namespaces {
            q.namespaces
                .push(Namespace::new(&n).map_err(|e| Error::invalid_params(e.to_string()))?);
        }
        q.path_glob = p.path;
        if let Some(l) = p.language {
            q.language = Some(codemem_core::Language::parse(&l).ok_or_else(|| {
                Error::invalid_params(format!(
                    "unknown language {l:?}; use e.g. rust, python, typescript, markdown"
                ))
            })?);
        }
        if let Some(k) = p.k {
            q.k = k;
        }
        if let Some(m) = p.mode {
            q.mode = SearchMode::parse(&m).ok_or_else(|| {
                Error::invalid_params(format!("unknown mode {m:?}; use hybrid, lexical or dense"))
            })?;
        }
        q.explain = p.explain;
        let r = blocking(move || ws.search(&q)).await?;
        Ok(convert::search_response(&r))
    }

    async fn similar(&self, p: SimilarParams) -> Result<Value> {
        let ws = self.ws()?;
        let path = convert::path(&p.text_document.uri)?;
        let (start, end) = match (p.range, p.position) {
            (Some(r), _) => {
                // A selection ending at column 0 does not include that line.
                let end = if r.end.character == 0 && r.end.line > r.start.line {
                    r.end.line
                } else {
                    r.end.line + 1
                };
                (r.start.line + 1, end)
            }
            (None, Some(pos)) => (pos.line + 1, pos.line + 1),
            (None, None) => return Err(Error::invalid_params("give a position or a range")),
        };
        let k = p.k.unwrap_or(10); // its range is checked by the service
        let r = blocking(move || ws.similar(&path, start, end, k)).await?;
        Ok(convert::search_response(&r))
    }

    /// The reference graph at the cursor: the service's answer plus `locations` (LSP
    /// `Location`s of the uses, or of the callees' definitions) for the editor's list.
    async fn references(&self, p: RefsParams) -> Result<Value> {
        let ws = self.ws()?;
        let path = convert::path(&p.text_document.uri)?;
        let mode = p.mode.unwrap_or_else(|| "references".into());
        if !matches!(mode.as_str(), "references" | "callers" | "callees") {
            return Err(Error::invalid_params(format!(
                "unknown mode {mode:?}; use references, callers or callees"
            )));
        }
        let pos = convert::position(p.position);
        blocking(move || {
            let root = ws.relative(&path).map(|(r, _)| r);
            let mut q = ws.ref_query_at(&path, pos, mode == "callers")?;
            q.limit = p.limit;
            let all = codemem_service::NamespaceScope::All;
            Ok(if mode == "callees" {
                let c = ws.callees(&q, &all)?;
                let locations: Vec<Value> = c
                    .callees
                    .iter()
                    .flat_map(|e| &e.definitions)
                    .filter_map(|d| {
                        convert::ref_location(
                            root.as_deref(),
                            d.root.as_deref(),
                            &d.path,
                            d.line,
                            None,
                        )
                    })
                    .collect();
                let mut v = serde_json::to_value(&c).unwrap_or_default();
                v["locations"] = json!(locations);
                v
            } else {
                let r = ws.references(&q, &all)?;
                let locations: Vec<Value> = r
                    .references
                    .iter()
                    .filter_map(|s| {
                        convert::ref_location(
                            root.as_deref(),
                            s.root.as_deref(),
                            &s.path,
                            s.line,
                            Some((s.column, r.name.len() as u32)),
                        )
                    })
                    .collect();
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["locations"] = json!(locations);
                v
            })
        })
        .await
    }

    async fn cancel_progress(&self, p: CancelParams) {
        if let Some(root) = self.0.progress.root_of(&p.token) {
            if let Some(ws) = self.0.ws.get() {
                ws.cancel_indexing(Some(&root));
            }
        }
    }

    /// Checks that `pos` is inside the document. The service decides (a path inside the
    /// roots; the open buffer, else the index's line count); it never reads the file.
    async fn check_position(&self, ws: &Arc<Workspace>, path: &Path, pos: Position) -> Result<()> {
        let (ws, path) = (ws.clone(), path.to_path_buf());
        blocking(move || ws.check_position(&path, convert::position(pos))).await
    }

    fn status_value(&self, ws: &Workspace) -> Value {
        events::status_value(
            ws,
            self.0
                .mcp_url
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    async fn add_roots(&self, roots: Vec<PathBuf>) {
        let Some(ws) = self.0.ws.get().cloned() else {
            return;
        };
        for root in roots {
            let ws = ws.clone();
            let r = root.clone();
            match tokio::task::spawn_blocking(move || ws.add_root(&r)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    self.0
                        .client
                        .show_message(
                            MessageType::ERROR,
                            format!("codemem: cannot open {}: {e}", root.display()),
                        )
                        .await
                }
                Err(e) => tracing::error!(error = %e, "add_root task failed"),
            }
        }
    }
}

fn folders(params: &InitializeParams) -> Vec<PathBuf> {
    if let Some(f) = &params.workspace_folders {
        return f
            .iter()
            .filter_map(|f| convert::path(&f.uri).ok())
            .collect();
    }
    #[allow(deprecated)] // rootUri: clients without workspace folders still send it
    params
        .root_uri
        .as_ref()
        .and_then(|u| convert::path(u).ok())
        .into_iter()
        .collect()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let mut init = params.initialization_options.clone().unwrap_or(Value::Null);
        if !init.is_null() && !init.is_object() {
            return Err(Error::invalid_params(
                "initializationOptions must be an object with codemem.toml keys",
            ));
        }
        let lexical_only = init
            .as_object_mut()
            .and_then(|o| o.remove("lexicalOnly"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let mcp = init
            .as_object_mut()
            .and_then(|o| o.remove("mcp"))
            .unwrap_or(Value::Null);
        *self.0.mcp.lock().unwrap_or_else(|e| e.into_inner()) = Some(mcp);
        // Validate the configuration now, so a typo is an initialize error, not a silent default.
        if !init.is_null() {
            codemem_core::Config::default()
                .with_overrides(&init, "initializationOptions")
                .map_err(|e| Error::invalid_params(e.to_string()))?;
        }
        let embedder = if lexical_only || self.0.opts.hub.is_some() {
            None
        } else {
            let load = self.0.opts.load_embedder.clone();
            match tokio::task::spawn_blocking(move || load())
                .await
                .map_err(join_error)?
            {
                Ok(e) => e,
                Err(msg) => {
                    self.0
                        .client
                        .show_message(
                            MessageType::WARNING,
                            format!("codemem: {msg}; semantic search is off"),
                        )
                        .await;
                    None
                }
            }
        };
        let config = (!init.is_null()).then_some(init);
        let ws = match &self.0.opts.hub {
            Some(hub) => Workspace::attach(hub.clone(), config, lexical_only),
            None => Workspace::new(WorkspaceOptions {
                home: self.0.opts.home.clone(),
                embedder,
                purpose: "codemem lsp".into(),
                config,
                auto_index: true,
                watch: true,
                lock_wait: Duration::from_secs(2),
            }),
        };
        let _ = self.0.ws.set(ws);
        *self.0.roots.lock().unwrap_or_else(|e| e.into_inner()) = folders(&params);
        let caps = &params.capabilities;
        self.0.work_done_progress.store(
            caps.window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            Ordering::Relaxed,
        );
        self.0.lens_refresh.store(
            caps.workspace
                .as_ref()
                .and_then(|w| w.code_lens.as_ref())
                .and_then(|c| c.refresh_support)
                .unwrap_or(false),
            Ordering::Relaxed,
        );
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "codemem".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                            include_text: Some(false),
                        })),
                        ..Default::default()
                    },
                )),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                        supported: Some(true),
                        change_notifications: Some(OneOf::Left(true)),
                    }),
                    file_operations: None,
                }),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let Some(ws) = self.0.ws.get().cloned() else {
            return;
        };
        events::spawn_forwarder(self.0.clone(), ws.subscribe());
        let roots = self
            .0
            .roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if roots.is_empty() {
            self.0
                .client
                .log_message(
                    MessageType::INFO,
                    "codemem: no workspace folder; open one to index it",
                )
                .await;
        }
        self.add_roots(roots).await;
        let mcp = self
            .0
            .mcp
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(Value::Null);
        let enabled = mcp.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        if let (true, Some(start)) = (enabled, self.0.opts.start_mcp.clone()) {
            let mut settings = mcp.clone();
            if let Some(o) = settings.as_object_mut() {
                o.remove("enabled");
            }
            match start(ws.clone(), settings).await {
                Ok(url) => {
                    tracing::info!(%url, "MCP endpoint serving the editor's index");
                    *self.0.mcp_url.lock().unwrap_or_else(|e| e.into_inner()) = Some(url);
                }
                Err(e) => {
                    self.0
                        .client
                        .show_message(
                            MessageType::WARNING,
                            format!("codemem: MCP endpoint not started: {e}"),
                        )
                        .await
                }
            }
        }
        let status = self.status_value(&ws);
        self.0
            .client
            .send_notification::<events::StatusNotification>(status)
            .await;
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(ws) = self.0.ws.get() {
            ws.cancel_indexing(None);
        }
        Ok(())
    }

    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        let Some(ws) = self.0.ws.get() else { return };
        match convert::path(&p.text_document.uri) {
            Ok(path) => {
                if let Err(e) =
                    ws.open_document(&path, p.text_document.version, p.text_document.text)
                {
                    tracing::debug!(path = %path.display(), error = %e, "document not tracked");
                }
            }
            Err(e) => {
                tracing::debug!(uri = p.text_document.uri.as_str(), error = %e.message, "document not tracked")
            }
        }
    }

    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        // No await before the edit is applied: edits keep their order.
        let Some(ws) = self.0.ws.get() else { return };
        let Ok(path) = convert::path(&p.text_document.uri) else {
            return;
        };
        if let Err(e) = ws.change_document(
            &path,
            p.text_document.version,
            convert::changes(p.content_changes),
        ) {
            tracing::warn!(path = %path.display(), error = %e, "edit not applied");
        }
    }

    async fn did_save(&self, p: DidSaveTextDocumentParams) {
        if let (Some(ws), Ok(path)) = (self.0.ws.get(), convert::path(&p.text_document.uri)) {
            ws.save_document(&path);
        }
    }

    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        if let (Some(ws), Ok(path)) = (self.0.ws.get(), convert::path(&p.text_document.uri)) {
            let ws = ws.clone();
            let _ = tokio::task::spawn_blocking(move || ws.close_document(&path)).await;
        }
    }

    async fn did_change_watched_files(&self, p: DidChangeWatchedFilesParams) {
        if let Some(ws) = self.0.ws.get() {
            ws.files_changed(
                p.changes
                    .iter()
                    .filter_map(|c| convert::path(&c.uri).ok())
                    .collect(),
            );
        }
    }

    async fn did_change_workspace_folders(&self, p: DidChangeWorkspaceFoldersParams) {
        let Some(ws) = self.0.ws.get().cloned() else {
            return;
        };
        for f in &p.event.removed {
            if let Ok(path) = convert::path(&f.uri) {
                let ws = ws.clone();
                let _ = tokio::task::spawn_blocking(move || ws.remove_root(&path)).await;
            }
        }
        self.add_roots(
            p.event
                .added
                .iter()
                .filter_map(|f| convert::path(&f.uri).ok())
                .collect(),
        )
        .await;
        let status = self.status_value(&ws);
        self.0
            .client
            .send_notification::<events::StatusNotification>(status)
            .await;
    }

    async fn did_change_configuration(&self, _: DidChangeConfigurationParams) {
        tracing::info!("configuration changes apply when the server restarts");
    }

    async fn symbol(&self, p: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        let ws = self.ws()?;
        let query = p.query.trim().to_string();
        if query.is_empty() || query.len() > codemem_core::MAX_QUERY_BYTES {
            return Ok(Some(WorkspaceSymbolResponse::Flat(vec![])));
        }
        let out = blocking(move || {
            let mut out: Vec<SymbolInformation> = ws
                .find_symbol(&query, None, 50)?
                .iter()
                .filter_map(convert::symbol_match)
                .collect();
            let mut q = Query::new(query);
            q.k = 20;
            q.namespaces = vec![Namespace::coding(), Namespace::new("testing")?];
            for h in ws.search(&q)?.hits {
                let Some(s) = convert::hit_symbol(&h) else {
                    continue;
                };
                let dup = out.iter().any(|o| {
                    o.location.uri == s.location.uri
                        && o.location.range.start == s.location.range.start
                });
                if !dup {
                    out.push(s);
                }
            }
            Ok(out)
        })
        .await?;
        Ok(Some(WorkspaceSymbolResponse::Flat(out)))
    }

    async fn hover(&self, p: HoverParams) -> Result<Option<Hover>> {
        let ws = self.ws()?;
        let pos = p.text_document_position_params.position;
        let path = convert::path(&p.text_document_position_params.text_document.uri)?;
        self.check_position(&ws, &path, pos).await?;
        let (memories, symbols) = {
            let (ws, path) = (ws.clone(), path.clone());
            tokio::task::spawn_blocking(move || (ws.memories_for(&path), ws.symbols_in(&path)))
                .await
                .map_err(join_error)?
        };
        let line = pos.line + 1;
        let notes: Vec<&codemem_service::Memory> = match enclosing(&symbols, line) {
            Some(s) => memories_of(&memories, s, &symbols),
            None => memories
                .iter()
                .filter(|m| m.symbol.is_none() && m.line == Some(line))
                .collect(),
        };
        if notes.is_empty() {
            return Ok(None);
        }
        let mut md = format!(
            "**codemem — {} note{}**\n",
            notes.len(),
            if notes.len() == 1 { "" } else { "s" }
        );
        for m in notes {
            let tags = if m.tags.is_empty() {
                String::new()
            } else {
                format!(" `{}`", m.tags.join("` `"))
            };
            let who = m
                .author
                .as_deref()
                .map(|a| format!(" — {a}"))
                .unwrap_or_default();
            md.push_str(&format!("\n- {}{tags}{who}", m.text.replace('\n', " ")));
        }
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: md,
            }),
            range: None,
        }))
    }

    async fn code_lens(&self, p: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let ws = self.ws()?;
        let path = convert::path(&p.text_document.uri)?;
        {
            // Inside the roots, open or indexed; the disk is not consulted.
            let (ws, path) = (ws.clone(), path.clone());
            blocking(move || ws.check_document(&path)).await?;
        }
        let (memories, symbols) =
            tokio::task::spawn_blocking(move || (ws.memories_for(&path), ws.symbols_in(&path)))
                .await
                .map_err(join_error)?;
        if memories.is_empty() {
            return Ok(Some(vec![]));
        }
        let mut lenses = Vec::new();
        for s in &symbols {
            let n = memories_of(&memories, s, &symbols).len();
            if n == 0 {
                continue;
            }
            let line = s.start_line.saturating_sub(1);
            lenses.push(CodeLens {
                range: Range::new(Position::new(line, 0), Position::new(line, 0)),
                command: Some(Command {
                    title: format!("{n} note{}", if n == 1 { "" } else { "s" }),
                    command: "codemem.showMemories".into(),
                    arguments: Some(vec![
                        json!({"uri": p.text_document.uri, "line": s.start_line}),
                    ]),
                }),
                data: None,
            });
        }
        Ok(Some(lenses))
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let ws = self.ws()?;
        let path = convert::path(&p.text_document.uri)?;
        if p.range.end < p.range.start {
            return Err(Error::invalid_params("range end is before its start"));
        }
        self.check_position(&ws, &path, p.range.start).await?;
        self.check_position(&ws, &path, p.range.end).await?;
        let args = json!({"uri": p.text_document.uri, "range": p.range});
        Ok(Some(vec![CodeActionOrCommand::CodeAction(CodeAction {
            title: "Find similar code".into(),
            kind: Some(CodeActionKind::EMPTY),
            command: Some(Command {
                title: "Find similar code".into(),
                command: "codemem.findSimilar".into(),
                arguments: Some(vec![args]),
            }),
            ..Default::default()
        })]))
    }

    async fn execute_command(&self, p: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        let ws = self.ws()?;
        let arg = |i: usize| p.arguments.get(i).cloned().unwrap_or(Value::Null);
        match p.command.as_str() {
            "codemem.reindex" => {
                let stats =
                    blocking(move || ws.reindex(None, &|_e| {}, &AtomicBool::new(false))).await?;
                Ok(Some(json!({ "roots": stats })))
            }
            "codemem.status" => Ok(Some(self.status_value(&ws))),
            "codemem.remember" => {
                let a: RememberArgs = serde_json::from_value(arg(0)).map_err(|e| {
                    Error::invalid_params(format!(
                        "codemem.remember takes [{{uri, range?, note, tags?, namespace?}}]: {e}"
                    ))
                })?;
                let path = convert::path(&a.uri)?;
                let line = a.range.map(|r| r.start.line + 1);
                if let Some(r) = a.range {
                    self.check_position(&ws, &path, r.start).await?;
                }
                let memory = blocking(move || {
                    let symbol = line
                        .and_then(|l| enclosing(&ws.symbols_in(&path), l).map(|s| s.name.clone()));
                    ws.remember(NewMemory {
                        text: a.note,
                        namespace: a.namespace.unwrap_or_else(|| "shared".into()),
                        tags: a.tags,
                        path: Some(path.display().to_string()),
                        symbol,
                        line,
                        // The service names the OS user.
                        author: None,
                    })
                })
                .await?;
                Ok(Some(json!({ "id": memory.id, "memory": memory })))
            }
            "codemem.findSimilar" => {
                let a: SimilarParams = serde_json::from_value(json!({
                    "textDocument": {"uri": arg(0).get("uri")},
                    "range": arg(0).get("range"),
                    "position": arg(0).get("position"),
                    "k": arg(0).get("k"),
                }))
                .map_err(|e| {
                    Error::invalid_params(format!(
                        "codemem.findSimilar takes [{{uri, range}}]: {e}"
                    ))
                })?;
                self.similar(a).await.map(Some)
            }
            "codemem.showMemories" => {
                let a: ShowMemoriesArgs = serde_json::from_value(arg(0)).map_err(|e| {
                    Error::invalid_params(format!(
                        "codemem.showMemories takes [{{uri, line?}}]: {e}"
                    ))
                })?;
                let path = convert::path(&a.uri)?;
                let (memories, symbols) = tokio::task::spawn_blocking(move || {
                    (ws.memories_for(&path), ws.symbols_in(&path))
                })
                .await
                .map_err(join_error)?;
                let shown: Vec<&codemem_service::Memory> =
                    match a.line.and_then(|l| enclosing(&symbols, l)) {
                        Some(s) => memories_of(&memories, s, &symbols),
                        None => memories.iter().collect(),
                    };
                Ok(Some(json!({ "memories": shown })))
            }
            other => Err(Error::invalid_params(format!(
                "unknown command {other:?}; known: {}",
                COMMANDS.join(", ")
            ))),
        }
    }
}
