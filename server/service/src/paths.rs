//! Where things live: the codemem home, per-project data dirs, project root discovery.

use std::path::{Path, PathBuf};

use codemem_core::ProjectId;

use crate::{Result, ServiceError};

pub use codemem_embed::assets::codemem_home;

/// `<home>/projects/<project id>`.
pub fn project_data_dir(home: &Path, canonical_root: &Path) -> PathBuf {
    home.join("projects")
        .join(ProjectId::for_root(canonical_root).as_str())
}

/// Creates `dir` (and missing parents) and makes it private to the user (0700 on Unix),
/// also when it already existed with a wider mode: project data dirs hold the code's
/// chunks and the memories people and agents wrote.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let md = std::fs::metadata(dir)?;
        if md.permissions().mode() & 0o777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// The project that contains `start`: the nearest ancestor that already has an index, else
/// the nearest one with `codemem.toml` or `.git`, else `start` itself.
pub fn discover_root(home: &Path, start: &Path) -> PathBuf {
    let start = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
    for dir in start.ancestors() {
        if project_data_dir(home, dir).join("kv.redb").exists() {
            return dir.to_path_buf();
        }
    }
    for dir in start.ancestors() {
        if dir.join(codemem_core::config::CONFIG_FILE).is_file() || dir.join(".git").exists() {
            return dir.to_path_buf();
        }
    }
    start
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_dirs_are_created_0700_and_existing_ones_fixed() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("projects").join("p-1");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}

/// The sandbox for search path globs, for every front end: a glob is made relative to the
/// workspace roots. `..` is refused; an absolute glob must lie inside one of `roots` (its
/// prefix is dropped); a leading `./` is dropped.
pub fn sandbox_glob(glob: &str, roots: &[PathBuf]) -> Result<String> {
    if glob.split(['/', '\\']).any(|c| c == "..") {
        return Err(ServiceError::InvalidInput(format!(
            "path {glob:?} contains `..`; give a glob relative to the workspace root, e.g. \"src/**\""
        )));
    }
    if glob.starts_with('/') {
        for root in roots {
            let Some(rest) = glob.strip_prefix(&*root.to_string_lossy()) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('/')) {
                continue; // `/work/app/**` is not inside `/work/ap`
            }
            let rest = rest.trim_start_matches('/');
            return Ok(if rest.is_empty() {
                "**".into()
            } else {
                rest.to_string()
            });
        }
        return Err(ServiceError::OutsideWorkspace {
            path: glob.to_string(),
            roots: roots
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(glob.trim_start_matches("./").to_string())
}

#[cfg(test)]
mod glob_tests {
    use super::*;

    #[test]
    fn globs_stay_inside_the_roots() {
        let roots = [PathBuf::from("/work/app"), PathBuf::from("/srv/lib")];
        // (glob, Ok(relative) or Err(part of the message))
        let table: &[(&str, std::result::Result<&str, &str>)] = &[
            ("src/**", Ok("src/**")),
            ("./src/*.rs", Ok("src/*.rs")),
            ("/work/app/src/**", Ok("src/**")),
            ("/work/app", Ok("**")),
            ("/srv/lib/x/*.py", Ok("x/*.py")),
            ("../**", Err("contains `..`")),
            ("src/../../etc/*", Err("contains `..`")),
            ("src\\..\\x", Err("contains `..`")),
            ("/etc/**", Err("outside")),
            ("/work/apple/**", Err("outside")),
        ];
        for (glob, want) in table {
            match (sandbox_glob(glob, &roots), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{glob}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{glob}: {e}"),
                (got, _) => panic!("{glob}: {got:?}"),
            }
        }
    }
}
