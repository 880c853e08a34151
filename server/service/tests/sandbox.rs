//! The path sandbox and position checks of `Workspace` (issue 14): symlinks whose tail does
//! not exist yet, positions checked against the open buffer or the index (never by reading
//! the file), special files and paths outside the roots never read.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use codemem_embed::HashEmbedder;
use codemem_service::{IndexEvent, NewMemory, Position, Workspace, WorkspaceOptions};

fn workspace(home: &Path) -> Arc<Workspace> {
    Workspace::new(WorkspaceOptions {
        home: home.to_path_buf(),
        embedder: Some(Arc::new(HashEmbedder::new(384))),
        purpose: "test".into(),
        config: None,
        auto_index: false,
        watch: false,
        lock_wait: Duration::from_secs(5),
    })
}

fn reindex(ws: &Workspace) {
    ws.reindex(None, &|_e: IndexEvent| {}, &AtomicBool::new(false))
        .unwrap();
}

fn memory_at(path: &str) -> NewMemory {
    NewMemory {
        text: "a note".into(),
        namespace: "shared".into(),
        tags: vec![],
        path: Some(path.into()),
        symbol: None,
        line: None,
        author: None,
    }
}

fn pos(line: u32) -> Position {
    Position { line, character: 0 }
}

#[cfg(unix)]
#[test]
fn a_link_out_of_the_root_is_refused_even_when_its_tail_does_not_exist_yet() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/a.rs"), "fn a() {}\n").unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etclink")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("outlink")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("missing"), dir.path().join("dangling"))
        .unwrap();
    std::os::unix::fs::symlink(dir.path().join("src"), dir.path().join("srclink")).unwrap();
    let ws = workspace(home.path());
    ws.add_root(dir.path()).unwrap();
    for bad in [
        "etclink/not-yet-there",
        "etclink/a/b/c",
        "outlink/new.rs",
        "dangling",
        "dangling/x.rs",
    ] {
        let err = ws.resolve_path(bad).unwrap_err();
        assert!(err.is_invalid_input(), "{bad}: {err}");
        let err = ws.remember(memory_at(bad)).unwrap_err();
        assert!(err.is_invalid_input(), "remember {bad}: {err}");
        let abs = dir
            .path()
            .canonicalize()
            .unwrap()
            .join(bad)
            .display()
            .to_string();
        assert!(
            ws.resolve_path(&abs).unwrap_err().is_invalid_input(),
            "{abs}"
        );
    }
    // Inside the root: new files, new dirs, and links that stay inside are fine.
    for good in [
        "src/a.rs",
        "src/new.rs",
        "new/dir/file.rs",
        "srclink/a.rs",
        "srclink/new.rs",
    ] {
        assert!(ws.resolve_path(good).is_ok(), "{good}");
    }
    assert!(ws.remember(memory_at("src/not-yet.rs")).is_ok());
}

#[cfg(unix)]
#[test]
fn positions_are_checked_against_the_buffer_or_the_index_never_the_disk() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("a.rs"), "fn a() {}\nfn b() {}\n").unwrap(); // 3 lines as LSP counts
    let st = std::process::Command::new("mkfifo")
        .arg(root.join("pipe.rs"))
        .status()
        .unwrap();
    assert!(st.success());
    let ws = workspace(home.path());
    ws.add_root(&root).unwrap();
    reindex(&ws);

    // Indexed: the manifest's line count.
    ws.check_position(&root.join("a.rs"), pos(2)).unwrap();
    let err = ws.check_position(&root.join("a.rs"), pos(3)).unwrap_err();
    assert!(
        err.is_invalid_input() && err.to_string().contains("3 lines"),
        "{err}"
    );
    // The file grew on disk but is neither open nor re-indexed: the index answers.
    std::fs::write(root.join("a.rs"), "x\n".repeat(100)).unwrap();
    assert!(ws.check_position(&root.join("a.rs"), pos(50)).is_err());
    // Open: the buffer answers.
    ws.open_document(&root.join("a.rs"), 1, "x\n".repeat(100))
        .unwrap();
    ws.check_position(&root.join("a.rs"), pos(50)).unwrap();

    // A FIFO is never indexed nor opened: a prompt error (a read would block forever).
    let err = ws
        .check_position(&root.join("pipe.rs"), pos(0))
        .unwrap_err();
    assert!(
        err.is_invalid_input() && err.to_string().contains("neither open nor indexed"),
        "{err}"
    );
    assert!(ws.check_document(&root.join("pipe.rs")).is_err());
    assert!(ws
        .similar(&root.join("pipe.rs"), 1, 1, 5)
        .unwrap_err()
        .is_invalid_input());

    // Outside the roots (also through `..`): refused without reading.
    for p in [
        Path::new("/etc/passwd").to_path_buf(),
        Path::new("/dev/zero").to_path_buf(),
        root.join("../x.rs"),
    ] {
        let err = ws.check_position(&p, pos(9999)).unwrap_err();
        assert!(
            err.to_string().contains("outside the workspace"),
            "{}: {err}",
            p.display()
        );
        assert!(!err.to_string().contains("past the end"), "{err}");
        assert!(ws.check_document(&p).is_err());
        assert!(ws.similar(&p, 1, 1, 5).is_err());
    }
}
