//! A `Project`: one workspace root, its configuration, its data dir and backends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use codemem_core::{route::Router, Config, ProjectId};
use codemem_embed::Embedder;
use codemem_kv::{KeyValue, RedbStore, Table, WriteOp};
use codemem_store::{EdgeStore, VectorStore};
use serde::Serialize;

use crate::error::{Result, ServiceError};
use crate::indexer::IndexStats;
use crate::lock::DataDirLock;
use crate::memory::Memory;
use crate::overlay::Overlay;
use crate::manifest::{self, FileEntry};
use crate::paths;

/// Dimensions used when no embedder is loaded (the default model's).
pub const DEFAULT_DIM: usize = 384;

pub struct OpenOptions {
    /// The codemem home (assets, projects).
    pub home: PathBuf,
    /// `None`: lexical only (the model is not installed or not wanted).
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Written into the lock file so a second process can say who holds it.
    pub purpose: String,
    /// How long to wait for another process to release the data dir.
    pub lock_wait: Duration,
    /// Create the data dir if the project was never indexed (`false`: NotIndexed error).
    pub create: bool,
    /// Configuration; `None` loads `<root>/codemem.toml` + environment.
    pub config: Option<Config>,
}

pub struct Project {
    pub(crate) root: PathBuf,
    pub(crate) id: ProjectId,
    pub(crate) data_dir: PathBuf,
    pub(crate) cfg: Config,
    pub(crate) router: Router,
    pub(crate) kv: Arc<dyn KeyValue>,
    pub(crate) store: Arc<dyn VectorStore>,
    pub(crate) embedder: Option<Arc<dyn Embedder>>,
    /// In-memory mirror of the manifest (path → entry), kept in step with every write.
    pub(crate) files: RwLock<HashMap<String, FileEntry>>,
    /// Unsaved editor buffers indexed over their files (path → overlay).
    pub(crate) overlay: Mutex<Overlay>,
    /// Memory records (id → memory), mirrored from the KV store.
    pub(crate) memories: RwLock<HashMap<String, Memory>>,
    _lock: DataDirLock,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamespaceStatus {
    pub name: String,
    pub files: usize,
    pub points: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectStatus {
    pub project: String,
    pub root: String,
    pub data_dir: String,
    pub model: Option<String>,
    pub namespaces: Vec<NamespaceStatus>,
    pub files_indexed: usize,
    /// Files whose embeddings are not all stored yet (lexical search already covers them).
    pub pending_files: usize,
    pub embedding_cache_entries: u64,
    pub last_indexed_at: Option<u64>,
    pub last_commit: Option<String>,
    pub head_commit: Option<String>,
    pub last_run: Option<IndexStats>,
}

impl Project {
    pub fn open(root: &Path, opts: OpenOptions) -> Result<Project> {
        let root = root.canonicalize().map_err(|e| ServiceError::Root {
            path: root.display().to_string(),
            reason: e.to_string(),
        })?;
        if !root.is_dir() {
            return Err(ServiceError::Root { path: root.display().to_string(), reason: "not a directory".into() });
        }
        let data_dir = paths::project_data_dir(&opts.home, &root);
        let kv_path = data_dir.join("kv.redb");
        if !opts.create && !kv_path.exists() {
            return Err(ServiceError::NotIndexed { path: root.display().to_string() });
        }
        let lock = DataDirLock::acquire(&data_dir, &opts.purpose, opts.lock_wait)?;
        let cfg = match opts.config {
            Some(c) => c,
            None => Config::load(&root)?,
        };
        let router = Router::new(&cfg)?;
        let kv: Arc<dyn KeyValue> = Arc::new(RedbStore::open(&kv_path)?);
        let dim = opts.embedder.as_ref().map(|e| e.dim()).unwrap_or(DEFAULT_DIM);
        let shards = data_dir.join("shards");

        // A different model (or dimension) invalidates every stored vector: start over.
        if let Some(e) = &opts.embedder {
            let stored: Option<String> = manifest::get_meta(kv.as_ref(), "model_id")?;
            if stored.as_deref().is_some_and(|m| m != e.model_id()) {
                tracing::warn!(old = ?stored, new = e.model_id(), "embedding model changed; rebuilding the index");
                let _ = std::fs::remove_dir_all(&shards);
                let ops = kv.scan(Table::Files)?.into_iter().map(|(k, _)| WriteOp::Delete { table: Table::Files, key: k }).collect();
                kv.write(ops)?;
            }
            kv.write(vec![manifest::meta_op("model_id", &e.model_id()), manifest::meta_op("dim", &e.dim())])?;
        }
        let store: Arc<dyn VectorStore> = Arc::new(EdgeStore::open(&shards, dim)?);
        let mut files = manifest::load(kv.as_ref())?;
        let version: Option<u32> = manifest::get_meta(kv.as_ref(), "manifest_version")?;
        if version.unwrap_or(0) < manifest::MANIFEST_VERSION {
            // Older entries lack symbols: mark them for re-chunking (vectors come from the cache).
            let mut ops: Vec<WriteOp> = files
                .iter_mut()
                .map(|(p, e)| {
                    e.complete = false;
                    manifest::put_op(p, e)
                })
                .collect();
            ops.push(manifest::meta_op("manifest_version", &manifest::MANIFEST_VERSION));
            kv.write(ops)?;
        }
        let _ = std::fs::write(data_dir.join("root.txt"), root.display().to_string());
        let project = Project {
            id: ProjectId::for_root(&root),
            root,
            data_dir,
            cfg,
            router,
            kv,
            store,
            embedder: opts.embedder,
            files: RwLock::new(files),
            overlay: Mutex::new(Overlay::new()),
            memories: RwLock::new(HashMap::new()),
            _lock: lock,
        };
        let purged = project.purge_stale_overlay()?;
        if purged > 0 {
            tracing::info!(points = purged, "removed unsaved-buffer points left by a previous process");
        }
        project.load_memories()?;
        Ok(project)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn id(&self) -> &ProjectId {
        &self.id
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    pub fn status(&self) -> Result<ProjectStatus> {
        let files = self.files.read().expect("manifest lock");
        let mut namespaces = Vec::new();
        for ns in self.cfg.index_namespaces() {
            let count = files.values().filter(|e| e.namespace == ns.as_str()).count();
            namespaces.push(NamespaceStatus { name: ns.to_string(), files: count, points: self.store.count(&ns)? });
        }
        Ok(ProjectStatus {
            project: self.id.to_string(),
            root: self.root.display().to_string(),
            data_dir: self.data_dir.display().to_string(),
            model: self.embedder.as_ref().map(|e| e.model_id().to_string()).or(manifest::get_meta(self.kv.as_ref(), "model_id")?),
            namespaces,
            files_indexed: files.len(),
            pending_files: files.values().filter(|e| !e.complete).count(),
            embedding_cache_entries: self.kv.len(Table::Embeddings)?,
            last_indexed_at: manifest::get_meta(self.kv.as_ref(), "indexed_at")?,
            last_commit: manifest::get_meta(self.kv.as_ref(), "last_commit")?,
            head_commit: git_head(&self.root),
            last_run: manifest::get_meta(self.kv.as_ref(), "last_run")?,
        })
    }
}

/// The commit checked out in `root`, read straight from `.git` (no git binary needed).
pub fn git_head(root: &Path) -> Option<String> {
    let mut git = root.join(".git");
    if git.is_file() {
        let text = std::fs::read_to_string(&git).ok()?;
        git = root.join(text.strip_prefix("gitdir:")?.trim());
    }
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:") else {
        return Some(head.to_string());
    };
    let reference = reference.trim();
    if let Ok(id) = std::fs::read_to_string(git.join(reference)) {
        return Some(id.trim().to_string());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(_, name)| *name == reference)
        .map(|(id, _)| id.to_string())
}
