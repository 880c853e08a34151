//! The long-running `Workspace` in process (deterministic `HashEmbedder`): background
//! indexing, unsaved-buffer overlays, memories across a reopen, symbols, the path sandbox.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codemem_core::Query;
use codemem_embed::HashEmbedder;
use codemem_service::{
    IndexEvent, NewMemory, Position, RecallQuery, TextChange, Workspace, WorkspaceOptions,
};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn tree(root: &Path) {
    write(root, "src/limiter.rs", "pub struct RateLimiter {\n    tokens: u32,\n}\n\nimpl RateLimiter {\n    pub fn try_acquire(&mut self) -> bool {\n        self.tokens > 0\n    }\n}\n");
    write(root, "src/parse_config.rs", "pub fn parse_config(text: &str) -> Vec<String> {\n    text.lines().map(str::to_string).collect()\n}\n");
    write(
        root,
        "README.md",
        "# Demo\n\nRate limiting with token buckets.\n",
    );
}

fn workspace(home: &Path, watch: bool) -> Arc<Workspace> {
    Workspace::new(WorkspaceOptions {
        home: home.to_path_buf(),
        embedder: Some(Arc::new(HashEmbedder::new(384))),
        purpose: "test".into(),
        config: None,
        auto_index: true,
        watch,
        lock_wait: Duration::from_secs(5),
    })
}

fn reindex(ws: &Workspace) {
    ws.reindex(None, &|_e: IndexEvent| {}, &AtomicBool::new(false))
        .unwrap();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn paths(ws: &Workspace, q: &str) -> Vec<(String, bool)> {
    ws.search(&Query::new(q))
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.path, h.unsaved))
        .collect()
}

#[test]
fn unsaved_buffers_are_searchable_and_reconciled() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let ws = workspace(home.path(), false);
    let root = ws.add_root(dir.path()).unwrap();
    reindex(&ws);
    let file: PathBuf = root.join("src/limiter.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    ws.open_document(&file, 1, text.clone()).unwrap();
    // Type a new function at the end, without saving.
    let end = Position {
        line: text.lines().count() as u32,
        character: 0,
    };
    let added = "\npub fn refill_bucket_quickly(l: &mut RateLimiter) {\n    l.tokens = 100;\n}\n";
    ws.change_document(
        &file,
        2,
        vec![TextChange {
            range: Some((end, end)),
            text: added.into(),
        }],
    )
    .unwrap();
    wait_until("the unsaved edit to be searchable", || {
        paths(&ws, "refill_bucket_quickly").first() == Some(&("src/limiter.rs".into(), true))
    });
    let syms = ws.find_symbol("refill_bucket_quickly", None, 5).unwrap();
    assert!(
        syms.first().is_some_and(|s| s.exact && s.unsaved),
        "{syms:?}"
    );
    // The disk version of the file is hidden while the buffer is open.
    assert!(paths(&ws, "try_acquire")
        .iter()
        .all(|(p, u)| p != "src/limiter.rs" || *u));

    // Save: the file is indexed from disk and the overlay goes away.
    std::fs::write(&file, ws.document_text(&file).unwrap()).unwrap();
    ws.save_document(&file);
    wait_until("the saved file to replace the overlay", || {
        paths(&ws, "refill_bucket_quickly").first() == Some(&("src/limiter.rs".into(), false))
    });

    // Edit again and close without saving: the unsaved code disappears.
    ws.change_document(
        &file,
        3,
        vec![TextChange {
            range: None,
            text: "pub fn only_in_buffer_xyz() {}\n".into(),
        }],
    )
    .unwrap();
    wait_until("the second edit", || {
        paths(&ws, "only_in_buffer_xyz").iter().any(|(_, u)| *u)
    });
    ws.close_document(&file);
    let mut q = Query::new("only_in_buffer_xyz");
    q.mode = codemem_core::SearchMode::Lexical;
    let hits = ws.search(&q).unwrap().hits;
    assert!(
        hits.iter()
            .all(|h| !h.unsaved && h.path != "src/limiter.rs"),
        "closed buffer still searchable: {hits:?}"
    );
    assert!(
        ws.change_document(&file, 4, vec![]).is_err(),
        "a closed document cannot be edited"
    );
}

#[test]
fn memories_survive_reopen_and_are_recalled() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let id = {
        let ws = workspace(home.path(), false);
        ws.add_root(dir.path()).unwrap();
        reindex(&ws);
        let m = ws
            .remember(NewMemory {
                text: "We cap the token bucket at 100 because the upstream API allows 100 requests per second".into(),
                namespace: "shared".into(),
                tags: vec!["decision".into()],
                path: Some("src/limiter.rs".into()),
                symbol: Some("RateLimiter".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(m.id.starts_with("mem_"));
        assert!(ws
            .remember(NewMemory {
                text: "x".into(),
                namespace: "nope".into(),
                ..Default::default()
            })
            .unwrap_err()
            .is_invalid_input());
        assert!(ws
            .remember(NewMemory {
                text: " ".into(),
                namespace: "shared".into(),
                ..Default::default()
            })
            .unwrap_err()
            .is_invalid_input());
        assert!(ws
            .remember(NewMemory {
                text: "x".into(),
                namespace: "shared".into(),
                path: Some("../etc/passwd".into()),
                ..Default::default()
            })
            .unwrap_err()
            .is_invalid_input());
        m.id
    };
    // A new process (here: a new workspace) finds it again.
    let ws = workspace(home.path(), false);
    let root = ws.add_root(dir.path()).unwrap();
    let r = ws
        .recall(&RecallQuery {
            text: "why is the bucket capped at 100".into(),
            namespaces: vec![],
            tags: vec![],
            k: 5,
            max_tokens: None,
        })
        .unwrap();
    assert_eq!(
        r.hits
            .first()
            .and_then(|h| h.memory.as_ref())
            .map(|m| m.id.as_str()),
        Some(id.as_str()),
        "{r:?}"
    );
    let tagged = ws
        .recall(&RecallQuery {
            text: "bucket".into(),
            namespaces: vec![],
            tags: vec!["other".into()],
            k: 5,
            max_tokens: None,
        })
        .unwrap();
    assert!(tagged.hits.is_empty(), "tag filter: {tagged:?}");
    assert_eq!(ws.memories_for(&root.join("src/limiter.rs")).len(), 1);
    // Memories are not code: search_code leaves them out.
    assert!(ws
        .search(&Query::new("upstream API allows 100 requests"))
        .unwrap()
        .hits
        .iter()
        .all(|h| h.memory_id.is_none()));
    assert!(ws.forget(&id).unwrap());
    assert!(!ws.forget(&id).unwrap());
    let r = ws
        .recall(&RecallQuery {
            text: "why is the bucket capped at 100".into(),
            namespaces: vec![],
            tags: vec![],
            k: 5,
            max_tokens: None,
        })
        .unwrap();
    assert!(r.hits.iter().all(|h| h.memory.is_none()));
}

#[test]
fn symbols_exact_then_fuzzy_and_sandbox() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let ws = workspace(home.path(), false);
    ws.add_root(dir.path()).unwrap();
    reindex(&ws);
    let names = |q: &str| {
        ws.find_symbol(q, None, 10)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("parse_config").first().map(String::as_str),
        Some("parse_config")
    );
    assert_eq!(
        names("ParseConfig").first().map(String::as_str),
        Some("parse_config"),
        "case and separators"
    );
    assert!(
        names("RateLim").contains(&"RateLimiter".to_string()),
        "prefix"
    );
    assert!(ws
        .find_symbol("x", Some("gizmo"), 5)
        .unwrap_err()
        .is_invalid_input());
    assert!(ws.resolve_path("src/limiter.rs").is_ok());
    for bad in ["../outside.rs", "/etc/passwd", "src/../../x"] {
        assert!(
            ws.resolve_path(bad).unwrap_err().is_invalid_input(),
            "{bad}"
        );
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
        assert!(
            ws.resolve_path("escape/passwd")
                .unwrap_err()
                .is_invalid_input(),
            "symlink escape"
        );
    }
}

#[test]
fn watcher_turns_a_burst_of_external_changes_into_one_run() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let ws = workspace(home.path(), true);
    ws.add_root(dir.path()).unwrap();
    reindex(&ws);
    let events = ws.subscribe();
    for i in 0..200 {
        write(
            dir.path(),
            &format!("gen/mod_{i}.rs"),
            &format!("pub fn generated_function_{i}() {{}}\n"),
        );
    }
    wait_until("the burst to be indexed", || {
        paths(&ws, "generated_function_199")
            .first()
            .is_some_and(|(p, _)| p == "gen/mod_199.rs")
    });
    std::thread::sleep(Duration::from_millis(800));
    let started = events
        .try_iter()
        .filter(|e| matches!(e, codemem_service::WorkspaceEvent::IndexStarted { .. }))
        .count();
    assert!(
        (1..=3).contains(&started),
        "{started} index runs for one burst"
    );
}

/// Fails its first `fails` batches, then embeds like `HashEmbedder`.
struct FlakyEmbedder {
    inner: HashEmbedder,
    fails: std::sync::atomic::AtomicUsize,
}

impl codemem_embed::Embedder for FlakyEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed(&self, texts: &[String]) -> codemem_embed::Result<Vec<Vec<f32>>> {
        use std::sync::atomic::Ordering;
        if self
            .fails
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(codemem_embed::EmbedError::Inference(
                "GetElementType is not implemented (test)".into(),
            ));
        }
        self.inner.embed(texts)
    }
}

#[test]
fn chunks_the_model_failed_on_are_embedded_later_without_a_new_request() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let ws = Workspace::new(WorkspaceOptions {
        embedder: Some(Arc::new(FlakyEmbedder {
            inner: HashEmbedder::new(384),
            fails: 1.into(),
        })),
        ..options(home.path())
    });
    ws.add_root(dir.path()).unwrap();
    let first = ws.subscribe();
    // The first run leaves chunks pending (the model failed on a batch)...
    let stats = loop {
        match first
            .recv_timeout(Duration::from_secs(20))
            .expect("an index run finishes")
        {
            codemem_service::WorkspaceEvent::IndexFinished { stats, .. } => break stats,
            _ => continue,
        }
    };
    assert!(stats.embed_errors > 0, "{stats:?}");
    // ... and a retry the workspace schedules by itself (after 5 s) embeds them.
    let t = Instant::now();
    loop {
        let st = ws.status().unwrap();
        if st
            .roots
            .iter()
            .all(|r| r.project.pending_files == 0 && !r.indexing)
        {
            break;
        }
        let last = st
            .roots
            .iter()
            .map(|r| {
                (
                    r.project.pending_files,
                    r.indexing,
                    r.project.last_run.clone(),
                )
            })
            .collect::<Vec<_>>();
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no automatic retry embedded the pending files: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sessions_on_one_hub_share_roots_buffers_and_memories_but_hear_only_their_roots() {
    let home = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tree(a_dir.path());
    write(
        b_dir.path(),
        "lib/other.py",
        "def other_project_only():\n    return 1\n",
    );
    let hub = codemem_service::Hub::new(options(home.path()), true);
    let editor = Workspace::attach(hub.clone(), None, false);
    let agent = Workspace::attach(hub.clone(), None, false);
    let elsewhere = Workspace::attach(hub.clone(), None, false);
    let root = editor.add_root(a_dir.path()).unwrap();
    assert_eq!(
        agent.add_root(a_dir.path()).unwrap(),
        root,
        "the second session joins the open root"
    );
    elsewhere.add_root(b_dir.path()).unwrap();
    assert_eq!(
        hub.roots().len(),
        2,
        "one Project per root, whoever opened it"
    );
    reindex(&editor);
    let heard = elsewhere.subscribe();

    // The editor's unsaved buffer is searchable by the agent.
    let f = root.join("src/ledger.rs");
    editor
        .open_document(&f, 1, "pub fn reconcile_quokka_ledger() {}\n".into())
        .unwrap();
    wait_until("the agent finds the editor's unsaved buffer", || {
        paths(&agent, "reconcile_quokka_ledger")
            .iter()
            .any(|(p, unsaved)| p == "src/ledger.rs" && *unsaved)
    });
    // The agent's memory is the editor's.
    agent
        .remember(NewMemory {
            text: "note".into(),
            namespace: "shared".into(),
            tags: vec![],
            path: Some("src/limiter.rs".into()),
            symbol: None,
            line: None,
            author: None,
        })
        .unwrap();
    assert_eq!(editor.memories_for(&root.join("src/limiter.rs")).len(), 1);
    // Another project's session hears nothing of this one, and searches only its own root.
    assert!(
        heard.try_iter().all(|e| e.root() != root),
        "events of other roots leak to a session"
    );
    let b_root = b_dir.path().canonicalize().unwrap().display().to_string();
    let hits = elsewhere
        .search(&Query::new("reconcile_quokka_ledger"))
        .unwrap()
        .hits;
    assert!(
        hits.iter()
            .all(|h| h.root.as_deref() == Some(b_root.as_str())),
        "{hits:?}"
    );
    // A session leaving keeps the root open for the others (the daemon keeps it warm).
    drop(agent);
    assert!(editor.roots().contains(&root) && hub.roots().contains(&root));
}

fn options(home: &Path) -> WorkspaceOptions {
    WorkspaceOptions {
        home: home.to_path_buf(),
        embedder: Some(Arc::new(HashEmbedder::new(384))),
        purpose: "test".into(),
        config: None,
        auto_index: true,
        watch: false,
        lock_wait: Duration::from_secs(5),
    }
}

/// get_context puts what the best hit calls (defined elsewhere) and who calls it right after
/// it, ahead of lower-ranked hits.
#[test]
fn context_adds_callees_and_callers_of_the_best_hits() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "billing/invoice.py",
        "from billing.rounding import round_half_even\n\n\ndef invoice_total_with_tax(lines, tax_rate):\n    \"\"\"Invoice total with tax.\"\"\"\n    subtotal = sum(lines)\n    return round_half_even(subtotal * (1 + tax_rate))\n",
    );
    write(
        dir.path(),
        "billing/rounding.py",
        "def round_half_even(x):\n    q = int(x)\n    return q if x - q < 0.5 else q + 1\n",
    );
    write(
        dir.path(),
        "shop/checkout.py",
        "from billing.invoice import invoice_total_with_tax\n\n\ndef checkout(cart):\n    return invoice_total_with_tax(cart.lines, 0.2)\n",
    );
    // Lower-ranked hits that say more of the question's words than the callee and the caller.
    for i in 0..12 {
        write(
            dir.path(),
            &format!("reports/report_{i}.py"),
            &format!("def report_{i}(invoice):\n    \"\"\"Invoice total with tax, for report {i}.\"\"\"\n    return invoice.total_with_tax\n"),
        );
    }
    let ws = workspace(home.path(), false);
    ws.add_root(dir.path()).unwrap();
    reindex(&ws);
    let b = ws
        .context(&codemem_service::ContextQuery {
            text: "invoice total with tax".into(),
            budget_tokens: Some(400),
            ..Default::default()
        })
        .unwrap();
    let files: Vec<&str> = b.pieces.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(files.first(), Some(&"billing/invoice.py"), "{files:?}");
    assert!(
        files.contains(&"billing/rounding.py"),
        "the callee's definition: {files:?}"
    );
    assert!(files.contains(&"shop/checkout.py"), "the caller: {files:?}");
    assert!(b.tokens_used <= 400);
    assert!(
        b.omitted.iter().any(|o| o.path.starts_with("reports/")),
        "{:?}",
        b.omitted
    );
}
