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

/// What a project's shared state (team mode: Redis, Qdrant collections) is named by, so that
/// clones of one repository on different machines and paths meet: `[project] key` when set,
/// else the git `origin` remote (normalised: `git@github.com:org/repo.git` and
/// `https://github.com/org/repo` are both `github.com/org/repo`) plus the folder's path inside
/// the repository, else the root path (`ProjectId::for_root`).
pub fn shared_project_id(canonical_root: &Path, configured: &str) -> codemem_core::ProjectId {
    let key = configured.trim();
    if !key.is_empty() {
        return codemem_core::ProjectId::for_key(leaf(key), key);
    }
    match git_origin(canonical_root) {
        Some((remote, sub)) => {
            let key = if sub.is_empty() {
                remote
            } else {
                format!("{remote}/{sub}")
            };
            codemem_core::ProjectId::for_key(leaf(&key), &key)
        }
        None => codemem_core::ProjectId::for_root(canonical_root),
    }
}

fn leaf(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or(key)
}

/// The normalised `origin` URL of the git repository holding `dir`, and `dir`'s path inside
/// it (`/`-separated, empty at the top).
fn git_origin(dir: &Path) -> Option<(String, String)> {
    let top = dir.ancestors().find(|a| a.join(".git").exists())?;
    let mut git = top.join(".git");
    if git.is_file() {
        // A worktree or submodule: `gitdir: <path>`; its config is in the common dir.
        let text = std::fs::read_to_string(&git).ok()?;
        git = top.join(text.strip_prefix("gitdir:")?.trim());
        if let Ok(common) = std::fs::read_to_string(git.join("commondir")) {
            git = git.join(common.trim());
        }
    }
    let config = std::fs::read_to_string(git.join("config")).ok()?;
    let mut in_origin = false;
    let mut url = None;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_origin = line.replace(' ', "") == "[remote\"origin\"]";
        } else if in_origin {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "url" {
                    url = Some(v.trim().to_string());
                    break;
                }
            }
        }
    }
    let remote = normalize_remote(&url?)?;
    let sub = dir
        .strip_prefix(top)
        .ok()?
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect::<Vec<_>>()
        .join("/");
    Some((remote, sub))
}

/// `host/path` of a git remote URL, lower-case host, without scheme, user, port, `.git` or a
/// trailing slash; `None` for a local path.
pub fn normalize_remote(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = if let Some((_, r)) = url.split_once("://") {
        r.to_string()
    } else if let Some((host, path)) = url.split_once(':') {
        // scp-like `user@host:path`; a Windows drive or a local path is no remote.
        if host.contains('/') || host.len() <= 1 {
            return None;
        }
        format!("{host}/{path}")
    } else {
        return None;
    };
    let rest = rest.rsplit_once('@').map_or(rest.as_str(), |(_, r)| r);
    let (host, path) = rest.split_once('/')?;
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let path = path
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{host}/{path}"))
}

#[cfg(test)]
mod glob_tests {
    use super::*;

    #[test]
    fn remotes_are_normalised() {
        for (url, want) in [
            ("git@github.com:Org/Repo.git", Some("github.com/Org/Repo")),
            ("https://github.com/Org/Repo", Some("github.com/Org/Repo")),
            (
                "https://user:pw@GitHub.com:443/Org/Repo.git/",
                Some("github.com/Org/Repo"),
            ),
            (
                "ssh://git@gitlab.example.com:2222/team/app.git",
                Some("gitlab.example.com/team/app"),
            ),
            ("/srv/git/repo.git", None),
            ("../repo", None),
            ("C:/repos/x", None),
        ] {
            assert_eq!(normalize_remote(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn clones_of_one_repository_share_their_project_id() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for (d, url) in [
            (a.path(), "git@github.com:org/shop.git"),
            (b.path(), "https://github.com/org/shop"),
        ] {
            std::fs::create_dir_all(d.join(".git")).unwrap();
            std::fs::write(
                d.join(".git/config"),
                format!("[core]\n\tbare = false\n[remote \"origin\"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"),
            )
            .unwrap();
            std::fs::create_dir_all(d.join("services/api")).unwrap();
        }
        let id = |p: &Path| shared_project_id(p, "");
        assert_eq!(id(a.path()), id(b.path()));
        assert!(
            id(a.path()).as_str().starts_with("shop-"),
            "{}",
            id(a.path())
        );
        // A folder inside the repository is its own project, the same in both clones.
        assert_eq!(
            id(&a.path().join("services/api")),
            id(&b.path().join("services/api"))
        );
        assert_ne!(id(&a.path().join("services/api")), id(a.path()));
        // `[project] key` overrides; no remote falls back to the path.
        assert_eq!(
            shared_project_id(a.path(), "acme/shop"),
            shared_project_id(b.path(), "acme/shop")
        );
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(
            shared_project_id(plain.path(), ""),
            codemem_core::ProjectId::for_root(plain.path())
        );
    }

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
