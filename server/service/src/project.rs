//! A `Project`: one workspace root, its configuration, its data dir and backends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use codemem_core::{route::Router, Config, ProjectId};
use codemem_embed::Embedder;
use codemem_kv::{
    KeyValue, ProjectState, RedbStore, RedisOptions, RedisStore, SharedCacheKv, Table, WriteOp,
};
use codemem_resilience::BreakerConfig;
use codemem_store::{
    collection_prefix, EdgeStore, Outbox, QdrantOptions, QdrantStore, VectorStore,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::indexer::IndexStats;
use crate::lock::DataDirLock;
use crate::manifest::{self, FileEntry};
use crate::memory::Memory;
use crate::overlay::Overlay;
use crate::paths;
use crate::team::Team;

/// Team mode: live processes on one project beyond the first get `instances/1..=N` data dirs.
const MAX_INSTANCES: usize = 32;

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
    /// Remote backends configured in `[backends]` (team mode); `None` = embedded.
    pub(crate) redis: Option<Arc<RedisStore>>,
    /// The Qdrant server behind its durable write outbox (`outbox.redb` in the data dir).
    pub(crate) qdrant: Option<Arc<Outbox<QdrantStore>>>,
    /// Team mode (Redis and Qdrant server): shared manifest, lease and change events.
    pub(crate) team: Option<Team>,
    _lock: DataDirLock,
}

/// Hash under which every project on one Redis shares its embedding cache (the cache key
/// already holds the model id, the chunker version and the content hash).
pub const SHARED_CACHE_PREFIX: &str = "codemem";

fn breaker_config(cfg: &Config) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: cfg.backends.breaker_failures,
        recovery: Duration::from_secs(cfg.backends.breaker_recovery_secs),
    }
}

/// The Redis client of `[backends] redis_url` (no connection is made yet: Redis being down
/// must not stop a project from opening; the cache is bypassed meanwhile).
pub fn redis_for(cfg: &Config) -> Result<Option<Arc<RedisStore>>> {
    let b = &cfg.backends;
    if b.redis_url.is_empty() {
        return Ok(None);
    }
    let mut o = RedisOptions::new(b.redis_url.clone(), SHARED_CACHE_PREFIX);
    o.pool_size = b.pool_size;
    o.connect_timeout = Duration::from_millis(b.connect_timeout_ms);
    o.request_timeout = Duration::from_millis(b.request_timeout_ms);
    o.checkout_timeout = Duration::from_millis(b.checkout_timeout_ms);
    o.breaker = breaker_config(cfg);
    o.health_interval = Duration::from_secs(b.health_interval_secs);
    Ok(Some(Arc::new(RedisStore::connect(o)?)))
}

/// Qdrant client options of `[backends] qdrant_url` for one project (collections
/// `codemem_<project id>_<namespace>`).
pub fn qdrant_options(cfg: &Config, id: &ProjectId) -> Option<QdrantOptions> {
    let b = &cfg.backends;
    if b.qdrant_url.is_empty() {
        return None;
    }
    let mut o = QdrantOptions::new(
        b.qdrant_url.clone(),
        format!("codemem_{}", collection_prefix(id.as_str())),
    );
    o.api_key = (!b.qdrant_api_key.is_empty()).then(|| b.qdrant_api_key.clone());
    o.pool_size = b.pool_size;
    o.connect_timeout = Duration::from_millis(b.connect_timeout_ms);
    o.request_timeout = Duration::from_millis(b.request_timeout_ms);
    o.breaker = breaker_config(cfg);
    o.health_interval = Duration::from_secs(b.health_interval_secs);
    Some(o)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceStatus {
    pub name: String,
    pub files: usize,
    pub points: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Vector and key-value backends with their health and breaker state.
    pub backends: Vec<crate::workspace::BackendStatus>,
}

impl Project {
    pub fn open(root: &Path, opts: OpenOptions) -> Result<Project> {
        let root = root.canonicalize().map_err(|e| ServiceError::Root {
            path: root.display().to_string(),
            reason: e.to_string(),
        })?;
        if !root.is_dir() {
            return Err(ServiceError::Root {
                path: root.display().to_string(),
                reason: "not a directory".into(),
            });
        }
        let cfg = match opts.config {
            Some(c) => c,
            None => Config::load(&root)?,
        };
        let team_mode = !cfg.backends.redis_url.is_empty() && !cfg.backends.qdrant_url.is_empty();
        let id = ProjectId::for_root(&root);
        // Remote state is named so that clones of one repository share it.
        let shared_id = paths::shared_project_id(&root, &cfg.project.key);
        let project_dir = paths::project_data_dir(&opts.home, &root);
        if !opts.create && !team_mode && !project_dir.join("kv.redb").exists() {
            return Err(ServiceError::NotIndexed {
                path: root.display().to_string(),
            });
        }
        // Private to the user: the data dirs hold chunks of the code and the memories.
        for dir in [opts.home.join("projects"), project_dir.clone()] {
            paths::ensure_private_dir(&dir).map_err(|e| ServiceError::io(&dir, e))?;
        }
        // Team mode: the state is shared, so every live process gets its own local data dir
        // (the project's, then `instances/<n>`) instead of waiting for the first one.
        let (data_dir, slot, lock) = if team_mode {
            let mut found = None;
            for slot in 0..=MAX_INSTANCES {
                let dir = if slot == 0 {
                    project_dir.clone()
                } else {
                    project_dir.join("instances").join(slot.to_string())
                };
                match DataDirLock::acquire(&dir, &opts.purpose, Duration::ZERO) {
                    Ok(lock) => {
                        found = Some((dir, slot, lock));
                        break;
                    }
                    Err(ServiceError::Busy { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            match found {
                Some(f) => f,
                None => (
                    project_dir.clone(),
                    0,
                    DataDirLock::acquire(&project_dir, &opts.purpose, opts.lock_wait)?,
                ),
            }
        } else {
            let lock = DataDirLock::acquire(&project_dir, &opts.purpose, opts.lock_wait)?;
            (project_dir, 0, lock)
        };
        let kv_path = data_dir.join("kv.redb");
        let router = Router::new(&cfg)?;
        let local: Arc<dyn KeyValue> = Arc::new(RedbStore::open(&kv_path)?);
        let redis = redis_for(&cfg)?;
        let mut team = None;
        let kv: Arc<dyn KeyValue> = match &redis {
            Some(r) if team_mode => {
                let state = ProjectState::new(
                    r.clone(),
                    format!("{SHARED_CACHE_PREFIX}:project:{}", shared_id.as_str()),
                );
                let shared = Arc::new(
                    SharedCacheKv::new(local, r.clone()).with_project_state(state.clone()),
                );
                team = Some(Team {
                    state,
                    kv: shared.clone(),
                    owner: format!("{}#{slot}", crate::team::host_name()),
                    lease_ttl: Duration::from_millis(cfg.backends.lease_ttl_ms),
                    seen_generation: Default::default(),
                });
                shared as Arc<dyn KeyValue>
            }
            Some(r) => Arc::new(SharedCacheKv::new(local, r.clone())) as Arc<dyn KeyValue>,
            None => local,
        };
        let dim = opts
            .embedder
            .as_ref()
            .map(|e| e.dim())
            .unwrap_or(DEFAULT_DIM);
        let shards = data_dir.join("shards");

        // A different model (or dimension) invalidates every stored vector: start over.
        if let Some(e) = &opts.embedder {
            let stored: Option<String> = manifest::get_meta(kv.as_ref(), "model_id")?;
            if stored.as_deref().is_some_and(|m| m != e.model_id()) {
                tracing::warn!(old = ?stored, new = e.model_id(), "embedding model changed; rebuilding the index");
                let _ = std::fs::remove_dir_all(&shards);
                let ops = kv
                    .scan(Table::Files)?
                    .into_iter()
                    .map(|(k, _)| WriteOp::Delete {
                        table: Table::Files,
                        key: k,
                    })
                    .collect();
                kv.write(ops)?;
            }
            kv.write(vec![
                manifest::meta_op("model_id", &e.model_id()),
                manifest::meta_op("dim", &e.dim()),
            ])?;
        }
        // Only team mode shares collections between checkouts: without the shared manifest a
        // second checkout's writes would undo the first one's.
        let qdrant_opts = qdrant_options(&cfg, if team_mode { &shared_id } else { &id });
        // Which vector store the manifest describes: switching (embedded ⇄ a Qdrant server, or
        // another server) leaves the new store empty, so every file must be stored again.
        let vector_backend = match &qdrant_opts {
            Some(o) => format!("qdrant {} {}", o.url, o.prefix),
            None => "embedded".to_string(),
        };
        let (store, qdrant): (Arc<dyn VectorStore>, Option<Arc<Outbox<QdrantStore>>>) =
            match qdrant_opts {
                Some(o) => {
                    let q = Arc::new(Outbox::open(
                        Arc::new(QdrantStore::open(o, dim)?),
                        &data_dir.join("outbox.redb"),
                    )?);
                    (q.clone() as Arc<dyn VectorStore>, Some(q))
                }
                None => (
                    Arc::new(EdgeStore::open(&shards, dim)?) as Arc<dyn VectorStore>,
                    None,
                ),
            };
        let mut files = manifest::load(kv.as_ref())?;
        let version: Option<u32> = manifest::get_meta(kv.as_ref(), "manifest_version")?;
        let backend_before: Option<String> = manifest::get_meta(kv.as_ref(), "vector_backend")?;
        let switched = !files.is_empty()
            && backend_before
                .as_deref()
                .is_some_and(|b| b != vector_backend);
        if switched {
            tracing::warn!(from = ?backend_before, to = vector_backend, "vector store changed; storing every file again (vectors come from the cache)");
        }
        if backend_before.as_deref() != Some(vector_backend.as_str()) {
            kv.write(vec![manifest::meta_op("vector_backend", &vector_backend)])?;
        }
        if switched || version.unwrap_or(0) < manifest::MANIFEST_VERSION {
            // Older entries lack symbols, or the vectors are elsewhere: mark them for
            // re-chunking and storing (vectors come from the cache).
            let mut ops: Vec<WriteOp> = files
                .iter_mut()
                .map(|(p, e)| {
                    e.complete = false;
                    manifest::put_op(p, e)
                })
                .collect();
            ops.push(manifest::meta_op(
                "manifest_version",
                &manifest::MANIFEST_VERSION,
            ));
            kv.write(ops)?;
        }
        let _ = std::fs::write(data_dir.join("root.txt"), root.display().to_string());
        let project = Project {
            id,
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
            redis,
            qdrant,
            team,
            _lock: lock,
        };
        if project.team.is_some() {
            let synced = project.sync_team_state(false)?;
            if !synced.paths.is_empty() {
                tracing::info!(
                    files = synced.paths.len(),
                    "loaded the team's manifest from Redis"
                );
            }
            if !opts.create
                && project
                    .files
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty()
            {
                return Err(ServiceError::NotIndexed {
                    path: project.root.display().to_string(),
                });
            }
        }
        let purged = project.purge_stale_overlay()?;
        if purged > 0 {
            tracing::info!(
                points = purged,
                "removed unsaved-buffer points left by a previous process"
            );
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
    /// Whether `rel` is indexed and, if known, how many lines its indexed text has (entries
    /// written before line counts were kept say `Some(None)` until they are re-chunked).
    pub fn indexed_lines(&self, rel: &str) -> Option<Option<u32>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(rel)
            .map(|e| e.lines)
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
            let count = files
                .values()
                .filter(|e| e.namespace == ns.as_str())
                .count();
            // An unreachable vector server shows in the backends' status, not as a failed status.
            let points = match self.store.count(&ns) {
                Err(codemem_store::StoreError::Unavailable { .. }) => 0,
                other => other?,
            };
            namespaces.push(NamespaceStatus {
                name: ns.to_string(),
                files: count,
                points,
            });
        }
        Ok(ProjectStatus {
            project: self.id.to_string(),
            root: self.root.display().to_string(),
            data_dir: self.data_dir.display().to_string(),
            model: self
                .embedder
                .as_ref()
                .map(|e| e.model_id().to_string())
                .or(manifest::get_meta(self.kv.as_ref(), "model_id")?),
            namespaces,
            files_indexed: files.len(),
            pending_files: files.values().filter(|e| !e.complete).count(),
            embedding_cache_entries: self.kv.len(Table::Embeddings)?,
            last_indexed_at: manifest::get_meta(self.kv.as_ref(), "indexed_at")?,
            last_commit: manifest::get_meta(self.kv.as_ref(), "last_commit")?,
            head_commit: git_head(&self.root),
            last_run: manifest::get_meta(self.kv.as_ref(), "last_run")?,
            backends: self.backends(),
        })
    }
}

impl Project {
    /// Health of this project's vector and key-value backends (embedded or remote). Remote
    /// backends are asked once (through their breaker: an open breaker is not hammered).
    pub fn backends(&self) -> Vec<crate::workspace::BackendStatus> {
        use crate::workspace::BackendStatus;
        let mut out = Vec::new();
        match &self.qdrant {
            Some(ob) => {
                let q = ob.inner();
                let health = q.health();
                let b = q.breaker();
                let queued = match ob.pending() {
                    0 => String::new(),
                    n => format!("; {n} writes queued in the outbox (replayed when it is back)"),
                };
                out.push(BackendStatus {
                    name: "vectors".into(),
                    kind: "qdrant".into(),
                    healthy: health.is_ok(),
                    breaker: Some(b.state.to_string()),
                    detail: match health {
                        Ok(v) => {
                            let h = q.health_stats();
                            format!(
                                "Qdrant {v} at {}{queued}; {} background health checks, {} failed",
                                q.url(),
                                h.checks,
                                h.failures
                            )
                        }
                        Err(e) => format!("{e}{queued}"),
                    },
                });
            }
            None => out.push(BackendStatus {
                name: "vectors".into(),
                kind: "embedded".into(),
                healthy: true,
                breaker: None,
                detail: "qdrant-edge shards in the data dir".into(),
            }),
        }
        out.push(BackendStatus {
            name: "kv".into(),
            kind: "embedded".into(),
            healthy: true,
            breaker: None,
            detail: "redb file in the data dir".into(),
        });
        if let Some(r) = &self.redis {
            let ping = r.ping();
            let (size, idle, max) = r.pool_status();
            out.push(BackendStatus {
                name: "embedding cache".into(),
                kind: "redis".into(),
                healthy: ping.is_ok(),
                breaker: Some(r.breaker().state.to_string()),
                detail: match &ping {
                    Ok(()) => {
                        let h = r.health_stats();
                        format!(
                            "Redis at {}; pool {size}/{max} open, {idle} idle; {} background health checks, {} dead connections replaced",
                            r.url(),
                            h.checks,
                            h.connections_dropped
                        )
                    }
                    Err(e) => format!("{e}; the shared cache is bypassed (indexing and search go on)"),
                },
            });
            if let Some(t) = &self.team {
                let lease = match t.state.lease_holder() {
                    Ok(Some(h)) => format!("indexing lease held by {h}"),
                    Ok(None) => "indexing lease free".to_string(),
                    Err(_) => "indexing lease unknown".to_string(),
                };
                out.push(BackendStatus {
                    name: "team state".into(),
                    kind: "redis".into(),
                    healthy: ping.is_ok(),
                    breaker: Some(r.breaker().state.to_string()),
                    detail: format!(
                        "manifest, memories and change events shared under {}; this process is {}; {lease}",
                        t.state.prefix(),
                        t.owner
                    ),
                });
            }
        }
        out
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

/// One line of `codemem doctor` about a configured remote backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendProbe {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// The command or setting that fixes it.
    pub fix: Option<String>,
}

fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Reachability, version and authentication of the backends `[backends]` configures (none
/// when both are embedded). Each failure comes with a one-line fix.
pub fn probe_backends(cfg: &Config) -> Vec<BackendProbe> {
    let mut out = Vec::new();
    let b = &cfg.backends;
    let mut quick = cfg.clone();
    quick.backends.pool_size = 1;
    quick.backends.connect_timeout_ms = b.connect_timeout_ms.min(2000);
    quick.backends.request_timeout_ms = b.request_timeout_ms.min(3000);
    if !b.redis_url.is_empty() {
        let at = host_port(&b.redis_url).to_string();
        let probe = redis_for(&quick).map_err(|e| e.to_string()).and_then(|r| {
            let r = r.expect("redis_url is set");
            r.server_version().map_err(|e| e.to_string())
        });
        out.push(match probe {
            Ok(v) => BackendProbe { name: "redis".into(), ok: true, detail: format!("Redis {v} at {at} answers"), fix: None },
            Err(e) => {
                let low = e.to_lowercase();
                let (detail, fix) = if low.contains("noauth") || low.contains("wrongpass") || (low.contains("auth") && low.contains("password")) {
                    (format!("Redis at {at} requires a password ({e})"), "put it in the URL: redis://:PASSWORD@host:port (CODEMEM_REDIS_URL)".to_string())
                } else if low.contains("refused") {
                    (format!("Redis at {at} refused the connection"), "start it with `redis-server` or unset CODEMEM_REDIS_URL".to_string())
                } else {
                    (format!("Redis at {at} is unreachable: {e}"), "check the host and port in CODEMEM_REDIS_URL / [backends] redis_url, or unset it".to_string())
                };
                BackendProbe { name: "redis".into(), ok: false, detail: format!("{detail}; {fix}"), fix: Some(fix) }
            }
        });
    }
    if !b.qdrant_url.is_empty() {
        let at = host_port(&b.qdrant_url).to_string();
        let mut o = qdrant_options(&quick, &ProjectId::for_root(Path::new("/codemem-doctor")))
            .expect("qdrant_url is set");
        o.prefix = "codemem_doctor_probe".into();
        let probe = QdrantStore::open(o, DEFAULT_DIM).and_then(|q| q.health());
        out.push(match probe {
            Ok(v) => BackendProbe { name: "qdrant".into(), ok: true, detail: format!("Qdrant {v} at {at} answers (gRPC)"), fix: None },
            Err(e) => {
                let msg = e.to_string();
                let low = msg.to_lowercase();
                let fix = if low.contains("unauthenticated") || low.contains("permissiondenied") || low.contains("api key") {
                    "set the right key in CODEMEM_QDRANT_API_KEY ([backends] qdrant_api_key)".to_string()
                } else if at.ends_with(":6333") {
                    "qdrant_url must name the gRPC port (usually 6334), not the REST port 6333".to_string()
                } else if low.contains("refused") || low.contains("transport") || low.contains("unavailable") {
                    "start the Qdrant server (`qdrant`, or `docker run -p 6333:6333 -p 6334:6334 qdrant/qdrant`) or unset CODEMEM_QDRANT_URL".to_string()
                } else {
                    "check CODEMEM_QDRANT_URL / [backends] qdrant_url (gRPC endpoint, e.g. http://127.0.0.1:6334), or unset it".to_string()
                };
                let what = if low.contains("refused") { "refused the connection".to_string() } else { msg.clone() };
                BackendProbe { name: "qdrant".into(), ok: false, detail: format!("Qdrant at {at} {what}; {fix}"), fix: Some(fix) }
            }
        });
    }
    out
}
