//! The static table distilled from the REAL installed model (fails, does not skip, when the
//! assets are missing: run `scripts/setup` first). The first run on a machine builds the table
//! beside the model (~30 s); later runs load it.

use std::sync::OnceLock;

use codemem_embed::assets::{codemem_home, AssetPaths};
use codemem_embed::static_model::{table_path, TABLE_FILE};
use codemem_embed::{Embedder, StaticEmbedder};

fn paths() -> AssetPaths {
    AssetPaths::in_home(&codemem_home())
}

fn model() -> &'static StaticEmbedder {
    static M: OnceLock<StaticEmbedder> = OnceLock::new();
    M.get_or_init(|| {
        StaticEmbedder::load_or_build(&paths(), 0).unwrap_or_else(|e| {
            panic!(
                "could not load or build the static table under {}: {e}\nRun `scripts/setup` first.",
                codemem_home().display()
            )
        })
    })
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn vectors_are_normalised_and_related_texts_are_closer() {
    let m = model();
    assert_eq!(m.dim(), 384);
    assert!(m.model_id().starts_with("all-minilm-l6-v2-int8-static-v1:"));
    let q = m.encode("open a file for reading").unwrap();
    let norm: f32 = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    let near = m
        .encode("fn read_file(path: &Path) -> io::Result<String> { std::fs::read_to_string(path) }")
        .unwrap();
    let far = m
        .encode("matrix multiplication of two dense float tensors on the GPU")
        .unwrap();
    assert!(
        cos(&q, &near) > cos(&q, &far),
        "near {} far {}",
        cos(&q, &near),
        cos(&q, &far)
    );
    // camelCase identifiers reach the words they are made of.
    let camel = m.encode("parseConfigFile").unwrap();
    let words = m.encode("parse config file").unwrap();
    assert!(cos(&camel, &words) > 0.95, "{}", cos(&camel, &words));
}

#[test]
fn text_without_known_tokens_has_no_vector() {
    let m = model();
    assert!(m.encode("").is_none());
    assert!(m.encode("   \n\t").is_none());
    // The trait answers zeros for it rather than failing a whole batch.
    let v = m.embed(&["".to_string(), "x".to_string()]).unwrap();
    assert!(v[0].iter().all(|x| *x == 0.0));
    assert!(v[1].iter().any(|x| *x != 0.0));
}

/// The build is reproducible: a table distilled in another directory (another process's
/// thread count) has the same sha256 as the installed one. A damaged table is rebuilt.
#[test]
fn the_table_is_reproducible_and_a_damaged_one_is_rebuilt() {
    let installed = model().model_id().to_string();
    let real = paths();
    let tmp = tempfile::tempdir().unwrap();
    let mut copy = real.clone();
    copy.model_dir = tmp.path().join("model");
    std::fs::create_dir_all(&copy.model_dir).unwrap();
    for p in [
        &mut copy.model_onnx,
        &mut copy.tokenizer,
        &mut copy.config,
        &mut copy.special_tokens_map,
        &mut copy.tokenizer_config,
    ] {
        let name = p.file_name().unwrap().to_owned();
        let to = tmp.path().join("model").join(&name);
        std::os::unix::fs::symlink(real.model_dir.join(&name), &to).unwrap();
        *p = to;
    }
    let built = StaticEmbedder::load_or_build(&copy, 1).unwrap();
    assert_eq!(built.model_id(), installed, "a build with 1 thread differs");
    assert!(table_path(&copy).ends_with(TABLE_FILE));

    // Flip one byte: the sha256 no longer matches, so the next load rebuilds the same table.
    let path = table_path(&copy);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let again = StaticEmbedder::load_or_build(&copy, 0).unwrap();
    assert_eq!(again.model_id(), installed);
    assert_ne!(std::fs::read(&path).unwrap(), bytes);
}

/// Throughput, printed (not asserted): `cargo test --release -p codemem-embed --test
/// static_model -- --nocapture`.
#[test]
fn throughput_is_printed() {
    let m = model();
    let text = "pub fn handle_request(req: &Request, router: &Router) -> Result<Response> {\n    \
                let route = router.find(req.path())?;\n    route.call(req)\n}\n"
        .repeat(8);
    let n = 500;
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert!(m.encode(&text).is_some());
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "static encode: {:.0} chunks/s ({} bytes each)",
        n as f64 / s,
        text.len()
    );
}
