//! Walks a workspace: .gitignore/.ignore rules, built-in vendored/generated exclusions,
//! config excludes, size limit, symlink safety. Produces the candidate files to index and a
//! record of what was skipped and why.

use std::path::{Path, PathBuf};

use codemem_core::{Config, Language};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// Directories that hold someone else's code or build output.
pub(crate) const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "bower_components",
    "vendor",
    "third_party",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    "site-packages",
    ".codemem",
];

/// Files that are generated or lock files.
const SKIP_FILES: &[&str] = &[
    "**/*.min.js",
    "**/*.min.css",
    "**/*.map",
    "**/*.pb.go",
    "**/*_pb2.py",
    "**/*_pb2_grpc.py",
    "**/*.generated.*",
    "**/*.g.dart",
    "**/Cargo.lock",
    "**/package-lock.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/poetry.lock",
    "**/go.sum",
    "**/uv.lock",
    "**/Pipfile.lock",
];

#[derive(Debug, Clone)]
pub struct WalkedFile {
    pub rel: String,
    pub abs: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    pub language: Language,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

pub struct Walk {
    pub files: Vec<WalkedFile>,
    pub skipped: Vec<Skipped>,
}

fn globset(globs: impl IntoIterator<Item = String>) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        if let Ok(g) = Glob::new(&g) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

pub fn mtime_ns(md: &std::fs::Metadata) -> i128 {
    md.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Language codes a translated docs tree is named by (`docs/zh`, `docs/pt-BR`, `i18n/ja`).
const LANGUAGE_CODES: &[&str] = &[
    "ar", "az", "bg", "bn", "ca", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "he",
    "hi", "hr", "hu", "hy", "id", "it", "ja", "ka", "kk", "ko", "lt", "lv", "ms", "nb", "nl", "no",
    "pl", "pt", "ro", "ru", "sk", "sl", "sr", "sv", "ta", "th", "tr", "uk", "ur", "uz", "vi", "zh",
];

/// `zh`, `pt-BR`, `zh_CN`, `zh-hant`: a language code, optionally with a region or script.
fn language_code(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let (lang, rest) = match lower.split_once(['-', '_']) {
        Some((l, r)) => (l, Some(r)),
        None => (lower.as_str(), None),
    };
    let region_ok = rest
        .is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()));
    (LANGUAGE_CODES.contains(&lang) && region_ok).then_some(lower)
}

/// A folder named for a language that is not in `index.doc_languages`, beside one that is:
/// `docs/zh` when `docs/en` exists. Only whole translated trees are recognised, never a lone
/// folder that happens to be called `id` or `it`.
pub(crate) fn is_translation(dir: &Path, keep: &[String]) -> bool {
    if keep.is_empty() {
        return false;
    }
    let Some(code) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(language_code)
    else {
        return false;
    };
    if kept_language(&code, keep) {
        return false;
    }
    let Some(parent) = dir.parent() else {
        return false;
    };
    // A sibling folder for a kept language, however it is spelled: `en`, `EN`, `en-US`, `en_us`.
    std::fs::read_dir(parent).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_type().is_ok_and(|t| t.is_dir())
                && e.file_name()
                    .to_str()
                    .and_then(language_code)
                    .is_some_and(|c| kept_language(&c, keep))
        })
    })
}

/// Is the (lowercase) language code `code` one of `keep`? `en` keeps `en-US` too; `pt-BR`
/// keeps only itself.
fn kept_language(code: &str, keep: &[String]) -> bool {
    let code = code.replace('_', "-");
    let base = code.split('-').next().unwrap_or(&code);
    keep.iter().any(|k| {
        let k = k.to_ascii_lowercase().replace('_', "-");
        k == code || (!k.contains('-') && k == base)
    })
}

pub fn walk(root: &Path, cfg: &Config) -> Walk {
    let generated = globset(SKIP_FILES.iter().map(|s| s.to_string()));
    let excluded = globset(cfg.index.exclude.iter().cloned());
    let mut files = Vec::new();
    let translations = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Skipped>::new()));
    let (seen, keep, base) = (
        translations.clone(),
        cfg.index.doc_languages.clone(),
        root.to_path_buf(),
    );
    let mut skipped = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(!cfg.index.hidden)
        .follow_links(cfg.index.follow_symlinks)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .ignore(true)
        .parents(false)
        .require_git(false)
        .filter_entry(move |e| {
            if !e.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            if e.file_name()
                .to_str()
                .is_some_and(|n| SKIP_DIRS.contains(&n))
            {
                return false;
            }
            if e.depth() > 0 && is_translation(e.path(), &keep) {
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Skipped {
                        path: rel_of(&base, e.path()) + "/",
                        reason: "translated docs tree; only index.doc_languages are indexed".into(),
                    });
                return false;
            }
            true
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                // Loops, permission errors on directories, broken links: note and go on.
                let path = error_path(&err)
                    .map(|p| rel_of(root, p))
                    .unwrap_or_default();
                skipped.push(Skipped {
                    path,
                    reason: err.to_string(),
                });
                continue;
            }
        };
        let Some(ft) = entry.file_type() else {
            continue;
        };
        if ft.is_dir() {
            continue;
        }
        let abs = entry.path().to_path_buf();
        let Some(rel) = abs
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .map(|s| s.replace('\\', "/"))
        else {
            skipped.push(Skipped {
                path: abs.to_string_lossy().into(),
                reason: "file name is not valid UTF-8".into(),
            });
            continue;
        };
        if ft.is_symlink() {
            // Not following links (the default): a link is not content of this workspace.
            skipped.push(Skipped {
                path: rel,
                reason: "symbolic link not followed (index.follow_symlinks = false)".into(),
            });
            continue;
        }
        if !ft.is_file() {
            // FIFOs, sockets and devices are never opened: a FIFO blocks, a device never ends.
            skipped.push(Skipped {
                path: rel,
                reason: format!("not a regular file ({}); never read", special_kind(&ft)),
            });
            continue;
        }
        let Some(language) = Language::detect(&rel) else {
            continue;
        };
        if generated.is_match(&rel) || excluded.is_match(&rel) {
            continue;
        }
        if cfg.index.follow_symlinks {
            // A followed link must not lead outside the workspace.
            match abs.canonicalize() {
                Ok(c) if c.starts_with(root) => {}
                Ok(_) => {
                    skipped.push(Skipped {
                        path: rel,
                        reason: "symbolic link points outside the workspace".into(),
                    });
                    continue;
                }
                Err(e) => {
                    skipped.push(Skipped {
                        path: rel,
                        reason: e.to_string(),
                    });
                    continue;
                }
            }
        }
        let md = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                skipped.push(Skipped {
                    path: rel,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if md.len() > cfg.index.max_file_bytes {
            skipped.push(Skipped {
                path: rel,
                reason: format!(
                    "{} bytes is over the {}-byte limit (index.max_file_bytes)",
                    md.len(),
                    cfg.index.max_file_bytes
                ),
            });
            continue;
        }
        files.push(WalkedFile {
            rel,
            abs,
            size: md.len(),
            mtime_ns: mtime_ns(&md),
            language,
        });
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    skipped.extend(std::mem::take(
        &mut *translations.lock().unwrap_or_else(|p| p.into_inner()),
    ));
    Walk { files, skipped }
}

/// The path an `ignore` error is about, however deeply it is wrapped.
fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::Loop { child, .. } => Some(child),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Partial(errs) => errs.iter().find_map(error_path),
        _ => None,
    }
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

#[cfg(test)]
mod translation_tests {
    use super::*;

    #[test]
    fn translated_trees_beside_a_kept_language() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "docs/en",
            "docs/zh",
            "docs/pt-BR",
            "docs/zh_CN",
            "docs/em",
            "src/id",
            "src/it",
            "i18n/en-US",
            "i18n/zh-CN",
            "site/EN",
            "site/FR",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let en = vec!["en".to_string()];
        // (folder, skipped with doc_languages = ["en"])
        let table = [
            ("docs/en", false),
            ("docs/zh", true),
            ("docs/pt-BR", true),
            ("docs/zh_CN", true),
            ("docs/em", false), // not a language code
            ("src/id", false),  // no kept-language sibling
            ("src/it", false),
            // The kept sibling may be regional or upper case.
            ("i18n/en-US", false),
            ("i18n/zh-CN", true),
            ("site/EN", false),
            ("site/FR", true),
        ];
        for (d, want) in table {
            assert_eq!(is_translation(&dir.path().join(d), &en), want, "{d}");
        }
        // Empty keeps everything; a regional kept code keeps only itself.
        assert!(!is_translation(&dir.path().join("docs/zh"), &[]));
        let zh = vec!["zh".to_string()];
        assert!(is_translation(&dir.path().join("docs/en"), &zh));
        assert!(!is_translation(&dir.path().join("docs/zh_CN"), &zh));
    }
}

/// Why file bytes cannot be indexed, if they cannot. Text with some invalid UTF-8 (Latin-1
/// comments, a stray byte) is decoded lossily; data that is more than a fifth invalid, or that
/// contains NUL bytes, is binary.
pub fn decode_text(bytes: &[u8]) -> Result<String, &'static str> {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err("binary file (contains NUL bytes)");
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => {
            let s = String::from_utf8_lossy(bytes);
            let bad = s.chars().filter(|c| *c == '\u{FFFD}').count();
            if bad * 5 > s.chars().count().max(1) {
                Err("not UTF-8 text")
            } else {
                Ok(s.into_owned())
            }
        }
    }
}

/// What kind of special file `ft` is, for skip reasons.
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "device";
        }
    }
    let _ = ft;
    "special file"
}

/// Lines of a text as LSP counts them (a trailing newline starts an empty last line).
pub fn line_count(text: &str) -> u32 {
    let n = text.bytes().filter(|b| *b == b'\n').count() + 1;
    n.min(u32::MAX as usize) as u32
}

/// One line longer than this is not written by hand (in any language).
const MINIFIED_LINE_BYTES: usize = 16 * 1024;
/// Code whose lines average more than this (over at least `MINIFIED_MIN_BYTES`) is minified.
const MINIFIED_AVG_LINE_BYTES: usize = 300;
const MINIFIED_MIN_BYTES: usize = 4 * 1024;

/// Why `text` looks minified (bundled, packed onto a few very long lines), if it does. Such a
/// file is one giant chunk whose snippet tells a reader nothing, whatever its name (`*.min.js`
/// is excluded by name already; `bundle.js`, `vendor.js`, `app.css` are not).
pub fn minified(text: &str, language: Language) -> Option<String> {
    let longest = text.split('\n').map(str::len).max().unwrap_or(0);
    if longest > MINIFIED_LINE_BYTES {
        return Some(format!("a line of {longest} bytes"));
    }
    let prose = matches!(
        language,
        Language::Markdown | Language::Rst | Language::AsciiDoc
    );
    let lines = line_count(text) as usize;
    if !prose && text.len() >= MINIFIED_MIN_BYTES && text.len() / lines > MINIFIED_AVG_LINE_BYTES {
        return Some(format!("{} bytes on {lines} lines", text.len()));
    }
    None
}

/// Generated files announce themselves in their first lines.
pub fn is_generated(text: &str) -> bool {
    text.lines().take(5).any(|l| {
        l.contains("@generated") || l.contains("DO NOT EDIT") || l.contains("Code generated by")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_text_and_rejects_binary() {
        assert_eq!(decode_text(b"fn main() {}").unwrap(), "fn main() {}");
        assert!(decode_text(b"\x7fELF\x00\x00").is_err());
        assert!(decode_text(&[0xff; 100]).is_err());
        let mut mostly = b"hello world, this is text ".repeat(10);
        mostly.push(0xe9); // one Latin-1 byte
        assert!(decode_text(&mostly).is_ok());
    }

    #[test]
    fn one_long_line_is_minified_and_ordinary_code_is_not() {
        let bundle = format!("!function(e){{{}}}();", "var a=1;".repeat(100_000));
        assert!(minified(&bundle, Language::JavaScript).is_some());
        let packed = "x".repeat(400) + "\n";
        assert!(minified(&packed.repeat(20), Language::Text).is_some());
        let code = "fn f() {\n    let x = 1;\n}\n".repeat(2000);
        assert!(minified(&code, Language::Rust).is_none());
        // Long prose paragraphs (one line each) are not minified.
        let prose = format!("{}\n\n", "word ".repeat(120)).repeat(20);
        assert!(minified(&prose, Language::Markdown).is_none());
        assert_eq!(line_count(""), 1);
        assert_eq!(line_count("a\nb\n"), 3);
    }

    #[cfg(unix)]
    #[test]
    fn fifos_and_unfollowed_links_are_listed_as_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("a.rs"), "fn a() {}").unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(root.join("pipe.rs"))
            .status()
            .unwrap();
        assert!(st.success());
        std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
        std::os::unix::fs::symlink(root.join("a.rs"), root.join("b.rs")).unwrap();
        let w = walk(&root, &Config::default());
        let names: Vec<_> = w.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["a.rs"]);
        let reason = |p: &str| {
            w.skipped
                .iter()
                .find(|s| s.path == p)
                .map(|s| s.reason.clone())
                .unwrap_or_default()
        };
        assert!(reason("pipe.rs").contains("FIFO"), "{:?}", w.skipped);
        assert!(
            reason("etclink").contains("symbolic link not followed"),
            "{:?}",
            w.skipped
        );
        assert!(
            reason("b.rs").contains("symbolic link not followed"),
            "{:?}",
            w.skipped
        );
    }

    #[test]
    fn walk_honours_gitignore_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "ignored.rs\n").unwrap();
        std::fs::write(root.join("a.rs"), "fn a() {}").unwrap();
        std::fs::write(root.join("ignored.rs"), "fn b() {}").unwrap();
        std::fs::write(root.join("big.rs"), "x".repeat(100)).unwrap();
        std::fs::create_dir(root.join("node_modules")).unwrap();
        std::fs::write(root.join("node_modules/x.js"), "x").unwrap();
        std::fs::write(root.join("image.png"), [0u8; 10]).unwrap();
        let mut cfg = Config::default();
        cfg.index.max_file_bytes = 50;
        let w = walk(&root, &cfg);
        let names: Vec<_> = w.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["a.rs"]);
        assert!(w.skipped.iter().any(|s| s.path == "big.rs"));
    }
}
