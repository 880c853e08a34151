//! Who may call the HTTP endpoint: bearer tokens (the default full-access token in the
//! codemem home plus named, scoped tokens from `[[mcp.token]]`), and the Host / Origin checks
//! that keep web pages from reaching a server on localhost (DNS rebinding).

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codemem_core::config::{McpAccess, McpConfig};
use codemem_service::NamespaceScope;

use crate::McpError;

/// File in the codemem home holding the default token.
pub const TOKEN_FILE: &str = "mcp-token";
/// Name of the default token in the audit log.
pub const DEFAULT_TOKEN_NAME: &str = "default";

/// The caller of one request, as established by its token (or by the transport: stdio is the
/// user who started the process).
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: String,
    pub access: McpAccess,
    /// `None`: every namespace.
    pub namespaces: Option<Vec<String>>,
}

impl Principal {
    pub fn full(name: &str) -> Principal {
        Principal {
            name: name.to_string(),
            access: McpAccess::Write,
            namespaces: None,
        }
    }

    pub fn can_write(&self) -> bool {
        self.access == McpAccess::Write
    }

    pub fn may_use(&self, namespace: &str) -> bool {
        self.scope().allows(namespace)
    }

    /// The namespaces this caller may see, as the service filters answers by them.
    pub fn scope(&self) -> NamespaceScope {
        match &self.namespaces {
            None => NamespaceScope::All,
            Some(ns) => NamespaceScope::Only(ns.clone()),
        }
    }

    /// The namespaces a read touches: the requested ones (each must be in scope), or when
    /// none are requested, `default` narrowed to the scope (or the whole scope if that is empty).
    pub fn scope_read(
        &self,
        requested: &[String],
        default: Vec<String>,
    ) -> Result<Vec<String>, String> {
        if let Some(bad) = requested.iter().find(|n| !self.may_use(n)) {
            return Err(self.out_of_scope(bad));
        }
        if !requested.is_empty() {
            return Ok(requested.to_vec());
        }
        match &self.namespaces {
            None => Ok(default),
            Some(scope) => {
                let narrowed: Vec<String> =
                    default.into_iter().filter(|n| scope.contains(n)).collect();
                Ok(if narrowed.is_empty() {
                    scope.clone()
                } else {
                    narrowed
                })
            }
        }
    }

    pub fn out_of_scope(&self, namespace: &str) -> String {
        let scope = self
            .namespaces
            .as_ref()
            .map(|v| v.join(", "))
            .unwrap_or_default();
        format!(
            "the token `{}` may not use namespace `{namespace}`; it is limited to: {scope}",
            self.name
        )
    }

    pub fn require_write(&self, tool: &str) -> Result<(), String> {
        if self.can_write() {
            Ok(())
        } else {
            Err(format!(
                "the token `{}` is read-only and cannot call `{tool}`; use a token with access = \"write\" \
                 (see [[mcp.token]] in codemem.toml) or the default token (`codemem token`)",
                self.name
            ))
        }
    }
}

struct Entry {
    secret: Vec<u8>,
    principal: Principal,
}

/// The accepted tokens. Lookup compares every secret in constant time.
pub struct TokenSet {
    entries: Vec<Entry>,
    /// Serve without tokens (only allowed on loopback binds).
    open: bool,
}

impl TokenSet {
    /// The default token (created if missing) plus every configured token; a `token_env`
    /// naming an unset variable is an error, not a silently missing token.
    pub fn load(home: &Path, cfg: &McpConfig) -> Result<TokenSet, McpError> {
        let mut entries = vec![Entry {
            secret: default_token(home)?.0.into_bytes(),
            principal: Principal::full(DEFAULT_TOKEN_NAME),
        }];
        for t in &cfg.tokens {
            let secret = match (&t.token, &t.token_env) {
                (Some(s), _) => s.clone(),
                (None, Some(var)) => std::env::var(var).map_err(|_| McpError::Config(format!(
                    "mcp token `{}` reads its secret from ${var}, which is not set; export it or remove the token from codemem.toml",
                    t.name
                )))?,
                (None, None) => return Err(McpError::Config(format!("mcp token `{}` has no secret", t.name))),
            };
            if secret.trim().len() < 16 {
                return Err(McpError::Config(format!(
                    "mcp token `{}`: the secret must be at least 16 characters",
                    t.name
                )));
            }
            entries.push(Entry {
                secret: secret.trim().as_bytes().to_vec(),
                principal: Principal {
                    name: t.name.clone(),
                    access: t.access,
                    namespaces: if t.namespaces.is_empty() {
                        None
                    } else {
                        Some(t.namespaces.clone())
                    },
                },
            });
        }
        Ok(TokenSet {
            entries,
            open: !cfg.require_token,
        })
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The principal for an `Authorization` header value, if it carries a known bearer token.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Principal> {
        let presented = authorization.and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
        let Some(presented) = presented else {
            return self.open.then(|| Principal::full("anonymous"));
        };
        let mut found = None;
        for e in &self.entries {
            if constant_time_eq(presented.as_bytes(), &e.secret) && found.is_none() {
                found = Some(e.principal.clone());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The default token and its file, created (mode 0600) on first use.
pub fn default_token(home: &Path) -> Result<(String, PathBuf), McpError> {
    let path = home.join(TOKEN_FILE);
    let io = |e: std::io::Error| McpError::Io {
        path: path.display().to_string(),
        source: e,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 16 => {
            tighten_permissions(&path).map_err(io)?;
            return Ok((text.trim().to_string(), path));
        }
        Ok(_) => {
            return Err(McpError::Config(format!(
                "{} is empty or too short; delete it and a new token is created",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(home).map_err(|e| McpError::Io {
        path: home.display().to_string(),
        source: e,
    })?;
    let token = new_secret().map_err(io)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(format!("{token}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            tracing::info!("created the MCP bearer token at {}", path.display());
            Ok((token, path))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let text = std::fs::read_to_string(&path).map_err(io)?;
            Ok((text.trim().to_string(), path))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn tighten_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} was readable by others (mode {:o}); setting it to 0600",
            path.display(),
            mode & 0o777
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_permissions(_: &Path) -> std::io::Result<()> {
    Ok(())
}

fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(format!(
        "cmm_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Host and Origin policy (DNS-rebinding defence).
pub struct OriginPolicy {
    hosts: Vec<String>,
    origins: Vec<String>,
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` / `[v6][:port]` and returns the host part, lowercased.
fn host_part(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if a.matches(':').count() > 1 {
        a // bare IPv6
    } else {
        a.split(':').next().unwrap_or(a)
    };
    host.to_ascii_lowercase()
}

impl OriginPolicy {
    pub fn new(cfg: &McpConfig, bind_host: &str) -> OriginPolicy {
        let mut hosts: Vec<String> = cfg
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let unspecified = bind_host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if !unspecified && !is_loopback_name(bind_host) {
            hosts.push(host_part(bind_host));
        }
        OriginPolicy {
            hosts,
            origins: cfg
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// `Err(reason)` when the Host header names something other than this server.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), String> {
        let Some(host) = host else {
            return Err("the request has no Host header".into());
        };
        let name = host_part(host);
        if is_loopback_name(&name)
            || self
                .hosts
                .iter()
                .any(|h| h == &name || h.eq_ignore_ascii_case(host.trim()))
        {
            Ok(())
        } else {
            Err(format!(
                "Host `{host}` is not allowed (DNS-rebinding protection); add it to mcp.allowed_hosts in codemem.toml if this server should answer to that name"
            ))
        }
    }

    /// `Err(reason)` when a browser Origin is present and is neither loopback nor allowed.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), String> {
        let Some(origin) = origin else { return Ok(()) };
        let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.iter().any(|a| a == &o) {
            return Ok(());
        }
        let authority = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"));
        if authority.is_some_and(|a| !a.contains('/') && is_loopback_name(&host_part(a))) {
            return Ok(());
        }
        Err(format!(
            "Origin `{origin}` is not allowed; add it to mcp.allowed_origins in codemem.toml to let that web page call codemem"
        ))
    }
}

/// Shared by every request of one HTTP server.
pub struct Gate {
    pub tokens: TokenSet,
    pub origins: OriginPolicy,
    pub max_body_bytes: usize,
    /// Which token owns each session; the per-token session cap.
    pub sessions: Arc<crate::sessions::Sessions>,
}

pub type SharedGate = Arc<Gate>;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> McpConfig {
        McpConfig::default()
    }

    #[test]
    fn default_token_is_private_and_stable() {
        let home = tempfile::tempdir().unwrap();
        let (a, path) = default_token(home.path()).unwrap();
        let (b, _) = default_token(home.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.len() > 40);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn bearer_tokens_map_to_principals() {
        let home = tempfile::tempdir().unwrap();
        let mut c = cfg();
        c.tokens.push(codemem_core::config::McpToken {
            name: "reader".into(),
            token: Some("r".repeat(20)),
            token_env: None,
            namespaces: vec!["testing".into()],
            access: McpAccess::Read,
        });
        let set = TokenSet::load(home.path(), &c).unwrap();
        let (def, _) = default_token(home.path()).unwrap();
        assert_eq!(
            set.authenticate(Some(&format!("Bearer {def}")))
                .unwrap()
                .name,
            "default"
        );
        let r = set
            .authenticate(Some(&format!("bearer {}", "r".repeat(20))))
            .unwrap();
        assert!(!r.can_write() && r.may_use("testing") && !r.may_use("coding"));
        assert!(set
            .authenticate(Some("Bearer wrong-token-wrong-token"))
            .is_none());
        assert!(set.authenticate(None).is_none());
        assert!(
            set.authenticate(Some(&def)).is_none(),
            "a bare token without the Bearer scheme"
        );
    }

    #[test]
    fn read_scope_narrows_defaults() {
        let p = Principal {
            name: "t".into(),
            access: McpAccess::Read,
            namespaces: Some(vec!["testing".into()]),
        };
        assert_eq!(
            p.scope_read(&[], vec!["coding".into(), "documentation".into()])
                .unwrap(),
            vec!["testing"]
        );
        assert!(p
            .scope_read(&["coding".into()], vec![])
            .unwrap_err()
            .contains("limited to: testing"));
        assert!(Principal::full("x")
            .scope_read(&[], vec!["coding".into()])
            .is_ok());
    }

    #[test]
    fn host_and_origin_checks() {
        let p = OriginPolicy::new(&cfg(), "127.0.0.1");
        for ok in ["127.0.0.1:9200", "localhost", "LOCALHOST:1", "[::1]:9200"] {
            assert!(p.check_host(Some(ok)).is_ok(), "{ok}");
        }
        for bad in ["evil.example:9200", "127.0.0.1.evil.example", "10.0.0.1"] {
            assert!(p.check_host(Some(bad)).is_err(), "{bad}");
        }
        assert!(p.check_host(None).is_err());
        assert!(p.check_origin(None).is_ok());
        assert!(p.check_origin(Some("http://localhost:3000")).is_ok());
        assert!(p.check_origin(Some("http://127.0.0.1")).is_ok());
        assert!(p.check_origin(Some("https://evil.example")).is_err());
        assert!(p.check_origin(Some("null")).is_err());
        assert!(p
            .check_origin(Some("http://localhost.evil.example"))
            .is_err());
        let mut c = cfg();
        c.allowed_origins = vec!["https://app.example.com".into()];
        c.allowed_hosts = vec!["mem.example.com".into()];
        let p = OriginPolicy::new(&c, "0.0.0.0");
        assert!(p.check_origin(Some("https://app.example.com")).is_ok());
        assert!(p.check_host(Some("mem.example.com:9200")).is_ok());
        assert!(p.check_host(Some("other.example.com")).is_err());
    }
}
