//! Harness for the end-to-end tests: drives the real `codemem` binary.
//!
//! * [`bin`]: the binary under test (`$CODEMEM_BIN`, else `<workspace>/target/release/codemem`).
//! * [`Home`]: a temporary `$CODEMEM_HOME` whose `runtime/` and `models/` are symlinks to the
//!   assets `scripts/setup` installed (missing assets fail the test, never skip it).
//! * [`copy_fixture`]: a mutable copy of `tests/fixtures/<name>` in a temp dir.
//! * [`run`] / [`Home::run`]: runs the binary with a timeout (a hang kills it and fails the test).
//! * [`Spawned`]: a running `codemem` whose stdout is read line by line (for kill -9 tests).
//!
//! Every child gets a clean environment as far as codemem is concerned: all `CODEMEM_*`
//! variables of the test's environment are removed, `CODEMEM_HOME` is the temp home, and the
//! working directory is a neutral temp dir, so nothing depends on where `cargo test` runs.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A command that runs longer than this is killed and the test fails (CI never blocks).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Exit codes of the CLI contract.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_READY: i32 = 3;
pub const EXIT_BUSY: i32 = 4;

/// Prints to the real stderr, bypassing the test harness's output capture, for information
/// that is worth seeing on passing runs too (retrieval ranks, timings).
pub fn report(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// The workspace root (this crate lives in `<workspace>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The `codemem` binary under test.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CODEMEM_BIN").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CODEMEM_BIN={} does not exist", p.display());
        return p;
    }
    let p = workspace_root().join("target/release/codemem");
    assert!(
        p.is_file(),
        "{} does not exist: build it first with `cargo build --release -p codemem-cli` \
         (or point CODEMEM_BIN at a codemem binary)",
        p.display()
    );
    p
}

/// Where `scripts/setup` installed the assets: `$CODEMEM_HOME`, else `$XDG_DATA_HOME/codemem`,
/// else `~/.local/share/codemem` (empty variables count as unset).
pub fn real_asset_home() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(h) = var("CODEMEM_HOME") {
        return h;
    }
    if let Some(x) = var("XDG_DATA_HOME") {
        return x.join("codemem");
    }
    var("HOME")
        .expect("HOME is not set")
        .join(".local/share/codemem")
}

/// Files that must exist under the asset home (paths as in scripts/assets.lock).
const REQUIRED_ASSETS: &[&str] = &[
    "runtime/libonnxruntime.so.1.32.0",
    "models/all-minilm-l6-v2-int8/model.onnx",
    "models/all-minilm-l6-v2-int8/tokenizer.json",
    "models/all-minilm-l6-v2-int8/config.json",
    "models/all-minilm-l6-v2-int8/special_tokens_map.json",
    "models/all-minilm-l6-v2-int8/tokenizer_config.json",
];

/// The real asset home, after checking the assets are there.
pub fn require_assets() -> PathBuf {
    let home = real_asset_home();
    let missing: Vec<String> = REQUIRED_ASSETS
        .iter()
        .map(|r| home.join(r))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the embedding runtime/model are not installed (missing: {}).\n\
         Run `scripts/setup` from the workspace root (it installs into $CODEMEM_HOME, else \
         $XDG_DATA_HOME/codemem, else ~/.local/share/codemem), then run the tests again.",
        missing.join(", ")
    );
    home
}

/// A temp dir whose name does not start with a dot (the walker skips hidden entries).
pub fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("codemem-e2e-{prefix}-"))
        .tempdir()
        .expect("create temp dir")
}

/// A directory under cargo's per-target temp dir (`target/tmp/codemem-e2e/<tag>-<pid>`) for
/// state shared by the tests of one binary through a `static` (statics are never dropped, so
/// a `TempDir` there would leak). Leftovers of earlier runs whose process is gone are removed.
pub fn persistent_dir(tag: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("codemem-e2e");
    std::fs::create_dir_all(&base).expect("create target tmp dir");
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = name.strip_prefix(&format!("{tag}-")) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create shared dir");
    dir
}

/// A temporary codemem home.
pub struct Home {
    path: PathBuf,
    /// Working directory for child processes.
    cwd: PathBuf,
    _guards: Vec<TempDir>,
}

impl Home {
    /// A home with `runtime` and `models` symlinked to the installed assets.
    pub fn with_assets() -> Home {
        let h = Home::empty();
        link_assets(h.path());
        h
    }

    /// A home without any assets.
    pub fn empty() -> Home {
        let (home, cwd) = (tempdir("home"), tempdir("cwd"));
        Home {
            path: home.path().to_path_buf(),
            cwd: cwd.path().to_path_buf(),
            _guards: vec![home, cwd],
        }
    }

    /// A home with assets at `dir/home` (not removed on drop; see [`persistent_dir`]).
    pub fn with_assets_at(dir: &Path) -> Home {
        let (path, cwd) = (dir.join("home"), dir.join("cwd"));
        std::fs::create_dir_all(&path).expect("create home");
        std::fs::create_dir_all(&cwd).expect("create cwd");
        link_assets(&path);
        Home {
            path,
            cwd,
            _guards: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CODEMEM_") {
                c.env_remove(&k);
            }
        }
        c.env("CODEMEM_HOME", self.path())
            .env("NO_COLOR", "1")
            .current_dir(&self.cwd);
        c
    }

    /// Runs `codemem ARGS` to completion (killed after [`DEFAULT_TIMEOUT`]).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_timeout(args, DEFAULT_TIMEOUT)
    }

    pub fn run_with_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        run(self.command(args), timeout)
    }

    /// `codemem --root ROOT index --json`; asserts exit 0 and a well-formed event stream.
    pub fn index(&self, root: &Path) -> IndexRun {
        self.index_with_timeout(root, DEFAULT_TIMEOUT)
    }

    pub fn index_with_timeout(&self, root: &Path, timeout: Duration) -> IndexRun {
        let out = self.run_with_timeout(&["--root", s(root), "index", "--json"], timeout);
        assert_eq!(
            out.code,
            Some(EXIT_OK),
            "index {} failed:\n{out}",
            root.display()
        );
        IndexRun::parse(&out)
    }

    /// `codemem --root ROOT search QUERY EXTRA... --json`; asserts exit 0.
    pub fn search(&self, root: &Path, query: &str, extra: &[&str]) -> SearchResult {
        let mut args = vec!["--root", s(root), "search", query, "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(
            out.code,
            Some(EXIT_OK),
            "search {query:?} {extra:?} failed:\n{out}"
        );
        SearchResult::parse(&out)
    }

    /// `codemem --root ROOT status --json`; asserts exit 0.
    pub fn status(&self, root: &Path) -> Value {
        let out = self.run(&["--root", s(root), "status", "--json"]);
        assert_eq!(out.code, Some(EXIT_OK), "status failed:\n{out}");
        out.json()
    }

    /// Starts `codemem ARGS` with stdout piped, for line-by-line reading.
    pub fn spawn(&self, args: &[&str], timeout: Duration) -> Spawned {
        Spawned::start(self.command(args), timeout)
    }
}

fn link_assets(home: &Path) {
    let real = require_assets();
    for sub in ["runtime", "models"] {
        std::os::unix::fs::symlink(real.join(sub), home.join(sub)).expect("symlink asset dir");
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// What a finished process left behind.
pub struct Output {
    pub code: Option<i32>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub cmdline: String,
}

impl Output {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |t: &str| -> String {
            if t.len() > 6000 {
                let mut end = 6000;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}… ({} bytes)", &t[..end], t.len())
            } else {
                t.to_string()
            }
        };
        write!(
            f,
            "$ {}\nexit: {:?} ({:?}) after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.code,
            self.status,
            self.elapsed.as_secs_f64(),
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

fn cmdline(c: &Command) -> String {
    std::iter::once(c.get_program().to_string_lossy().to_string())
        .chain(c.get_args().map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.to_string()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Starts `cmd` with no stdin and piped stdout/stderr.
fn spawn_piped(cmd: &mut Command, line: &str) -> std::process::Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {line}: {e}"))
}

/// Runs `cmd` to completion; if it is still running after `timeout` it is killed (SIGKILL)
/// and the test fails with whatever it printed.
pub fn run(mut cmd: Command, timeout: Duration) -> Output {
    let line = cmdline(&cmd);
    let started = Instant::now();
    let mut child = spawn_piped(&mut cmd, &line);
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            break st;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "TIMEOUT: `{line}` did not finish within {}s and was killed (a hang is a bug)\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed: started.elapsed(),
        cmdline: line,
    }
}

/// A running process whose stdout is consumed line by line; a watchdog kills it after the
/// timeout so a hang cannot block the test run.
pub struct Spawned {
    child: Arc<Mutex<Option<Child>>>,
    lines: std::io::Lines<BufReader<ChildStdout>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    pub pid: u32,
    pub started: Instant,
    pub cmdline: String,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl Spawned {
    fn start(mut cmd: Command, timeout: Duration) -> Spawned {
        let line = cmdline(&cmd);
        let mut child = spawn_piped(&mut cmd, &line);
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = drain(child.stderr.take());
        let pid = child.id();
        let child = Arc::new(Mutex::new(Some(child)));
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let child = Arc::downgrade(&child);
            let timed_out = timed_out.clone();
            let started = Instant::now();
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(100));
                let Some(child) = child.upgrade() else { return };
                let mut guard = child.lock().unwrap_or_else(|e| e.into_inner());
                let Some(c) = guard.as_mut() else { return };
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                if started.elapsed() > timeout {
                    timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = c.kill();
                    return;
                }
            });
        }
        Spawned {
            child,
            lines: BufReader::new(stdout).lines(),
            stderr: Some(stderr),
            pid,
            started: Instant::now(),
            cmdline: line,
            timed_out,
        }
    }

    /// The next stdout line (`None` at EOF, i.e. the process closed stdout or died).
    pub fn next_line(&mut self) -> Option<String> {
        match self.lines.next() {
            Some(Ok(l)) => Some(l),
            _ => None,
        }
    }

    /// SIGKILL (what `kill -9 PID` sends), then reap.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let mut c = guard.take().expect("process already reaped");
        c.kill().expect("SIGKILL the child");
        c.wait().expect("reap the child")
    }

    /// Waits for exit; returns the status, the rest of stdout and all of stderr.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>, String) {
        let mut rest = Vec::new();
        while let Some(l) = self.next_line() {
            rest.push(l);
        }
        let status = loop {
            let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
            let c = guard.as_mut().expect("process already reaped");
            if let Some(st) = c.try_wait().expect("wait") {
                guard.take();
                break st;
            }
            drop(guard);
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            !self.timed_out.load(std::sync::atomic::Ordering::SeqCst),
            "TIMEOUT: `{}` was killed by the watchdog (a hang is a bug)\nstderr:\n{stderr}",
            self.cmdline
        );
        (status, rest, stderr)
    }

    pub fn stderr_after_exit(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = guard.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The counters of one index run (the `done` event).
#[derive(Debug, Clone)]
pub struct Stats(pub Value);

impl Stats {
    pub fn n(&self, key: &str) -> u64 {
        self.0
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("stats has no number `{key}`: {}", self.0))
    }
    pub fn cancelled(&self) -> bool {
        self.0["cancelled"]
            .as_bool()
            .expect("stats.cancelled is a bool")
    }
    /// `(path, reason)` of the skipped files listed.
    pub fn skipped(&self) -> Vec<(String, String)> {
        self.0["skipped"]
            .as_array()
            .expect("stats.skipped is an array")
            .iter()
            .map(|e| {
                (
                    e["path"].as_str().unwrap_or("").to_string(),
                    e["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
    pub fn skipped_reason(&self, path: &str) -> Option<String> {
        self.skipped()
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, r)| r)
    }
}

const STAT_KEYS: &[&str] = &[
    "files_scanned",
    "files_unchanged",
    "files_indexed",
    "files_deleted",
    "files_skipped",
    "chunks_upserted",
    "chunks_embedded",
    "cache_hits",
    "embed_errors",
    "points_total",
    "elapsed_ms",
    "embed_ms",
    "lexical_ready_ms",
    "cancelled",
    "skipped",
];

/// Checks that one stdout line of `index --json` is a JSON event of the documented shape.
pub fn parse_event(line: &str) -> Value {
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("index --json printed a non-JSON line ({e}): {line:?}"));
    let ev = v
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("event line without \"event\": {line}"));
    let keys: &[&str] = match ev {
        "scanned" => &["files", "changed", "deleted"],
        "lexical" | "embed" => &["done", "total"],
        "done" => &["stats"],
        other => panic!("unknown event {other:?}: {line}"),
    };
    for k in keys {
        assert!(v.get(*k).is_some(), "event {ev} lacks `{k}`: {line}");
    }
    if ev == "done" {
        for k in STAT_KEYS {
            assert!(
                v["stats"].get(*k).is_some(),
                "done.stats lacks `{k}`: {line}"
            );
        }
    }
    v
}

/// A finished `index --json` run.
#[derive(Debug)]
pub struct IndexRun {
    pub events: Vec<Value>,
    pub stats: Stats,
    pub elapsed: Duration,
}

impl IndexRun {
    /// Every stdout line must be a JSON event; the last one is `done`.
    pub fn parse(out: &Output) -> IndexRun {
        let events: Vec<Value> = out
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_event)
            .collect();
        let first = events
            .first()
            .unwrap_or_else(|| panic!("index --json printed nothing:\n{out}"));
        assert_eq!(
            first["event"], "scanned",
            "the first event must be `scanned`:\n{out}"
        );
        let last = events.last().expect("nonempty");
        assert_eq!(
            last["event"], "done",
            "the last event must be `done`:\n{out}"
        );
        assert_eq!(
            events.iter().filter(|e| e["event"] == "done").count(),
            1,
            "exactly one done event:\n{out}"
        );
        let stats = Stats(last["stats"].clone());
        IndexRun {
            events,
            stats,
            elapsed: out.elapsed,
        }
    }
}

/// A search answer.
#[derive(Debug, Clone)]
pub struct SearchResult(pub Value);

impl SearchResult {
    pub fn parse(out: &Output) -> SearchResult {
        let v = out.json();
        assert!(v["hits"].is_array(), "search output lacks hits[]:\n{out}");
        for k in ["mode", "dense_available", "freshness", "took_ms"] {
            assert!(v.get(k).is_some(), "search output lacks `{k}`:\n{out}");
        }
        SearchResult(v)
    }
    pub fn hits(&self) -> &[Value] {
        self.0["hits"].as_array().map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn paths(&self) -> Vec<String> {
        self.hits()
            .iter()
            .map(|h| h["path"].as_str().unwrap_or("").to_string())
            .collect()
    }
    /// 1-based rank of the first hit in `path` (any of `paths`), if any.
    pub fn rank_of(&self, paths: &[&str]) -> Option<usize> {
        self.hits()
            .iter()
            .position(|h| paths.contains(&h["path"].as_str().unwrap_or("")))
            .map(|i| i + 1)
    }
    pub fn distinct_paths(&self) -> BTreeSet<String> {
        self.paths().into_iter().collect()
    }
    /// `path:start-end symbol [ns]` per hit, for failure messages.
    pub fn summary(&self) -> String {
        self.hits()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "  {}. {}:{}-{} {} {} [{}] {:.4}",
                    i + 1,
                    h["path"].as_str().unwrap_or("?"),
                    h["start_line"],
                    h["end_line"],
                    h["kind"].as_str().unwrap_or("?"),
                    h["symbol"].as_str().unwrap_or("-"),
                    h["namespace"].as_str().unwrap_or("?"),
                    h["score"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The last segment of a qualified symbol (`a::B`, `pkg.Fn`, `Class#m`).
pub fn symbol_leaf(sym: &str) -> &str {
    sym.rsplit([':', '.', '#']).next().unwrap_or(sym)
}

/// Copies `tests/fixtures/<name>` into a fresh temp dir; returns (guard, root).
pub fn copy_fixture(name: &str) -> (TempDir, PathBuf) {
    let src = fixtures_dir().join(name);
    assert!(src.is_dir(), "fixture {} is missing", src.display());
    let dir = tempdir(name);
    let root = dir.path().join(name);
    copy_dir(&src, &root);
    (dir, root)
}

/// The polyglot fixture plus what git cannot carry: `build/` is in the fixture's .gitignore,
/// so a committed `build/` file would itself be ignored by git; it is created here instead.
pub fn copy_polyglot_into(dir: &Path) -> PathBuf {
    let root = dir.join("polyglot");
    copy_dir(&fixtures_dir().join("polyglot"), &root);
    add_ignored_build_output(&root);
    root
}

pub fn copy_polyglot() -> (TempDir, PathBuf) {
    let dir = tempdir("polyglot");
    let root = copy_polyglot_into(dir.path());
    (dir, root)
}

/// An identifier that only occurs in the git-ignored `build/` output of the polyglot fixture.
pub const IGNORED_MARKER: &str = "legacyBundleIntegrityChecksum";

fn add_ignored_build_output(root: &Path) {
    std::fs::create_dir_all(root.join("build")).expect("create build/");
    std::fs::write(
        root.join("build/bundle.js"),
        format!(
            "// Webpack output; regenerated by `npm run build`.\n\
             export function {IGNORED_MARKER}(bytes) {{\n  let h = 0;\n  for (const b of bytes) h = (h * 31 + b) >>> 0;\n  return h;\n}}\n\
             export function escapeHtml(text) {{ return String(text).replace(/</g, \"&lt;\"); }}\n"
        ),
    )
    .expect("write build/bundle.js");
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create dir");
    for e in std::fs::read_dir(src).expect("read fixture dir") {
        let e = e.expect("dir entry");
        let ft = e.file_type().expect("file type");
        let to = dst.join(e.file_name());
        if ft.is_dir() {
            copy_dir(&e.path(), &to);
        } else if ft.is_file() {
            std::fs::copy(e.path(), &to).expect("copy file");
        }
    }
}

/// Every file under `root` (relative, `/`-separated), sorted; `.gitignore`d dirs included.
pub fn list_files(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let e = e.expect("entry");
            let p = e.path();
            if e.file_type().expect("file type").is_dir() {
                walk(base, &p, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .expect("under base")
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// `status.namespaces` as (name → (files, points)).
pub fn namespace_counts(status: &Value) -> std::collections::BTreeMap<String, (u64, u64)> {
    status["namespaces"]
        .as_array()
        .expect("status.namespaces is an array")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("namespace name").to_string(),
                (
                    n["files"].as_u64().expect("namespace files"),
                    n["points"].as_u64().expect("namespace points"),
                ),
            )
        })
        .collect()
}

pub fn points_sum(status: &Value) -> u64 {
    namespace_counts(status).values().map(|(_, p)| p).sum()
}

/// A deterministic pseudo-random generator (xorshift64*), so generated repos are identical
/// between runs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}
