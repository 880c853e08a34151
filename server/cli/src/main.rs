//! The `codemem` binary: argument parsing, wiring, logging, exit codes. Logic lives in
//! codemem-service; this file only translates between the command line and the service.

mod daemon;
mod frames;
mod lsp;
mod mcp;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use codemem_core::{Config, Language, Query, SearchMode};
use codemem_embed::assets::{self, AssetPaths};
use codemem_embed::{EmbedError, Embedder, OnnxEmbedder, StaticEmbedder};
use codemem_service::{paths, IndexEvent, IndexOptions, OpenOptions, Project, ServiceError};

/// Exit codes (also documented in the README).
mod exit {
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_READY: u8 = 3;
    pub const BUSY: u8 = 4;
    pub const CANCELLED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "codemem",
    version,
    about = "Local code memory: semantic and exact-name search over a workspace, on this machine.",
    long_about = "codemem indexes a workspace's code and docs into namespaces (coding, architecture, \
documentation, testing, shared) with a local embedding model and a lexical index, and answers \
natural-language and exact-identifier queries.\n\nEvery command acts on the project that contains \
the current directory (the nearest indexed ancestor, else the nearest with codemem.toml or .git) \
unless --root is given. Data lives under $CODEMEM_HOME (default ~/.local/share/codemem).",
    after_help = "Exit codes: 0 ok, 1 error, 2 bad usage or input, 3 not ready (run `scripts/setup` or \
`codemem index`), 4 index busy (another codemem process is writing it), 130 cancelled."
)]
struct Cli {
    /// Workspace root to act on (default: the project containing the current directory).
    #[arg(long, global = true, value_name = "PATH")]
    root: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug). CODEMEM_LOG=<filter> overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Run in this process instead of attaching to the per-user daemon (also CODEMEM_DAEMON=off).
    /// A second process on the same project then gets "busy" (exit 4).
    #[arg(long, global = true)]
    no_daemon: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Index a workspace, or bring its index up to date. Only changed files are re-read, and only
    /// chunks never seen before are embedded. Interrupting (Ctrl-C, kill) is safe: the next run
    /// resumes where this one stopped.
    Index {
        /// Workspace root to index (default: the project containing the current directory).
        path: Option<PathBuf>,
        /// Print progress and the final counters as JSON lines on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Search the index: natural language ("where are retries configured") or an exact
    /// identifier ("parseHttpRequest"), which ranks its definition first.
    Search {
        /// What to look for.
        query: String,
        /// Namespace to search (repeatable; default: coding and documentation).
        #[arg(long = "ns", value_name = "NS")]
        namespaces: Vec<String>,
        /// Only paths matching this glob, e.g. 'src/**/*.rs'.
        #[arg(long, value_name = "GLOB")]
        path: Option<String>,
        /// Only this language (rust, python, typescript, tsx, javascript, go, java, c, cpp, markdown, ...).
        #[arg(long = "lang", value_name = "LANG")]
        language: Option<String>,
        /// Number of results.
        #[arg(short = 'k', long = "limit", default_value_t = 10)]
        k: usize,
        /// Ranking: hybrid (lexical + dense, fused), lexical only, or dense only.
        #[arg(long, value_enum, default_value_t = ModeArg::Hybrid)]
        mode: ModeArg,
        /// Show why each hit ranks where it does: list ranks, fusion, definition, path-match,
        /// prior and diversity factors.
        #[arg(long)]
        explain: bool,
        /// Fit the snippets to this many tokens (200-100000, the estimate `context` uses).
        #[arg(long, value_name = "N")]
        max_tokens: Option<usize>,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The code and docs most useful for a question, within a token budget: whole chunks of
    /// the best-ranked files merged per file, each headed path:start-end (for pasting into a
    /// model's context).
    Context {
        /// The question or task (or give --symbol).
        #[arg(required_unless_present = "symbol")]
        query: Option<String>,
        /// Context about this definition instead of a question.
        #[arg(long, conflicts_with = "query")]
        symbol: Option<String>,
        /// Most tokens the answer may take (200-100000), counted with a conservative bound.
        #[arg(long, default_value_t = codemem_service::context::DEFAULT_BUDGET)]
        budget: usize,
        /// Namespace to draw from (repeatable; default: coding and documentation).
        #[arg(long = "ns", value_name = "NS")]
        namespaces: Vec<String>,
        /// Only paths matching this glob, e.g. 'src/**'.
        #[arg(long, value_name = "GLOB")]
        path: Option<String>,
        /// Print the bundle as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Where a function, method, class or type is used (from syntax trees, no language
    /// server): its references, its callers (--callers) or what it calls (--callees).
    Refs {
        /// The name, e.g. `parse_config` or `Config.parse`.
        name: String,
        /// The file of the definition meant (relative to the root), when several share the name.
        #[arg(long, value_name = "FILE")]
        path: Option<String>,
        /// A line inside that definition.
        #[arg(long, requires = "path")]
        line: Option<u32>,
        /// Only the uses that call it, with the function each call is in.
        #[arg(long, conflicts_with = "callees")]
        callers: bool,
        /// What the definition calls, with where each callee is defined.
        #[arg(long)]
        callees: bool,
        /// Most sites listed (1-2000).
        #[arg(long, default_value_t = codemem_service::refs::DEFAULT_REF_LIMIT)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show what is indexed: files and points per namespace, pending embeddings, last run counters.
    Status {
        #[arg(long)]
        json: bool,
        /// Print the effective configuration (defaults + codemem.toml + CODEMEM_* variables) as TOML.
        #[arg(long)]
        config: bool,
    },
    /// Check every prerequisite (runtime library, model, data dir, configuration) and print the
    /// command that fixes each missing one.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Serve LSP on stdin/stdout (what editor extensions start): indexes the editor's workspace
    /// folders in the background, searches unsaved buffers, and serves the same index to agents
    /// over MCP HTTP (initializationOptions `mcp.port`, default 9200; `mcp.enabled: false` turns it off).
    Lsp,
    /// Serve MCP (Model Context Protocol) on stdin/stdout, for agents that start codemem
    /// themselves (Claude Code, Cursor, ...). Indexes the project in the background and
    /// follows file changes.
    Mcp,
    /// Serve MCP over streamable HTTP (default http://127.0.0.1:9200/mcp) until Ctrl-C; clients
    /// send the bearer token that `codemem token` prints. Prints the URL on stdout.
    Serve {
        /// TCP port (default 9200, or CODEMEM_MCP_PORT, or mcp.port; 0 picks a free one).
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// Address to bind (default 127.0.0.1, or CODEMEM_MCP_HOST, or mcp.host).
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
    },
    /// Print the bearer token for `codemem serve` (created on first use in $CODEMEM_HOME/mcp-token, mode 0600).
    Token {
        /// Print token, file and header as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The per-user daemon that `lsp`, `mcp` and `serve` attach to (started on demand; one per
    /// CODEMEM_HOME). `run` serves in the foreground; `status` and `stop` talk to the running one.
    Daemon {
        #[arg(value_enum, default_value_t = DaemonAction::Status)]
        action: DaemonAction,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DaemonAction {
    Run,
    Status,
    Stop,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Hybrid,
    Lexical,
    Dense,
}

impl From<ModeArg> for SearchMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Hybrid => SearchMode::Hybrid,
            ModeArg::Lexical => SearchMode::Lexical,
            ModeArg::Dense => SearchMode::Dense,
        }
    }
}

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    err: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let err: anyhow::Error = e.into();
        let code = match err.downcast_ref::<ServiceError>() {
            Some(ServiceError::Busy { .. }) => exit::BUSY,
            Some(ServiceError::NotIndexed { .. }) => exit::NOT_READY,
            Some(ServiceError::Cancelled) => exit::CANCELLED,
            Some(ServiceError::Embed(
                EmbedError::MissingAsset { .. } | EmbedError::CorruptAsset { .. },
            )) => exit::NOT_READY,
            Some(e) if e.is_invalid_input() => exit::USAGE,
            Some(ServiceError::Root { .. }) => exit::USAGE,
            _ => match err.downcast_ref::<EmbedError>() {
                Some(_) => exit::NOT_READY,
                None => exit::ERROR,
            },
        };
        Failure { code, err }
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure {
        code: exit::USAGE,
        err: anyhow::anyhow!(msg.into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {:#}", f.err);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(verbose: u8) {
    // qdrant-edge warns about process-wide flags it expects a Qdrant server to initialise;
    // they mean nothing here, so its logs start at `error`.
    let default = match verbose {
        0 => "warn,qdrant_edge=error",
        1 => "info,qdrant_edge=error",
        _ => "debug,qdrant_edge=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODEMEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // stdout belongs to command output (and, in server modes, to the protocol).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let home = assets::codemem_home();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root_for = |explicit: Option<&Path>| -> PathBuf {
        match explicit {
            Some(p) => p.to_path_buf(),
            None => paths::discover_root(&home, &cwd),
        }
    };
    match cli.cmd {
        Cmd::Index { path, json } => {
            let root = root_for(path.as_deref().or(cli.root.as_deref()));
            check_root(&root)?;
            if let Some(conn) = daemon_request(&home, &root, cli.no_daemon, daemon::Request::Index)?
            {
                let progress = output::Progress::new(json);
                let v = daemon::request(conn, &mut |e| progress.event(e))?;
                let stats: codemem_service::IndexStats =
                    serde_json::from_value(v).context("unexpected answer from the daemon")?;
                // The final counters, as the in-process run reports them.
                progress.event(IndexEvent::Done {
                    stats: stats.clone(),
                });
                progress.finish();
                if !json {
                    let id = paths::project_data_dir(&home, &root.canonicalize()?)
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    output::print_index_summary(&root, &id, &stats);
                }
                return Ok(if stats.cancelled { exit::CANCELLED } else { 0 });
            }
            let cfg = Config::load(&root).map_err(ServiceError::from)?;
            let embedder = load_embedder(&home, &cfg)?;
            let project = Project::open(
                &root,
                OpenOptions {
                    home,
                    embedder: Some(embedder),
                    purpose: "index".into(),
                    lock_wait: Duration::ZERO,
                    create: true,
                    config: Some(cfg),
                },
            )?;
            let cancel = Arc::new(AtomicBool::new(false));
            {
                let cancel = cancel.clone();
                let _ = ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed));
            }
            let progress = output::Progress::new(json);
            let stats = project.index(IndexOptions {
                cancel: &cancel,
                progress: &|e: IndexEvent| progress.event(e),
            })?;
            progress.finish();
            if !json {
                output::print_index_summary(project.root(), &project.id().to_string(), &stats);
            }
            Ok(if stats.cancelled { exit::CANCELLED } else { 0 })
        }
        Cmd::Search {
            query,
            namespaces,
            path,
            language,
            k,
            mode,
            explain,
            max_tokens,
            json,
        } => {
            let root = root_for(cli.root.as_deref());
            check_root(&root)?;
            let cfg = Config::load(&root).map_err(ServiceError::from)?;
            let mut q = Query::new(query);
            q.namespaces = namespaces_of(&cfg, &namespaces)?;
            if let Some(l) = &language {
                q.language = Some(Language::parse(l).ok_or_else(|| {
                    usage(format!(
                        "unknown language `{l}`; use one of: {}",
                        Language::ALL
                            .iter()
                            .map(|l| l.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?);
            }
            q.path_glob = path;
            q.k = k;
            q.mode = mode.into();
            q.explain = explain;
            q.max_tokens = codemem_service::context::max_tokens(max_tokens)
                .map_err(|e| usage(e.to_string()))?;
            q.validate().map_err(|e| usage(e.to_string()))?;
            if let Some(conn) = daemon_request(
                &home,
                &root,
                cli.no_daemon,
                daemon::Request::Search { query: q.clone() },
            )? {
                let v = daemon::request(conn, &mut |_| {})?;
                let resp: codemem_service::SearchResponse =
                    serde_json::from_value(v).context("unexpected answer from the daemon")?;
                if json {
                    output::print_json(&resp)?;
                } else {
                    output::print_hits(&resp);
                }
                return Ok(0);
            }
            let resp = search_in_process(&root, home, cfg, "search", q)?;
            if json {
                output::print_json(&resp)?;
            } else {
                output::print_hits(&resp);
            }
            Ok(0)
        }
        Cmd::Context {
            query,
            symbol,
            budget,
            namespaces,
            path,
            json,
        } => {
            let root = root_for(cli.root.as_deref());
            check_root(&root)?;
            let cfg = Config::load(&root).map_err(ServiceError::from)?;
            let cq = codemem_service::ContextQuery {
                text: query.unwrap_or_default(),
                symbol,
                location: None,
                budget_tokens: Some(budget),
                namespaces: namespaces_of(&cfg, &namespaces)?,
                path_glob: path,
            };
            let (q, budget) = codemem_service::context::search_for(&cq)
                .and_then(|r| r.0.validate().map(|_| r).map_err(Into::into))
                .map_err(|e| usage(e.to_string()))?;
            let show = |b: &codemem_service::context::ContextBundle| -> Result<(), Failure> {
                if json {
                    output::print_json(b)?;
                } else {
                    print!("{}", b.text());
                }
                Ok(())
            };
            if let Some(conn) = daemon_request(
                &home,
                &root,
                cli.no_daemon,
                daemon::Request::Context { query: cq },
            )? {
                let v = daemon::request(conn, &mut |_| {})?;
                let b: codemem_service::context::ContextBundle =
                    serde_json::from_value(v).context("unexpected answer from the daemon")?;
                show(&b)?;
                return Ok(0);
            }
            let resp = search_in_process(&root, home, cfg, "context", q)?;
            show(&codemem_service::context::pack(&resp.hits, budget))?;
            Ok(0)
        }
        Cmd::Refs {
            name,
            path,
            line,
            callers,
            callees,
            limit,
            json,
        } => {
            let root = root_for(cli.root.as_deref());
            check_root(&root)?;
            let canonical = root.canonicalize()?;
            // An absolute path inside the root is made relative, as results show paths.
            let path = path.map(|p| {
                let abs = std::path::absolute(&p).unwrap_or_else(|_| PathBuf::from(&p));
                abs.canonicalize()
                    .ok()
                    .and_then(|c| c.strip_prefix(&canonical).ok().map(Path::to_path_buf))
                    .map_or(p, |r| r.display().to_string())
            });
            let q = codemem_service::RefQuery {
                name,
                path,
                line,
                limit: Some(limit),
                calls_only: callers,
            };
            let show = |v: serde_json::Value| -> Result<(), Failure> {
                if json {
                    output::print_json(&v)?;
                } else {
                    output::print_refs(&v);
                }
                Ok(())
            };
            if let Some(conn) = daemon_request(
                &home,
                &root,
                cli.no_daemon,
                daemon::Request::Refs {
                    query: q.clone(),
                    callees,
                },
            )? {
                show(daemon::request(conn, &mut |_| {})?)?;
                return Ok(0);
            }
            let cfg = Config::load(&root).map_err(ServiceError::from)?;
            let project = Project::open(
                &root,
                OpenOptions {
                    home,
                    embedder: None,
                    purpose: "refs".into(),
                    lock_wait: Duration::from_secs(5),
                    create: false,
                    config: Some(cfg),
                },
            )?;
            let scope = codemem_service::NamespaceScope::All;
            let v = if callees {
                serde_json::to_value(project.callees(&q, &scope)?)
            } else {
                serde_json::to_value(project.references(&q, &scope)?)
            };
            show(v.context("serialising the answer")?)?;
            Ok(0)
        }
        Cmd::Status { json, config } => {
            let root = root_for(cli.root.as_deref());
            check_root(&root)?;
            if config {
                let mut cfg = Config::load(&root).map_err(ServiceError::from)?;
                for t in &mut cfg.mcp.tokens {
                    t.token = t.token.as_ref().map(|_| "<redacted>".to_string());
                }
                if !cfg.backends.qdrant_api_key.is_empty() {
                    cfg.backends.qdrant_api_key = "<redacted>".into();
                }
                // redis://user:password@host → redis://user:<redacted>@host
                if let Some((scheme, rest)) = cfg.backends.redis_url.clone().split_once("://") {
                    if let Some((cred, host)) = rest.rsplit_once('@') {
                        let user = cred.split_once(':').map_or("", |(u, _)| u);
                        cfg.backends.redis_url = format!("{scheme}://{user}:<redacted>@{host}");
                    }
                }
                print!(
                    "{}",
                    toml::to_string_pretty(&cfg).context("cannot render the configuration")?
                );
                return Ok(0);
            }
            if let Some(conn) =
                daemon_request(&home, &root, cli.no_daemon, daemon::Request::Status)?
            {
                let v = daemon::request(conn, &mut |_| {})?;
                let status: codemem_service::ProjectStatus =
                    serde_json::from_value(v).context("unexpected answer from the daemon")?;
                if json {
                    output::print_json(&status)?;
                } else {
                    output::print_status(&status);
                }
                return Ok(0);
            }
            let project = Project::open(
                &root,
                OpenOptions {
                    home,
                    embedder: None,
                    purpose: "status".into(),
                    lock_wait: Duration::from_secs(2),
                    create: false,
                    config: None,
                },
            )?;
            let status = project.status()?;
            if json {
                output::print_json(&status)?;
            } else {
                output::print_status(&status);
            }
            Ok(0)
        }
        Cmd::Doctor { json } => {
            let root = root_for(cli.root.as_deref());
            Ok(output::doctor(&home, &root, json))
        }
        Cmd::Lsp => {
            if let Some(conn) = daemon_session(&home, "lsp", None, None, cli.no_daemon) {
                return Ok(daemon::relay(&home, conn, frames::Framing::Lsp, None));
            }
            lsp::run(home)
        }
        Cmd::Mcp => {
            let root = root_for(cli.root.as_deref());
            check_root(&root)?;
            let canonical = root.canonicalize()?;
            if let Some(conn) = daemon_session(&home, "mcp", Some(&canonical), None, cli.no_daemon)
            {
                return Ok(daemon::relay(
                    &home,
                    conn,
                    frames::Framing::Mcp,
                    Some(&canonical),
                ));
            }
            mcp::stdio(home, &root)
        }
        Cmd::Serve { port, host } => {
            let root = root_for(cli.root.as_deref());
            check_root(&root)?;
            let canonical = root.canonicalize()?;
            if let Some(conn) = daemon_session(
                &home,
                "serve",
                Some(&canonical),
                Some(daemon::Request::Serve {
                    host: host.clone(),
                    port,
                }),
                cli.no_daemon,
            ) {
                return mcp::serve_through_daemon(conn, &canonical);
            }
            mcp::serve(home, &root, host, port)
        }
        Cmd::Token { json } => mcp::token(home, json),
        Cmd::Daemon { action, json } => match action {
            DaemonAction::Run => {
                let idle = Config::load(&cwd)
                    .map(|c| c.daemon.idle_exit_secs)
                    .map_err(ServiceError::from)?;
                daemon::run(home, Duration::from_secs(idle))
            }
            DaemonAction::Status | DaemonAction::Stop => {
                let req = if matches!(action, DaemonAction::Stop) {
                    daemon::Request::Stop
                } else {
                    daemon::Request::DaemonStatus
                };
                match daemon::attach(&home, "control", None, Some(req), false)? {
                    daemon::Attach::Attached(conn) => {
                        let v = daemon::request(conn, &mut |_| {})?;
                        if json {
                            output::print_json(&v)?;
                        } else if matches!(action, DaemonAction::Stop) {
                            println!("codemem daemon stopping");
                        } else {
                            output::print_daemon_status(&v);
                        }
                        Ok(0)
                    }
                    _ => {
                        if json {
                            output::print_json(&serde_json::json!({"running": false}))?;
                        } else {
                            println!("no codemem daemon runs for {}", home.display());
                        }
                        Ok(if matches!(action, DaemonAction::Stop) {
                            0
                        } else {
                            exit::NOT_READY
                        })
                    }
                }
            }
        },
    }
}

/// A search in this process (no daemon): loads the model unless the search is lexical (a
/// hybrid search goes on lexically, with a warning, when it cannot load), opens the project
/// read-side, sandboxes the path glob against its root, searches.
fn search_in_process(
    root: &Path,
    home: PathBuf,
    cfg: Config,
    purpose: &str,
    mut q: Query,
) -> Result<codemem_service::SearchResponse, Failure> {
    let embedder = if q.mode == SearchMode::Lexical {
        None
    } else {
        match load_embedder(&home, &cfg) {
            Ok(e) => Some(e),
            Err(f) if q.mode == SearchMode::Hybrid => {
                eprintln!(
                    "warning: {:#}\nwarning: answering with lexical search only",
                    f.err
                );
                None
            }
            Err(f) => return Err(f),
        }
    };
    let project = Project::open(
        root,
        OpenOptions {
            home,
            embedder,
            purpose: purpose.into(),
            lock_wait: Duration::from_secs(5),
            create: false,
            config: Some(cfg),
        },
    )?;
    if let Some(g) = &q.path_glob {
        q.path_glob = Some(
            codemem_service::paths::sandbox_glob(g, &[project.root().to_path_buf()])
                .map_err(|e| usage(e.to_string()))?,
        );
    }
    Ok(project.search(&q)?)
}

/// `--ns` names as namespaces of this project's config (a usage error names the bad one).
fn namespaces_of(cfg: &Config, names: &[String]) -> Result<Vec<codemem_core::Namespace>, Failure> {
    names
        .iter()
        .map(|ns| cfg.namespace(ns).map_err(|e| usage(e.to_string())))
        .collect()
}

/// A CLI request through the running daemon, if there is one (the CLI never starts one).
fn daemon_request(
    home: &Path,
    root: &Path,
    no_daemon: bool,
    req: daemon::Request,
) -> Result<Option<daemon::Connection>, Failure> {
    if !daemon::enabled(no_daemon) {
        return Ok(None);
    }
    let canonical = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    match daemon::attach(home, "request", Some(&canonical), Some(req), false) {
        Ok(daemon::Attach::Attached(c)) => Ok(Some(c)),
        Ok(daemon::Attach::NoDaemon) => Ok(None),
        Ok(daemon::Attach::OtherVersion(msg)) => {
            eprintln!("warning: {msg}; answering in this process");
            Ok(None)
        }
        Err(e) => {
            eprintln!("warning: {e:#}; answering in this process");
            Ok(None)
        }
    }
}

/// A long session (`lsp`, `mcp`, `serve`) on the daemon, starting it when none runs. `None`:
/// serve in this process (daemon off, another version draining, or the daemon failed to start).
fn daemon_session(
    home: &Path,
    kind: &str,
    root: Option<&Path>,
    req: Option<daemon::Request>,
    no_daemon: bool,
) -> Option<daemon::Connection> {
    if !daemon::enabled(no_daemon) {
        return None;
    }
    match daemon::attach(home, kind, root, req, true) {
        Ok(daemon::Attach::Attached(c)) => Some(c),
        Ok(daemon::Attach::NoDaemon) => None,
        Ok(daemon::Attach::OtherVersion(msg)) => {
            eprintln!("codemem: {msg}; this session runs in its own process meanwhile");
            None
        }
        Err(e) => {
            eprintln!("codemem: {e:#}; this session runs in its own process");
            None
        }
    }
}

fn check_root(root: &Path) -> Result<(), Failure> {
    if !root.is_dir() {
        return Err(usage(format!("{} is not a directory", root.display())));
    }
    Ok(())
}

pub(crate) fn load_embedder(home: &Path, cfg: &Config) -> Result<Arc<dyn Embedder>, Failure> {
    let paths = AssetPaths::in_home(home);
    let mut e =
        OnnxEmbedder::load(&paths, cfg.embed.threads, cfg.embed.max_length).map_err(|e| {
            Failure {
                code: exit::NOT_READY,
                err: anyhow::Error::new(e),
            }
        })?;
    if cfg.embed.first_pass {
        // Built once beside the model (~30 s); without it, search waits for the model.
        match StaticEmbedder::load_or_build(&paths, cfg.embed.threads) {
            Ok(t) => e = e.with_first_pass(t),
            Err(err) => {
                tracing::warn!(error = %err, "no first pass: the static table is unavailable")
            }
        }
    }
    Ok(Arc::new(e))
}
