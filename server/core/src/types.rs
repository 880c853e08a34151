//! Domain types shared by every layer.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::{CoreError, Result};
use crate::lang::Language;

/// The five namespaces of the original deployment. Config may add more.
pub const BUILTIN_NAMESPACES: [&str; 5] = [
    "coding",
    "architecture",
    "documentation",
    "testing",
    "shared",
];
/// What a query searches when it names no namespace.
pub const DEFAULT_QUERY_NAMESPACES: [&str; 2] = ["coding", "documentation"];
/// Bumped whenever chunk boundaries or chunk text change, so cached embeddings are not reused
/// for text they were not computed from.
pub const CHUNKER_VERSION: u32 = 1;

/// A validated namespace name (`coding`, `testing`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

impl Namespace {
    pub fn new(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Namespace(name.to_string()))
        } else {
            Err(CoreError::InvalidNamespace(name.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn coding() -> Self {
        Namespace("coding".into())
    }
    pub fn testing() -> Self {
        Namespace("testing".into())
    }
    pub fn documentation() -> Self {
        Namespace("documentation".into())
    }
    pub fn architecture() -> Self {
        Namespace("architecture".into())
    }
    pub fn shared() -> Self {
        Namespace("shared".into())
    }
}

impl TryFrom<String> for Namespace {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        Namespace::new(&s)
    }
}
impl From<Namespace> for String {
    fn from(n: Namespace) -> String {
        n.0
    }
}
impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one indexed project (a workspace root) inside the data dir.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectId(String);

impl ProjectId {
    /// `<dir name>-<16 hex of blake3(canonical root)>`: readable and collision-free.
    pub fn for_root(canonical_root: &std::path::Path) -> Self {
        let name = canonical_root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "root".into());
        Self::named(&name, canonical_root.to_string_lossy().as_bytes())
    }

    /// `<name>-<16 hex of blake3(key)>`: a project named by a key that several checkouts share
    /// (a git remote, `[project] key`).
    pub fn for_key(name: &str, key: &str) -> Self {
        Self::named(name, key.as_bytes())
    }

    fn named(name: &str, identity: &[u8]) -> Self {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let hash = blake3::hash(identity);
        ProjectId(format!("{name}-{}", &hash.to_hex()[..16]))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a chunk is, syntactically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Interface,
    Trait,
    Impl,
    Module,
    Constant,
    Type,
    /// A Markdown / RST section under a heading.
    Section,
    /// A window of lines (unknown language, top-level glue code, or a split part).
    Block,
    /// A note written on purpose by a person or an agent (`remember`).
    Memory,
}

impl ChunkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChunkKind::Function => "function",
            ChunkKind::Method => "method",
            ChunkKind::Class => "class",
            ChunkKind::Struct => "struct",
            ChunkKind::Enum => "enum",
            ChunkKind::Interface => "interface",
            ChunkKind::Trait => "trait",
            ChunkKind::Impl => "impl",
            ChunkKind::Module => "module",
            ChunkKind::Constant => "constant",
            ChunkKind::Type => "type",
            ChunkKind::Section => "section",
            ChunkKind::Block => "block",
            ChunkKind::Memory => "memory",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// A piece of a file produced by the chunker, before it gets a namespace or an embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDraft {
    pub symbol: Option<String>,
    pub kind: ChunkKind,
    /// 1-based, inclusive.
    pub start_line: u32,
    /// 1-based, inclusive.
    pub end_line: u32,
    pub content: String,
}

/// A chunk as stored: where it is, what it is, and the hash that keys its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Workspace-relative path with `/` separators.
    pub path: String,
    pub namespace: Namespace,
    pub language: Language,
    pub symbol: Option<String>,
    pub kind: ChunkKind,
    pub start_line: u32,
    pub end_line: u32,
    pub content: String,
    /// blake3 hex of `content` plus the path-independent context that goes into the embedding.
    pub content_hash: String,
}

impl Chunk {
    /// Stable point id: the same chunk of the same file always maps to the same id, so
    /// re-upserting after a crash is idempotent.
    pub fn point_id(&self) -> u64 {
        let mut h = blake3::Hasher::new();
        h.update(self.path.as_bytes());
        h.update(&[0]);
        h.update(&self.start_line.to_le_bytes());
        h.update(&self.end_line.to_le_bytes());
        h.update(self.content_hash.as_bytes());
        let bytes = h.finalize();
        // Qdrant ids are u64; keep them below 2^63 so every client can represent them.
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes")) >> 1
    }

    /// The text the dense model sees: what the chunk is and where, then its code.
    pub fn embedding_text(&self) -> String {
        embedding_text(&self.path, self.kind, self.symbol.as_deref(), &self.content)
    }
}

/// See [`Chunk::embedding_text`].
pub fn embedding_text(path: &str, kind: ChunkKind, symbol: Option<&str>, content: &str) -> String {
    match symbol {
        Some(s) => format!("{path}: {} {s}\n{content}", kind.as_str()),
        None => format!("{path}\n{content}"),
    }
}

/// How a query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Lexical,
    Dense,
}

impl SearchMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hybrid" => Some(SearchMode::Hybrid),
            "lexical" => Some(SearchMode::Lexical),
            "dense" => Some(SearchMode::Dense),
            _ => None,
        }
    }
}

/// Upper bounds a request must respect; checked by [`Query::validate`].
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
pub const MAX_K: usize = 200;

/// The one range of result counts (`k`) for every request that takes one.
pub fn check_k(k: usize) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(CoreError::InvalidQuery(format!(
            "k must be between 1 and {MAX_K}, got {k}"
        )));
    }
    Ok(())
}

/// A search request, protocol independent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub text: String,
    /// Empty means [`DEFAULT_QUERY_NAMESPACES`].
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// Glob over workspace-relative paths, e.g. `src/**/*.rs`.
    #[serde(default)]
    pub path_glob: Option<String>,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default)]
    pub mode: SearchMode,
    /// Attach each hit's ranking signals (`Hit::explain`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explain: bool,
    /// Hits carry their chunk's whole text instead of a short snippet (token-budgeted context).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_text: bool,
    /// Fit the answer's snippets to this many tokens (200-100000; the service's estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
}

fn default_k() -> usize {
    10
}

impl Query {
    pub fn new(text: impl Into<String>) -> Self {
        Query {
            text: text.into(),
            namespaces: Vec::new(),
            path_glob: None,
            language: None,
            k: default_k(),
            mode: SearchMode::Hybrid,
            explain: false,
            full_text: false,
            max_tokens: None,
        }
    }

    /// Rejects what no backend should ever see: empty or huge text, k out of range, bad globs.
    pub fn validate(&self) -> Result<()> {
        if self.text.trim().is_empty() {
            return Err(CoreError::InvalidQuery(
                "the query text is empty; say what you are looking for".into(),
            ));
        }
        if self.text.len() > MAX_QUERY_BYTES {
            return Err(CoreError::InvalidQuery(format!(
                "the query is {} bytes; the limit is {MAX_QUERY_BYTES} bytes, shorten it",
                self.text.len()
            )));
        }
        check_k(self.k)?;
        if let Some(g) = &self.path_glob {
            globset::Glob::new(g).map_err(|e| CoreError::InvalidGlob {
                glob: g.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub symbol: Option<String>,
    pub kind: ChunkKind,
    pub namespace: Namespace,
    pub language: Language,
    pub score: f32,
    pub snippet: String,
    /// True when the hit comes from an editor buffer that is not saved to disk.
    #[serde(default)]
    pub unsaved: bool,
    /// Absolute workspace root the path is relative to (set when several roots are served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Set when the hit is a memory (`remember`), not a chunk of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
    /// Why the hit ranks where it does; only when the query asked (`Query::explain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// Each ranking signal's contribution to one hit's score (see the service's `rank` module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Explain {
    /// What the query was read as: `symbol`, `mixed`, `implementation` or `usage`.
    pub intent: String,
    /// 1-based rank in the lexical (BM25) list, if the chunk was in it.
    pub lexical_rank: Option<u32>,
    /// 1-based rank in the dense (model) list, if the chunk was in it.
    pub dense_rank: Option<u32>,
    /// 1-based rank in the first-pass (static table) list, searched while the model has not
    /// embedded every chunk yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_pass_rank: Option<u32>,
    /// Weighted reciprocal-rank fusion of the two lists.
    pub fused: f32,
    /// Added because the chunk defines the queried identifier.
    pub definition: f32,
    /// Multiplier from query words found in the file's name and folders.
    pub path_match: f32,
    /// Multiplier from where the file lives (tests, examples, docs, vendored code, ...).
    pub prior: f32,
    /// Why `prior` is not 1 (e.g. `examples`, `tests`, `docs for an implementation question`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior_reasons: Vec<String>,
    /// Multiplier for being the n-th chunk of a file already ranked higher.
    pub diversity: f32,
}

impl Explain {
    /// One line for people: `symbol query; lexical #2 dense #- → fused 0.0328 + definition ...`.
    pub fn summary(&self) -> String {
        let rank = |r: Option<u32>| r.map_or("-".to_string(), |r| r.to_string());
        format!(
            "{} query; lexical #{} dense #{}{} → fused {:.4} + definition {:.4}; × path {:.2} × prior {:.2}{} × diversity {:.2}",
            self.intent,
            rank(self.lexical_rank),
            rank(self.dense_rank),
            self.first_pass_rank
                .map_or(String::new(), |r| format!(" first-pass #{r}")),
            self.fused,
            self.definition,
            self.path_match,
            self.prior,
            if self.prior_reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.prior_reasons.join(", "))
            },
            self.diversity,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_validation() {
        assert!(Namespace::new("coding").is_ok());
        assert!(Namespace::new("my-ns_2").is_ok());
        assert!(Namespace::new("").is_err());
        assert!(Namespace::new("Coding").is_err());
        assert!(Namespace::new("../etc").is_err());
        assert!(Namespace::new(&"a".repeat(33)).is_err());
    }

    #[test]
    fn query_validation() {
        assert!(Query::new("hello").validate().is_ok());
        assert!(Query::new("  ").validate().is_err());
        assert!(Query::new("x".repeat(MAX_QUERY_BYTES + 1))
            .validate()
            .is_err());
        let mut q = Query::new("x");
        q.k = 0;
        assert!(q.validate().is_err());
        q.k = 5;
        q.path_glob = Some("src/[".into());
        assert!(q.validate().is_err());
    }

    #[test]
    fn point_ids_are_stable_and_distinct() {
        let c = Chunk {
            path: "a.rs".into(),
            namespace: Namespace::coding(),
            language: Language::Rust,
            symbol: None,
            kind: ChunkKind::Block,
            start_line: 1,
            end_line: 3,
            content: "x".into(),
            content_hash: "h".into(),
        };
        let mut d = c.clone();
        assert_eq!(c.point_id(), d.point_id());
        d.start_line = 2;
        assert_ne!(c.point_id(), d.point_id());
        assert!(c.point_id() < (1u64 << 63));
    }
}
