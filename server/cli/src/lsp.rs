//! `codemem lsp`: the LSP server on stdio, with the MCP HTTP endpoint over the same workspace
//! (so agents see the editor's unsaved buffers). Wiring only: both adapters stay independent.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use codemem_core::Config;
use codemem_lsp::{LspOptions, StartMcp};
use codemem_mcp::HttpOptions;
use serde_json::{json, Value};

use crate::Failure;

pub fn run(home: PathBuf) -> Result<u8, Failure> {
    // The editor decides the workspace; settings that are not per root come from the
    // environment (and the current directory's codemem.toml, if any).
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let base = Config::load(&cwd).unwrap_or_default();
    let embed_cfg = base.clone();
    let embed_home = home.clone();
    let load_embedder: codemem_lsp::LoadEmbedder =
        Arc::new(
            move || match crate::load_embedder(&embed_home, &embed_cfg) {
                Ok(e) => Ok(Some(e)),
                Err(f) => Err(format!("{:#}", f.err)),
            },
        );
    let mcp_home = home.clone();
    let start_mcp: StartMcp = Arc::new(move |ws, settings: Value| {
        let (home, base) = (mcp_home.clone(), base.clone());
        Box::pin(async move {
            let cfg = if settings.is_null() {
                base
            } else {
                base.with_overrides(&json!({ "mcp": settings }), "initializationOptions.mcp")
                    .map_err(|e| e.to_string())?
            };
            // Lives as long as the process: the editor's exit ends both.
            let server = codemem_mcp::serve_http(
                ws,
                HttpOptions::new(home, cfg.mcp.clone()),
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(server.url())
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = rt.block_on(codemem_lsp::run_stdio(LspOptions {
        home,
        load_embedder,
        start_mcp: Some(start_mcp),
        hub: None,
    }));
    // Background threads (indexer, watcher) must not keep the process alive after `exit`.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(code as u8)
}
