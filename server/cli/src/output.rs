//! Rendering for people (progress bars, aligned text) and for scripts (JSON).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

use codemem_core::SearchMode;
use codemem_embed::assets;
use codemem_service::{IndexEvent, IndexStats, ProjectStatus, SearchResponse};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Index progress: a bar on an interactive stderr, JSON lines on stdout with --json, else quiet.
pub struct Progress {
    json: bool,
    bar: Mutex<Option<ProgressBar>>,
    interactive: bool,
}

impl Progress {
    pub fn new(json: bool) -> Progress {
        Progress {
            json,
            bar: Mutex::new(None),
            interactive: !json && std::io::stderr().is_terminal(),
        }
    }

    pub fn event(&self, e: IndexEvent) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&e) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        if !self.interactive {
            return;
        }
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            IndexEvent::Scanned {
                files,
                changed,
                deleted,
            } => {
                eprintln!("{files} files in the workspace: {changed} to index, {deleted} removed");
            }
            IndexEvent::Lexical { done, total } => self.set(&mut bar, "lexical", done, total),
            IndexEvent::Embed { done, total } => self.set(&mut bar, "embedding", done, total),
            IndexEvent::Done { .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
        }
    }

    fn set(&self, bar: &mut Option<ProgressBar>, phase: &str, done: usize, total: usize) {
        let needs_new = bar.as_ref().is_none_or(|b| b.message() != phase);
        if needs_new {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(phase.to_string());
            *bar = Some(b);
        }
        if let Some(b) = bar {
            b.set_position(done as u64);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

pub fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub fn print_index_summary(root: &Path, id: &str, s: &IndexStats) {
    let secs = s.elapsed_ms as f64 / 1000.0;
    if s.cancelled {
        eprintln!("cancelled after {secs:.1}s; run `codemem index` again to resume");
    }
    println!(
        "indexed {} ({}): {} files scanned, {} changed, {} unchanged, {} removed, {} skipped",
        root.display(),
        id,
        s.files_scanned,
        s.files_indexed,
        s.files_unchanged,
        s.files_deleted,
        s.files_skipped
    );
    println!(
        "chunks: {} written, {} embedded, {} from cache; {} points in the index; {secs:.1}s ({:.1}s in the model)",
        s.chunks_upserted,
        s.chunks_embedded,
        s.cache_hits,
        s.points_total,
        s.embed_ms as f64 / 1000.0
    );
    for sk in s.skipped.iter().take(10) {
        println!(
            "  skipped {}: {}",
            if sk.path.is_empty() { "?" } else { &sk.path },
            sk.reason
        );
    }
    if s.embed_errors > 0 {
        eprintln!("warning: {} chunks could not be embedded; they are searchable lexically and will be retried", s.embed_errors);
    }
}

pub fn print_hits(r: &SearchResponse) {
    let mut out = std::io::stdout().lock();
    if r.hits.is_empty() {
        let _ = writeln!(out, "no results");
    }
    for h in &r.hits {
        let sym = h
            .symbol
            .as_deref()
            .map(|s| format!("  {} {s}", h.kind.as_str()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}:{}-{}{sym}  [{}, {}]  {:.4}{}",
            h.path,
            h.start_line,
            h.end_line,
            h.namespace,
            h.language,
            h.score,
            if h.unsaved { "  (unsaved)" } else { "" }
        );
        if let Some(e) = &h.explain {
            let _ = writeln!(out, "    why: {}", e.summary());
        }
        for line in h.snippet.lines().filter(|l| !l.trim().is_empty()).take(3) {
            let line: String = line.chars().take(160).collect();
            let _ = writeln!(out, "    {line}");
        }
    }
    let f = &r.freshness;
    let mut notes = vec![format!("{} files indexed", f.indexed_files)];
    if f.pending_files > 0 {
        notes.push(format!(
            "{} awaiting embeddings (found lexically only)",
            f.pending_files
        ));
    }
    if f.stale {
        notes.push("HEAD moved since the last index: run `codemem index`".into());
    }
    if !r.dense_available && r.mode != SearchMode::Lexical {
        notes.push("lexical only: the model is not installed (run scripts/setup)".into());
    }
    eprintln!("{} ({:.1} ms)", notes.join("; "), r.took_ms);
}

pub fn print_daemon_status(v: &serde_json::Value) {
    let s = |k: &str| {
        v.get(k)
            .map(|x| x.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    println!(
        "daemon    pid {}, codemem {}, up {} s",
        s("pid"),
        s("version"),
        s("uptime_secs")
    );
    println!("clients   {}", s("clients"));
    println!("memory    {} MiB", s("rss_mib"));
    println!("model     {}", s("model"));
    if let Some(url) = v.get("mcp_http").and_then(|u| u.as_str()) {
        println!("mcp http  {url}");
    }
    for p in v
        .get("projects")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        println!(
            "project   {} ({} sessions)",
            p["root"].as_str().unwrap_or("?"),
            p["sessions"]
        );
    }
}

pub fn print_status(s: &ProjectStatus) {
    println!("project   {}", s.project);
    println!("root      {}", s.root);
    println!("data dir  {}", s.data_dir);
    println!("model     {}", s.model.as_deref().unwrap_or("(none)"));
    println!(
        "files     {} indexed, {} awaiting embeddings",
        s.files_indexed, s.pending_files
    );
    println!("cache     {} embeddings", s.embedding_cache_entries);
    for ns in &s.namespaces {
        println!(
            "  {:<14} {:>6} files {:>8} chunks",
            ns.name, ns.files, ns.points
        );
    }
    if let Some(c) = &s.last_commit {
        let head = s.head_commit.as_deref().unwrap_or("?");
        let note = if head != c {
            "  (HEAD has moved: run `codemem index`)"
        } else {
            ""
        };
        println!("commit    {}{note}", &c[..c.len().min(12)]);
    }
    for b in &s.backends {
        println!(
            "backend   {} ({}): {}{} — {}",
            b.name,
            b.kind,
            if b.healthy { "healthy" } else { "UNHEALTHY" },
            b.breaker
                .as_deref()
                .map(|s| format!(", breaker {s}"))
                .unwrap_or_default(),
            b.detail
        );
    }
    if let Some(r) = &s.last_run {
        println!(
            "last run  {} files indexed, {} chunks embedded, {} cache hits, {:.1}s{}",
            r.files_indexed,
            r.chunks_embedded,
            r.cache_hits,
            r.elapsed_ms as f64 / 1000.0,
            if r.cancelled {
                " (interrupted: run `codemem index` to finish)"
            } else {
                ""
            }
        );
    }
}

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

/// Runs every check; returns the exit code (0 all good, 3 something to fix).
pub fn doctor(home: &Path, root: &Path, json: bool) -> u8 {
    let mut checks: Vec<Check> = assets::check(home, true)
        .into_iter()
        .map(|c| Check {
            name: c.name,
            ok: c.ok,
            detail: c.detail,
            fix: c.fix,
        })
        .collect();
    let assets_ok = checks.iter().all(|c| c.ok);
    let cfg = codemem_core::Config::load(root);
    checks.push(match &cfg {
        Ok(_) => Check {
            name: "configuration".into(),
            ok: true,
            detail: format!(
                "{} is valid (or absent)",
                root.join("codemem.toml").display()
            ),
            fix: None,
        },
        Err(e) => Check {
            name: "configuration".into(),
            ok: false,
            detail: e.to_string(),
            fix: Some(format!("edit {}", root.join("codemem.toml").display())),
        },
    });
    if assets_ok {
        let cfg = cfg.as_ref().cloned().unwrap_or_default();
        let loaded = crate::load_embedder(home, &cfg);
        let mut first_pass = (!cfg.embed.first_pass).then(|| Check {
            name: "first-pass table".into(),
            ok: true,
            detail: "off (embed.first_pass = false, the default); search waits for the model"
                .into(),
            fix: None,
        });
        if let (Ok(e), true) = (&loaded, cfg.embed.first_pass) {
            // load_embedder built the table if it was missing.
            let table = codemem_embed::static_model::table_path(&assets::AssetPaths::in_home(home));
            first_pass = Some(match e.first_pass() {
                Some(fp) => Check {
                    name: "first-pass table".into(),
                    ok: true,
                    detail: format!("{} at {}", fp.model_id(), table.display()),
                    fix: None,
                },
                None => Check {
                    name: "first-pass table".into(),
                    ok: false,
                    detail: format!(
                        "could not be built at {} (see the warning above); search waits for the model",
                        table.display()
                    ),
                    fix: Some(assets::fix_command(home, true)),
                },
            });
        }
        checks.push(match loaded {
            Ok(e) => match e.embed(&["codemem doctor".to_string()]) {
                Ok(v) => Check {
                    name: "embedding model".into(),
                    ok: true,
                    detail: format!(
                        "{} loads and embeds ({} dimensions)",
                        e.model_id(),
                        v.first().map_or(0, |v| v.len())
                    ),
                    fix: None,
                },
                Err(err) => Check {
                    name: "embedding model".into(),
                    ok: false,
                    detail: err.to_string(),
                    fix: Some(assets::fix_command(home, true)),
                },
            },
            Err(f) => Check {
                name: "embedding model".into(),
                ok: false,
                detail: format!("{:#}", f.err),
                fix: Some(assets::fix_command(home, true)),
            },
        });
        checks.extend(first_pass);
    }
    if let Ok(cfg) = &cfg {
        for b in codemem_service::probe_backends(cfg) {
            checks.push(Check {
                name: b.name,
                ok: b.ok,
                detail: b.detail,
                fix: b.fix,
            });
        }
    }
    let probe = home.join("projects");
    let writable = std::fs::create_dir_all(&probe).and_then(|_| {
        let p = probe.join(".doctor-probe");
        std::fs::write(&p, b"ok")?;
        std::fs::remove_file(&p)
    });
    checks.push(match writable {
        Ok(()) => Check { name: "data dir".into(), ok: true, detail: format!("{} is writable", probe.display()), fix: None },
        Err(e) => Check {
            name: "data dir".into(),
            ok: false,
            detail: format!("{}: {e}", probe.display()),
            fix: Some("set CODEMEM_HOME to a writable directory, e.g. `export CODEMEM_HOME=$HOME/.codemem`".into()),
        },
    });
    let indexed = codemem_service::paths::project_data_dir(
        home,
        &root.canonicalize().unwrap_or(root.to_path_buf()),
    )
    .join("kv.redb")
    .exists();
    checks.push(Check {
        name: "project index".into(),
        ok: true,
        detail: if indexed {
            format!("{} is indexed", root.display())
        } else {
            format!("{} is not indexed yet (optional)", root.display())
        },
        fix: (!indexed).then(|| format!("codemem index {}", root.display())),
    });
    checks.push(
        match crate::daemon::attach(
            home,
            "control",
            None,
            Some(crate::daemon::Request::DaemonStatus),
            false,
        ) {
            Ok(crate::daemon::Attach::Attached(conn)) => {
                match crate::daemon::request(conn, &mut |_| {}) {
                    Ok(v) => Check {
                        name: "daemon".into(),
                        ok: true,
                        detail: format!(
                            "pid {}, codemem {}, {} clients, {} MiB",
                            v["pid"],
                            v["version"].as_str().unwrap_or("?"),
                            v["clients"],
                            v["rss_mib"]
                        ),
                        fix: None,
                    },
                    Err(f) => Check {
                        name: "daemon".into(),
                        ok: false,
                        detail: format!("{:#}", f.err),
                        fix: Some("codemem daemon stop".into()),
                    },
                }
            }
            Ok(crate::daemon::Attach::OtherVersion(msg)) => Check {
                name: "daemon".into(),
                ok: true,
                detail: msg,
                fix: None,
            },
            Ok(crate::daemon::Attach::NoDaemon) => Check {
                name: "daemon".into(),
                ok: true,
                detail: "not running (the first editor or agent session starts it)".into(),
                fix: None,
            },
            Err(e) => Check {
                name: "daemon".into(),
                ok: false,
                detail: format!("{e:#}"),
                fix: Some(format!(
                    "codemem daemon stop, then see {}",
                    crate::daemon::DaemonPaths::new(home).log.display()
                )),
            },
        },
    );
    let all_ok = checks.iter().all(|c| c.ok);
    if json {
        let _ = print_json(&serde_json::json!({ "ok": all_ok, "checks": checks }));
    } else {
        for c in &checks {
            println!(
                "{} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
            if let (false, Some(fix)) = (c.ok, &c.fix) {
                println!("     fix: {fix}");
            } else if let (true, Some(hint)) = (c.ok, &c.fix) {
                println!("     hint: {hint}");
            }
        }
        println!(
            "{}",
            if all_ok {
                "everything codemem needs is in place"
            } else {
                "some prerequisites are missing: run the fix commands above"
            }
        );
    }
    if all_ok {
        0
    } else {
        3
    }
}

/// `codemem refs` for people: the definitions, then one line per use (or per callee).
pub fn print_refs(v: &serde_json::Value) {
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let at = |v: &serde_json::Value| {
        let root = v["root"]
            .as_str()
            .map(|r| format!("{r}/"))
            .unwrap_or_default();
        format!("{root}{}:{}", s(v, "path"), n(v, "line"))
    };
    if let Some(callees) = v["callees"].as_array() {
        let d = &v["definition"];
        println!(
            "{} ({} {}) calls {} name{}:",
            s(v, "name"),
            s(d, "kind"),
            at(d),
            callees.len(),
            if callees.len() == 1 { "" } else { "s" }
        );
        for c in callees {
            let lines: Vec<String> = c["lines"]
                .as_array()
                .map(|a| a.iter().map(|l| l.to_string()).collect())
                .unwrap_or_default();
            let defs: Vec<String> = c["definitions"]
                .as_array()
                .map(|a| a.iter().map(at).collect())
                .unwrap_or_default();
            println!(
                "  {:<24} line {:<12} {}",
                s(c, "name"),
                lines.join(","),
                if defs.is_empty() {
                    "(not defined in the index)".to_string()
                } else {
                    format!("→ {}", defs.join(", "))
                }
            );
        }
        return;
    }
    let defs = v["definitions"].as_array().cloned().unwrap_or_default();
    let refs = v["references"].as_array().cloned().unwrap_or_default();
    println!(
        "{}: {} definition{}, {} use{}{}",
        s(v, "name"),
        defs.len(),
        if defs.len() == 1 { "" } else { "s" },
        refs.len(),
        if refs.len() == 1 { "" } else { "s" },
        if v["truncated"].as_bool().unwrap_or(false) {
            " (more not shown: raise --limit)"
        } else {
            ""
        }
    );
    for d in &defs {
        println!("  {:<40} {} {}", at(d), s(d, "kind"), s(d, "symbol"));
    }
    for r in &refs {
        println!(
            "  {:<40} {}{}{}",
            format!("{}:{}", at(r), n(r, "column")),
            if r["call"].as_bool().unwrap_or(false) {
                "call"
            } else {
                "use"
            },
            r["caller"]
                .as_str()
                .map(|c| format!(" in {c}"))
                .unwrap_or_default(),
            if r["unsaved"].as_bool().unwrap_or(false) {
                " (unsaved)"
            } else {
                ""
            }
        );
    }
}
