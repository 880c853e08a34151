//! Issue 14 through the real binary: project data dirs are private to the user (0700, also
//! when they existed with a wider mode), FIFOs and links that are not followed are listed as
//! skipped with a reason, and a one-line minified bundle is skipped as minified instead of
//! becoming one chunk whose snippet is "…".

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn small_project(root: &Path) {
    std::fs::create_dir_all(root.join("web")).unwrap();
    std::fs::write(
        root.join("web/cart.js"),
        "// Cart totals for the checkout page.\nexport function cartTotalCents(items) {\n  return items.reduce((sum, it) => sum + it.priceCents * it.qty, 0);\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Shop\n\nA tiny shop used by the security tests.\n",
    )
    .unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn data_dirs(home: &Home) -> (PathBuf, PathBuf) {
    let projects = home.path().join("projects");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&projects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one project data dir: {dirs:?}");
    (projects, dirs[0].clone())
}

#[test]
fn project_data_dirs_are_private_and_fixed_on_open() {
    let home = Home::with_assets();
    let dir = tempdir("private");
    small_project(dir.path());
    home.index(dir.path());
    let (projects, project) = data_dirs(&home);
    assert!(
        project.join("kv.redb").is_file(),
        "the memories live here: {}",
        project.display()
    );
    for d in [&projects, &project] {
        assert_eq!(mode(d), 0o700, "{} is {:o}", d.display(), mode(d));
    }

    // Data dirs created by an older version (0755) are made private on the next open.
    for d in [&projects, &project] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    home.index(dir.path());
    for d in [&projects, &project] {
        assert_eq!(mode(d), 0o700, "{} is {:o}", d.display(), mode(d));
    }
}

#[test]
fn fifos_and_unfollowed_links_are_listed_as_skipped() {
    let home = Home::with_assets();
    let dir = tempdir("special");
    let root = dir.path();
    small_project(root);
    let st = Command::new("mkfifo")
        .arg(root.join("web/pipe.js"))
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo failed");
    std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
    std::os::unix::fs::symlink(root.join("web/cart.js"), root.join("web/cart_link.js")).unwrap();

    // JSON stats list them with a reason.
    let run = home.index(root);
    let reason = |p: &str| {
        run.stats
            .skipped_reason(p)
            .unwrap_or_else(|| panic!("{p} must be listed as skipped: {:?}", run.stats.skipped()))
    };
    assert!(
        reason("web/pipe.js").contains("FIFO"),
        "{}",
        reason("web/pipe.js")
    );
    assert!(
        reason("etclink").contains("symbolic link not followed"),
        "{}",
        reason("etclink")
    );
    assert!(
        reason("web/cart_link.js").contains("symbolic link not followed"),
        "{}",
        reason("web/cart_link.js")
    );
    assert!(
        run.stats.skipped_reason("web/cart.js").is_none(),
        "{:?}",
        run.stats.skipped()
    );

    // So does the human output of `codemem index -v`.
    let out = home.run(&["--root", s(root), "-v", "index"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(
        out.stdout
            .contains("skipped web/pipe.js: not a regular file (FIFO)"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("skipped etclink: symbolic link not followed"),
        "{out}"
    );
}

#[test]
fn a_one_line_minified_bundle_is_skipped_as_minified() {
    let home = Home::with_assets();
    let dir = tempdir("minified");
    let root = dir.path();
    small_project(root);
    // ~889 KB on one line, named like ordinary source (no `.min.` in the name).
    let mut bundle = String::from("!function(){\"use strict\";var zebraQuokkaBundleMarker=1;");
    let mut i = 0;
    while bundle.len() < 889 * 1024 {
        bundle.push_str(&format!(
            "function f{i}(a,b){{return a*{i}+b}}var v{i}=f{i}({i},1);"
        ));
        i += 1;
    }
    bundle.push_str("}();");
    assert!(!bundle.contains('\n'));
    std::fs::write(root.join("web/bundle.js"), &bundle).unwrap();

    let run = home.index(root);
    let reason = run
        .stats
        .skipped_reason("web/bundle.js")
        .unwrap_or_else(|| panic!("bundle.js must be skipped: {}", run.stats.0));
    assert!(reason.starts_with("minified"), "{reason}");
    let r = home.search(
        root,
        "zebraQuokkaBundleMarker",
        &["-k", "5", "--mode", "lexical"],
    );
    assert!(
        r.rank_of(&["web/bundle.js"]).is_none(),
        "the bundle is not indexed: {}",
        r.summary()
    );
    assert!(
        r.hits().iter().all(|h| h["snippet"].as_str() != Some("…")),
        "{}",
        r.summary()
    );
    // Ordinary code next to it still is.
    let r = home.search(root, "cartTotalCents", &["-k", "3", "--mode", "lexical"]);
    assert_eq!(
        r.paths().first().map(String::as_str),
        Some("web/cart.js"),
        "{}",
        r.summary()
    );
}
