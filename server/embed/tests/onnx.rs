//! Loads the REAL runtime and model from the codemem home. Fails (does not skip) when the assets
//! are missing: run `scripts/setup` first (CI does).
//!
//! Timing numbers are printed, not asserted: `cargo test -p codemem-embed --test onnx -- --nocapture`.

use std::sync::OnceLock;
use std::time::Instant;

use codemem_embed::assets::{codemem_home, AssetPaths};
use codemem_embed::{Embedder, OnnxEmbedder};

const MAX_LENGTH: usize = 256;

fn embedder() -> &'static OnnxEmbedder {
    static E: OnceLock<OnnxEmbedder> = OnceLock::new();
    E.get_or_init(|| {
        let home = codemem_home();
        let paths = AssetPaths::in_home(&home);
        OnnxEmbedder::load(&paths, 0, MAX_LENGTH).unwrap_or_else(|e| {
            panic!(
                "could not load the embedding model from {}: {e}\n\
                 Run `scripts/setup` (installs ONNX Runtime and the model under the codemem home) \
                 and re-run the tests.",
                home.display()
            )
        })
    })
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| s.to_string()).collect()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn dim_norm_and_model_id() {
    let e = embedder();
    assert_eq!(e.dim(), 384);
    assert_eq!(e.model_id(), "all-minilm-l6-v2-int8@256");
    let v = e
        .embed(&strings(&["fn main() { println!(\"hello\"); }"]))
        .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].len(), 384);
    assert!((norm(&v[0]) - 1.0).abs() < 1e-3, "norm {}", norm(&v[0]));
}

#[test]
fn related_texts_are_closer() {
    let e = embedder();
    let v = e
        .embed(&strings(&[
            "how to open a file",
            "read file contents from disk",
            "compute the average of numbers",
        ]))
        .unwrap();
    let (near, far) = (cos(&v[0], &v[1]), cos(&v[0], &v[2]));
    println!("cos(open file, read file) = {near:.3}, cos(open file, average) = {far:.3}");
    assert!(near > far + 0.1, "near {near}, far {far}");
}

#[test]
fn batch_composition_does_not_change_vectors() {
    let e = embedder();
    let text = "parse the configuration file and return the settings";
    let one = e.embed(&strings(&[text])).unwrap();
    let three = e
        .embed(&strings(&[
            "a much longer text that forces padding of the shorter ones in the same batch, \
             with several clauses, identifiers like HashMap::with_capacity and numbers 1 2 3",
            text,
            "x",
        ]))
        .unwrap();
    assert_eq!(three.len(), 3);
    assert_eq!(
        one[0], three[1],
        "batch of 1 and batch of 3 differ for the same text"
    );
}

#[test]
fn empty_inputs() {
    let e = embedder();
    assert!(e.embed(&[]).unwrap().is_empty());
    let v = e.embed(&strings(&["", "non-empty", ""])).unwrap();
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.len(), 384);
        assert!(x.iter().all(|f| f.is_finite()));
        assert!((norm(x) - 1.0).abs() < 1e-3);
    }
    assert_eq!(v[0], v[2]);
}

#[test]
fn long_text_is_truncated_not_rejected() {
    let e = embedder();
    let long = "word ".repeat(5000);
    let v = e.embed(&strings(&[&long])).unwrap();
    assert_eq!(v[0].len(), 384);
}

#[test]
fn second_load_reuses_the_runtime() {
    let e = embedder();
    let again = OnnxEmbedder::load(&AssetPaths::in_home(&codemem_home()), 1, 128).unwrap();
    assert_eq!(again.model_id(), "all-minilm-l6-v2-int8@128");
    let t = strings(&["short text"]);
    // Short text: max_length 128 vs 256 makes no difference.
    assert_eq!(again.embed(&t).unwrap(), e.embed(&t).unwrap());
}

#[test]
fn bad_max_length_is_an_error() {
    let paths = AssetPaths::in_home(&codemem_home());
    assert!(OnnxEmbedder::load(&paths, 1, 0).is_err());
    assert!(OnnxEmbedder::load(&paths, 1, 513).is_err());
}

const WORDS: &[&str] = &[
    "the", "file", "is", "read", "from", "disk", "and", "each", "line", "parsed", "into", "a",
    "record", "with", "name", "value", "when", "error", "occurs", "we", "return", "early", "to",
    "caller", "so", "that", "it", "can", "retry", "later", "data", "list", "map", "key", "table",
    "open", "close", "write", "buffer", "size",
];

fn median_ms(e: &OnnxEmbedder, q: &[String], runs: usize) -> (f64, f64) {
    e.embed(q).unwrap();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            e.embed(q).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[runs / 2], times[runs * 9 / 10])
}

/// Prints latency/throughput; asserts nothing about speed.
#[test]
fn timing_report() {
    let e = embedder();
    let q = strings(&["open a file"]);
    let (p50, p90) = median_ms(e, &q, 50);
    println!(
        "single short query, {} threads: p50 {p50:.2} ms, p90 {p90:.2} ms",
        e.threads()
    );
    let one = OnnxEmbedder::load(&AssetPaths::in_home(&codemem_home()), 1, MAX_LENGTH).unwrap();
    let (p50, p90) = median_ms(&one, &q, 50);
    println!("single short query, 1 thread: p50 {p50:.2} ms, p90 {p90:.2} ms");

    // 200 common (single-token) words per text, distinct texts: ~202 tokens with [CLS]/[SEP].
    let batch: Vec<String> = (0..16)
        .map(|i| {
            (0..200)
                .map(|j| WORDS[(i * 7 + j * 3 + j / 40) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for (name, e) in [("default threads", e), ("1 thread", &one)] {
        e.embed(&batch).unwrap();
        let rounds = 3;
        let t = Instant::now();
        for _ in 0..rounds {
            e.embed(&batch).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "batch of 16 x ~200-token texts, {name}: {:.0} ms per batch, {:.1} texts/s",
            secs * 1000.0 / rounds as f64,
            (16 * rounds) as f64 / secs
        );
    }
}

#[test]
fn a_query_does_not_wait_for_an_indexing_batch_and_gets_the_same_vector() {
    let e = embedder();
    let q = "rate limiter token bucket";
    let reference = e.embed(&strings(&[q])).unwrap().pop().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let batch: Vec<String> = (0..8)
                .map(|i| format!("fn busy_{i}() {{ {} }}", "x + ".repeat(60)))
                .collect();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                e.embed(&batch).unwrap();
            }
        });
        for _ in 0..5 {
            let v = e.embed_query(q).unwrap();
            assert!(
                cos(&v, &reference) > 0.9999,
                "query session gives a different vector"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}
