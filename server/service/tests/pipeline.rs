//! The index pipeline and search, in process, with the deterministic `HashEmbedder`.
//! (The real model and binary are exercised by the end-to-end tests in `tests/`.)

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codemem_core::{Namespace, Query, SearchMode};
use codemem_embed::{EmbedError, Embedder, HashEmbedder};
use codemem_service::{IndexEvent, IndexOptions, IndexStats, OpenOptions, Project, ServiceError};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn tree(root: &Path) {
    write(root, "src/limiter.rs", "/// Token bucket rate limiter.\npub struct RateLimiter {\n    tokens: u32,\n    capacity: u32,\n}\n\nimpl RateLimiter {\n    pub fn try_acquire(&mut self) -> bool {\n        if self.tokens == 0 {\n            return false;\n        }\n        self.tokens -= 1;\n        true\n    }\n}\n");
    write(root, "src/server.rs", "use crate::limiter::RateLimiter;\n\nfn handle(limiter: &mut RateLimiter) {\n    if !limiter.try_acquire() {\n        reject_request();\n    }\n}\n\nfn reject_request() {\n    println!(\"429 too many requests\");\n}\n");
    write(root, "billing/invoice.py", "def compute_invoice_total(lines, tax_rate):\n    \"\"\"Sum the invoice lines and add tax.\"\"\"\n    subtotal = sum(l.price * l.qty for l in lines)\n    return subtotal * (1 + tax_rate)\n");
    write(root, "tests/test_invoice.py", "from billing.invoice import compute_invoice_total\n\ndef test_total():\n    assert compute_invoice_total([], 0.2) == 0\n");
    write(
        root,
        "README.md",
        "# Demo\n\nA demo project.\n\n## Billing\n\nInvoices are computed with tax.\n",
    );
    write(
        root,
        "docs/adr/0001-use-tokens.md",
        "# ADR 1: rate limiting with token buckets\n\nWe chose token buckets.\n",
    );
}

fn open(home: &Path, root: &Path, embedder: Arc<dyn Embedder>) -> Project {
    Project::open(
        root,
        OpenOptions {
            home: home.to_path_buf(),
            embedder: Some(embedder),
            purpose: "test".into(),
            lock_wait: Duration::ZERO,
            create: true,
            config: None,
        },
    )
    .unwrap()
}

fn index(p: &Project) -> IndexStats {
    let cancel = AtomicBool::new(false);
    p.index(IndexOptions {
        cancel: &cancel,
        progress: &|_e: IndexEvent| {},
    })
    .unwrap()
}

fn hash() -> Arc<dyn Embedder> {
    Arc::new(HashEmbedder::new(384))
}

fn all_ns(q: &str) -> Query {
    let mut q = Query::new(q);
    q.namespaces = ["coding", "testing", "documentation", "architecture"]
        .iter()
        .map(|n| Namespace::new(n).unwrap())
        .collect();
    q
}

#[test]
fn index_search_and_incremental_updates() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    tree(ws.path());
    let p = open(home.path(), ws.path(), hash());
    let s = index(&p);
    assert_eq!(s.files_scanned, 6);
    assert_eq!(s.files_indexed, 6);
    assert!(s.chunks_embedded > 0);
    assert_eq!(s.cache_hits, 0);

    // Identifier query: the definition first even though server.rs uses it too.
    let r = p.search(&Query::new("RateLimiter")).unwrap();
    assert_eq!(r.hits[0].path, "src/limiter.rs", "{:#?}", r.hits);
    let r = p.search(&Query::new("compute_invoice_total")).unwrap();
    assert_eq!(r.hits[0].path, "billing/invoice.py");
    assert_eq!(r.hits[0].symbol.as_deref(), Some("compute_invoice_total"));

    // Namespaces: defaults exclude tests and ADRs; asking for them finds them.
    let r = p.search(&Query::new("token buckets invoice")).unwrap();
    assert!(r
        .hits
        .iter()
        .all(|h| h.namespace.as_str() == "coding" || h.namespace.as_str() == "documentation"));
    let r = p.search(&all_ns("token buckets")).unwrap();
    assert!(
        r.hits
            .iter()
            .any(|h| h.namespace.as_str() == "architecture"
                && h.path == "docs/adr/0001-use-tokens.md")
    );
    let mut q = Query::new("total");
    q.namespaces = vec![Namespace::testing()];
    let r = p.search(&q).unwrap();
    assert!(!r.hits.is_empty() && r.hits.iter().all(|h| h.path == "tests/test_invoice.py"));
    let mut q = Query::new("total");
    q.namespaces = vec![Namespace::new("nope").unwrap()];
    let e = p.search(&q).unwrap_err();
    assert!(
        e.is_invalid_input() && e.to_string().contains("coding"),
        "{e}"
    );

    // Filters.
    let mut q = all_ns("total tax limiter");
    q.path_glob = Some("billing/**".into());
    let r = p.search(&q).unwrap();
    assert!(!r.hits.is_empty() && r.hits.iter().all(|h| h.path.starts_with("billing/")));
    let mut q = all_ns("total tax limiter");
    q.language = Some(codemem_core::Language::Rust);
    assert!(p
        .search(&q)
        .unwrap()
        .hits
        .iter()
        .all(|h| h.path.ends_with(".rs")));
    let mut q = all_ns("limiter");
    q.mode = SearchMode::Lexical;
    assert_eq!(
        p.search(&q).unwrap().hits[0]
            .path
            .as_str()
            .split('/')
            .next(),
        Some("src")
    );

    // Unchanged tree: nothing read, nothing embedded.
    let s = index(&p);
    assert_eq!(
        (s.files_indexed, s.chunks_embedded, s.files_unchanged),
        (0, 0, 6)
    );

    // Edit one file, delete another.
    std::thread::sleep(Duration::from_millis(20));
    write(ws.path(), "billing/invoice.py", "def compute_invoice_total(lines, tax_rate):\n    return 0\n\ndef refund_customer_payment(invoice):\n    \"\"\"Send the money back.\"\"\"\n    return invoice.total\n");
    std::fs::remove_file(ws.path().join("src/server.rs")).unwrap();
    let s = index(&p);
    assert_eq!((s.files_indexed, s.files_deleted), (1, 1));
    let r = p.search(&Query::new("refund_customer_payment")).unwrap();
    assert_eq!(r.hits[0].symbol.as_deref(), Some("refund_customer_payment"));
    let r = p
        .search(&all_ns("reject_request too many requests"))
        .unwrap();
    assert!(r.hits.iter().all(|h| h.path != "src/server.rs"));
    let status = p.status().unwrap();
    let points: u64 = status.namespaces.iter().map(|n| n.points).sum();
    assert_eq!(points, s.points_total);
    assert_eq!(status.pending_files, 0);
    assert_eq!(status.files_indexed, 5);
}

#[test]
fn a_second_process_gets_a_busy_error() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    tree(ws.path());
    let _p = open(home.path(), ws.path(), hash());
    let e = Project::open(
        ws.path(),
        OpenOptions {
            home: home.path().to_path_buf(),
            embedder: None,
            purpose: "search".into(),
            lock_wait: Duration::from_millis(50),
            create: false,
            config: None,
        },
    )
    .err()
    .expect("busy");
    assert!(matches!(e, ServiceError::Busy { .. }), "{e}");
}

#[test]
fn never_indexed_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let e = Project::open(
        ws.path(),
        OpenOptions {
            home: home.path().to_path_buf(),
            embedder: None,
            purpose: "search".into(),
            lock_wait: Duration::ZERO,
            create: false,
            config: None,
        },
    )
    .err()
    .expect("not indexed");
    assert!(e.to_string().contains("codemem index"), "{e}");
}

/// Fails every batch after the first `ok` ones: a model that dies half way.
struct Flaky {
    inner: HashEmbedder,
    ok: usize,
    calls: AtomicUsize,
}

impl Embedder for Flaky {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(EmbedError::Inference("simulated failure".into()));
        }
        self.inner.embed(texts)
    }
}

fn many_files(root: &Path, n: usize) {
    for i in 0..n {
        write(
            root,
            &format!("src/m{i}.py"),
            &format!(
                "def function_number_{i}(x):\n    \"\"\"Doc {i}.\"\"\"\n    return x * {i} + {}\n",
                i * 7
            ),
        );
    }
}

#[test]
fn interrupted_embedding_resumes_without_re_embedding() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    many_files(ws.path(), 60);
    let mut cfg = codemem_core::Config::default();
    cfg.embed.batch_size = 4;
    let opts = |e: Arc<dyn Embedder>| OpenOptions {
        home: home.path().to_path_buf(),
        embedder: Some(e),
        purpose: "test".into(),
        lock_wait: Duration::ZERO,
        create: true,
        config: Some(cfg.clone()),
    };

    // First run: the model fails after 5 batches (20 chunks).
    let flaky = Arc::new(Flaky {
        inner: HashEmbedder::new(384),
        ok: 5,
        calls: AtomicUsize::new(0),
    });
    let first = {
        let p = Project::open(ws.path(), opts(flaky)).unwrap();
        let s = index(&p);
        let st = p.status().unwrap();
        assert!(st.pending_files > 0);
        // Lexical search still covers everything.
        let mut q = Query::new("function_number_59");
        q.mode = SearchMode::Lexical;
        assert_eq!(
            p.search(&q).unwrap().hits[0].symbol.as_deref(),
            Some("function_number_59")
        );
        s
    };
    assert_eq!(first.chunks_embedded, 20, "{first:#?}");
    assert!(first.embed_errors > 0);

    // Second run: only what was left is embedded.
    let p = Project::open(ws.path(), opts(hash())).unwrap();
    let second = index(&p);
    assert_eq!(second.chunks_embedded, 60 - 20);
    // The 20 finished files are not even re-read; the 40 unfinished ones are redone.
    assert_eq!((second.files_unchanged, second.files_indexed), (20, 40));
    assert_eq!(p.status().unwrap().pending_files, 0);
    assert_eq!(second.points_total, 60);
}

#[test]
fn cancel_stops_and_resume_finishes() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    many_files(ws.path(), 40);
    let mut cfg = codemem_core::Config::default();
    cfg.embed.batch_size = 2;
    let p = Project::open(
        ws.path(),
        OpenOptions {
            home: home.path().to_path_buf(),
            embedder: Some(hash()),
            purpose: "test".into(),
            lock_wait: Duration::ZERO,
            create: true,
            config: Some(cfg),
        },
    )
    .unwrap();
    let cancel = AtomicBool::new(false);
    let s = p
        .index(IndexOptions {
            cancel: &cancel,
            progress: &|e: IndexEvent| {
                if let IndexEvent::Embed { done, .. } = e {
                    if done >= 10 {
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
            },
        })
        .unwrap();
    assert!(s.cancelled);
    assert!(s.chunks_embedded < 40);
    let again = index(&p);
    assert!(!again.cancelled);
    assert_eq!(again.chunks_embedded + s.chunks_embedded, 40);
    assert_eq!(p.status().unwrap().pending_files, 0);
}

/// A model with a first pass whose vectors live in another space (a permutation of the hash
/// embedder's): a query of one kind must never be compared with vectors of the other.
struct WithFirstPass {
    model: HashEmbedder,
    first: Permuted,
}

struct Permuted(HashEmbedder);

impl Embedder for Permuted {
    fn model_id(&self) -> &str {
        "permuted-hash"
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(self
            .0
            .embed(texts)?
            .into_iter()
            .map(|mut v| {
                v.rotate_left(7);
                v
            })
            .collect())
    }
}

impl Embedder for WithFirstPass {
    fn model_id(&self) -> &str {
        self.model.model_id()
    }
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.model.embed(texts)
    }
    fn first_pass(&self) -> Option<&dyn Embedder> {
        Some(&self.first)
    }
}

#[test]
fn the_first_pass_stands_in_until_the_model_refines_it() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    tree(ws.path());
    let model: Arc<dyn Embedder> = Arc::new(WithFirstPass {
        model: HashEmbedder::new(384),
        first: Permuted(HashEmbedder::new(384)),
    });
    let open_with = |refine: bool| {
        let mut cfg = codemem_core::Config::default();
        cfg.embed.first_pass = true;
        cfg.embed.refine = refine;
        Project::open(
            ws.path(),
            OpenOptions {
                home: home.path().to_path_buf(),
                embedder: Some(model.clone()),
                purpose: "test".into(),
                lock_wait: Duration::ZERO,
                create: true,
                config: Some(cfg),
            },
        )
        .unwrap()
    };
    let question = || {
        let mut q = Query::new("how is the invoice total with tax computed");
        q.explain = true;
        q
    };

    // Refinement off: every chunk has a first-pass vector only, and its file stays pending.
    let p = open_with(false);
    let s = index(&p);
    assert_eq!(s.chunks_embedded, 0);
    assert!(s.chunks_first_pass > 0 && s.chunks_first_pass == s.chunks_upserted);
    let r = p.search(&question()).unwrap();
    assert_eq!(r.freshness.pending_files, 6);
    assert_eq!(r.hits[0].path, "billing/invoice.py", "{:#?}", r.hits);
    let e = r.hits[0].explain.as_ref().unwrap();
    assert_eq!(e.first_pass_rank, Some(1), "{e:?}");
    assert_eq!(
        e.dense_rank, None,
        "the model's query met a first-pass vector: {e:?}"
    );
    // Dense mode is the model only: nothing is embedded by it yet.
    let mut dense = question();
    dense.mode = SearchMode::Dense;
    assert!(p.search(&dense).unwrap().hits.is_empty());
    drop(p);

    // Refinement on: the model replaces every first-pass vector, and the first pass leaves
    // the fusion.
    let p = open_with(true);
    let s = index(&p);
    assert!(s.chunks_embedded > 0);
    let r = p.search(&question()).unwrap();
    assert_eq!(r.freshness.pending_files, 0);
    assert_eq!(r.hits[0].path, "billing/invoice.py", "{:#?}", r.hits);
    assert!(r
        .hits
        .iter()
        .all(|h| h.explain.as_ref().unwrap().first_pass_rank.is_none()));
    let top = p.search(&dense).unwrap();
    assert_eq!(top.hits[0].path, "billing/invoice.py", "{:#?}", top.hits);
}

/// A memory pinned to a symbol follows it when its file is moved; its author is the OS user
/// when no front end named one.
#[test]
fn a_memory_follows_its_symbol_to_a_moved_file() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    tree(ws.path());
    let p = open(home.path(), ws.path(), hash());
    index(&p);
    let m = p
        .remember(codemem_service::NewMemory {
            text: "try_acquire never blocks".into(),
            namespace: "coding".into(),
            path: Some("src/limiter.rs".into()),
            symbol: Some("RateLimiter.try_acquire".into()),
            ..Default::default()
        })
        .unwrap();
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|u| !u.trim().is_empty());
    assert_eq!(m.author, user.map(|u| u.trim().to_string()));

    std::fs::create_dir_all(ws.path().join("src/rate")).unwrap();
    std::fs::rename(
        ws.path().join("src/limiter.rs"),
        ws.path().join("src/rate/limiter.rs"),
    )
    .unwrap();
    index(&p);
    assert!(p.memories_for("src/limiter.rs").is_empty());
    let moved = p.memories_for("src/rate/limiter.rs");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].id, m.id);
    // Durable: a reopened project has it at the new place.
    drop(p);
    let p = open(home.path(), ws.path(), hash());
    assert_eq!(
        p.memory(&m.id).and_then(|m| m.path),
        Some("src/rate/limiter.rs".to_string())
    );
}
