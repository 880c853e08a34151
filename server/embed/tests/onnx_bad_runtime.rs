//! ort loads one ONNX Runtime library per process, so the failure paths run in this separate
//! test binary, sequentially in one test.

use std::fs::File;
use std::path::Path;

use codemem_embed::assets::{asset_file, codemem_home, AssetKind, AssetPaths};
use codemem_embed::{EmbedError, Embedder, OnnxEmbedder};

/// The real model files, but `lib` as the runtime library.
fn paths_with_runtime(lib: &Path) -> AssetPaths {
    let mut p = AssetPaths::in_home(&codemem_home());
    p.runtime_lib = lib.to_path_buf();
    p
}

/// A file of exactly the pinned size, so it passes the size check and reaches `ort::init_from`.
fn fake_lib(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("libonnxruntime.so.1.32.0");
    File::create(&path)
        .unwrap()
        .set_len(asset_file(AssetKind::RuntimeLib).size)
        .unwrap();
    path
}

#[test]
fn bogus_runtime_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();

    // Missing file: caught before ONNX Runtime is touched.
    let missing = dir.path().join("nope/libonnxruntime.so.1.32.0");
    match OnnxEmbedder::load(&paths_with_runtime(&missing), 1, 128) {
        Err(EmbedError::MissingAsset { what, .. }) => assert!(what.contains("ONNX Runtime")),
        other => panic!("expected MissingAsset, got {other:?}"),
    }

    // Wrong size (truncated download).
    let short = dir.path().join("short.so");
    std::fs::write(&short, b"\x7fELF").unwrap();
    let err = OnnxEmbedder::load(&paths_with_runtime(&short), 1, 128).unwrap_err();
    assert!(matches!(err, EmbedError::CorruptAsset { .. }), "{err:?}");
    assert!(err.to_string().contains("scripts/setup --force"), "{err}");

    // Right size, not a library: dlopen fails inside ort::init_from -> Runtime error.
    let fake = fake_lib(dir.path());
    let err = OnnxEmbedder::load(&paths_with_runtime(&fake), 1, 128).unwrap_err();
    match &err {
        EmbedError::Runtime { path, reason } => {
            assert!(path.ends_with("libonnxruntime.so.1.32.0"));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Runtime, got {other:?}"),
    }
    println!("bogus runtime: {err}");

    // A failed load leaves the process usable: the real library still loads afterwards.
    let home = codemem_home();
    let real = OnnxEmbedder::load(&AssetPaths::in_home(&home), 1, 128).unwrap_or_else(|e| {
        panic!(
            "real assets under {} did not load: {e}; run `scripts/setup`",
            home.display()
        )
    });
    assert_eq!(real.embed(&["ok".to_string()]).unwrap()[0].len(), 384);

    // Once a library is loaded, another one is refused cleanly.
    let err = OnnxEmbedder::load(&paths_with_runtime(&fake), 1, 128).unwrap_err();
    assert!(
        matches!(&err, EmbedError::Runtime { reason, .. } if reason.contains("already loaded")),
        "{err:?}"
    );
}
