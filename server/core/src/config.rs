//! One typed configuration: defaults, then `codemem.toml` at the workspace root, then
//! `CODEMEM_*` environment variables (CLI flags are applied by the binary on top).

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::{CoreError, Result};
use crate::types::{Namespace, BUILTIN_NAMESPACES, DEFAULT_QUERY_NAMESPACES};

pub const CONFIG_FILE: &str = "codemem.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Namespaces this project may use; the five built-ins are always present.
    pub namespaces: Vec<String>,
    pub index: IndexConfig,
    pub embed: EmbedConfig,
    pub search: SearchConfig,
    /// Routing overrides, checked in order before the built-in rules; first match wins.
    #[serde(rename = "route")]
    pub routes: Vec<RouteRule>,
    pub mcp: McpConfig,
    pub backends: BackendsConfig,
    pub daemon: DaemonConfig,
    pub project: ProjectConfig,
}

/// How the project is named where its state is shared (team mode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    /// The name several checkouts share their index and memories under in team mode; empty =
    /// the git `origin` remote (normalised) plus the folder's path in the repository, else the
    /// root path.
    pub key: String,
}

/// The per-user daemon every front end attaches to (`codemem daemon`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Seconds with no client before the daemon exits (a running `codemem serve` keeps it).
    pub idle_exit_secs: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            idle_exit_secs: 600,
        }
    }
}

/// Team mode: remote Redis / Qdrant servers instead of the embedded stores. Each backend switches
/// independently: an empty URL keeps the embedded one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendsConfig {
    /// `redis://host:port[/db]`; empty = the embedded key-value store.
    pub redis_url: String,
    /// Qdrant gRPC endpoint, e.g. `http://127.0.0.1:6334`; empty = the embedded vector store.
    pub qdrant_url: String,
    /// Qdrant API key; prefer the CODEMEM_QDRANT_API_KEY variable over writing it here.
    pub qdrant_api_key: String,
    /// Connections per remote backend.
    pub pool_size: usize,
    /// Consecutive failures that open a backend's circuit breaker.
    pub breaker_failures: u32,
    /// Seconds an open breaker waits before a trial call.
    pub breaker_recovery_secs: u64,
    /// Connect timeout (milliseconds).
    pub connect_timeout_ms: u64,
    /// Per-request timeout (milliseconds).
    pub request_timeout_ms: u64,
    /// How long a request waits for a free pooled connection (milliseconds).
    pub checkout_timeout_ms: u64,
    /// Seconds between background health checks of each remote backend (idle Redis
    /// connections PINGed, the Qdrant health call); 0 disables them.
    pub health_interval_secs: u64,
    /// Team mode: the indexing lease in Redis lapses this long after its holder stops renewing
    /// it (a crashed indexer blocks the others at most this long; milliseconds).
    pub lease_ttl_ms: u64,
}

impl Default for BackendsConfig {
    fn default() -> Self {
        BackendsConfig {
            redis_url: String::new(),
            qdrant_url: String::new(),
            qdrant_api_key: String::new(),
            pool_size: 10,
            breaker_failures: 5,
            breaker_recovery_secs: 60,
            connect_timeout_ms: 2000,
            request_timeout_ms: 10_000,
            checkout_timeout_ms: 5000,
            health_interval_secs: 30,
            lease_ttl_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Files larger than this are skipped (bytes).
    pub max_file_bytes: u64,
    /// Extra globs to skip, on top of .gitignore/.ignore and the built-in vendored/generated list.
    pub exclude: Vec<String>,
    /// Index dot-files and dot-directories (other than .git, which is never indexed).
    pub hidden: bool,
    /// Follow symbolic links while walking (loops are detected and skipped).
    pub follow_symlinks: bool,
    /// Chunks longer than this many lines are split.
    pub max_chunk_lines: u32,
    /// Neighbouring chunks shorter than this many lines are merged.
    pub min_chunk_lines: u32,
    /// Languages of translated docs trees that are indexed. A folder named for a language
    /// (`docs/zh/`, `docs/pt-BR/`) beside one named for a listed language (`docs/en/`) is
    /// skipped. Empty indexes every translation.
    pub doc_languages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// Model tokens per chunk fed to the dense model (longer text is truncated).
    pub max_length: usize,
    /// ONNX Runtime intra-op threads; 0 = one per core.
    pub threads: usize,
    /// Chunks per embedding batch. Small batches pad less and keep ONNX Runtime's arena small:
    /// on the fixture repo 4 → 0.39 GB peak and 8.0 s, 16 → 0.88 GB and 10.4 s.
    pub batch_size: usize,
    /// Give every chunk a static-table vector in the lexical phase (seconds for a whole tree),
    /// so hybrid search covers it before the model has embedded it. Off by default: on the
    /// eval's report half it ranked below lexical search alone (see the README).
    pub first_pass: bool,
    /// Run the model over the chunks after the first pass (`false`: keep the first pass only,
    /// for machines that cannot spare the CPU; files stay "pending").
    pub refine: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Namespaces a query searches when it names none.
    pub default_namespaces: Vec<String>,
    /// Results per query when the request does not say.
    pub k: usize,
    /// Weights of the code-aware ranking; the defaults are chosen on the project's eval.
    pub ranking: RankingConfig,
}

/// Ranking weights (`[search.ranking]`). Multipliers are applied to the fused score; 1 is neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingConfig {
    /// Weight of the lexical list in reciprocal-rank fusion for natural-language questions.
    pub lexical_weight: f32,
    /// Weight of the dense list in reciprocal-rank fusion.
    pub dense_weight: f32,
    /// Weight of the first-pass (static table) list, searched over chunks the model has not
    /// embedded yet; 0 leaves it out of the fusion.
    pub first_pass_weight: f32,
    /// Weight of the lexical list when the query is or names an identifier (the eval chose
    /// less than for questions: the definition lift already favours exact names).
    pub identifier_lexical_weight: f32,
    /// Added (in units of the best fused score) to a chunk that defines an identifier the
    /// query names among other words.
    pub definition_boost: f32,
    /// Up to this multiplier when query words name the file or its folders.
    pub path_match: f32,
    /// Multiplier for test code.
    pub tests: f32,
    /// Multiplier for examples, demos, samples, templates and playgrounds.
    pub examples: f32,
    /// Multiplier for website and docs-site folders.
    pub website: f32,
    /// Multiplier for benchmarks and fixtures.
    pub benchmarks: f32,
    /// Multiplier for vendored copies and compat/legacy/deprecated code.
    pub legacy: f32,
    /// Multiplier for re-export stubs (`__init__.py`, `.d.ts`, `package-info.java`).
    pub stubs: f32,
    /// Multiplier for docs when the question is about the implementation.
    pub docs_for_code: f32,
    /// Multiplier for docs when the question is about usage ("how do I ...").
    pub docs_for_usage: f32,
    /// Each further chunk of a file already ranked is multiplied by this once more.
    pub same_file: f32,
}

/// Chosen on the eval's training half with refinement off (see the README's figures).
const FIRST_PASS_WEIGHT: f32 = 0.25;

impl Default for RankingConfig {
    fn default() -> Self {
        RankingConfig {
            lexical_weight: 1.4,
            dense_weight: 1.0,
            first_pass_weight: FIRST_PASS_WEIGHT,
            identifier_lexical_weight: 1.0,
            definition_boost: 0.5,
            path_match: 1.15,
            tests: 0.6,
            examples: 0.25,
            website: 0.5,
            benchmarks: 0.6,
            legacy: 0.7,
            stubs: 0.7,
            docs_for_code: 0.6,
            docs_for_usage: 1.0,
            same_file: 0.6,
        }
    }
}

impl RankingConfig {
    fn validate(&self) -> std::result::Result<(), String> {
        let v = [
            ("lexical_weight", self.lexical_weight),
            ("dense_weight", self.dense_weight),
            ("first_pass_weight", self.first_pass_weight),
            ("identifier_lexical_weight", self.identifier_lexical_weight),
            ("definition_boost", self.definition_boost),
            ("path_match", self.path_match),
            ("tests", self.tests),
            ("examples", self.examples),
            ("website", self.website),
            ("benchmarks", self.benchmarks),
            ("legacy", self.legacy),
            ("stubs", self.stubs),
            ("docs_for_code", self.docs_for_code),
            ("docs_for_usage", self.docs_for_usage),
            ("same_file", self.same_file),
        ];
        for (name, x) in v {
            if !x.is_finite() || !(0.0..=10.0).contains(&x) {
                return Err(format!(
                    "search.ranking.{name} must be a number from 0 to 10, got {x}"
                ));
            }
        }
        if self.path_match < 1.0 {
            return Err("search.ranking.path_match is a boost: use 1 (off) or more".into());
        }
        if self.same_file > 1.0 {
            return Err("search.ranking.same_file is a decay: use 0..1 (1 = off)".into());
        }
        if self.lexical_weight + self.dense_weight <= 0.0
            || self.identifier_lexical_weight + self.dense_weight <= 0.0
        {
            return Err(
                "search.ranking: the lexical and dense weights cannot all be 0; every score would be 0"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The MCP server (`codemem serve`, and the endpoint inside `codemem lsp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Address to bind; anything but a loopback address needs `require_token = true`.
    pub host: String,
    /// TCP port; 0 picks a free one.
    pub port: u16,
    /// Extra `Host` header values to accept (loopback names are always accepted).
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the endpoint (`scheme://host[:port]`); loopback origins always are.
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests must carry a bearer token. Only a loopback bind may turn this off.
    pub require_token: bool,
    /// Live MCP sessions one token may hold; a new one beyond it is refused until the
    /// client closes (DELETEs) an idle one or it expires.
    pub max_sessions_per_token: usize,
    /// Extra tokens, each with a name (written to the audit log), an access level and
    /// optionally a list of namespaces it is limited to.
    #[serde(rename = "token")]
    pub tokens: Vec<McpToken>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToken {
    pub name: String,
    /// The secret itself; prefer `token_env` so it stays out of the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Namespaces this token may read and write; empty = all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub access: McpAccess,
}

/// `read`: search, recall, status. `write`: also remember, forget, reindex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpAccess {
    #[default]
    Read,
    Write,
}

pub const DEFAULT_MCP_PORT: u16 = 9200;

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            host: "127.0.0.1".into(),
            port: DEFAULT_MCP_PORT,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            require_token: true,
            max_sessions_per_token: 64,
            tokens: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Glob over workspace-relative paths, e.g. `docs/adr/**`.
    pub glob: String,
    pub namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespaces: BUILTIN_NAMESPACES.iter().map(|s| s.to_string()).collect(),
            index: IndexConfig::default(),
            embed: EmbedConfig::default(),
            search: SearchConfig::default(),
            routes: Vec::new(),
            mcp: McpConfig::default(),
            backends: BackendsConfig::default(),
            daemon: DaemonConfig::default(),
            project: ProjectConfig::default(),
        }
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            max_file_bytes: 1024 * 1024,
            exclude: Vec::new(),
            hidden: false,
            follow_symlinks: false,
            max_chunk_lines: 80,
            min_chunk_lines: 4,
            doc_languages: vec!["en".into()],
        }
    }
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            max_length: 256,
            threads: 0,
            batch_size: 4,
            first_pass: false,
            refine: true,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            default_namespaces: DEFAULT_QUERY_NAMESPACES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            k: 10,
            ranking: RankingConfig::default(),
        }
    }
}

impl Config {
    /// Defaults ← `<root>/codemem.toml` (if present) ← `CODEMEM_*` variables; validated.
    pub fn load(root: &Path) -> Result<Config> {
        let path = root.join(CONFIG_FILE);
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => Config::from_toml(&text, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => {
                return Err(CoreError::Config {
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// This configuration with `overrides` (same keys as codemem.toml, e.g. an editor's
    /// initializationOptions) merged on top: objects merge key by key, other values replace.
    pub fn with_overrides(
        &self,
        overrides: &serde_json::Value,
        source_name: &str,
    ) -> Result<Config> {
        fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
            match (base, over) {
                (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
                    for (k, v) in o {
                        merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                    }
                }
                (b, o) => *b = o.clone(),
            }
        }
        let err = |reason: String| CoreError::Config {
            source_name: source_name.to_string(),
            reason,
        };
        if !overrides.is_object() && !overrides.is_null() {
            return Err(err("expected an object with codemem.toml keys".into()));
        }
        let mut v = serde_json::to_value(self).map_err(|e| err(e.to_string()))?;
        merge(&mut v, overrides);
        let cfg: Config = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_toml(text: &str, source_name: &str) -> Result<Config> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| CoreError::Config {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        for b in BUILTIN_NAMESPACES {
            if !cfg.namespaces.iter().any(|n| n == b) {
                cfg.namespaces.push(b.to_string());
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Environment overrides; `get` is injectable for tests.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn num<T: std::str::FromStr>(key: &str, v: String) -> Result<T> {
            v.trim().parse().map_err(|_| CoreError::Config {
                source_name: key.to_string(),
                reason: format!("`{v}` is not a valid number"),
            })
        }
        fn flag(key: &str, v: String) -> Result<bool> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => Ok(true),
                "0" | "false" | "off" | "no" => Ok(false),
                _ => Err(CoreError::Config {
                    source_name: key.to_string(),
                    reason: format!("`{v}` is not on/off (use 1/0, true/false, on/off)"),
                }),
            }
        }
        if let Some(v) = get("CODEMEM_MAX_FILE_BYTES") {
            self.index.max_file_bytes = num("CODEMEM_MAX_FILE_BYTES", v)?;
        }
        if let Some(v) = get("CODEMEM_DAEMON_IDLE_SECS") {
            self.daemon.idle_exit_secs = num("CODEMEM_DAEMON_IDLE_SECS", v)?;
        }
        if let Some(v) = get("CODEMEM_EMBED_THREADS") {
            self.embed.threads = num("CODEMEM_EMBED_THREADS", v)?;
        }
        if let Some(v) = get("CODEMEM_EMBED_BATCH") {
            self.embed.batch_size = num("CODEMEM_EMBED_BATCH", v)?;
        }
        if let Some(v) = get("CODEMEM_EMBED_FIRST_PASS") {
            self.embed.first_pass = flag("CODEMEM_EMBED_FIRST_PASS", v)?;
        }
        if let Some(v) = get("CODEMEM_EMBED_REFINE") {
            self.embed.refine = flag("CODEMEM_EMBED_REFINE", v)?;
        }
        if let Some(v) = get("CODEMEM_EMBED_MAX_LENGTH") {
            self.embed.max_length = num("CODEMEM_EMBED_MAX_LENGTH", v)?;
        }
        if let Some(v) = get("CODEMEM_MCP_PORT") {
            self.mcp.port = num("CODEMEM_MCP_PORT", v)?;
        }
        if let Some(v) = get("CODEMEM_MCP_HOST") {
            self.mcp.host = v.trim().to_string();
        }
        if let Some(v) = get("CODEMEM_REDIS_URL") {
            self.backends.redis_url = v.trim().to_string();
        }
        if let Some(v) = get("CODEMEM_QDRANT_URL") {
            self.backends.qdrant_url = v.trim().to_string();
        }
        if let Some(v) = get("CODEMEM_QDRANT_API_KEY") {
            self.backends.qdrant_api_key = v.trim().to_string();
        }
        if let Some(v) = get("CODEMEM_RANKING") {
            // Inline TOML overrides of [search.ranking], e.g. `tests = 0.5, same_file = 0.7`
            // (what `scripts/eval --ranking` passes when weights are being chosen).
            let table: toml::Table =
                toml::from_str(&v.replace(',', "\n")).map_err(|e| CoreError::Config {
                    source_name: "CODEMEM_RANKING".into(),
                    reason: format!("expected `name = number, ...`: {e}"),
                })?;
            let mut current =
                toml::Table::try_from(&self.search.ranking).map_err(|e| CoreError::Config {
                    source_name: "CODEMEM_RANKING".into(),
                    reason: e.to_string(),
                })?;
            current.extend(table);
            self.search.ranking =
                toml::Value::Table(current)
                    .try_into()
                    .map_err(|e: toml::de::Error| CoreError::Config {
                        source_name: "CODEMEM_RANKING".into(),
                        reason: e.to_string(),
                    })?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| CoreError::Config {
            source_name: CONFIG_FILE.into(),
            reason,
        };
        if self.project.key.len() > 256 || self.project.key.chars().any(char::is_control) {
            return Err(bad(
                "project.key must be at most 256 bytes without control characters (e.g. \"github.com/org/repo\")".into(),
            ));
        }
        for n in &self.namespaces {
            Namespace::new(n)?;
        }
        for r in &self.routes {
            self.namespace(&r.namespace)?;
            globset::Glob::new(&r.glob).map_err(|e| CoreError::InvalidGlob {
                glob: r.glob.clone(),
                reason: e.to_string(),
            })?;
        }
        for g in &self.index.exclude {
            globset::Glob::new(g).map_err(|e| CoreError::InvalidGlob {
                glob: g.clone(),
                reason: e.to_string(),
            })?;
        }
        for n in &self.search.default_namespaces {
            self.namespace(n)?;
        }
        self.search.ranking.validate().map_err(bad)?;
        for l in &self.index.doc_languages {
            if l.is_empty()
                || l.len() > 16
                || !l
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(format!(
                    "index.doc_languages holds `{l}`; use language codes such as \"en\" or \"pt-BR\""
                )));
            }
        }
        if self.embed.batch_size == 0 || self.embed.batch_size > 256 {
            return Err(bad(format!(
                "embed.batch_size must be 1..=256, got {}",
                self.embed.batch_size
            )));
        }
        if !(16..=512).contains(&self.embed.max_length) {
            return Err(bad(format!(
                "embed.max_length must be 16..=512, got {}",
                self.embed.max_length
            )));
        }
        if self.index.max_chunk_lines < 8
            || self.index.min_chunk_lines >= self.index.max_chunk_lines
        {
            return Err(bad(
                "index.max_chunk_lines must be ≥ 8 and greater than index.min_chunk_lines".into(),
            ));
        }
        if self.search.k == 0 || self.search.k > crate::types::MAX_K {
            return Err(bad(format!("search.k must be 1..={}", crate::types::MAX_K)));
        }
        self.validate_mcp()?;
        self.validate_backends()
    }

    fn validate_backends(&self) -> Result<()> {
        let bad = |reason: String| CoreError::Config {
            source_name: CONFIG_FILE.into(),
            reason,
        };
        let b = &self.backends;
        if !(b.redis_url.is_empty()
            || b.redis_url.starts_with("redis://")
            || b.redis_url.starts_with("rediss://"))
        {
            return Err(bad(format!(
                "backends.redis_url `{}` must start with redis:// or rediss://",
                b.redis_url
            )));
        }
        if !(b.qdrant_url.is_empty()
            || b.qdrant_url.starts_with("http://")
            || b.qdrant_url.starts_with("https://"))
        {
            return Err(bad(format!(
                "backends.qdrant_url `{}` must look like http://host:6334 (Qdrant's gRPC port)",
                b.qdrant_url
            )));
        }
        if !(1..=256).contains(&b.pool_size) {
            return Err(bad(format!(
                "backends.pool_size must be 1..=256, got {}",
                b.pool_size
            )));
        }
        if b.breaker_failures == 0 {
            return Err(bad("backends.breaker_failures must be at least 1".into()));
        }
        if b.breaker_recovery_secs == 0 {
            return Err(bad(
                "backends.breaker_recovery_secs must be at least 1".into()
            ));
        }
        for (k, v) in [
            ("connect_timeout_ms", b.connect_timeout_ms),
            ("request_timeout_ms", b.request_timeout_ms),
            ("checkout_timeout_ms", b.checkout_timeout_ms),
            ("lease_ttl_ms", b.lease_ttl_ms),
        ] {
            if v == 0 {
                return Err(bad(format!("backends.{k} must be positive")));
            }
        }
        Ok(())
    }

    fn validate_mcp(&self) -> Result<()> {
        let bad = |reason: String| CoreError::Config {
            source_name: CONFIG_FILE.into(),
            reason,
        };
        let m = &self.mcp;
        if m.host.trim().is_empty() || m.host.contains(['/', ' ']) {
            return Err(bad(format!(
                "mcp.host `{}` is not a host name or IP address",
                m.host
            )));
        }
        if !(1024..=64 * 1024 * 1024).contains(&m.max_body_bytes) {
            return Err(bad(format!(
                "mcp.max_body_bytes must be 1024..=67108864, got {}",
                m.max_body_bytes
            )));
        }
        if !(1..=10_000).contains(&m.max_sessions_per_token) {
            return Err(bad(format!(
                "mcp.max_sessions_per_token must be 1..=10000, got {}",
                m.max_sessions_per_token
            )));
        }
        for o in &m.allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(bad(format!(
                    "mcp.allowed_origins entry `{o}` must look like `https://host` or `http://host:port` (no path)"
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for t in &m.tokens {
            if t.name.trim().is_empty() || t.name == "default" || !names.insert(t.name.as_str()) {
                return Err(bad(format!(
                    "every [[mcp.token]] needs a unique name other than `default` (got `{}`)",
                    t.name
                )));
            }
            match (&t.token, &t.token_env) {
                (Some(s), None) if s.len() >= 16 => {}
                (Some(_), None) => {
                    return Err(bad(format!(
                        "mcp token `{}`: the token must be at least 16 characters",
                        t.name
                    )))
                }
                (None, Some(v)) if !v.trim().is_empty() => {}
                _ => {
                    return Err(bad(format!(
                        "mcp token `{}`: set exactly one of `token` or `token_env`",
                        t.name
                    )))
                }
            }
            for n in &t.namespaces {
                self.namespace(n)?;
            }
        }
        Ok(())
    }

    /// Resolves a namespace name against this project's list, with an error that lists the valid ones.
    pub fn namespace(&self, name: &str) -> Result<Namespace> {
        let ns = Namespace::new(name).map_err(|_| self.unknown_namespace(name))?;
        if self.namespaces.iter().any(|n| n == name) {
            Ok(ns)
        } else {
            Err(self.unknown_namespace(name))
        }
    }

    fn unknown_namespace(&self, name: &str) -> CoreError {
        CoreError::UnknownNamespace {
            name: name.to_string(),
            known: self.namespaces.join(", "),
        }
    }

    pub fn default_namespaces(&self) -> Vec<Namespace> {
        self.search
            .default_namespaces
            .iter()
            .filter_map(|n| Namespace::new(n).ok())
            .collect()
    }

    /// Every configured namespace, `shared` included.
    pub fn all_namespaces(&self) -> Vec<Namespace> {
        self.namespaces
            .iter()
            .filter_map(|n| Namespace::new(n).ok())
            .collect()
    }

    /// Namespaces that hold indexed files (every namespace but `shared`).
    pub fn index_namespaces(&self) -> Vec<Namespace> {
        self.namespaces
            .iter()
            .filter(|n| n.as_str() != "shared")
            .filter_map(|n| Namespace::new(n).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_merge_and_reject_unknown_keys() {
        let base = Config::default();
        let c = base
            .with_overrides(&serde_json::json!({"search": {"k": 7}}), "init")
            .unwrap();
        assert_eq!(c.search.k, 7);
        assert_eq!(c.index, base.index, "untouched sections keep their values");
        let e = base
            .with_overrides(&serde_json::json!({"serch": {}}), "initializationOptions")
            .unwrap_err();
        assert!(
            e.to_string().contains("initializationOptions") && e.to_string().contains("serch"),
            "{e}"
        );
        assert!(base
            .with_overrides(&serde_json::json!([1]), "init")
            .is_err());
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn toml_overrides_and_keeps_builtins() {
        let cfg = Config::from_toml(
            "namespaces = [\"ops\"]\n[index]\nmax_file_bytes = 10\n[[route]]\nglob = \"infra/**\"\nnamespace = \"ops\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.index.max_file_bytes, 10);
        assert!(cfg.namespaces.iter().any(|n| n == "coding"));
        assert_eq!(cfg.namespace("ops").unwrap().as_str(), "ops");
    }

    #[test]
    fn rejects_unknown_keys_and_namespaces() {
        assert!(Config::from_toml("bogus = 1", "t").is_err());
        let e = Config::from_toml("[[route]]\nglob = \"x/**\"\nnamespace = \"nope\"\n", "t")
            .unwrap_err();
        assert!(e.to_string().contains("unknown namespace `nope`"), "{e}");
        assert!(Config::default().namespace("Coding").is_err());
    }

    #[test]
    fn mcp_section_parses_and_validates() {
        let cfg = Config::from_toml(
            "[mcp]\nport = 9300\n[[mcp.token]]\nname = \"ci\"\ntoken_env = \"CI_TOKEN\"\nnamespaces = [\"testing\"]\naccess = \"write\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.mcp.port, 9300);
        assert_eq!(cfg.mcp.tokens[0].access, McpAccess::Write);
        assert_eq!(cfg.mcp.host, "127.0.0.1");
        let e = Config::from_toml("[[mcp.token]]\nname = \"x\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("exactly one of"), "{e}");
        let e = Config::from_toml(
            "[[mcp.token]]\nname = \"x\"\ntoken_env = \"X\"\nnamespaces = [\"nope\"]\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(Config::from_toml(
            "[[mcp.token]]\nname = \"x\"\ntoken_env = \"X\"\naccess = \"admin\"\n",
            "t"
        )
        .is_err());
        let mut cfg = Config::default();
        cfg.apply_env(|k| (k == "CODEMEM_MCP_PORT").then(|| "0".to_string()))
            .unwrap();
        assert_eq!(cfg.mcp.port, 0);
        assert!(cfg
            .apply_env(|k| (k == "CODEMEM_MCP_PORT").then(|| "99999".to_string()))
            .is_err());
    }

    #[test]
    fn backends_section_and_env() {
        let cfg = Config::default();
        assert_eq!(
            (
                cfg.backends.pool_size,
                cfg.backends.breaker_failures,
                cfg.backends.breaker_recovery_secs
            ),
            (10, 5, 60)
        );
        assert!(
            cfg.backends.redis_url.is_empty() && cfg.backends.qdrant_url.is_empty(),
            "embedded by default"
        );
        let cfg = Config::from_toml(
            "[backends]\nredis_url = \"redis://127.0.0.1:6379\"\npool_size = 3\n",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.backends.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(cfg.backends.pool_size, 3);
        assert!(
            Config::from_toml("[backends]\nredis = \"x\"\n", "t").is_err(),
            "unknown keys are refused"
        );
        let e =
            Config::from_toml("[backends]\nqdrant_url = \"localhost:6334\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("qdrant_url"), "{e}");
        assert!(Config::from_toml("[backends]\npool_size = 0\n", "t").is_err());
        let mut cfg = Config::default();
        cfg.apply_env(|k| match k {
            "CODEMEM_REDIS_URL" => Some("redis://r:1".into()),
            "CODEMEM_QDRANT_URL" => Some("http://q:6334".into()),
            "CODEMEM_QDRANT_API_KEY" => Some("secret".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (
                cfg.backends.redis_url.as_str(),
                cfg.backends.qdrant_url.as_str(),
                cfg.backends.qdrant_api_key.as_str()
            ),
            ("redis://r:1", "http://q:6334", "secret")
        );
    }

    #[test]
    fn env_overrides() {
        let mut cfg = Config::default();
        cfg.apply_env(|k| (k == "CODEMEM_EMBED_BATCH").then(|| "4".to_string()))
            .unwrap();
        assert_eq!(cfg.embed.batch_size, 4);
        assert!(cfg
            .apply_env(|k| (k == "CODEMEM_EMBED_BATCH").then(|| "x".to_string()))
            .is_err());
    }
}
