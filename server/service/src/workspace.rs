//! `Workspace`: what a long-running server (LSP, MCP) holds — one `Project` per workspace
//! root, a background indexer per root (coalesced, debounced, cancellable), a file watcher,
//! the editor's open documents (unsaved buffers indexed as an overlay) and an event bus.
//!
//! Everything here is synchronous; async adapters call it from blocking tasks.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use codemem_core::{ChunkKind, Config, Hit, Language, Query, SearchMode};
use codemem_embed::Embedder;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};

use crate::documents::{Document, TextChange};
use crate::error::{Result, ServiceError};
use crate::indexer::{IndexEvent, IndexOptions, IndexStats, ProgressSink};
use crate::memory::{Memory, NewMemory, RecallQuery, RecallResponse};
use crate::project::{OpenOptions, Project, ProjectStatus};
use crate::search::{Freshness, SearchResponse};
use crate::symbols::{sort_matches, SymbolMatch};

/// Quiet time after the last external file change before re-indexing (one run per burst).
const WATCH_DEBOUNCE: Duration = Duration::from_millis(400);
/// Quiet time after the last keystroke before an unsaved buffer is re-chunked.
const EDIT_DEBOUNCE: Duration = Duration::from_millis(40);
const MAX_PATH_BYTES: usize = 4096;
/// Projects one session may select by path (`Workspace::select`).
const MAX_SELECTED_ROOTS: usize = 16;

pub struct WorkspaceOptions {
    pub home: PathBuf,
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Written into each data dir's lock ("codemem lsp", "codemem serve").
    pub purpose: String,
    /// Overrides with codemem.toml keys (e.g. LSP initializationOptions), applied over each
    /// root's codemem.toml and environment.
    pub config: Option<serde_json::Value>,
    /// Start indexing a root as soon as it is added.
    pub auto_index: bool,
    /// Watch roots for changes made outside the editor.
    pub watch: bool,
    /// How long to wait for another process to release a data dir.
    pub lock_wait: Duration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkspaceEvent {
    IndexStarted {
        root: PathBuf,
    },
    Index {
        root: PathBuf,
        event: IndexEvent,
    },
    IndexFinished {
        root: PathBuf,
        stats: IndexStats,
    },
    IndexFailed {
        root: PathBuf,
        error: String,
    },
    /// An unsaved buffer is (or is no longer) searchable.
    Overlay {
        root: PathBuf,
        path: String,
        chunks: usize,
    },
    MemoriesChanged {
        root: PathBuf,
        paths: Vec<String>,
    },
    /// Team mode: another codemem process on the project indexed these paths.
    TeamUpdate {
        root: PathBuf,
        paths: Vec<String>,
    },
}

#[derive(Default)]
struct RunState {
    requested: u64,
    completed: u64,
    running: bool,
    not_before: Option<Instant>,
    last_error: Option<String>,
    last_stats: Option<IndexStats>,
    /// Consecutive runs that left chunks unembedded (model errors): the next retry waits longer.
    embed_retries: u32,
}

/// A root, its project and a path relative to it (see `Workspace::projects_for`).
pub(crate) type ProjectPath = (PathBuf, Arc<Project>, Option<String>);

struct Root {
    path: PathBuf,
    project: Arc<Project>,
    run: Mutex<RunState>,
    cv: Condvar,
    cancel: AtomicBool,
    stop: AtomicBool,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Team mode: the other processes' change events.
    changes: Mutex<Option<codemem_kv::Subscription>>,
    /// Sessions that have this root open.
    users: std::sync::atomic::AtomicUsize,
}

impl Root {
    /// Stops the indexer and the watchers; the project (and its data-dir lock) goes with the
    /// last reference.
    fn close(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cancel.store(true, Ordering::SeqCst);
        self.watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.cv.notify_all();
    }

    fn request(&self, delay: Duration) -> u64 {
        let mut st = self.run.lock().unwrap_or_else(|e| e.into_inner());
        st.requested += 1;
        let at = Instant::now() + delay;
        st.not_before = Some(st.not_before.map_or(at, |t| t.max(at)));
        self.cv.notify_all();
        st.requested
    }
}

impl WorkspaceEvent {
    pub fn root(&self) -> &Path {
        match self {
            WorkspaceEvent::IndexStarted { root }
            | WorkspaceEvent::Index { root, .. }
            | WorkspaceEvent::IndexFinished { root, .. }
            | WorkspaceEvent::IndexFailed { root, .. }
            | WorkspaceEvent::Overlay { root, .. }
            | WorkspaceEvent::MemoriesChanged { root, .. }
            | WorkspaceEvent::TeamUpdate { root, .. } => root,
        }
    }
}

type RootList = Arc<RwLock<Vec<Arc<Root>>>>;

struct Subscriber {
    tx: Sender<WorkspaceEvent>,
    /// A session's roots: it hears only about those (`None`: every root).
    only: Option<std::sync::Weak<RwLock<Vec<Arc<Root>>>>>,
}

#[derive(Default)]
struct Bus {
    subs: Mutex<Vec<Subscriber>>,
}

impl Bus {
    fn emit(&self, e: WorkspaceEvent) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| {
            if let Some(only) = &s.only {
                let Some(roots) = only.upgrade() else {
                    return false;
                };
                if !roots
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|r| r.path == e.root())
                {
                    return true;
                }
            }
            s.tx.send(e.clone()).is_ok()
        });
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RootStatus {
    #[serde(flatten)]
    pub project: ProjectStatus,
    pub indexing: bool,
    pub last_error: Option<String>,
    pub memories: usize,
    pub unsaved_files: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendStatus {
    pub name: String,
    /// "embedded", "redis" or "qdrant".
    pub kind: String,
    pub healthy: bool,
    /// Circuit breaker state for remote backends.
    pub breaker: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceStatus {
    /// "indexing", "ready", "error" or "empty" (no root).
    pub state: String,
    pub model: Option<String>,
    pub roots: Vec<RootStatus>,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamespaceInfo {
    pub name: String,
    pub description: String,
    pub files: usize,
    pub points: u64,
    pub memories: usize,
}

/// Loads the embedding model (`Ok(None)`: not installed).
pub type LoadModel =
    Box<dyn Fn() -> std::result::Result<Option<Arc<dyn Embedder>>, String> + Send + Sync>;

/// What every session of one process shares: the options (data home, model), the open roots
/// (one `Project` each, opened once, so one lock holder and one indexer per root) and the
/// event bus. An in-process front end gets a private hub from `Workspace::new`; the daemon
/// keeps one for all its clients and attaches a `Workspace` per session (`Workspace::attach`).
pub struct Hub {
    opts: WorkspaceOptions,
    /// Loads the model on first use when `opts.embedder` is not given (the daemon).
    loader: Option<LoadModel>,
    model: std::sync::OnceLock<Option<Arc<dyn Embedder>>>,
    open: Mutex<Vec<Arc<Root>>>,
    /// Roots being opened now (outside `open`'s lock); `opened` wakes those waiting for one.
    opening: Mutex<Vec<PathBuf>>,
    opened: Condvar,
    bus: Arc<Bus>,
    /// Keep a root open when its last session leaves (the daemon: the next client finds it warm).
    keep_open: bool,
}

impl Hub {
    pub fn new(opts: WorkspaceOptions, keep_open: bool) -> Arc<Hub> {
        Self::build(opts, None, keep_open)
    }

    /// A hub that keeps roots open and loads the model (once, for every project) when the
    /// first session that wants it opens a root.
    pub fn shared(opts: WorkspaceOptions, loader: LoadModel) -> Arc<Hub> {
        Self::build(opts, Some(loader), true)
    }

    fn build(opts: WorkspaceOptions, loader: Option<LoadModel>, keep_open: bool) -> Arc<Hub> {
        Arc::new(Hub {
            opts,
            loader,
            model: std::sync::OnceLock::new(),
            open: Mutex::new(Vec::new()),
            opening: Mutex::new(Vec::new()),
            opened: Condvar::new(),
            bus: Arc::new(Bus::default()),
            keep_open,
        })
    }

    /// The model, if loaded (or given).
    pub fn embedder(&self) -> Option<Arc<dyn Embedder>> {
        self.opts
            .embedder
            .clone()
            .or_else(|| self.model.get().cloned().flatten())
    }

    pub fn has_embedder(&self) -> bool {
        self.embedder().is_some()
    }

    /// The model for a root opened now: none for a lexical-only session, else loaded once.
    fn model_for(&self, lexical_only: bool) -> Option<Arc<dyn Embedder>> {
        if lexical_only {
            return None;
        }
        if let Some(e) = &self.opts.embedder {
            return Some(e.clone());
        }
        let load = self.loader.as_ref()?;
        self.model
            .get_or_init(|| match load() {
                Ok(e) => e,
                Err(msg) => {
                    tracing::warn!(error = %msg, "embedding model not loaded; lexical search only");
                    None
                }
            })
            .clone()
    }

    /// The open roots, whichever session opened them.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }

    /// Sessions attached to each open root (for the daemon's status).
    pub fn sessions_per_root(&self) -> Vec<(PathBuf, usize)> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| (r.path.clone(), r.users.load(Ordering::SeqCst)))
            .collect()
    }

    /// The open root at `canonical`, opening its project (and starting its indexer and
    /// watcher) on first use; `config` overrides codemem.toml for a root opened here.
    /// The root joins `view` (a session's list) before its first run starts, so the session
    /// hears every event of that run.
    fn open_root(
        &self,
        canonical: &Path,
        config: Option<&serde_json::Value>,
        lexical_only: bool,
        view: Option<&RootList>,
    ) -> Result<Arc<Root>> {
        let join = |r: &Arc<Root>| {
            if let Some(v) = view {
                v.write().unwrap_or_else(|e| e.into_inner()).push(r.clone());
            }
        };
        // Opening a project (its stores, the first model load) happens outside the hub's lock,
        // so other sessions, the HTTP endpoint and `daemon status` never wait behind it; a
        // second opener of the same root waits for the first.
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(r) = open.iter().find(|r| r.path == canonical) {
                    r.users.fetch_add(1, Ordering::SeqCst);
                    join(r);
                    return Ok(r.clone());
                }
                let mut opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
                if !opening.iter().any(|p| p == canonical) {
                    opening.push(canonical.to_path_buf());
                    break;
                }
                drop(opening);
                open = self
                    .opened
                    .wait_timeout(open, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let done = OpeningGuard {
            hub: self,
            path: canonical,
        };
        let canonical = canonical.to_path_buf();
        let mut cfg = Config::load(&canonical)?;
        if let Some(over) = config {
            cfg = cfg.with_overrides(over, "initialization options")?;
        }
        let project = Project::open(
            &canonical,
            OpenOptions {
                home: self.opts.home.clone(),
                embedder: self.model_for(lexical_only),
                purpose: self.opts.purpose.clone(),
                lock_wait: self.opts.lock_wait,
                create: true,
                config: Some(cfg),
            },
        )?;
        let root = Arc::new(Root {
            path: canonical.clone(),
            project: Arc::new(project),
            run: Mutex::new(RunState::default()),
            cv: Condvar::new(),
            cancel: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            watcher: Mutex::new(None),
            changes: Mutex::new(None),
            users: std::sync::atomic::AtomicUsize::new(1),
        });
        let (bus, path) = (Arc::downgrade(&self.bus), canonical.clone());
        *root.changes.lock().unwrap_or_else(|e| e.into_inner()) =
            root.project.subscribe_changes(move |_, synced| {
                let Some(bus) = bus.upgrade() else { return };
                if !synced.paths.is_empty() {
                    bus.emit(WorkspaceEvent::TeamUpdate {
                        root: path.clone(),
                        paths: synced.paths,
                    });
                }
                if synced.memories > 0 {
                    bus.emit(WorkspaceEvent::MemoriesChanged {
                        root: path.clone(),
                        paths: synced.memory_paths,
                    });
                }
            });
        let (r, bus) = (root.clone(), self.bus.clone());
        std::thread::Builder::new()
            .name("codemem-indexer".into())
            .spawn(move || index_runner(r, bus))
            .map_err(|e| ServiceError::io(&canonical, e))?;
        if self.opts.watch {
            match start_watcher(&root) {
                Ok(w) => *root.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(w),
                Err(e) => {
                    tracing::warn!(root = %canonical.display(), error = %e, "file watcher unavailable; external changes are picked up on the next reindex")
                }
            }
        }
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.push(root.clone());
            join(&root);
        }
        drop(done);
        if self.opts.auto_index {
            root.request(Duration::ZERO);
        }
        Ok(root)
    }

    /// A session left `root`: close it when nobody uses it (unless the hub keeps roots warm).
    fn release(&self, root: &Arc<Root>) {
        if root.users.fetch_sub(1, Ordering::SeqCst) > 1 || self.keep_open {
            return;
        }
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| !Arc::ptr_eq(r, root));
        root.close();
    }
}

/// Clears a root's "being opened" mark however its opening ends, and wakes waiters.
struct OpeningGuard<'a> {
    hub: &'a Hub,
    path: &'a Path,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        self.hub
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != self.path);
        // Taking `open` orders this wake-up after a waiter's check (no lost notification).
        let _open = self.hub.open.lock().unwrap_or_else(|e| e.into_inner());
        self.hub.opened.notify_all();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for r in self.open.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            r.close();
        }
    }
}

/// One session's view of a hub: the roots it opened, its open documents (unsaved buffers)
/// and its config overrides. Searches, memories and events cover its roots only.
pub struct Workspace {
    hub: Arc<Hub>,
    /// Overrides applied to roots this session opens first.
    config: Option<serde_json::Value>,
    roots: RootList,
    /// A view of every root of the hub (the daemon's MCP HTTP endpoint).
    every_root: bool,
    /// Roots this session opens first are opened without the model.
    lexical_only: bool,
    docs: Mutex<HashMap<PathBuf, Document>>,
    edits: Sender<PathBuf>,
}

impl Workspace {
    /// An in-process workspace: a private hub, closed with the workspace.
    pub fn new(opts: WorkspaceOptions) -> Arc<Workspace> {
        let config = opts.config.clone();
        Self::attach(Hub::new(opts, false), config, false)
    }

    /// A session on a shared hub (the daemon): roots it adds are opened once for everyone;
    /// the first session to open a root decides whether it gets the model (`lexical_only`).
    pub fn attach(
        hub: Arc<Hub>,
        config: Option<serde_json::Value>,
        lexical_only: bool,
    ) -> Arc<Workspace> {
        Self::view(hub, config, false, lexical_only)
    }

    /// A view of every root the hub has open, now and later (the daemon's HTTP endpoint).
    pub fn every_root(hub: Arc<Hub>) -> Arc<Workspace> {
        Self::view(hub, None, true, false)
    }

    fn view(
        hub: Arc<Hub>,
        config: Option<serde_json::Value>,
        every_root: bool,
        lexical_only: bool,
    ) -> Arc<Workspace> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let ws = Arc::new(Workspace {
            hub,
            config,
            roots: Arc::new(RwLock::new(Vec::new())),
            every_root,
            lexical_only,
            docs: Mutex::new(HashMap::new()),
            edits: tx,
        });
        let weak = Arc::downgrade(&ws);
        std::thread::Builder::new()
            .name("codemem-overlay".into())
            .spawn(move || overlay_worker(weak, rx))
            .expect("spawn overlay worker");
        ws
    }

    pub fn has_embedder(&self) -> bool {
        self.hub.has_embedder()
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Events about this session's roots.
    pub fn subscribe(&self) -> Receiver<WorkspaceEvent> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let only = (!self.every_root).then(|| Arc::downgrade(&self.roots));
        self.hub
            .bus
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Subscriber { tx, only });
        rx
    }

    /// A session narrowed to the projects at `roots` (an HTTP agent's MCP roots or its
    /// `?root=` URL). Each must be an absolute path to a directory. A folder resolves to its
    /// project (`paths::discover_root`: an indexed ancestor, else the nearest `codemem.toml` or
    /// `.git`), and a folder inside a project the hub has open selects that project. Opening a
    /// project that is not open yet needs `may_open` (the caller's right to start indexing);
    /// the filesystem root, the user's home, the codemem home and their ancestors are never
    /// projects. The selection is a new session on the same hub: it shares the index, memories
    /// and events, and drops its roots when it is dropped.
    pub fn select(&self, roots: &[PathBuf], may_open: bool) -> Result<Arc<Workspace>> {
        if roots.is_empty() {
            return Err(ServiceError::InvalidInput(
                "no project roots given: name at least one absolute directory path".into(),
            ));
        }
        if roots.len() > MAX_SELECTED_ROOTS {
            return Err(ServiceError::InvalidInput(format!(
                "{} project roots given; at most {MAX_SELECTED_ROOTS} per session",
                roots.len()
            )));
        }
        let open = self.hub.roots();
        let forbidden: Vec<PathBuf> = [
            std::env::var_os("HOME").map(PathBuf::from),
            Some(self.hub.opts.home.clone()),
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
        let mut chosen: Vec<PathBuf> = Vec::new();
        for r in roots {
            let shown = r.display().to_string();
            if !r.is_absolute() {
                return Err(ServiceError::InvalidInput(format!(
                    "project root `{shown}` is not an absolute path; give the full path of the project folder"
                )));
            }
            let canonical = r.canonicalize().map_err(|e| {
                ServiceError::InvalidInput(format!(
                    "project root `{shown}` cannot be opened ({e}); give an existing project folder"
                ))
            })?;
            if !canonical.is_dir() {
                return Err(ServiceError::InvalidInput(format!(
                    "project root `{shown}` is not a directory; give the project folder"
                )));
            }
            // A folder inside an open project is that project (no second index of a subtree).
            let project = match open
                .iter()
                .filter(|o| canonical.starts_with(o))
                .max_by_key(|o| o.as_os_str().len())
            {
                Some(o) => o.clone(),
                None => {
                    let p = crate::paths::discover_root(&self.hub.opts.home, &canonical);
                    if p.parent().is_none() || forbidden.iter().any(|f| f.starts_with(&p)) {
                        return Err(ServiceError::InvalidInput(format!(
                            "`{}` is not a project folder (the filesystem root, your home, the codemem home or a folder above them); give the project's own folder",
                            p.display()
                        )));
                    }
                    if let Some(inner) = open.iter().find(|o| o.starts_with(&p)) {
                        return Err(ServiceError::InvalidInput(format!(
                            "`{}` contains the open project {}; give that project's folder",
                            p.display(),
                            inner.display()
                        )));
                    }
                    if !may_open {
                        return Err(ServiceError::InvalidInput(format!(
                            "`{}` is not open in codemem, and this token may not open projects (only an unrestricted write token may); open it in an editor or with `codemem serve --root`, or pick an open project",
                            p.display()
                        )));
                    }
                    p
                }
            };
            if !chosen.contains(&project) {
                chosen.push(project);
            }
        }
        let ws = Workspace::attach(self.hub.clone(), None, false);
        for r in &chosen {
            ws.add_root(r)?;
        }
        Ok(ws)
    }

    /// Opens a workspace root (idempotent) and, with `auto_index`, starts indexing it.
    pub fn add_root(&self, root: &Path) -> Result<PathBuf> {
        let canonical = root.canonicalize().map_err(|e| ServiceError::Root {
            path: root.display().to_string(),
            reason: e.to_string(),
        })?;
        if self.all().iter().any(|r| r.path == canonical) {
            return Ok(canonical);
        }
        let view = (!self.every_root).then_some(&self.roots);
        let opened =
            self.hub
                .open_root(&canonical, self.config.as_ref(), self.lexical_only, view)?;
        if self.every_root {
            // The hub's list is this view's list; it holds no count of its own.
            self.hub.release(&opened);
        }
        // Buffers the editor opened while the root was opening are searchable now.
        for p in self
            .docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|p| p.starts_with(&canonical))
        {
            let _ = self.edits.send(p.clone());
        }
        Ok(canonical)
    }

    /// Leaves a root; the hub stops indexing and watching it and releases its data dir when
    /// no other session uses it.
    pub fn remove_root(&self, root: &Path) -> bool {
        let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let r = {
            let mut roots = self.roots.write().unwrap_or_else(|e| e.into_inner());
            let Some(i) = roots
                .iter()
                .position(|r| r.path == canonical || r.path == root)
            else {
                return false;
            };
            roots.remove(i)
        };
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p, _| !p.starts_with(&r.path));
        self.hub.release(&r);
        true
    }

    pub fn roots(&self) -> Vec<PathBuf> {
        self.all().iter().map(|r| r.path.clone()).collect()
    }

    fn all(&self) -> Vec<Arc<Root>> {
        if self.every_root {
            return self
                .hub
                .open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
        }
        self.roots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The innermost root containing `abs` (lexically; the file need not exist).
    fn root_of(&self, abs: &Path) -> Option<Arc<Root>> {
        self.all()
            .into_iter()
            .filter(|r| abs.starts_with(&r.path))
            .max_by_key(|r| r.path.as_os_str().len())
    }

    fn first(&self) -> Result<Arc<Root>> {
        self.all().into_iter().next().ok_or(ServiceError::NoRoot)
    }

    fn roots_text(&self) -> String {
        self.roots()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A search path glob made workspace-relative ([`crate::paths::sandbox_glob`]).
    pub fn sandbox_glob(&self, glob: &str) -> Result<String> {
        crate::paths::sandbox_glob(glob, &self.roots())
    }

    /// The namespaces a search covers when the caller names none: `search.default_namespaces`
    /// of the first root's config (the built-in defaults without a root).
    pub fn default_namespaces(&self) -> Vec<String> {
        match self.all().first() {
            Some(r) => r
                .project
                .config()
                .default_namespaces()
                .iter()
                .map(|n| n.to_string())
                .collect(),
            None => codemem_core::DEFAULT_QUERY_NAMESPACES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// Resolves a user-given path (absolute, or relative to a root) to its root and
    /// workspace-relative path; nothing outside the roots is reachable (`..`, symlinks).
    pub fn resolve_path(&self, p: &str) -> Result<(PathBuf, String)> {
        let (root, rel) = self.resolve(p)?;
        Ok((root.path.clone(), rel))
    }

    fn resolve(&self, p: &str) -> Result<(Arc<Root>, String)> {
        let outside = || ServiceError::OutsideWorkspace {
            path: p.to_string(),
            roots: self.roots_text(),
        };
        if p.is_empty() || p.len() > MAX_PATH_BYTES || p.contains('\0') {
            return Err(ServiceError::InvalidInput(format!(
                "path must be 1-{MAX_PATH_BYTES} bytes without NUL characters"
            )));
        }
        let given = Path::new(p);
        if given
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(ServiceError::InvalidInput(format!(
                "path {p:?} contains `..`; give a path inside the workspace without `..`"
            )));
        }
        let roots = self.all();
        if roots.is_empty() {
            return Err(ServiceError::NoRoot);
        }
        let abs = if given.is_absolute() {
            given.to_path_buf()
        } else {
            let rel = p.trim_start_matches("./");
            roots
                .iter()
                .map(|r| r.path.join(rel))
                .find(|c| c.exists())
                .unwrap_or_else(|| roots[0].path.join(rel))
        };
        let root = self.root_of(&abs).ok_or_else(outside)?;
        // Symlinks may point anywhere: the longest existing prefix (a link whose target does
        // not exist yet too) must still be inside the root once resolved.
        if confine(&root.path, &abs).is_none() {
            return Err(outside());
        }
        let rel = abs.strip_prefix(&root.path).map_err(|_| outside())?;
        let rel = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect::<Vec<_>>()
            .join("/");
        Ok((root, rel))
    }

    /// Root and relative path of an absolute file path, without touching the disk.
    /// The projects a question about `path` concerns, with the path relative to each: the
    /// root holding an absolute path; the roots that index a relative one; every root when
    /// there is no path. A path no root holds is an error that names the roots.
    pub(crate) fn projects_for(&self, path: Option<&str>) -> Result<Vec<ProjectPath>> {
        let Some(p) = path.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(self
                .all()
                .into_iter()
                .map(|r| (r.path.clone(), r.project.clone(), None))
                .collect());
        };
        let p = p.strip_prefix("file://").unwrap_or(p);
        if Path::new(p).is_absolute() {
            let (r, rel) = self.locate(Path::new(p))?;
            return Ok(vec![(r.path.clone(), r.project.clone(), Some(rel))]);
        }
        if Path::new(p)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(ServiceError::OutsideWorkspace {
                path: p.to_string(),
                roots: self.roots_text(),
            });
        }
        let found: Vec<_> = self
            .all()
            .into_iter()
            .filter(|r| {
                r.project
                    .files
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains_key(p)
            })
            .map(|r| (r.path.clone(), r.project.clone(), Some(p.to_string())))
            .collect();
        if found.is_empty() {
            return Err(ServiceError::InvalidInput(format!(
                "{p} is not an indexed file of {}; give a path relative to a root (as search results show it) or an absolute one",
                self.roots_text()
            )));
        }
        Ok(found)
    }

    fn locate(&self, abs: &Path) -> Result<(Arc<Root>, String)> {
        if !abs.is_absolute() || abs.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(ServiceError::OutsideWorkspace {
                path: abs.display().to_string(),
                roots: self.roots_text(),
            });
        }
        let root = self
            .root_of(abs)
            .ok_or_else(|| ServiceError::OutsideWorkspace {
                path: abs.display().to_string(),
                roots: self.roots_text(),
            })?;
        let rel = abs.strip_prefix(&root.path).unwrap_or(abs);
        let rel = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect::<Vec<_>>()
            .join("/");
        Ok((root, rel))
    }

    /// Searches every root. The path glob goes through the sandbox first (`sandbox_glob`),
    /// whichever front end sent it.
    pub fn search(&self, q: &Query) -> Result<SearchResponse> {
        let started = Instant::now();
        let sandboxed;
        let q = match &q.path_glob {
            Some(g) => {
                sandboxed = Query {
                    path_glob: Some(self.sandbox_glob(g)?),
                    ..q.clone()
                };
                &sandboxed
            }
            None => q,
        };
        q.validate()?;
        let roots = self.all();
        if roots.is_empty() {
            return Err(ServiceError::NoRoot);
        }
        let mut hits: Vec<Hit> = Vec::new();
        let mut fresh: Option<Freshness> = None;
        let mut mode = q.mode;
        let mut dense_available = true;
        let mut omitted_hits = 0;
        for r in &roots {
            let resp = r.project.search(q)?;
            omitted_hits += resp.omitted_hits;
            mode = resp.mode;
            dense_available &= resp.dense_available;
            let root = r.path.display().to_string();
            hits.extend(resp.hits.into_iter().map(|mut h| {
                h.root = Some(root.clone());
                h
            }));
            fresh = Some(match fresh {
                None => resp.freshness,
                Some(mut f) => {
                    f.indexed_files += resp.freshness.indexed_files;
                    f.pending_files += resp.freshness.pending_files;
                    f.unsaved_files += resp.freshness.unsaved_files;
                    f.stale |= resp.freshness.stale;
                    f
                }
            });
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(q.k);
        // Several roots' answers together fit the budget too.
        if let Some(max) = crate::context::max_tokens(q.max_tokens)? {
            omitted_hits += crate::context::fit_hits(&mut hits, max, |h| &mut h.snippet);
        }
        Ok(SearchResponse {
            hits,
            mode,
            dense_available,
            freshness: fresh.expect("at least one root"),
            took_ms: (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0,
            omitted_hits,
        })
    }

    /// Token-budgeted context for a question (`context::pack`): the top
    /// [`crate::context::CANDIDATES`] hits with their whole chunk text, merged per file and
    /// trimmed to `budget` tokens (default 4000). Paths are shown relative to the root, with
    /// the root when several are open.
    pub fn context(
        &self,
        q: &crate::context::ContextQuery,
    ) -> Result<crate::context::ContextBundle> {
        let q = &self.context_about(q)?;
        let (query, budget) = crate::context::search_for(q)?;
        let mut resp = self.search(&query)?;
        // The definitions the best hits call and their callers go right after them, so they
        // get budget before the lower-ranked hits.
        // The namespaces searched (the defaults when none were named): a default question
        // gets no callers from tests, a scoped token nothing outside its scope.
        let scope = if query.namespaces.is_empty() {
            crate::NamespaceScope::only(self.default_namespaces())
        } else {
            crate::NamespaceScope::only(query.namespaces.iter().map(|n| n.to_string()))
        };
        let at = resp.hits.len().min(crate::refs::RELATED_FROM_HITS);
        let glob = match &query.path_glob {
            Some(g) => Some(
                globset::Glob::new(g)
                    .map_err(|e| ServiceError::InvalidInput(format!("path glob {g:?}: {e}")))?
                    .compile_matcher(),
            ),
            None => None,
        };
        // The request's path glob and language hold for the related pieces too.
        let related: Vec<Hit> = self
            .related_hits(&resp.hits[..at], &scope)
            .into_iter()
            .filter(|r| glob.as_ref().is_none_or(|g| g.is_match(&r.path)))
            .filter(|r| query.language.is_none_or(|l| l == r.language))
            .collect();
        // A related chunk that also ranked lower moves up (once).
        resp.hits.retain(|h| {
            !related
                .iter()
                .any(|r| r.path == h.path && r.start_line == h.start_line)
        });
        let at = resp.hits.len().min(at);
        resp.hits.splice(at..at, related);
        if self.all().len() == 1 {
            for h in &mut resp.hits {
                h.root = None;
            }
        }
        Ok(crate::context::pack(&resp.hits, budget))
    }

    /// A context request whose `location` is replaced by the name of the definition around
    /// it (the rest is checked by `context::search_for`).
    fn context_about(
        &self,
        q: &crate::context::ContextQuery,
    ) -> Result<crate::context::ContextQuery> {
        let Some(loc) = &q.location else {
            return Ok(q.clone());
        };
        if !q.text.trim().is_empty() || q.symbol.is_some() {
            return Err(ServiceError::InvalidInput(
                crate::context::ONE_SUBJECT.into(),
            ));
        }
        let (_, project, rel) = self
            .projects_for(Some(&loc.path))?
            .into_iter()
            .next()
            .ok_or(ServiceError::NoRoot)?;
        let rel = rel.unwrap_or_default();
        let symbols = project.symbols_of(&rel);
        let name = crate::symbols::enclosing(&symbols, loc.line)
            .map(|d| d.name.clone())
            .ok_or_else(|| {
                ServiceError::InvalidInput(format!(
                    "no definition encloses line {} of {rel}; give a query instead",
                    loc.line
                ))
            })?;
        Ok(crate::context::ContextQuery {
            symbol: Some(name),
            location: None,
            ..q.clone()
        })
    }

    pub fn find_symbol(
        &self,
        name: &str,
        kind: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SymbolMatch>> {
        self.find_symbol_in(name, kind, limit, &crate::NamespaceScope::All)
    }

    /// `find_symbol` limited to the definitions in the namespaces of `scope`.
    pub fn find_symbol_in(
        &self,
        name: &str,
        kind: Option<&str>,
        limit: usize,
        scope: &crate::NamespaceScope,
    ) -> Result<Vec<SymbolMatch>> {
        if name.trim().is_empty() || name.len() > 512 {
            return Err(ServiceError::InvalidInput(
                "give a symbol name of 1-512 bytes".into(),
            ));
        }
        let kind = match kind {
            None => None,
            Some(k) => Some(ChunkKind::parse(k).ok_or_else(|| {
                ServiceError::InvalidInput(format!(
                    "unknown kind {k:?}; use one of function, method, class, struct, enum, interface, trait, impl, module, constant, type"
                ))
            })?),
        };
        let mut out = Vec::new();
        for r in self.all() {
            out.extend(r.project.find_symbol_in(name, kind, limit, scope));
        }
        sort_matches(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    /// Checks that `pos` (0-based line) is inside the document `abs` as a client may ask
    /// about it: a path inside a root (else `OutsideWorkspace`), open (its buffer) or indexed
    /// (the line count the index kept). Never reads the file: a FIFO, a device or a file
    /// outside the roots is never opened.
    pub fn check_position(&self, abs: &Path, pos: crate::documents::Position) -> Result<()> {
        let (root, rel) = self.locate(abs)?;
        let lines = match self.document_lines(abs) {
            Some(n) => n,
            None => match root.project.indexed_lines(&rel) {
                Some(Some(n)) => n as usize,
                // Indexed before line counts were kept: the next index run records it.
                Some(None) => return Ok(()),
                None => return Err(not_known(&rel)),
            },
        };
        if pos.line as usize >= lines {
            return Err(ServiceError::InvalidInput(format!(
                "position {}:{} is past the end of {rel} ({lines} lines)",
                pos.line, pos.character
            )));
        }
        Ok(())
    }

    /// Checks that `abs` is a document a client may ask about (inside a root; open or
    /// indexed), without touching the disk.
    pub fn check_document(&self, abs: &Path) -> Result<()> {
        let (root, rel) = self.locate(abs)?;
        if self.document_lines(abs).is_some() || root.project.indexed_lines(&rel).is_some() {
            Ok(())
        } else {
            Err(not_known(&rel))
        }
    }

    /// Code like lines `start_line..=end_line` (1-based) of `abs`: the enclosing definition
    /// when one line is given, else the selection. The source chunk itself is left out.
    pub fn similar(
        &self,
        abs: &Path,
        start_line: u32,
        end_line: u32,
        k: usize,
    ) -> Result<SearchResponse> {
        codemem_core::check_k(k)?;
        let (root, rel) = self.locate(abs)?;
        let text = match self.document_text(abs) {
            Some(t) => t,
            None => {
                // Only a file the index holds, once resolved inside its root, regular and
                // within the size limit, is read.
                if root.project.indexed_lines(&rel).is_none() {
                    return Err(not_known(&rel));
                }
                let outside = || ServiceError::OutsideWorkspace {
                    path: abs.display().to_string(),
                    roots: self.roots_text(),
                };
                let real = confine(&root.path, abs).ok_or_else(outside)?;
                let md = std::fs::metadata(&real).map_err(|e| ServiceError::io(abs, e))?;
                if !md.is_file() || md.len() > root.project.config().index.max_file_bytes {
                    return Err(ServiceError::InvalidInput(format!(
                        "{rel} is not a regular file within index.max_file_bytes; open it in the editor first"
                    )));
                }
                let bytes = std::fs::read(&real).map_err(|e| ServiceError::io(abs, e))?;
                crate::walk::decode_text(&bytes)
                    .map_err(|r| ServiceError::InvalidInput(format!("{rel}: {r}")))?
            }
        };
        let lines: Vec<&str> = text.lines().collect();
        if start_line == 0 || start_line > end_line || start_line as usize > lines.len().max(1) {
            return Err(ServiceError::InvalidInput(format!(
                "lines {start_line}-{end_line} are outside {rel} ({} lines)",
                lines.len()
            )));
        }
        let end_line = end_line.min(lines.len() as u32);
        let language = Language::detect(&rel).unwrap_or(Language::Text);
        let (query_text, span) = if start_line == end_line {
            let (chunks, _) = root.project.chunk_text(&rel, language, &text);
            match chunks
                .iter()
                .filter(|c| c.start_line <= start_line && start_line <= c.end_line)
                .min_by_key(|c| c.end_line - c.start_line)
            {
                Some(c) => (c.content.clone(), (c.start_line, c.end_line)),
                None => (
                    lines[start_line as usize - 1].to_string(),
                    (start_line, end_line),
                ),
            }
        } else {
            (
                lines[start_line as usize - 1..end_line as usize].join("\n"),
                (start_line, end_line),
            )
        };
        let mut cut = query_text.len().min(codemem_core::MAX_QUERY_BYTES);
        while !query_text.is_char_boundary(cut) {
            cut -= 1;
        }
        // Dense finds paraphrases; lexical keeps renamed copies (same tokens) near the top.
        let mode = if self.has_embedder() {
            SearchMode::Hybrid
        } else {
            SearchMode::Lexical
        };
        let q = Query {
            namespaces: vec![
                codemem_core::Namespace::coding(),
                codemem_core::Namespace::new("testing")?,
            ],
            k: (k + 5).min(codemem_core::MAX_K),
            mode,
            ..Query::new(&query_text[..cut])
        };
        let mut resp = self.search(&q)?;
        let root_s = root.path.display().to_string();
        resp.hits.retain(|h| {
            !(h.root.as_deref() == Some(root_s.as_str())
                && h.path == rel
                && h.start_line <= span.1
                && span.0 <= h.end_line)
        });
        resp.hits.truncate(k);
        Ok(resp)
    }

    pub fn remember(&self, m: NewMemory) -> Result<Memory> {
        let (root, path) = match &m.path {
            Some(p) => {
                let (r, rel) = self.resolve(p)?;
                (r, Some(rel))
            }
            None => (self.first()?, None),
        };
        let memory = root.project.remember(NewMemory {
            path: path.clone(),
            ..m
        })?;
        self.hub.bus.emit(WorkspaceEvent::MemoriesChanged {
            root: root.path.clone(),
            paths: path.into_iter().collect(),
        });
        Ok(memory)
    }

    pub fn forget(&self, id: &str) -> Result<bool> {
        for r in self.all() {
            if let Some(m) = r.project.memory(id) {
                let done = r.project.forget(id)?;
                self.hub.bus.emit(WorkspaceEvent::MemoriesChanged {
                    root: r.path.clone(),
                    paths: m.path.into_iter().collect(),
                });
                return Ok(done);
            }
        }
        Ok(false)
    }

    pub fn recall(&self, q: &RecallQuery) -> Result<RecallResponse> {
        Query {
            namespaces: vec![],
            k: q.k,
            ..Query::new(q.text.clone())
        }
        .validate()?;
        let mut hits = Vec::new();
        for r in self.all() {
            let root = r.path.display().to_string();
            hits.extend(r.project.recall(q)?.hits.into_iter().map(|mut h| {
                h.hit.root = Some(root.clone());
                h
            }));
        }
        if self.all().is_empty() {
            return Err(ServiceError::NoRoot);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(q.k);
        let omitted_hits = match crate::context::max_tokens(q.max_tokens)? {
            Some(max) => crate::context::fit_hits(&mut hits, max, |h| &mut h.hit.snippet),
            None => 0,
        };
        Ok(RecallResponse { hits, omitted_hits })
    }

    /// Memories pinned to a file (absolute path).
    pub fn memories_for(&self, abs: &Path) -> Vec<Memory> {
        match self.locate(abs) {
            Ok((r, rel)) => r.project.memories_for(&rel),
            Err(_) => Vec::new(),
        }
    }

    /// Runs (or joins) an index run of `root` (all roots when `None`) and waits for it.
    pub fn reindex(
        &self,
        root: Option<&Path>,
        progress: &dyn ProgressSink,
        cancel: &AtomicBool,
    ) -> Result<Vec<IndexStats>> {
        let targets: Vec<Arc<Root>> = match root {
            None => self.all(),
            Some(p) => {
                let (r, _) = self.resolve(&p.display().to_string())?;
                vec![r]
            }
        };
        if targets.is_empty() {
            return Err(ServiceError::NoRoot);
        }
        let mut out = Vec::new();
        for r in targets {
            let events = self.subscribe();
            let gen = r.request(Duration::ZERO);
            loop {
                match events.recv_timeout(Duration::from_millis(100)) {
                    Ok(WorkspaceEvent::Index { root, event }) if root == r.path => {
                        progress.event(event)
                    }
                    Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if cancel.load(Ordering::Relaxed) {
                    r.cancel.store(true, Ordering::SeqCst);
                }
                let st = r.run.lock().unwrap_or_else(|e| e.into_inner());
                if st.completed >= gen {
                    if let Some(e) = &st.last_error {
                        return Err(ServiceError::IndexFailed {
                            root: r.path.display().to_string(),
                            reason: e.clone(),
                        });
                    }
                    out.push(st.last_stats.clone().unwrap_or_default());
                    break;
                }
                if r.stop.load(Ordering::SeqCst) {
                    return Err(ServiceError::Cancelled);
                }
            }
        }
        Ok(out)
    }

    /// Cancels running index runs (all roots when `None`); they resume on the next request.
    pub fn cancel_indexing(&self, root: Option<&Path>) {
        for r in self.all() {
            if root.is_none_or(|p| r.path == p) {
                r.cancel.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Schedules one debounced re-index for files changed outside the editor.
    pub fn files_changed(&self, paths: Vec<PathBuf>) {
        let mut hit: HashSet<PathBuf> = HashSet::new();
        for p in paths {
            if let Some(r) = self.root_of(&p) {
                if hit.insert(r.path.clone()) {
                    r.request(WATCH_DEBOUNCE);
                }
            }
        }
    }

    pub fn status(&self) -> Result<WorkspaceStatus> {
        self.status_in(&crate::NamespaceScope::All)
    }

    /// `status` as a caller limited to `scope` may see it (other namespaces' counts left out).
    pub fn status_in(&self, scope: &crate::NamespaceScope) -> Result<WorkspaceStatus> {
        let mut roots = Vec::new();
        // Each root has its own connections; one entry per backend, the least healthy one wins.
        let mut backends: Vec<BackendStatus> = Vec::new();
        for r in self.all() {
            let project = r.project.status_in(scope)?;
            for b in project.backends.iter().cloned() {
                match backends
                    .iter_mut()
                    .find(|x| x.name == b.name && x.kind == b.kind)
                {
                    Some(x) if x.healthy && !b.healthy => *x = b,
                    Some(_) => {}
                    None => backends.push(b),
                }
            }
            let st = r.run.lock().unwrap_or_else(|e| e.into_inner());
            let (indexing, last_error) = (
                st.running || st.requested > st.completed,
                st.last_error.clone(),
            );
            drop(st);
            roots.push(RootStatus {
                project,
                indexing,
                last_error,
                memories: r.project.memories_visible(scope),
                unsaved_files: r.project.unsaved_visible(scope)?,
            });
        }
        let state = if roots.is_empty() {
            "empty"
        } else if roots.iter().any(|r| r.last_error.is_some()) {
            "error"
        } else if roots.iter().any(|r| r.indexing) {
            "indexing"
        } else {
            "ready"
        };
        if backends.is_empty() {
            // No root yet: the embedded defaults.
            for (name, detail) in [
                ("vectors", "qdrant-edge shards in the data dir"),
                ("kv", "redb file in the data dir"),
            ] {
                backends.push(BackendStatus {
                    name: name.into(),
                    kind: "embedded".into(),
                    healthy: true,
                    breaker: None,
                    detail: detail.into(),
                });
            }
        }
        Ok(WorkspaceStatus {
            state: state.into(),
            model: self.hub.embedder().map(|e| e.model_id().to_string()),
            roots,
            backends,
        })
    }

    pub fn namespaces(&self) -> Result<Vec<NamespaceInfo>> {
        self.namespaces_in(&crate::NamespaceScope::All)
    }

    /// The namespaces in `scope`, with their counts.
    pub fn namespaces_in(&self, scope: &crate::NamespaceScope) -> Result<Vec<NamespaceInfo>> {
        let mut out: Vec<NamespaceInfo> = Vec::new();
        let roots = self.all();
        let cfg = match roots.first() {
            Some(r) => r.project.config().clone(),
            None => Config::default(),
        };
        for ns in cfg
            .all_namespaces()
            .into_iter()
            .filter(|ns| scope.allows(ns.as_str()))
        {
            let mut info = NamespaceInfo {
                name: ns.to_string(),
                description: describe(ns.as_str()).into(),
                files: 0,
                points: 0,
                memories: 0,
            };
            for r in &roots {
                let st = r.project.status()?;
                if let Some(n) = st.namespaces.iter().find(|n| n.name == ns.as_str()) {
                    info.files += n.files;
                    info.points += n.points;
                }
                info.memories += r.project.memories_in(ns.as_str());
            }
            out.push(info);
        }
        Ok(out)
    }

    // ----- live documents -------------------------------------------------------------

    /// An editor opened `abs` with `text` (unsaved content becomes searchable).
    /// A document under a root that is still opening is kept, and indexed once the root is open.
    pub fn open_document(&self, abs: &Path, version: i32, text: String) -> Result<()> {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(abs.to_path_buf(), Document::new(&text, version));
        let _ = self.edits.send(abs.to_path_buf());
        Ok(())
    }

    pub fn change_document(
        &self,
        abs: &Path,
        version: i32,
        changes: Vec<TextChange>,
    ) -> Result<()> {
        {
            let mut docs = self.docs.lock().unwrap_or_else(|e| e.into_inner());
            let doc = docs.get_mut(abs).ok_or_else(|| {
                ServiceError::InvalidInput(format!(
                    "{} is not open; send didOpen first",
                    abs.display()
                ))
            })?;
            doc.apply(version, changes)?;
        }
        let _ = self.edits.send(abs.to_path_buf());
        Ok(())
    }

    /// The buffer was written to disk: index the file now (the overlay is dropped once the
    /// index holds the same bytes).
    pub fn save_document(&self, abs: &Path) {
        if let Some(r) = self.root_of(abs) {
            r.request(Duration::from_millis(50));
        }
    }

    /// The buffer was closed: its unsaved content is no longer searchable.
    pub fn close_document(&self, abs: &Path) {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(abs);
        if let Ok((r, rel)) = self.locate(abs) {
            match r.project.clear_overlay(&rel) {
                Ok(true) => self.hub.bus.emit(WorkspaceEvent::Overlay {
                    root: r.path.clone(),
                    path: rel,
                    chunks: 0,
                }),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(path = %abs.display(), error = %e, "could not drop unsaved buffer from the index")
                }
            }
        }
    }

    pub fn document_text(&self, abs: &Path) -> Option<String> {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(abs)
            .map(|d| d.rope.to_string())
    }

    /// Lines of an open buffer (without copying it).
    pub fn document_lines(&self, abs: &Path) -> Option<usize> {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(abs)
            .map(|d| d.rope.len_lines())
    }

    pub fn document_version(&self, abs: &Path) -> Option<i32> {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(abs)
            .map(|d| d.version)
    }

    /// The definitions of a file (unsaved buffer if open, else the index), for hover and lenses.
    pub fn symbols_in(&self, abs: &Path) -> Vec<crate::symbols::SymbolDef> {
        let Ok((r, rel)) = self.locate(abs) else {
            return Vec::new();
        };
        if let Some(text) = self.document_text(abs) {
            let lang = Language::detect(&rel).unwrap_or(Language::Text);
            return r.project.chunk_text(&rel, lang, &text).1;
        }
        r.project.symbols_of(&rel)
    }

    /// Root and workspace-relative path of an absolute path inside a root.
    pub fn relative(&self, abs: &Path) -> Option<(PathBuf, String)> {
        self.locate(abs).ok().map(|(r, rel)| (r.path.clone(), rel))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let roots = std::mem::take(&mut *self.roots.write().unwrap_or_else(|e| e.into_inner()));
        for r in &roots {
            self.hub.release(r);
        }
    }
}

fn not_known(rel: &str) -> ServiceError {
    ServiceError::InvalidInput(format!(
        "{rel} is neither open nor indexed (special files, links not followed and skipped files are never read); open it in the editor first"
    ))
}

/// Where `abs` really is once the symlinks of its longest existing prefix are resolved (the
/// components that do not exist yet are appended as given); `None` when that prefix cannot
/// be resolved (a dangling link) or leads outside `root` (canonical).
fn confine(root: &Path, abs: &Path) -> Option<PathBuf> {
    let mut existing = abs;
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    while existing.symlink_metadata().is_err() {
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
    let mut real = existing.canonicalize().ok()?;
    if !real.starts_with(root) {
        return None;
    }
    for c in rest.iter().rev() {
        real.push(c);
    }
    Some(real)
}

fn describe(ns: &str) -> &'static str {
    match ns {
        "coding" => "source code (functions, classes, modules)",
        "testing" => "tests and fixtures",
        "documentation" => "Markdown / RST / AsciiDoc docs and READMEs",
        "architecture" => "ADRs, ARCHITECTURE and DESIGN documents",
        "shared" => "memories written on purpose by people and agents",
        _ => "custom namespace (see codemem.toml)",
    }
}

fn index_runner(root: Arc<Root>, bus: Arc<Bus>) {
    loop {
        let gen = {
            let mut st = root.run.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if root.stop.load(Ordering::SeqCst) {
                    return;
                }
                if st.requested > st.completed {
                    match st.not_before {
                        Some(t) if t > Instant::now() => {
                            st = root
                                .cv
                                .wait_timeout(st, t - Instant::now())
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                            continue;
                        }
                        _ => break,
                    }
                }
                st = root.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.running = true;
            st.not_before = None;
            st.requested
        };
        root.cancel.store(false, Ordering::SeqCst);
        bus.emit(WorkspaceEvent::IndexStarted {
            root: root.path.clone(),
        });
        let sink = |e: IndexEvent| {
            if !matches!(e, IndexEvent::Done { .. }) {
                bus.emit(WorkspaceEvent::Index {
                    root: root.path.clone(),
                    event: e,
                })
            }
        };
        let result = root.project.index(IndexOptions {
            cancel: &root.cancel,
            progress: &sink,
        });
        if let Err(e) = root.project.reconcile_overlay() {
            tracing::warn!(error = %e, "could not reconcile unsaved buffers with the index");
        }
        let mut st = root.run.lock().unwrap_or_else(|e| e.into_inner());
        st.running = false;
        st.completed = gen;
        let event = match result {
            Ok(stats) => {
                st.last_error = None;
                st.last_stats = Some(stats.clone());
                // Chunks the model failed on stay pending (lexical only): retry them on our own,
                // backing off from 5 s to 5 min while the model keeps failing.
                if stats.embed_errors > 0 && !stats.cancelled {
                    let wait = Duration::from_secs(5u64 << st.embed_retries.min(6))
                        .min(Duration::from_secs(300));
                    st.embed_retries += 1;
                    tracing::warn!(root = %root.path.display(), errors = stats.embed_errors, ?wait, "chunks left unembedded; retrying");
                    st.requested += 1;
                    let at = Instant::now() + wait;
                    st.not_before = Some(st.not_before.map_or(at, |t| t.max(at)));
                } else {
                    st.embed_retries = 0;
                }
                WorkspaceEvent::IndexFinished {
                    root: root.path.clone(),
                    stats,
                }
            }
            Err(e) => {
                tracing::error!(root = %root.path.display(), error = %e, "indexing failed");
                st.last_error = Some(e.to_string());
                WorkspaceEvent::IndexFailed {
                    root: root.path.clone(),
                    error: e.to_string(),
                }
            }
        };
        root.cv.notify_all();
        drop(st);
        bus.emit(event);
    }
}

fn start_watcher(root: &Arc<Root>) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let weak: Weak<Root> = Arc::downgrade(root);
    let hidden = root.project.config().index.hidden;
    let ignore = {
        let mut b = ignore::gitignore::GitignoreBuilder::new(&root.path);
        b.add(root.path.join(".gitignore"));
        b.build().ok()
    };
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        let Some(r) = weak.upgrade() else { return };
        let relevant = ev.paths.iter().any(|p| {
            let Ok(rel) = p.strip_prefix(&r.path) else {
                return false;
            };
            let skip = rel.components().any(|c| {
                let s = c.as_os_str().to_string_lossy();
                crate::walk::SKIP_DIRS.contains(&s.as_ref()) || (!hidden && s.starts_with('.'))
            });
            let ignored = ignore
                .as_ref()
                .is_some_and(|g| g.matched_path_or_any_parents(rel, p.is_dir()).is_ignore());
            !skip && !ignored
        });
        if relevant {
            r.request(WATCH_DEBOUNCE);
        }
    })?;
    w.watch(&root.path, RecursiveMode::Recursive)?;
    Ok(w)
}

/// Re-chunks edited buffers (debounced), writes their lexical vectors, then their dense ones.
fn overlay_worker(ws: Weak<Workspace>, rx: Receiver<PathBuf>) {
    while let Ok(first) = rx.recv() {
        let mut dirty: Vec<PathBuf> = vec![first];
        // Coalesce a burst of keystrokes into one pass.
        while let Ok(p) = rx.recv_timeout(EDIT_DEBOUNCE) {
            if !dirty.contains(&p) {
                dirty.push(p);
            }
        }
        let Some(ws) = ws.upgrade() else { return };
        let mut to_embed = Vec::new();
        for abs in dirty {
            let Some(text) = ws.document_text(&abs) else {
                continue;
            };
            let Ok((root, rel)) = ws.locate(&abs) else {
                continue;
            };
            match root.project.set_overlay(&rel, &text) {
                Ok(change) => {
                    let chunks = match change {
                        crate::overlay::OverlayChange::Indexed { chunks } => chunks,
                        crate::overlay::OverlayChange::Cleared => 0,
                    };
                    ws.hub.bus.emit(WorkspaceEvent::Overlay {
                        root: root.path.clone(),
                        path: rel.clone(),
                        chunks,
                    });
                    if chunks > 0 {
                        to_embed.push((root, rel));
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %abs.display(), error = %e, "could not index unsaved buffer")
                }
            }
        }
        for (root, rel) in to_embed {
            if !rx.is_empty() {
                break; // newer edits first; their pass embeds what is still missing
            }
            if let Err(e) = root.project.embed_overlay(&rel) {
                tracing::warn!(path = rel, error = %e, "could not embed unsaved buffer");
            }
        }
    }
}
