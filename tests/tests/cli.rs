//! (g) Command-line errors and help, and (h) `codemem doctor`.
//! The "second index while one runs → exit 4" check lives in resume_after_kill.rs, which has a
//! long-running index to collide with.

mod common;

use std::path::Path;

use common::*;

fn tiny_project(root: &Path) {
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/shipping.rs"),
        "/// Shipping cost in cents for a parcel of `grams`, by weight band.\n\
         pub fn shipping_cost_cents(grams: u32) -> u32 {\n    match grams {\n        0..=500 => 450,\n        501..=2000 => 690,\n        _ => 690 + (grams - 2000).div_ceil(1000) * 150,\n    }\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Tiny\n\nShipping cost calculator used by the CLI tests.\n",
    )
    .unwrap();
}

#[test]
fn search_errors_and_exit_codes() {
    let home = Home::with_assets();

    // Never indexed → not ready, with the command that fixes it.
    let fresh = tempdir("never-indexed");
    tiny_project(fresh.path());
    let out = home.run(&["--root", s(fresh.path()), "search", "shipping cost"]);
    assert_eq!(out.code, Some(EXIT_NOT_READY), "{out}");
    assert!(
        out.stderr.contains("codemem index"),
        "tells to run `codemem index`:\n{out}"
    );
    assert!(out.stdout.trim().is_empty(), "{out}");
    let out = home.run(&["--root", s(fresh.path()), "status", "--json"]);
    assert_eq!(
        out.code,
        Some(EXIT_NOT_READY),
        "status of a never-indexed project:\n{out}"
    );
    assert!(out.stderr.contains("codemem index"), "{out}");

    // Bad input on an indexed project → usage errors (2), with a message and nothing on stdout.
    let dir = tempdir("tiny");
    let root = dir.path();
    tiny_project(root);
    let run = home.index(root);
    assert_eq!(run.stats.n("files_indexed"), 2, "{}", run.stats.0);
    let r = home.search(root, "shipping_cost_cents", &["-k", "1"]);
    assert_eq!(r.paths(), ["src/shipping.rs"], "{}", r.summary());

    let cases: &[(&[&str], &str)] = &[
        (&["search", ""], "empty query"),
        (&["search", "   "], "blank query"),
        (&["search", "shipping", "-k", "0"], "-k 0"),
        (
            &["search", "shipping", "-k", "100000"],
            "-k above the maximum",
        ),
        (&["search", "shipping", "-k", "many"], "-k not a number"),
        (
            &["search", "shipping", "--path", "src/[unclosed"],
            "invalid glob",
        ),
        (
            &["search", "shipping", "--ns", "Coding"],
            "namespace with capitals",
        ),
        (&["search", "shipping", "--ns", "nope"], "unknown namespace"),
        (
            &["search", "shipping", "--lang", "cobol"],
            "unknown language",
        ),
        (&["search", "shipping", "--mode", "fuzzy"], "unknown mode"),
        (&["search"], "missing query"),
        (&["frobnicate"], "unknown subcommand"),
        (&["index", "--bogus-flag"], "unknown flag"),
    ];
    for (args, what) in cases {
        let mut full = vec!["--root", s(root)];
        full.extend_from_slice(args);
        let out = home.run(&full);
        assert_eq!(out.code, Some(EXIT_USAGE), "{what}:\n{out}");
        assert!(
            !out.stderr.trim().is_empty(),
            "{what}: explains the error on stderr:\n{out}"
        );
        assert!(
            out.stdout.trim().is_empty(),
            "{what}: nothing on stdout:\n{out}"
        );
        assert!(!out.stderr.contains("panicked"), "{what}:\n{out}");
    }
    let query_too_long = "x".repeat(9 * 1024);
    let out = home.run(&["--root", s(root), "search", &query_too_long]);
    assert_eq!(out.code, Some(EXIT_USAGE), "9 KiB query:\n{}", out.stderr);

    // A root that does not exist, or is a file.
    let missing = root.join("does/not/exist");
    let out = home.run(&["index", s(&missing), "--json"]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");
    let out = home.run(&["--root", s(&root.join("README.md")), "search", "x"]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");

    // An invalid codemem.toml is reported, not ignored.
    let bad = tempdir("bad-config");
    tiny_project(bad.path());
    std::fs::write(
        bad.path().join("codemem.toml"),
        "[index]\nmax_file_bytes = \"lots\"\n",
    )
    .unwrap();
    let out = home.run(&["index", s(bad.path()), "--json"]);
    assert!(
        out.code == Some(EXIT_USAGE) || out.code == Some(EXIT_ERROR),
        "{out}"
    );
    assert!(out.stderr.contains("codemem.toml"), "{out}");
    assert!(
        out.stdout
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{out}"
    );
}

#[test]
fn index_json_stdout_is_only_json_lines() {
    let home = Home::with_assets();
    let dir = tempdir("json-lines");
    tiny_project(dir.path());
    // -v sends logs to stderr; stdout must stay machine-readable.
    let out = home.run(&["-v", "--root", s(dir.path()), "index", "--json"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(!out.stdout.trim().is_empty(), "{out}");
    for line in out.stdout.lines() {
        assert!(
            !line.trim().is_empty(),
            "no blank lines in the event stream:\n{out}"
        );
        parse_event(line);
    }
    let run = IndexRun::parse(&out);
    let kinds: Vec<&str> = run
        .events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        kinds.contains(&"lexical") && kinds.contains(&"embed"),
        "{kinds:?}"
    );
    // Without --json: a human summary, still nothing but the summary on stdout.
    std::fs::write(
        dir.path().join("src/extra.rs"),
        "pub fn parcel_volume_cm3(l: u32, w: u32, h: u32) -> u32 {\n    l * w * h\n}\n",
    )
    .unwrap();
    let out = home.run(&["--root", s(dir.path()), "index"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(out.stdout.contains("indexed"), "{out}");
    // search --json and status --json print one JSON document.
    let out = home.run(&["--root", s(dir.path()), "search", "parcel volume", "--json"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    let _ = out.json();
    let out = home.run(&["--root", s(dir.path()), "status", "--json"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    let status = out.json();
    for k in [
        "project",
        "root",
        "data_dir",
        "model",
        "namespaces",
        "files_indexed",
        "pending_files",
        "embedding_cache_entries",
        "last_indexed_at",
        "last_commit",
        "head_commit",
        "last_run",
    ] {
        assert!(status.get(k).is_some(), "status --json lacks {k}: {status}");
    }
    assert!(
        status["data_dir"]
            .as_str()
            .unwrap_or("")
            .starts_with(s(home.path())),
        "data lives under CODEMEM_HOME: {status}"
    );
    let out = home.run(&["--root", s(dir.path()), "status", "--config"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(
        out.stdout.contains("[index]") && out.stdout.contains("max_file_bytes"),
        "status --config prints TOML:\n{out}"
    );
}

#[test]
fn help_for_every_subcommand() {
    let home = Home::empty();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &[
                "index",
                "search",
                "status",
                "doctor",
                "--root",
                "Exit codes",
            ],
        ),
        (&["index", "--help"], &["--json", "PATH", "--root"]),
        (
            &["search", "--help"],
            &[
                "--ns", "--path", "--lang", "--limit", "-k", "--mode", "hybrid", "lexical",
                "dense", "--json",
            ],
        ),
        (&["status", "--help"], &["--json", "--config"]),
        (&["doctor", "--help"], &["--json"]),
        (&["help", "search"], &["--ns", "--mode"]),
    ];
    for (args, flags) in cases {
        let out = home.run(args);
        assert_eq!(out.code, Some(EXIT_OK), "{out}");
        for f in *flags {
            assert!(
                out.stdout.contains(f),
                "`codemem {}` does not mention {f}:\n{out}",
                args.join(" ")
            );
        }
    }
    let out = home.run(&["--version"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(out.stdout.starts_with("codemem "), "{out}");
}

#[test]
fn doctor_with_assets() {
    let home = Home::with_assets();
    let dir = tempdir("doctor");
    let out = home.run(&["--root", s(dir.path()), "doctor"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(
        out.stdout.to_lowercase().contains("all-minilm-l6-v2"),
        "mentions the model:\n{out}"
    );
    assert!(!out.stdout.contains("FAIL"), "{out}");
    let out = home.run(&["--root", s(dir.path()), "doctor", "--json"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    let v = out.json();
    assert_eq!(v["ok"], true, "{v}");
    let checks = v["checks"].as_array().expect("checks[]");
    assert!(checks.iter().all(|c| c["ok"] == true), "{v}");
    assert!(
        checks.iter().any(|c| c["name"] == "first-pass table"
            && c["detail"]
                .as_str()
                .unwrap_or("")
                .contains("embed.first_pass")),
        "says the first pass is off: {v}"
    );
    // Turned on, doctor builds (or finds) the table and names it.
    let mut c = home.command(&["--root", s(dir.path()), "doctor", "--json"]);
    c.env("CODEMEM_EMBED_FIRST_PASS", "1");
    let out = run(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    let v = out.json();
    assert!(
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["name"] == "first-pass table"
                && c["ok"] == true
                && c["detail"].as_str().unwrap_or("").contains("static-v1")),
        "reports the first-pass table: {v}"
    );
    assert!(
        checks.iter().any(|c| c["detail"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("minilm")),
        "{v}"
    );
}

#[test]
fn doctor_without_assets_says_how_to_fix() {
    let home = Home::empty();
    let dir = tempdir("doctor-missing");
    let out = home.run(&["--root", s(dir.path()), "doctor"]);
    assert_eq!(out.code, Some(EXIT_NOT_READY), "{out}");
    let fix: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("fix:"))
        .collect();
    assert!(!fix.is_empty(), "prints a `fix:` line:\n{out}");
    assert!(
        fix.iter().any(|l| l.contains("scripts/setup")),
        "the fix runs scripts/setup:\n{out}"
    );
    let out = home.run(&["--root", s(dir.path()), "doctor", "--json"]);
    assert_eq!(out.code, Some(EXIT_NOT_READY), "{out}");
    let v = out.json();
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["fix"].as_str().unwrap_or("").contains("scripts/setup")),
        "{v}"
    );

    // Without assets, index is "not ready" (3) and says what to run; lexical search of an
    // existing index is not what this checks.
    std::fs::write(dir.path().join("a.py"), "def f():\n    return 1\n").unwrap();
    let out = home.run(&["index", s(dir.path()), "--json"]);
    assert_eq!(out.code, Some(EXIT_NOT_READY), "{out}");
    assert!(out.stderr.contains("scripts/setup"), "{out}");
}
