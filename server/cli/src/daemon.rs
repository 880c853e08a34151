//! `codemem daemon`: one process per user (per CODEMEM_HOME) that owns the stores, the model
//! and every open project, and the local socket front ends attach to.
//!
//! The channel: a Unix domain socket `$CODEMEM_HOME/daemon/codemem.sock` in a 0700 directory,
//! mode 0600, and the peer's uid checked (SO_PEERCRED) on every connection. A client sends
//! one JSON line (`Hello`), the daemon answers one JSON line (`Reply`); then
//! - `lsp` / `mcp`: the connection carries that protocol's bytes, served by the same
//!   handlers as stdio, over a `Workspace` attached to the shared `Hub`;
//! - `request`: one typed request (`Request`), answered by JSON lines (`Answer`);
//! - `serve`: the per-machine MCP HTTP endpoint is started (once) and kept while the
//!   connection lives.
//!
//! Exactly one daemon: it holds an exclusive lock on `daemon/lock` for its whole life; a second
//! one started at the same moment finds the lock taken and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use codemem_core::{Config, Query};
use codemem_mcp::HttpOptions;
use codemem_service::{paths, Hub, IndexEvent, ServiceError, Workspace, WorkspaceOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::frames::{frame, Framing, Scanner, Tracker};
use crate::{exit, Failure};

/// The version of the socket handshake; a daemon refuses other values with a clear reply.
pub const PROTO: u32 = 1;
/// This build: the package version plus a hash of the sources (build.rs). The handshake
/// compares it, so a daemon from another build hands over.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("CODEMEM_BUILD_ID"));
const MAX_HELLO_BYTES: usize = 64 * 1024;
/// `daemon.log` is rotated to `daemon.log.1` (one old copy kept) once it passes this size.
const LOG_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// How often a running daemon returns free heap memory to the system.
const TRIM_EVERY: Duration = Duration::from_secs(30);
/// How often a running daemon checks its log's size.
const LOG_CHECK_EVERY: Duration = Duration::from_secs(60);
/// How long a front end waits for a daemon it started to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct DaemonPaths {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub lock: PathBuf,
    pub log: PathBuf,
}

impl DaemonPaths {
    pub fn new(home: &Path) -> Self {
        let dir = home.join("daemon");
        DaemonPaths {
            socket: dir.join("codemem.sock"),
            lock: dir.join("lock"),
            log: dir.join("daemon.log"),
            dir,
        }
    }
}

/// Whether front ends attach to the daemon: `--no-daemon` or `CODEMEM_DAEMON=off` keeps the
/// in-process mode.
pub fn enabled(no_daemon: bool) -> bool {
    if no_daemon {
        return false;
    }
    !matches!(
        std::env::var("CODEMEM_DAEMON")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("off" | "0" | "false" | "no")
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub proto: u32,
    pub version: String,
    /// "lsp", "mcp", "request", "serve" or "control".
    pub kind: String,
    #[serde(default)]
    pub root: Option<PathBuf>,
    #[serde(default)]
    pub request: Option<Request>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Search {
        query: Query,
    },
    Status,
    Index,
    /// `codemem refs`: references, callers or callees of a name.
    Refs {
        query: codemem_service::RefQuery,
        /// What the definition calls instead of where it is used.
        callees: bool,
    },
    /// `codemem context`: token-budgeted context for a question.
    Context {
        query: codemem_service::ContextQuery,
    },
    /// `codemem serve`: start (or reuse) the HTTP endpoint with these overrides.
    Serve {
        host: Option<String>,
        port: Option<u16>,
    },
    DaemonStatus,
    Stop,
    /// A client of another version asks the daemon to exit once its sessions have ended.
    Handover,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    pub version: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// "version", "proto", "draining", "bad_request", "not_indexed", "usage", "failed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One line of a `request` answer after the reply: progress, then a result or an error.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Event(IndexEvent),
    Result(Value),
    Error { message: String, code: String },
}

// ----- the daemon ---------------------------------------------------------------------------

struct State {
    home: PathBuf,
    hub: Arc<Hub>,
    clients: AtomicUsize,
    last_client: Mutex<Instant>,
    started: Instant,
    draining: AtomicBool,
    stop: tokio_util::sync::CancellationToken,
    /// The per-machine MCP HTTP endpoint (url), once started.
    http: tokio::sync::Mutex<Option<String>>,
    /// `codemem serve` clients keep the endpoint (and the daemon) up.
    http_stays: AtomicUsize,
}

struct ClientGuard(Arc<State>);

impl ClientGuard {
    fn new(st: &Arc<State>) -> Self {
        st.clients.fetch_add(1, Ordering::SeqCst);
        ClientGuard(st.clone())
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        *self.0.last_client.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `codemem daemon run`: serves until stopped, or until idle for `idle` with no client.
pub fn run(home: PathBuf, idle: Duration) -> Result<u8, Failure> {
    let p = DaemonPaths::new(&home);
    paths::ensure_private_dir(&home)
        .with_context(|| format!("cannot create {}", home.display()))?;
    paths::ensure_private_dir(&p.dir)
        .with_context(|| format!("cannot create {}", p.dir.display()))?;
    let mut lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p.lock)
        .with_context(|| format!("cannot open {}", p.lock.display()))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "codemem daemon: another daemon already serves {}",
            home.display()
        );
        return Ok(0);
    }
    let _ = lock.set_len(0);
    let _ = writeln!(lock, "pid {}, codemem {}", std::process::id(), VERSION);
    // We hold the lock: only this daemon writes the log now, so it may rotate it.
    rotate_running_log(&p.log);
    // We hold the lock: a socket file left here is a dead daemon's.
    let _ = std::fs::remove_file(&p.socket);
    if p.socket.as_os_str().len() > 100 {
        return Err(crate::usage(format!(
            "the daemon socket path {} is too long for a Unix socket; use a shorter CODEMEM_HOME or CODEMEM_DAEMON=off",
            p.socket.display()
        )));
    }
    tune_malloc();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let load_home = home.clone();
    let base = Config::load(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))
        .unwrap_or_default();
    let hub = Hub::shared(
        WorkspaceOptions {
            home: home.clone(),
            embedder: None,
            purpose: "codemem daemon".into(),
            config: None,
            auto_index: true,
            watch: true,
            lock_wait: Duration::from_secs(5),
        },
        Box::new(move || match crate::load_embedder(&load_home, &base) {
            Ok(e) => Ok(Some(e)),
            Err(f) => Err(format!("{:#}", f.err)),
        }),
    );
    let st = Arc::new(State {
        home: home.clone(),
        hub,
        clients: AtomicUsize::new(0),
        last_client: Mutex::new(Instant::now()),
        started: Instant::now(),
        draining: AtomicBool::new(false),
        stop: tokio_util::sync::CancellationToken::new(),
        http: tokio::sync::Mutex::new(None),
        http_stays: AtomicUsize::new(0),
    });
    let code = rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&p.socket).with_context(|| format!("cannot listen on {}", p.socket.display()))?;
        std::fs::set_permissions(&p.socket, std::fs::Permissions::from_mode(0o600))?;
        tracing::info!(socket = %p.socket.display(), pid = std::process::id(), "codemem daemon listening");
        eprintln!("codemem daemon {} (pid {}) listening on {}", VERSION, std::process::id(), p.socket.display());
        let rotator = {
            let log = p.log.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LOG_CHECK_EVERY).await;
                    rotate_running_log(&log);
                }
            })
        };
        let trimmer = tokio::spawn(async {
            loop {
                tokio::time::sleep(TRIM_EVERY).await;
                trim_heap();
            }
        });
        let ticker = {
            let st = st.clone();
            tokio::spawn(async move {
                let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
                loop {
                    tokio::time::sleep(tick).await;
                    let quiet = st.last_client.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
                    let no_clients = st.clients.load(Ordering::SeqCst) == 0;
                    let draining = st.draining.load(Ordering::SeqCst);
                    if no_clients && (draining || (quiet >= idle && st.http_stays.load(Ordering::SeqCst) == 0)) {
                        tracing::info!("no clients for {:?}; the daemon exits", quiet);
                        st.stop.cancel();
                        return;
                    }
                }
            })
        };
        loop {
            tokio::select! {
                _ = st.stop.cancelled() => break,
                _ = wait_for_signal() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let st = st.clone();
                        tokio::spawn(async move { serve_connection(st, stream).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        ticker.abort();
        rotator.abort();
        trimmer.abort();
        let _ = std::fs::remove_file(&p.socket);
        Ok::<u8, anyhow::Error>(0)
    })?;
    // Projects flush and release their data dirs as the hub goes.
    drop(st);
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(code)
}

/// The daemon lives long and its peaks (model load, index runs, big answers) are short:
/// glibc's defaults keep up to 8 arenas per core and, with a threshold that grows after each
/// large free, keep big freed blocks in the heap. A fixed 128 KiB mmap threshold returns large
/// buffers to the system when freed, and 2 arenas bound the fragmentation (~50 MiB less idle
/// RSS with three projects open, measured with the same settings as glibc tunables).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Gives memory the allocator holds free back to the system (glibc only).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Moves `log` to `log.1` (replacing an older copy) when it is larger than [`LOG_MAX_BYTES`].
/// Returns whether it did.
fn rotate_log(log: &Path) -> bool {
    match std::fs::metadata(log) {
        Ok(m) if m.len() > LOG_MAX_BYTES => {
            let mut old = log.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(log, PathBuf::from(old)).is_ok()
        }
        _ => false,
    }
}

/// A running daemon whose stdout/stderr is `log` (it was started detached by a front end)
/// rotates it and points both at a fresh file. A daemon run in a terminal leaves them alone.
fn rotate_running_log(log: &Path) {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    let Ok(on_disk) = std::fs::metadata(log) else {
        return;
    };
    let stderr = std::io::stderr();
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on our own stderr descriptor into a zeroed, properly sized struct.
    if unsafe { libc::fstat(stderr.as_raw_fd(), &mut st) } != 0
        || st.st_ino != on_disk.ino()
        || st.st_dev != on_disk.dev()
    {
        return;
    }
    if !rotate_log(log) {
        return;
    }
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        Ok(fresh) => {
            // SAFETY: dup2 onto our own stdout/stderr; `fresh` stays valid during the calls.
            unsafe {
                libc::dup2(fresh.as_raw_fd(), 1);
                libc::dup2(fresh.as_raw_fd(), 2);
            }
            tracing::info!(log = %log.display(), "log rotated; the previous one is daemon.log.1");
        }
        Err(e) => tracing::warn!(error = %e, "cannot reopen the daemon log after rotating it"),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn reply_ok() -> Reply {
    Reply {
        ok: true,
        version: VERSION.into(),
        pid: std::process::id(),
        ..Default::default()
    }
}

fn reply_err(code: &str, error: impl Into<String>) -> Reply {
    Reply {
        ok: false,
        code: Some(code.into()),
        error: Some(error.into()),
        ..reply_ok()
    }
}

async fn send_line<W: tokio::io::AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    v: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

async fn serve_connection(st: Arc<State>, stream: tokio::net::UnixStream) {
    // Only the user who owns the daemon may talk to it.
    let me = unsafe { libc::getuid() };
    match stream.peer_cred() {
        Ok(c) if c.uid() == me => {}
        Ok(c) => {
            tracing::warn!(uid = c.uid(), "refused a connection from another user");
            let (r, mut w) = stream.into_split();
            let _ = send_line(
                &mut w,
                &reply_err("forbidden", "this codemem daemon belongs to another user"),
            )
            .await;
            // Let the peer finish its hello (bounded) so it reads the refusal, not a broken pipe.
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                r.take(MAX_HELLO_BYTES as u64).read_to_end(&mut sink),
            )
            .await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peer's credentials; connection refused");
            return;
        }
    }
    let _guard = ClientGuard::new(&st);
    let (r, mut w) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(r);
    let hello = match read_hello(&mut reader).await {
        Ok(h) => h,
        Err(msg) => {
            let _ = send_line(&mut w, &reply_err("bad_request", msg)).await;
            return;
        }
    };
    if hello.proto != PROTO {
        let _ = send_line(
            &mut w,
            &reply_err(
                "proto",
                format!(
                    "this daemon speaks handshake {PROTO}, the client {}",
                    hello.proto
                ),
            ),
        )
        .await;
        return;
    }
    let handover = matches!(
        hello.request,
        Some(Request::Handover | Request::Stop | Request::DaemonStatus)
    );
    if hello.version != VERSION && !handover {
        let msg = format!(
            "the running daemon is codemem {}, this client is {}",
            VERSION, hello.version
        );
        let _ = send_line(&mut w, &reply_err("version", msg)).await;
        return;
    }
    if st.draining.load(Ordering::SeqCst) && !handover {
        let _ = send_line(
            &mut w,
            &reply_err("draining", "this daemon is handing over to another version"),
        )
        .await;
        return;
    }
    match hello.kind.as_str() {
        "lsp" => {
            if send_line(&mut w, &reply_ok()).await.is_err() {
                return;
            }
            let opts = codemem_lsp::LspOptions {
                home: st.home.clone(),
                load_embedder: Arc::new(|| Ok(None)),
                start_mcp: Some(start_mcp(st.clone())),
                hub: Some(st.hub.clone()),
            };
            let code = codemem_lsp::run(reader, w, opts).await;
            tracing::debug!(code, "LSP session ended");
        }
        "mcp" => {
            let Some(root) = hello.root else {
                let _ = send_line(
                    &mut w,
                    &reply_err("bad_request", "an mcp session needs `root`"),
                )
                .await;
                return;
            };
            let ws = match open_root(&st, root).await {
                Ok((ws, _)) => ws,
                Err(Answer::Error { message, .. }) => {
                    let _ = send_line(&mut w, &reply_err("failed", message)).await;
                    return;
                }
                Err(_) => return,
            };
            if send_line(&mut w, &reply_ok()).await.is_err() {
                return;
            }
            if let Err(e) = codemem_mcp::serve_io(ws, reader, w).await {
                tracing::debug!(error = %e, "MCP session ended");
            }
        }
        "request" | "serve" | "control" => {
            let Some(req) = hello.request else {
                let _ = send_line(
                    &mut w,
                    &reply_err("bad_request", "a request needs `request`"),
                )
                .await;
                return;
            };
            if send_line(&mut w, &reply_ok()).await.is_err() {
                return;
            }
            answer(st, hello.root, req, reader, w).await;
        }
        other => {
            let _ = send_line(
                &mut w,
                &reply_err(
                    "bad_request",
                    format!("unknown kind {other:?}; use lsp, mcp, request, serve or control"),
                ),
            )
            .await;
        }
    }
}

async fn read_hello<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Hello, String> {
    let mut line = Vec::new();
    let mut limited = r.take(MAX_HELLO_BYTES as u64 + 1);
    match tokio::time::timeout(
        Duration::from_secs(10),
        limited.read_until(b'\n', &mut line),
    )
    .await
    {
        Err(_) => return Err("no hello within 10 s; send one JSON line first".into()),
        Ok(Err(e)) => return Err(format!("cannot read the hello: {e}")),
        Ok(Ok(0)) => return Err("connection closed before the hello".into()),
        Ok(Ok(_)) => {}
    }
    if line.len() > MAX_HELLO_BYTES || !line.ends_with(b"\n") {
        return Err(format!(
            "the hello must be one JSON line of at most {MAX_HELLO_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&line)
        .map_err(|e| format!("the hello is not valid JSON for this daemon: {e}"))
}

type StartMcp = codemem_lsp::StartMcp;

/// An LSP session asks for the MCP HTTP endpoint: one per machine, over every open project.
fn start_mcp(st: Arc<State>) -> StartMcp {
    Arc::new(move |ws: Arc<Workspace>, settings: Value| {
        let st = st.clone();
        Box::pin(async move {
            let root = ws.roots().into_iter().next();
            let cfg = Config::load(root.as_deref().unwrap_or(Path::new("."))).unwrap_or_default();
            let cfg = if settings.is_null() {
                cfg
            } else {
                cfg.with_overrides(&json!({ "mcp": settings }), "initializationOptions.mcp")
                    .map_err(|e| e.to_string())?
            };
            http_endpoint(&st, cfg).await.map_err(|e| e.to_string())
        })
    })
}

async fn http_endpoint(st: &Arc<State>, cfg: Config) -> Result<String, codemem_mcp::McpError> {
    let mut http = st.http.lock().await;
    if let Some(url) = http.as_ref() {
        return Ok(url.clone());
    }
    let view = Workspace::every_root(st.hub.clone());
    let server = codemem_mcp::serve_http(
        view,
        HttpOptions::new(st.home.clone(), cfg.mcp.clone()),
        st.stop.child_token(),
    )
    .await?;
    let url = server.url();
    *http = Some(url.clone());
    tokio::spawn(async move {
        let _ = server.wait().await;
    });
    Ok(url)
}

async fn answer(
    st: Arc<State>,
    root: Option<PathBuf>,
    req: Request,
    mut reader: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    mut w: tokio::net::unix::OwnedWriteHalf,
) {
    let out = match req {
        Request::DaemonStatus => Answer::Result(daemon_status(&st)),
        Request::Stop => {
            st.stop.cancel();
            Answer::Result(json!({"stopping": true}))
        }
        Request::Handover => {
            st.draining.store(true, Ordering::SeqCst);
            Answer::Result(
                json!({"draining": true, "clients": st.clients.load(Ordering::SeqCst).saturating_sub(1)}),
            )
        }
        Request::Serve { host, port } => {
            let (ws, root) = match open_root(&st, root.unwrap_or_else(|| PathBuf::from("."))).await
            {
                Ok(opened) => opened,
                Err(a) => {
                    let _ = send_line(&mut w, &a).await;
                    return;
                }
            };
            let mut cfg = Config::load(&root).unwrap_or_default();
            if let Some(h) = host {
                cfg.mcp.host = h;
            }
            if let Some(p) = port {
                cfg.mcp.port = p;
            }
            match http_endpoint(&st, cfg).await {
                Ok(url) => {
                    st.http_stays.fetch_add(1, Ordering::SeqCst);
                    let _ = send_line(&mut w, &Answer::Result(json!({"url": url}))).await;
                    // The endpoint stays while `codemem serve` is connected.
                    let mut sink = Vec::new();
                    let _ = reader.read_to_end(&mut sink).await;
                    st.http_stays.fetch_sub(1, Ordering::SeqCst);
                    drop(ws);
                    return;
                }
                Err(e) => {
                    let code = if crate::mcp::mcp_exit_code(&e) == exit::USAGE {
                        "usage"
                    } else {
                        "failed"
                    };
                    Answer::Error {
                        message: e.to_string(),
                        code: code.into(),
                    }
                }
            }
        }
        Request::Search { query } => {
            result_answer(on_project(&st, root, move |ws| ws.search(&query)).await)
        }
        Request::Context { query } => {
            result_answer(on_project(&st, root, move |ws| ws.context(&query)).await)
        }
        Request::Refs { query, callees } => {
            let all = codemem_service::NamespaceScope::All;
            if callees {
                result_answer(on_project(&st, root, move |ws| ws.callees(&query, &all)).await)
            } else {
                result_answer(on_project(&st, root, move |ws| ws.references(&query, &all)).await)
            }
        }
        Request::Status => {
            let status = on_project(&st, root, |ws| ws.status()).await;
            match status.map(|s| s.roots.into_iter().next()) {
                Ok(Some(r)) => Answer::Result(serde_json::to_value(r.project).unwrap_or_default()),
                Ok(None) => Answer::Error {
                    message: "no project".into(),
                    code: "failed".into(),
                },
                Err(a) => a,
            }
        }
        Request::Index => {
            let root = root.unwrap_or_else(|| PathBuf::from("."));
            let ws = Workspace::attach(st.hub.clone(), None, false);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<IndexEvent>();
            let cancel = Arc::new(AtomicBool::new(false));
            let run = {
                let (ws, cancel) = (ws.clone(), cancel.clone());
                tokio::task::spawn_blocking(move || {
                    let root = ws.add_root(&root)?;
                    ws.reindex(Some(&root), &|e: IndexEvent| drop(tx.send(e)), &cancel)
                })
            };
            // The client going away (Ctrl-C) cancels the run; it resumes on the next request.
            let watch = {
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    let mut sink = Vec::new();
                    let _ = reader.read_to_end(&mut sink).await;
                    cancel.store(true, Ordering::SeqCst);
                })
            };
            while let Some(e) = rx.recv().await {
                if send_line(&mut w, &Answer::Event(e)).await.is_err() {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            watch.abort();
            match joined(run.await) {
                Ok(stats) => Answer::Result(
                    serde_json::to_value(stats.into_iter().next().unwrap_or_default())
                        .unwrap_or_default(),
                ),
                Err(a) => a,
            }
        }
    };
    let _ = send_line(&mut w, &out).await;
}

/// Runs `f` on a blocking thread against the indexed project at `root`.
async fn on_project<T: Send + 'static>(
    st: &Arc<State>,
    root: Option<PathBuf>,
    f: impl FnOnce(&Workspace) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, Answer> {
    let ws = open_existing(st, root).await?;
    blocking(move || f(&ws)).await
}

/// A value as the request's result line, or the error answer.
fn result_answer<T: Serialize>(r: Result<T, Answer>) -> Answer {
    r.map_or_else(
        |a| a,
        |v| Answer::Result(serde_json::to_value(v).unwrap_or_default()),
    )
}

/// A service error as the answer a client maps to its exit code.
fn service_answer(e: ServiceError) -> Answer {
    let code = match &e {
        ServiceError::NotIndexed { .. } => "not_indexed",
        ServiceError::Cancelled => "cancelled",
        e if e.is_invalid_input() => "usage",
        _ => "failed",
    };
    Answer::Error {
        message: e.to_string(),
        code: code.into(),
    }
}

/// The outcome of service work run on the blocking pool; a worker that died is an error too.
#[allow(clippy::result_large_err)] // the error is the answer line itself, written once
fn joined<T>(r: Result<Result<T, ServiceError>, tokio::task::JoinError>) -> Result<T, Answer> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(service_answer(e)),
        Err(e) => Err(Answer::Error {
            message: format!("codemem worker failed: {e}"),
            code: "failed".into(),
        }),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, Answer> {
    joined(tokio::task::spawn_blocking(f).await)
}

/// A session of its own on `root` (opened in the hub if nobody has it open yet).
async fn open_root(st: &Arc<State>, root: PathBuf) -> Result<(Arc<Workspace>, PathBuf), Answer> {
    let ws = Workspace::attach(st.hub.clone(), None, false);
    let session = ws.clone();
    blocking(move || session.add_root(&root))
        .await
        .map(|canonical| (ws, canonical))
}

/// A session on `root` for a search or status: the project must have been indexed (or be open).
async fn open_existing(st: &Arc<State>, root: Option<PathBuf>) -> Result<Arc<Workspace>, Answer> {
    let root = root.unwrap_or_else(|| PathBuf::from("."));
    let (hub, home) = (st.hub.clone(), st.home.clone());
    blocking(move || {
        let canonical = root.canonicalize().map_err(|e| ServiceError::Root {
            path: root.display().to_string(),
            reason: e.to_string(),
        })?;
        let open = hub.roots().contains(&canonical);
        if !open
            && !paths::project_data_dir(&home, &canonical)
                .join("kv.redb")
                .exists()
        {
            return Err(ServiceError::NotIndexed {
                path: canonical.display().to_string(),
            });
        }
        let ws = Workspace::attach(hub, None, false);
        ws.add_root(&canonical)?;
        Ok(ws)
    })
    .await
}

fn daemon_status(st: &Arc<State>) -> Value {
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
    json!({
        "pid": std::process::id(),
        "version": VERSION,
        "uptime_secs": st.started.elapsed().as_secs(),
        // This status request is a client too.
        "clients": st.clients.load(Ordering::SeqCst).saturating_sub(1),
        "projects": st.hub.sessions_per_root().into_iter().map(|(root, sessions)| json!({"root": root, "sessions": sessions})).collect::<Vec<_>>(),
        "model": st.hub.embedder().map(|e| e.model_id().to_string()),
        "rss_mib": rss_kib.map(|k| k / 1024),
        "mcp_http": st.http.try_lock().ok().and_then(|h| h.clone()),
        "draining": st.draining.load(Ordering::SeqCst),
    })
}

// ----- clients ------------------------------------------------------------------------------

/// A connection to the daemon after a successful handshake.
pub struct Connection {
    pub stream: UnixStream,
    pub reader: BufReader<UnixStream>,
}

pub enum Attach {
    Attached(Connection),
    /// No daemon runs (and none was to be started).
    NoDaemon,
    /// A daemon of another version runs; it was asked to hand over (exit once idle).
    OtherVersion(String),
}

fn hello(kind: &str, root: Option<&Path>, request: Option<Request>) -> Hello {
    Hello {
        proto: PROTO,
        version: VERSION.into(),
        kind: kind.into(),
        root: root.map(Path::to_path_buf),
        request,
    }
}

fn handshake(stream: UnixStream, h: &Hello) -> anyhow::Result<(Connection, Reply)> {
    let mut line = serde_json::to_vec(h)?;
    line.push(b'\n');
    // A daemon that refuses us (another user's) may answer and close before our hello is
    // written: its reply is still there to read.
    let written = (&stream).write_all(&line);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut buf = String::new();
    if let Err(e) = reader.read_line(&mut buf) {
        written?;
        return Err(e.into());
    }
    if buf.is_empty() {
        written?;
    }
    if buf.is_empty() {
        anyhow::bail!("the daemon closed the connection during the handshake");
    }
    let reply: Reply =
        serde_json::from_str(&buf).context("the daemon's reply is not valid JSON")?;
    Ok((Connection { stream, reader }, reply))
}

/// Connects (starting a daemon when `autostart` and none listens) and says hello.
pub fn attach(
    home: &Path,
    kind: &str,
    root: Option<&Path>,
    request: Option<Request>,
    autostart: bool,
) -> anyhow::Result<Attach> {
    let p = DaemonPaths::new(home);
    let stream = match UnixStream::connect(&p.socket) {
        Ok(s) => s,
        Err(_) if !autostart => return Ok(Attach::NoDaemon),
        Err(_) => start_and_connect(home, &p)?,
    };
    let h = hello(kind, root, request);
    let (conn, reply) = handshake(stream, &h)?;
    if reply.ok {
        return Ok(Attach::Attached(conn));
    }
    match reply.code.as_deref() {
        Some("version") | Some("proto") | Some("draining") => {
            // A long session (editor, agent) asks the other build to hand over; a one-shot CLI
            // request answers in its own process and leaves that daemon alone.
            if reply.code.as_deref() != Some("draining") && kind != "request" {
                // Ask the other version to exit once its sessions end; later front ends start ours.
                if let Ok(s) = UnixStream::connect(&p.socket) {
                    let _ = handshake(s, &hello("control", None, Some(Request::Handover)));
                }
            }
            Ok(Attach::OtherVersion(format!(
                "{} (pid {}); it exits when its sessions end, and the next start uses this version",
                reply.error.unwrap_or_default(),
                reply.pid
            )))
        }
        _ => anyhow::bail!(
            "the codemem daemon refused the session: {}",
            reply.error.unwrap_or_default()
        ),
    }
}

fn start_and_connect(home: &Path, p: &DaemonPaths) -> anyhow::Result<UnixStream> {
    paths::ensure_private_dir(home).with_context(|| format!("cannot create {}", home.display()))?;
    paths::ensure_private_dir(&p.dir)
        .with_context(|| format!("cannot create {}", p.dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.log)
        .with_context(|| format!("cannot open {}", p.log.display()))?;
    let exe = std::env::current_exe().context("cannot find the codemem binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["daemon", "run"])
        .env("CODEMEM_HOME", home)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    use std::os::unix::process::CommandExt;
    // Its own session: the daemon outlives the terminal or editor that started it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start `codemem daemon`")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(s) = UnixStream::connect(&p.socket) {
            reap(child);
            return Ok(s);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Exit 0: another daemon won the start race; it will listen in a moment.
            if !status.success() {
                anyhow::bail!(
                    "the codemem daemon could not start ({status}); see {}",
                    p.log.display()
                );
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the codemem daemon did not listen within {:?}; see {}",
                START_TIMEOUT,
                p.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The daemon outlives us; a thread collects its exit status so it never lingers as a zombie.
fn reap(mut child: std::process::Child) {
    let _ = std::thread::Builder::new()
        .name("codemem-reap".into())
        .spawn(move || child.wait());
}

/// Sends one request and reads the answer lines; `on_event` sees progress.
pub fn request(conn: Connection, on_event: &mut dyn FnMut(IndexEvent)) -> Result<Value, Failure> {
    let Connection { stream, mut reader } = conn;
    let _keep = stream;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .context("the daemon connection failed")?;
        if n == 0 {
            return Err(Failure {
                code: exit::ERROR,
                err: anyhow::anyhow!("the codemem daemon closed the connection before answering"),
            });
        }
        match serde_json::from_str::<Answer>(&line)
            .context("the daemon's answer is not valid JSON")?
        {
            Answer::Event(e) => on_event(e),
            Answer::Result(v) => return Ok(v),
            Answer::Error { message, code } => {
                let code = match code.as_str() {
                    "not_indexed" => exit::NOT_READY,
                    "usage" => exit::USAGE,
                    "cancelled" => exit::CANCELLED,
                    _ => exit::ERROR,
                };
                return Err(Failure {
                    code,
                    err: anyhow::anyhow!(message),
                });
            }
        }
    }
}

/// Relays stdin to the daemon and the daemon's messages to stdout until either side ends the
/// session. If the daemon dies mid-session, a new one is started and handed the session:
/// the client's `initialize` is replayed (its answer swallowed), then `initialized`, the
/// workspace-folder changes and every open document with its edits; requests the dead daemon
/// never answered get an error saying to send them again. Returns the exit code (LSP: 1 when
/// `exit` came without `shutdown`).
pub fn relay(home: &Path, conn: Connection, framing: Framing, root: Option<&Path>) -> u8 {
    let kind = if framing == Framing::Lsp {
        "lsp"
    } else {
        "mcp"
    };
    let track = Arc::new(Mutex::new(Tracker::default()));
    let Connection { stream, reader } = conn;
    let Ok(write_half) = stream.try_clone() else {
        return exit::ERROR;
    };
    // The daemon's write side; swapped when a new daemon takes over.
    let sock = Arc::new(Mutex::new(write_half));
    let stdin_done = Arc::new(AtomicBool::new(false));
    {
        let (track, sock, stdin_done) = (track.clone(), sock.clone(), stdin_done.clone());
        std::thread::Builder::new()
            .name("codemem-relay-in".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut scan = Scanner::new(framing);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            // Recorded and written under the socket lock: a takeover's replay
                            // holds either all of this chunk's messages or none.
                            let mut s = sock.lock().unwrap_or_else(|e| e.into_inner());
                            {
                                let mut t = track.lock().unwrap_or_else(|e| e.into_inner());
                                scan.feed(&buf[..n], &mut |body| t.client(body));
                            }
                            // A dead daemon: the messages are in the tracker for the next one.
                            let _ = s.write_all(&buf[..n]);
                        }
                    }
                }
                stdin_done.store(true, Ordering::SeqCst);
                let _ = sock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .shutdown(std::net::Shutdown::Write);
            })
            .ok();
    }
    let mut stdout = std::io::stdout().lock();
    let mut reader = reader;
    let mut scan = Scanner::new(framing);
    loop {
        pump(&mut reader, &mut scan, framing, &track, &mut stdout);
        {
            let t = track.lock().unwrap_or_else(|e| e.into_inner());
            if framing == Framing::Lsp && t.exit {
                return if t.shutdown { 0 } else { 1 };
            }
        }
        if stdin_done.load(Ordering::SeqCst) {
            return 0;
        }
        eprintln!("codemem: the daemon went away mid-session; starting a new one and handing it this session");
        match take_over(home, kind, root, framing, &track, &sock, &mut stdout) {
            Ok((r, sc)) => {
                reader = r;
                scan = sc;
            }
            Err(e) => {
                eprintln!(
                    "codemem: could not restore the session: {e:#}; see {}",
                    DaemonPaths::new(home).log.display()
                );
                return exit::ERROR;
            }
        }
    }
}

/// Forwards the daemon's messages, whole, until its connection ends.
fn pump(
    reader: &mut BufReader<UnixStream>,
    scan: &mut Scanner,
    framing: Framing,
    track: &Mutex<Tracker>,
    out: &mut impl Write,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut failed = false;
        scan.feed(&buf[..n], &mut |body| {
            track.lock().unwrap_or_else(|e| e.into_inner()).daemon(body);
            failed |= out.write_all(&frame(framing, body)).is_err();
        });
        if failed || out.flush().is_err() {
            return;
        }
    }
}

type Resumed = (BufReader<UnixStream>, Scanner);

fn take_over(
    home: &Path,
    kind: &str,
    root: Option<&Path>,
    framing: Framing,
    track: &Mutex<Tracker>,
    sock: &Mutex<UnixStream>,
    out: &mut impl Write,
) -> anyhow::Result<Resumed> {
    let deadline = Instant::now() + START_TIMEOUT;
    let conn = loop {
        match attach(home, kind, root, None, true) {
            Ok(Attach::Attached(c)) => break c,
            Ok(Attach::OtherVersion(msg)) => anyhow::bail!("{msg}"),
            Ok(Attach::NoDaemon) => anyhow::bail!("no daemon could be started"),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let Connection { stream, mut reader } = conn;
    // Hold the client's side still while the new daemon catches up.
    let mut current = sock.lock().unwrap_or_else(|e| e.into_inner());
    let (init, replay, errors) = {
        let mut t = track.lock().unwrap_or_else(|e| e.into_inner());
        (t.initialize.clone(), t.replay(), t.abandon_pending())
    };
    let mut w = stream.try_clone()?;
    let mut scan = Scanner::new(framing);
    if let Some((id, body)) = init {
        w.write_all(&frame(framing, &body))?;
        let mut answered = false;
        let mut buf = vec![0u8; 64 * 1024];
        while !answered {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                anyhow::bail!("the new daemon closed the session during initialize");
            }
            scan.feed(&buf[..n], &mut |b| {
                let v: Value = serde_json::from_slice(b).unwrap_or_default();
                if !answered && v.get("method").is_none() && v.get("id") == Some(&id) {
                    answered = true; // the client has its answer from the first daemon
                } else {
                    let _ = out.write_all(&frame(framing, b));
                }
            });
        }
    }
    for m in replay {
        w.write_all(&frame(framing, &m))?;
    }
    *current = w;
    drop(current);
    for e in errors {
        out.write_all(&frame(framing, &e))?;
    }
    out.flush()?;
    Ok((reader, scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_id_is_part_of_the_version() {
        let (version, build) = VERSION.split_once('+').expect("version+build");
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        assert_eq!(build.len(), 16, "{VERSION}");
        assert!(build.chars().all(|c| c.is_ascii_hexdigit()), "{VERSION}");
    }

    #[test]
    fn a_log_is_rotated_only_past_its_limit_and_one_old_copy_is_kept() {
        let dir = std::env::temp_dir().join(format!("codemem-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("daemon.log");
        let old = dir.join("daemon.log.1");
        std::fs::write(&log, b"small").unwrap();
        assert!(!rotate_log(&log));
        assert!(log.exists() && !old.exists());
        std::fs::write(&old, b"older").unwrap();
        std::fs::write(&log, vec![b'x'; LOG_MAX_BYTES as usize + 1]).unwrap();
        assert!(rotate_log(&log));
        assert!(!log.exists());
        assert_eq!(
            std::fs::metadata(&old).unwrap().len(),
            LOG_MAX_BYTES + 1,
            "the big log replaced the older copy"
        );
        assert!(!rotate_log(&log), "a missing log is not an error");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
