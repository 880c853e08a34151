//! `codemem mcp`, `codemem serve` and `codemem token`: wiring a `Workspace` to the MCP adapter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use codemem_core::Config;
use codemem_mcp::{HttpOptions, McpError};
use codemem_service::{ServiceError, Workspace, WorkspaceOptions};

use crate::{exit, Failure};

/// The exit code for an MCP start-up error (also for the daemon's answer to `codemem serve`).
pub fn mcp_exit_code(e: &McpError) -> u8 {
    match e {
        McpError::Config(_) | McpError::InsecureBind { .. } | McpError::Bind { .. } => exit::USAGE,
        _ => exit::ERROR,
    }
}

fn mcp_failure(e: McpError) -> Failure {
    Failure {
        code: mcp_exit_code(&e),
        err: anyhow::Error::new(e),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?)
}

/// A workspace over `root` that indexes in the background and follows file changes. Without
/// the model it still serves lexical search.
fn open_workspace(
    home: &Path,
    root: &Path,
    cfg: &Config,
    purpose: &str,
) -> Result<Arc<Workspace>, Failure> {
    let embedder = match crate::load_embedder(home, cfg) {
        Ok(e) => Some(e),
        Err(f) => {
            eprintln!("warning: {:#}\nwarning: serving lexical search only", f.err);
            None
        }
    };
    let ws = Workspace::new(WorkspaceOptions {
        home: home.to_path_buf(),
        embedder,
        purpose: purpose.into(),
        config: None,
        auto_index: true,
        watch: true,
        lock_wait: Duration::from_secs(5),
    });
    ws.add_root(root)?;
    Ok(ws)
}

pub fn stdio(home: PathBuf, root: &Path) -> Result<u8, Failure> {
    let cfg = Config::load(root).map_err(ServiceError::from)?;
    let ws = open_workspace(&home, root, &cfg, "codemem mcp")?;
    runtime()?
        .block_on(codemem_mcp::serve_stdio(ws))
        .map_err(mcp_failure)?;
    Ok(0)
}

pub fn serve(
    home: PathBuf,
    root: &Path,
    host: Option<String>,
    port: Option<u16>,
) -> Result<u8, Failure> {
    let mut cfg = Config::load(root).map_err(ServiceError::from)?;
    if let Some(h) = host {
        cfg.mcp.host = h;
    }
    if let Some(p) = port {
        cfg.mcp.port = p;
    }
    let rt = runtime()?;
    let ws = open_workspace(&home, root, &cfg, "codemem serve")?;
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = codemem_mcp::serve_http(ws, HttpOptions::new(home.clone(), cfg.mcp.clone()), shutdown.clone())
            .await
            .map_err(mcp_failure)?;
        // The one line on stdout: where to connect (useful with --port 0).
        println!("{}", server.url());
        eprintln!(
            "codemem: serving MCP at {} for {}; clients send `Authorization: Bearer <token>` (`codemem token` prints it). Ctrl-C stops.",
            server.url(),
            root.display()
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stop.cancel();
        });
        server.wait().await.map_err(mcp_failure)?;
        Ok::<u8, Failure>(0)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub fn token(home: PathBuf, json: bool) -> Result<u8, Failure> {
    let (token, path) = codemem_mcp::default_token(&home).map_err(mcp_failure)?;
    if json {
        crate::output::print_json(&serde_json::json!({
            "token": token,
            "path": path.display().to_string(),
            "header": format!("Authorization: Bearer {token}"),
        }))?;
    } else {
        println!("{token}");
    }
    Ok(0)
}

/// `codemem serve` with a daemon: the daemon serves the one MCP endpoint of this machine (every
/// open project); this process prints its URL and keeps it up until Ctrl-C / SIGTERM.
pub fn serve_through_daemon(conn: crate::daemon::Connection, root: &Path) -> Result<u8, Failure> {
    let crate::daemon::Connection { stream, mut reader } = conn;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).context("the daemon connection failed")?;
    let url = match serde_json::from_str::<crate::daemon::Answer>(&line)
        .context("unexpected answer from the daemon")?
    {
        crate::daemon::Answer::Result(v) => v
            .get("url")
            .and_then(|u| u.as_str())
            .unwrap_or_default()
            .to_string(),
        crate::daemon::Answer::Error { message, code } => {
            let code = if code == "usage" {
                exit::USAGE
            } else {
                exit::ERROR
            };
            return Err(Failure {
                code,
                err: anyhow::anyhow!(message),
            });
        }
        crate::daemon::Answer::Event(_) => {
            return Err(crate::usage("unexpected answer from the daemon"))
        }
    };
    println!("{url}");
    eprintln!(
        "codemem: serving MCP at {url} (the daemon's endpoint; {} is open in it); clients send `Authorization: Bearer <token>` (`codemem token` prints it). Ctrl-C stops.",
        root.display()
    );
    let rt = runtime()?;
    let code = rt.block_on(async move {
        let gone = tokio::task::spawn_blocking(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
        });
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = gone => {
                eprintln!("codemem: the daemon stopped serving");
                return exit::ERROR;
            }
        }
        // Tells the daemon this `serve` is gone (and ends the reader above).
        let _ = stream.shutdown(std::net::Shutdown::Both);
        0
    });
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(code)
}
