//! Sets `CODEMEM_BUILD_ID`: a hash of the workspace's Rust sources and manifests (server/ and
//! the vendored third_party/) and Cargo.lock.
//! The daemon handshake compares it, so a daemon left running from an older build of the same
//! version hands over instead of serving old code, while two copies of one build (say
//! `~/.cargo/bin` and `target/release`) still share a daemon.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => files(&p, out),
            Ok(t) if t.is_file() => {
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
                if ext == "rs" || name == "Cargo.toml" {
                    out.push(p);
                }
            }
            _ => {}
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let server = manifest.parent().expect("server/cli sits in server/");
    let workspace = server.parent().expect("server/ sits in the workspace");
    let lock = workspace.join("Cargo.lock");
    // The vendored store (patched) is part of the build too.
    let vendored = workspace.join("third_party");
    println!("cargo:rerun-if-changed={}", server.display());
    println!("cargo:rerun-if-changed={}", vendored.display());
    println!("cargo:rerun-if-changed={}", lock.display());
    let mut all = Vec::new();
    files(server, &mut all);
    files(&vendored, &mut all);
    all.push(lock);
    all.sort();
    // DefaultHasher::new() has fixed keys: the same sources give the same id on every build.
    // Paths relative to the workspace: the id does not depend on where the checkout is.
    let mut h = DefaultHasher::new();
    for p in &all {
        if let Ok(bytes) = std::fs::read(p) {
            h.write(
                p.strip_prefix(workspace)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .as_bytes(),
            );
            h.write(&bytes);
        }
    }
    println!("cargo:rustc-env=CODEMEM_BUILD_ID={:016x}", h.finish());
}
