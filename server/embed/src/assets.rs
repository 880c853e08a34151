//! Where the runtime assets (ONNX Runtime library, embedding model) live and whether they are
//! intact.
//!
//! `scripts/setup` installs them under the codemem home; [`ASSET_FILES`] is the Rust copy of the
//! sizes and hashes pinned in `scripts/assets.lock`. A unit test below reads the lock file and
//! fails if the two drift apart.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{EmbedError, Result};

/// Name of the embedding model's directory under `<home>/models/`, also the stem of `model_id`.
pub const MODEL_NAME: &str = "all-minilm-l6-v2-int8";

/// Oldest glibc the bundled ONNX Runtime library (manylinux_2_28) loads with.
pub const MIN_GLIBC: (u32, u32) = (2, 28);

/// The command that installs the assets (relative to the repository root).
pub const SETUP_COMMAND: &str = "scripts/setup";

/// Which file of the asset set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetKind {
    RuntimeLib,
    ModelOnnx,
    Tokenizer,
    Config,
    SpecialTokensMap,
    TokenizerConfig,
}

/// One pinned file: where it goes under the home, and its exact size and sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetFile {
    pub kind: AssetKind,
    /// Human-readable name, used in errors and `codemem doctor`.
    pub name: &'static str,
    /// Path relative to the codemem home, with `/` separators.
    pub rel_path: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// Must equal the `file` lines of `scripts/assets.lock` (checked by `lock_file_matches_table`).
pub const ASSET_FILES: [AssetFile; 6] = [
    AssetFile {
        kind: AssetKind::RuntimeLib,
        name: "ONNX Runtime library",
        rel_path: "runtime/libonnxruntime.so.1.32.0",
        size: 34_824_680,
        sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
    },
    AssetFile {
        kind: AssetKind::ModelOnnx,
        name: "embedding model (model.onnx)",
        rel_path: "models/all-minilm-l6-v2-int8/model.onnx",
        size: 22_928_619,
        sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    },
    AssetFile {
        kind: AssetKind::Tokenizer,
        name: "tokenizer (tokenizer.json)",
        rel_path: "models/all-minilm-l6-v2-int8/tokenizer.json",
        size: 466_247,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    AssetFile {
        kind: AssetKind::Config,
        name: "model config (config.json)",
        rel_path: "models/all-minilm-l6-v2-int8/config.json",
        size: 612,
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    AssetFile {
        kind: AssetKind::SpecialTokensMap,
        name: "special tokens map (special_tokens_map.json)",
        rel_path: "models/all-minilm-l6-v2-int8/special_tokens_map.json",
        size: 112,
        sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    },
    AssetFile {
        kind: AssetKind::TokenizerConfig,
        name: "tokenizer config (tokenizer_config.json)",
        rel_path: "models/all-minilm-l6-v2-int8/tokenizer_config.json",
        size: 350,
        sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    },
];

/// The pinned entry for `kind`.
pub fn asset_file(kind: AssetKind) -> &'static AssetFile {
    ASSET_FILES
        .iter()
        .find(|f| f.kind == kind)
        .expect("every AssetKind has an entry in ASSET_FILES")
}

/// The codemem home: `$CODEMEM_HOME`, else `$XDG_DATA_HOME/codemem`, else
/// `$HOME/.local/share/codemem` (empty variables count as unset). `scripts/setup` uses the same
/// order.
pub fn codemem_home() -> PathBuf {
    home_from(
        std::env::var_os("CODEMEM_HOME"),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

fn home_from(codemem: Option<OsString>, xdg: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(codemem) {
        return dir;
    }
    if let Some(dir) = set(xdg) {
        return dir.join("codemem");
    }
    #[allow(deprecated)] // only deprecated for Windows quirks; fine on Unix since 1.86
    let home = set(home)
        .or_else(std::env::home_dir)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local").join("share").join("codemem")
}

/// Paths of every asset under one codemem home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetPaths {
    pub runtime_lib: PathBuf,
    pub model_dir: PathBuf,
    pub model_onnx: PathBuf,
    pub tokenizer: PathBuf,
    pub config: PathBuf,
    pub special_tokens_map: PathBuf,
    pub tokenizer_config: PathBuf,
}

impl AssetPaths {
    pub fn in_home(home: &Path) -> Self {
        let at = |kind| home.join(asset_file(kind).rel_path);
        AssetPaths {
            runtime_lib: at(AssetKind::RuntimeLib),
            model_dir: home.join("models").join(MODEL_NAME),
            model_onnx: at(AssetKind::ModelOnnx),
            tokenizer: at(AssetKind::Tokenizer),
            config: at(AssetKind::Config),
            special_tokens_map: at(AssetKind::SpecialTokensMap),
            tokenizer_config: at(AssetKind::TokenizerConfig),
        }
    }

    /// The assets under [`codemem_home()`].
    pub fn from_env() -> Self {
        Self::in_home(&codemem_home())
    }

    pub fn path(&self, kind: AssetKind) -> &Path {
        match kind {
            AssetKind::RuntimeLib => &self.runtime_lib,
            AssetKind::ModelOnnx => &self.model_onnx,
            AssetKind::Tokenizer => &self.tokenizer,
            AssetKind::Config => &self.config,
            AssetKind::SpecialTokensMap => &self.special_tokens_map,
            AssetKind::TokenizerConfig => &self.tokenizer_config,
        }
    }

    /// Every pinned file with its path here.
    pub fn files(&self) -> impl Iterator<Item = (&'static AssetFile, &Path)> + '_ {
        ASSET_FILES.iter().map(move |f| (f, self.path(f.kind)))
    }

    /// Cheap pre-load check: every file exists with its pinned size (no hashing, unless a size
    /// is wrong, to report the hash). A truncated or replaced file gives `CorruptAsset`.
    pub fn verify_sizes(&self) -> Result<()> {
        for (file, path) in self.files() {
            verify_size(file, path)?;
        }
        Ok(())
    }

    /// Full check: sizes and sha256 of every file (hashes ~60 MB; for `doctor`, not hot paths).
    pub fn verify_hashes(&self) -> Result<()> {
        for (file, path) in self.files() {
            verify_size(file, path)?;
            let got = sha256_file(path).map_err(|e| missing(file, path, Some(e)))?;
            if got != file.sha256 {
                return Err(corrupt(file, path, got, None));
            }
        }
        Ok(())
    }
}

fn missing(file: &AssetFile, path: &Path, err: Option<io::Error>) -> EmbedError {
    let what = match err {
        Some(e) if e.kind() != io::ErrorKind::NotFound => {
            format!("{} (unreadable: {e})", file.name)
        }
        _ => file.name.to_string(),
    };
    EmbedError::MissingAsset {
        what,
        path: path.display().to_string(),
    }
}

fn corrupt(file: &AssetFile, path: &Path, got: String, size: Option<u64>) -> EmbedError {
    let what = match size {
        Some(size) => format!("{} ({size} bytes, expected {})", file.name, file.size),
        None => file.name.to_string(),
    };
    EmbedError::CorruptAsset {
        what,
        path: path.display().to_string(),
        got,
        expected: file.sha256.to_string(),
    }
}

fn verify_size(file: &AssetFile, path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| missing(file, path, Some(e)))?;
    if !meta.is_file() {
        return Err(missing(file, path, None));
    }
    if meta.len() != file.size {
        let got = sha256_file(path).unwrap_or_else(|e| format!("unreadable: {e}"));
        return Err(corrupt(file, path, got, Some(meta.len())));
    }
    Ok(())
}

/// Lower-case hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(to_hex(&hasher.finalize()))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// One line of `codemem doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// The exact command that repairs it, if any.
    pub fix: Option<String>,
}

/// Checks every asset under `home` (existence, size, and with `verify_hashes` the sha256), plus
/// the glibc version the runtime library needs. Never fails; problems are reported per line.
pub fn check(home: &Path, verify_hashes: bool) -> Vec<AssetCheck> {
    let mut out = check_files(home, &ASSET_FILES, verify_hashes);
    out.push(check_glibc());
    out
}

fn check_files(home: &Path, files: &[AssetFile], verify_hashes: bool) -> Vec<AssetCheck> {
    files
        .iter()
        .map(|file| {
            let path = home.join(file.rel_path);
            let shown = path.display();
            let (ok, detail, force) = match std::fs::metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    (false, format!("missing: {shown}"), false)
                }
                Err(e) => (false, format!("unreadable: {shown}: {e}"), true),
                Ok(m) if !m.is_file() => (false, format!("not a regular file: {shown}"), true),
                Ok(m) if m.len() != file.size => (
                    false,
                    format!(
                        "wrong size: {shown} has {} bytes, expected {}",
                        m.len(),
                        file.size
                    ),
                    true,
                ),
                Ok(_) if !verify_hashes => {
                    (true, format!("{shown} (size ok, hash not checked)"), false)
                }
                Ok(_) => match sha256_file(&path) {
                    Ok(got) if got == file.sha256 => (true, format!("{shown} (sha256 ok)"), false),
                    Ok(got) => (
                        false,
                        format!(
                            "corrupt: {shown} has sha256 {got}, expected {}",
                            file.sha256
                        ),
                        true,
                    ),
                    Err(e) => (false, format!("unreadable: {shown}: {e}"), true),
                },
            };
            AssetCheck {
                name: file.name.to_string(),
                ok,
                detail,
                fix: (!ok).then(|| fix_command(home, force)),
            }
        })
        .collect()
}

/// `scripts/setup [--force]`, prefixed with `CODEMEM_HOME=...` when `home` is not the default.
pub fn fix_command(home: &Path, force: bool) -> String {
    let mut cmd = String::new();
    if home != codemem_home() {
        cmd.push_str("CODEMEM_HOME=");
        cmd.push_str(&shell_quote(&home.display().to_string()));
        cmd.push(' ');
    }
    cmd.push_str(SETUP_COMMAND);
    if force {
        cmd.push_str(" --force");
    }
    cmd
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The running glibc version, e.g. `(2, 36)`; `None` when not linked against glibc.
pub fn glibc_version() -> Option<(u32, u32)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        parse_glibc(v.to_str().ok()?)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

fn parse_glibc(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>();
    Some((major, minor.parse().ok()?))
}

fn check_glibc() -> AssetCheck {
    let name = "glibc".to_string();
    let need = format!("{}.{}", MIN_GLIBC.0, MIN_GLIBC.1);
    match glibc_version() {
        Some(v) if v >= MIN_GLIBC => AssetCheck {
            name,
            ok: true,
            detail: format!("glibc {}.{} (ONNX Runtime needs >= {need})", v.0, v.1),
            fix: None,
        },
        Some(v) => AssetCheck {
            name,
            ok: false,
            detail: format!(
                "glibc {}.{} is too old: the ONNX Runtime library needs >= {need}; use a newer distribution (e.g. Debian 10+, Ubuntu 18.10+, RHEL 8+)",
                v.0, v.1
            ),
            fix: None,
        },
        None => AssetCheck {
            name,
            ok: true,
            detail: format!(
                "not built against glibc; check skipped (the bundled ONNX Runtime library needs glibc >= {need})"
            ),
            fix: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/assets.lock");

    /// The `file` lines of scripts/assets.lock: (install path, size, sha256).
    fn lock_files() -> Vec<(String, u64, String)> {
        let text = std::fs::read_to_string(LOCK).unwrap_or_else(|e| panic!("read {LOCK}: {e}"));
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("file "))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 6, "malformed lock line: {l}");
                (
                    f[3].to_string(),
                    f[4].parse().expect("size"),
                    f[5].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn lock_file_matches_table() {
        let mut lock = lock_files();
        let mut table: Vec<_> = ASSET_FILES
            .iter()
            .map(|f| (f.rel_path.to_string(), f.size, f.sha256.to_string()))
            .collect();
        lock.sort();
        table.sort();
        assert_eq!(
            lock, table,
            "scripts/assets.lock and ASSET_FILES in server/embed/src/assets.rs disagree: update both"
        );
        for f in &ASSET_FILES {
            assert_eq!(f.sha256.len(), 64);
            assert!(f
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn paths_follow_the_table() {
        let p = AssetPaths::in_home(Path::new("/h"));
        assert_eq!(
            p.runtime_lib,
            Path::new("/h/runtime/libonnxruntime.so.1.32.0")
        );
        assert_eq!(p.model_dir, Path::new("/h/models/all-minilm-l6-v2-int8"));
        assert_eq!(p.model_onnx, p.model_dir.join("model.onnx"));
        assert_eq!(p.tokenizer, p.model_dir.join("tokenizer.json"));
        assert_eq!(p.config, p.model_dir.join("config.json"));
        assert_eq!(
            p.special_tokens_map,
            p.model_dir.join("special_tokens_map.json")
        );
        assert_eq!(
            p.tokenizer_config,
            p.model_dir.join("tokenizer_config.json")
        );
        assert_eq!(p.files().count(), 6);
    }

    #[test]
    fn home_order() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(home_from(s("/c"), s("/x"), s("/h")), Path::new("/c"));
        assert_eq!(home_from(None, s("/x"), s("/h")), Path::new("/x/codemem"));
        assert_eq!(home_from(s(""), s("/x"), s("/h")), Path::new("/x/codemem"));
        assert_eq!(
            home_from(None, None, s("/h")),
            Path::new("/h/.local/share/codemem")
        );
        assert_eq!(
            home_from(None, s(""), s("/h")),
            Path::new("/h/.local/share/codemem")
        );
    }

    fn fake_table() -> [AssetFile; 2] {
        [
            AssetFile {
                kind: AssetKind::Config,
                name: "hello",
                rel_path: "a/hello.txt",
                size: 5,
                // sha256("hello")
                sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            },
            AssetFile {
                kind: AssetKind::Tokenizer,
                name: "world",
                rel_path: "b/world.txt",
                size: 5,
                // sha256("world")
                sha256: "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7",
            },
        ]
    }

    fn write(home: &Path, rel: &str, data: &[u8]) {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    #[test]
    fn sha256_of_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x", b"hello");
        assert_eq!(
            sha256_file(&dir.path().join("x")).unwrap(),
            fake_table()[0].sha256
        );
    }

    #[test]
    fn check_reports_ok_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let table = fake_table();

        // Both missing: not ok, fix is plain setup (with this non-default home).
        let r = check_files(home, &table, true);
        assert_eq!(r.len(), 2);
        for c in &r {
            assert!(!c.ok, "{c:?}");
            assert!(c.detail.starts_with("missing"), "{c:?}");
            let fix = c.fix.as_deref().unwrap();
            assert!(fix.ends_with("scripts/setup"), "{fix}");
            assert!(fix.starts_with("CODEMEM_HOME="), "{fix}");
        }

        // Right content / wrong content of the right size.
        write(home, "a/hello.txt", b"hello");
        write(home, "b/world.txt", b"WORLD");
        let r = check_files(home, &table, true);
        assert!(r[0].ok && r[0].fix.is_none(), "{:?}", r[0]);
        assert!(!r[1].ok, "{:?}", r[1]);
        assert!(r[1].detail.contains("corrupt"), "{:?}", r[1]);
        assert!(r[1]
            .fix
            .as_deref()
            .unwrap()
            .ends_with("scripts/setup --force"));

        // Without hashing, a same-size wrong file passes; a wrong size never does.
        let r = check_files(home, &table, false);
        assert!(r[0].ok && r[1].ok, "{r:?}");
        write(home, "b/world.txt", b"wor");
        for verify in [false, true] {
            let r = check_files(home, &table, verify);
            assert!(!r[1].ok && r[1].detail.contains("wrong size"), "{r:?}");
            assert!(r[1].fix.as_deref().unwrap().ends_with("--force"));
        }
    }

    #[test]
    fn check_on_empty_home_lists_every_asset_and_glibc() {
        let dir = tempfile::tempdir().unwrap();
        let r = check(dir.path(), false);
        assert_eq!(r.len(), ASSET_FILES.len() + 1);
        for c in &r[..ASSET_FILES.len()] {
            assert!(!c.ok && c.fix.is_some(), "{c:?}");
        }
        assert_eq!(r.last().unwrap().name, "glibc");
    }

    #[test]
    fn verify_sizes_errors() {
        let dir = tempfile::tempdir().unwrap();
        let paths = AssetPaths::in_home(dir.path());
        match paths.verify_sizes() {
            Err(EmbedError::MissingAsset { what, path }) => {
                assert_eq!(what, "ONNX Runtime library");
                assert!(path.ends_with("libonnxruntime.so.1.32.0"));
            }
            other => panic!("{other:?}"),
        }
        for (_, p) in paths.files() {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"short").unwrap();
        }
        let err = paths.verify_sizes().unwrap_err();
        assert!(matches!(err, EmbedError::CorruptAsset { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("5 bytes, expected 34824680") && msg.contains("--force"),
            "{msg}"
        );
    }

    #[test]
    fn fix_command_quotes_home() {
        assert_eq!(
            fix_command(Path::new("/tmp/a b"), true),
            "CODEMEM_HOME='/tmp/a b' scripts/setup --force"
        );
        assert_eq!(fix_command(&codemem_home(), false), "scripts/setup");
    }

    #[test]
    fn glibc_parse_and_presence() {
        assert_eq!(parse_glibc("2.36"), Some((2, 36)));
        assert_eq!(parse_glibc("2.28.9000"), Some((2, 28)));
        assert_eq!(parse_glibc("x"), None);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(glibc_version().is_some());
    }
}
