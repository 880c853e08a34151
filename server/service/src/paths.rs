//! Where things live: the codemem home, per-project data dirs, project root discovery.

use std::path::{Path, PathBuf};

use codemem_core::ProjectId;

pub use codemem_embed::assets::codemem_home;

/// `<home>/projects/<project id>`.
pub fn project_data_dir(home: &Path, canonical_root: &Path) -> PathBuf {
    home.join("projects").join(ProjectId::for_root(canonical_root).as_str())
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
