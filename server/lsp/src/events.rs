//! Workspace events → LSP: `$/progress` for index runs (one token per run, cancellable),
//! the `codemem/status` notification, and code-lens refreshes when memories change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codemem_service::{IndexEvent, Workspace, WorkspaceEvent};
use serde_json::{json, Value};
use tower_lsp_server::ls_types::notification::{Notification, Progress};
use tower_lsp_server::ls_types::*;

use crate::Shared;

/// Server → client: index and backend health.
pub enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = Value;
    const METHOD: &'static str = "codemem/status";
}

/// Progress reports are throttled to this interval (the last one always goes out).
const REPORT_EVERY: Duration = Duration::from_millis(150);

#[derive(Default)]
pub(crate) struct ProgressTokens {
    next: AtomicU64,
    by_root: Mutex<HashMap<PathBuf, (NumberOrString, Instant)>>,
}

impl ProgressTokens {
    pub fn root_of(&self, token: &NumberOrString) -> Option<PathBuf> {
        let map = self.by_root.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .find(|(_, (t, _))| t == token)
            .map(|(r, _)| r.clone())
    }
}

pub(crate) fn status_value(ws: &Workspace, mcp_url: Option<String>) -> Value {
    match ws.status() {
        Ok(st) => json!({
            "state": st.state,
            "model": st.model,
            "roots": st.roots.iter().map(|r| json!({
                "root": r.project.root,
                "files": r.project.files_indexed,
                "pendingFiles": r.project.pending_files,
                "points": r.project.namespaces.iter().map(|n| n.points).sum::<u64>(),
                "memories": r.memories,
                "unsavedFiles": r.unsaved_files,
                "indexing": r.indexing,
                "lastError": r.last_error,
                "lastCommit": r.project.last_commit,
                "headCommit": r.project.head_commit,
            })).collect::<Vec<_>>(),
            "backends": st.backends,
            "mcp": mcp_url.map(|u| json!({"url": u})),
        }),
        Err(e) => json!({ "state": "error", "error": e.to_string(), "roots": [], "backends": [] }),
    }
}

fn root_name(root: &std::path::Path) -> String {
    root.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string())
}

async fn progress(shared: &Shared, token: NumberOrString, value: WorkDoneProgress) {
    shared
        .client
        .send_notification::<Progress>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}

/// Runs until the workspace is dropped.
pub(crate) fn spawn_forwarder(
    shared: Arc<Shared>,
    rx: crossbeam_channel::Receiver<WorkspaceEvent>,
) {
    let (tx, mut arx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("codemem-lsp-events".into())
        .spawn(move || {
            for e in rx.iter() {
                if tx.send(e).is_err() {
                    break;
                }
            }
        })
        .expect("spawn event thread");
    tokio::spawn(async move {
        while let Some(e) = arx.recv().await {
            handle(&shared, e).await;
        }
    });
}

async fn handle(shared: &Shared, e: WorkspaceEvent) {
    let wdp = shared.work_done_progress.load(Ordering::Relaxed);
    match e {
        WorkspaceEvent::IndexStarted { root } => {
            if wdp {
                let n = shared.progress.next.fetch_add(1, Ordering::Relaxed);
                let token = NumberOrString::String(format!("codemem/index/{n}"));
                if shared
                    .client
                    .create_work_done_progress(token.clone())
                    .await
                    .is_err()
                {
                    return;
                }
                shared
                    .progress
                    .by_root
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(root.clone(), (token.clone(), Instant::now() - REPORT_EVERY));
                progress(
                    shared,
                    token,
                    WorkDoneProgress::Begin(WorkDoneProgressBegin {
                        title: format!("codemem: indexing {}", root_name(&root)),
                        cancellable: Some(true),
                        message: Some("scanning files".into()),
                        percentage: Some(0),
                    }),
                )
                .await;
            }
            send_status(shared).await;
        }
        WorkspaceEvent::Index { root, event } => {
            if matches!(event, IndexEvent::Done { .. }) {
                return;
            }
            let p = event.progress();
            let (message, percentage, last) = (p.message, p.percent as u32, p.phase_end);
            let token = {
                let mut map = shared
                    .progress
                    .by_root
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match map.get_mut(&root) {
                    Some((t, at)) if last || at.elapsed() >= REPORT_EVERY => {
                        *at = Instant::now();
                        Some(t.clone())
                    }
                    _ => None,
                }
            };
            if let Some(token) = token {
                progress(
                    shared,
                    token,
                    WorkDoneProgress::Report(WorkDoneProgressReport {
                        cancellable: Some(true),
                        message: Some(message),
                        percentage: Some(percentage.min(100)),
                    }),
                )
                .await;
            }
        }
        WorkspaceEvent::IndexFinished { root, stats } => {
            let message = if stats.cancelled {
                "cancelled; run “Codemem: Reindex Workspace” to resume".to_string()
            } else {
                format!(
                    "{} files indexed, {} unchanged",
                    stats.files_indexed, stats.files_unchanged
                )
            };
            end(shared, &root, message).await;
            send_status(shared).await;
        }
        WorkspaceEvent::IndexFailed { root, error } => {
            end(shared, &root, format!("failed: {error}")).await;
            shared
                .client
                .show_message(
                    MessageType::ERROR,
                    format!("codemem: indexing {} failed: {error}", root.display()),
                )
                .await;
            send_status(shared).await;
        }
        WorkspaceEvent::MemoriesChanged { .. } => {
            if shared.lens_refresh.load(Ordering::Relaxed) {
                let _ = shared.client.code_lens_refresh().await;
            }
        }
        WorkspaceEvent::TeamUpdate { .. } => {
            // Another codemem process on the project indexed files: symbols and lenses moved.
            send_status(shared).await;
            if shared.lens_refresh.load(Ordering::Relaxed) {
                let _ = shared.client.code_lens_refresh().await;
            }
        }
        WorkspaceEvent::Overlay { .. } => {}
    }
}

async fn end(shared: &Shared, root: &std::path::Path, message: String) {
    let token = shared
        .progress
        .by_root
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(root)
        .map(|(t, _)| t);
    if let Some(token) = token {
        progress(
            shared,
            token,
            WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message),
            }),
        )
        .await;
    }
}

async fn send_status(shared: &Shared) {
    let Some(ws) = shared.ws.get().cloned() else {
        return;
    };
    let url = shared
        .mcp_url
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let status = tokio::task::spawn_blocking(move || status_value(&ws, url))
        .await
        .unwrap_or(Value::Null);
    shared
        .client
        .send_notification::<StatusNotification>(status)
        .await;
}
