//! Contract suite every `VectorStore` backend must pass.
//!
//! A backend provides a [`Factory`]: given a data location (a fresh temporary directory per
//! case) and a dense dimension, it opens the store there. Calling it again with the same
//! location after the previous store was dropped must reopen the same data (a remote backend can
//! derive its collection prefix from the location). Then either
//!
//! ```ignore
//! codemem_store::vector_store_contract!(|dir: &std::path::Path, dim: usize| {
//!     Ok(Box::new(MyStore::open(dir, dim)?) as Box<dyn codemem_store::VectorStore>)
//! });
//! ```
//!
//! inside a `#[cfg(test)] mod`, which generates one `#[test]` per case, or call [`run_all`].
//! Cases panic (assert) on a broken contract, like any test.

use std::collections::HashSet;
use std::path::Path;

use codemem_core::lexical::{document_vector, query_vector, SparseVec};
use codemem_core::Namespace;
use serde_json::{json, Map, Value};

use crate::{
    ScoredPoint, SearchFilter, SearchVector, StoreError, StorePoint, VectorStore, STATIC_FLAG,
};

/// Opens a store holding `dim`-dimensional dense vectors at a data location.
pub type Factory = dyn Fn(&Path, usize) -> crate::Result<Box<dyn VectorStore>>;

/// Dense dimension the suite uses.
pub const DIM: usize = 8;

/// One contract case.
pub type Case = fn(&Factory);

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("upsert_and_count", upsert_and_count),
    ("lexical_rare_token_first", lexical_rare_token_first),
    ("dense_nearest_first", dense_nearest_first),
    ("sparse_only_then_set_dense", sparse_only_then_set_dense),
    ("set_dense_skips_missing_ids", set_dense_skips_missing_ids),
    (
        "static_vectors_until_set_dense",
        static_vectors_until_set_dense,
    ),
    ("empty_sparse_vectors", empty_sparse_vectors),
    ("filters", filters),
    ("scroll_lists_without_ranking", scroll_lists_without_ranking),
    ("delete_paths_and_ids", delete_paths_and_ids),
    ("reupsert_replaces", reupsert_replaces),
    ("namespaces_are_isolated", namespaces_are_isolated),
    ("reopen_after_flush", reopen_after_flush),
    ("dimension_mismatch_is_error", dimension_mismatch_is_error),
    ("bulk_upsert_then_search", bulk_upsert_then_search),
    ("concurrent_use", concurrent_use),
];

/// Runs every case in turn (each in its own temporary directory).
pub fn run_all(make: &Factory) {
    for (name, case) in CASES {
        eprintln!("vector store contract: {name}");
        case(make);
    }
}

/// Generates one `#[test]` per contract case for the given factory expression
/// (`Fn(&Path, usize) -> Result<Box<dyn VectorStore>>`).
#[macro_export]
macro_rules! vector_store_contract {
    ($factory:expr) => {
        $crate::vector_store_contract!(@cases $factory;
            upsert_and_count, lexical_rare_token_first, dense_nearest_first,
            sparse_only_then_set_dense, set_dense_skips_missing_ids, static_vectors_until_set_dense,
            empty_sparse_vectors, filters,
            scroll_lists_without_ranking, delete_paths_and_ids, reupsert_replaces,
            namespaces_are_isolated, reopen_after_flush, dimension_mismatch_is_error,
            bulk_upsert_then_search, concurrent_use);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let factory = $factory;
                $crate::contract::$case(&factory);
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
    fn open(&self, make: &Factory) -> Box<dyn VectorStore> {
        make(self.dir.path(), DIM).expect("open store")
    }
}

fn coding() -> Namespace {
    Namespace::coding()
}

fn testing() -> Namespace {
    Namespace::testing()
}

/// A deterministic unit-ish vector: mostly axis `axis`, a little of the next one.
fn axis(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[axis % DIM] = 1.0;
    v[(axis + 1) % DIM] = tilt;
    v
}

/// Deterministic pseudo-random vector (xorshift) for bulk tests.
fn pseudo_random(seed: u64) -> Vec<f32> {
    pseudo_random_vector(seed, DIM)
}

/// A deterministic pseudo-random vector of `dim` dimensions in [-1, 1] (xorshift).
pub fn pseudo_random_vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn payload(path: &str, language: &str, symbol: &str, content: &str) -> Map<String, Value> {
    let v = json!({
        "path": path,
        "language": language,
        "symbol": symbol,
        "symbol_lc": symbol.to_lowercase(),
        "kind": "function",
        "start_line": 1,
        "end_line": 3,
        "content": content,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn point(
    id: u64,
    path: &str,
    language: &str,
    symbol: &str,
    content: &str,
    dense: Option<Vec<f32>>,
) -> StorePoint {
    StorePoint {
        id,
        dense,
        sparse: document_vector(path, Some(symbol), content),
        payload: payload(path, language, symbol, content),
    }
}

fn lexical(
    store: &dyn VectorStore,
    ns: &Namespace,
    query: &str,
    filter: &SearchFilter,
    limit: usize,
) -> Vec<ScoredPoint> {
    store
        .search(
            ns,
            &SearchVector::Sparse(query_vector(query)),
            filter,
            limit,
        )
        .expect("lexical search")
}

fn dense(
    store: &dyn VectorStore,
    ns: &Namespace,
    v: Vec<f32>,
    filter: &SearchFilter,
    limit: usize,
) -> Vec<ScoredPoint> {
    store
        .search(ns, &SearchVector::Dense(v), filter, limit)
        .expect("dense search")
}

fn ids(hits: &[ScoredPoint]) -> Vec<u64> {
    hits.iter().map(|h| h.id).collect()
}

fn id_set(hits: &[ScoredPoint]) -> HashSet<u64> {
    hits.iter().map(|h| h.id).collect()
}

fn assert_descending(hits: &[ScoredPoint]) {
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "scores must be best first: {:?}",
        hits.iter().map(|h| h.score).collect::<Vec<_>>()
    );
}

fn no_filter() -> SearchFilter {
    SearchFilter::default()
}

/// Five small functions in three files and two languages; ids 1..=5.
fn sample() -> Vec<StorePoint> {
    vec![
        point(
            1,
            "src/parse.rs",
            "rust",
            "parse_header",
            "fn parse_header(buf: &[u8]) -> Header { todo!() }",
            Some(axis(0, 0.0)),
        ),
        point(
            2,
            "src/parse.rs",
            "rust",
            "parse_body",
            "fn parse_body(buf: &[u8]) -> Body { todo!() }",
            Some(axis(1, 0.0)),
        ),
        point(
            3,
            "src/net.rs",
            "rust",
            "open_socket",
            "fn open_socket(addr: &str) -> Socket { connect(addr) }",
            Some(axis(2, 0.0)),
        ),
        point(
            4,
            "app/main.py",
            "python",
            "main",
            "def main():\n    run_server(port=8080)\n",
            Some(axis(3, 0.0)),
        ),
        point(
            5,
            "app/util.py",
            "python",
            "Parse_Header",
            "def Parse_Header(raw):\n    return raw.split(':')\n",
            Some(axis(4, 0.0)),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Cases

pub fn upsert_and_count(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    assert_eq!(
        store.count(&coding()).unwrap(),
        0,
        "a namespace never written to is empty"
    );
    store
        .upsert(&coding(), Vec::new())
        .expect("empty upsert is a no-op");
    store.upsert(&coding(), sample()).unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 5);
    store
        .upsert(
            &coding(),
            vec![point(6, "src/x.rs", "rust", "x", "fn x() {}", None)],
        )
        .unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 6);
    assert_eq!(store.count(&testing()).unwrap(), 0);
}

pub fn lexical_rare_token_first(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    let mut points: Vec<StorePoint> = (0..20)
        .map(|i| {
            let content = format!(
                "fn step_{i}(value: u32) -> u32 {{ let value = value + 1; value * value }}"
            );
            point(
                100 + i,
                &format!("src/step{i}.rs"),
                "rust",
                &format!("step_{i}"),
                &content,
                None,
            )
        })
        .collect();
    let rare_content = "fn mix(value: u32) -> u32 { zanzibar_frobnicate(value) }";
    points.push(point(7, "src/mix.rs", "rust", "mix", rare_content, None));
    store.upsert(&coding(), points).unwrap();

    // `value` is everywhere (and frequent in every other chunk); `zanzibar` only in one.
    let hits = lexical(&*store, &coding(), "value zanzibar", &no_filter(), 5);
    assert!(!hits.is_empty());
    assert_eq!(
        hits[0].id,
        7,
        "the chunk with the rare token ranks first: {:?}",
        ids(&hits)
    );
    assert_descending(&hits);
    assert!(
        hits.len() < 2 || hits[0].score > hits[1].score * 2.0,
        "the rare token should dominate: {:?}",
        hits.iter().map(|h| (h.id, h.score)).collect::<Vec<_>>()
    );
    assert_eq!(
        hits[0].payload["content"],
        json!(rare_content),
        "payload comes back with hits"
    );
    assert_eq!(hits[0].payload["path"], json!("src/mix.rs"));

    let none = lexical(&*store, &coding(), "nonexistentword", &no_filter(), 5);
    assert!(none.is_empty(), "no shared token, no hit: {:?}", ids(&none));
    let empty = store
        .search(
            &coding(),
            &SearchVector::Sparse(SparseVec::default()),
            &no_filter(),
            5,
        )
        .unwrap();
    assert!(empty.is_empty(), "an empty lexical query matches nothing");
    assert!(
        lexical(&*store, &coding(), "value zanzibar", &no_filter(), 0).is_empty(),
        "limit 0"
    );
    assert_eq!(
        lexical(&*store, &coding(), "value", &no_filter(), 3).len(),
        3,
        "limit is respected"
    );
}

pub fn dense_nearest_first(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let hits = dense(&*store, &coding(), axis(2, 0.3), &no_filter(), 5);
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, 3, "nearest first: {:?}", ids(&hits));
    assert_eq!(hits[1].id, 4, "then the next nearest: {:?}", ids(&hits));
    assert_descending(&hits);
    assert_eq!(hits[0].payload["symbol"], json!("open_socket"));
    // Exact match scores ~1 under cosine, whatever the vector's length.
    let exact = dense(
        &*store,
        &coding(),
        axis(1, 0.0).iter().map(|x| x * 3.0).collect(),
        &no_filter(),
        1,
    );
    assert_eq!(ids(&exact), vec![2]);
    assert!(
        (exact[0].score - 1.0).abs() < 1e-3,
        "cosine of identical directions: {}",
        exact[0].score
    );
    assert!(
        dense(&*store, &coding(), axis(0, 0.0), &no_filter(), 0).is_empty(),
        "limit 0"
    );
    assert!(
        dense(&*store, &testing(), axis(0, 0.0), &no_filter(), 5).is_empty(),
        "empty namespace"
    );
}

pub fn sparse_only_then_set_dense(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let content = "fn quuxify(input: &str) -> String { input.to_uppercase() }";
    store
        .upsert(
            &coding(),
            vec![point(42, "src/quux.rs", "rust", "quuxify", content, None)],
        )
        .unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 6);

    let target = axis(6, 0.1);
    let before = dense(&*store, &coding(), target.clone(), &no_filter(), 10);
    assert!(
        !ids(&before).contains(&42),
        "a point without a dense vector never matches dense search"
    );
    assert_eq!(before.len(), 5);
    let lex = lexical(&*store, &coding(), "quuxify", &no_filter(), 3);
    assert_eq!(
        ids(&lex).first(),
        Some(&42),
        "sparse-only points are searchable lexically"
    );

    store
        .set_dense(&coding(), vec![(42, target.clone())])
        .unwrap();
    assert_eq!(
        store.count(&coding()).unwrap(),
        6,
        "set_dense adds no point"
    );
    let after = dense(&*store, &coding(), target, &no_filter(), 3);
    assert_eq!(
        ids(&after).first(),
        Some(&42),
        "visible to dense search after set_dense: {:?}",
        ids(&after)
    );
    assert_eq!(
        after[0].payload["content"],
        json!(content),
        "payload kept by set_dense"
    );
    let lex = lexical(&*store, &coding(), "quuxify", &no_filter(), 3);
    assert_eq!(
        ids(&lex).first(),
        Some(&42),
        "sparse vector kept by set_dense"
    );
    assert_eq!(
        lex[0].payload,
        payload("src/quux.rs", "rust", "quuxify", content)
    );

    // Replacing a dense vector moves the point.
    store
        .set_dense(&coding(), vec![(42, axis(7, 0.0))])
        .unwrap();
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(7, 0.0), &no_filter(), 1)),
        vec![42]
    );
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(0, 0.0), &no_filter(), 1)),
        vec![1]
    );
    store
        .set_dense(&coding(), Vec::new())
        .expect("empty set_dense is a no-op");
}

pub fn set_dense_skips_missing_ids(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store
        .set_dense(&testing(), vec![(1, axis(0, 0.0))])
        .expect("unknown namespace: nothing to update");
    store
        .upsert(
            &coding(),
            vec![point(1, "a.rs", "rust", "a", "fn a() {}", None)],
        )
        .unwrap();
    // Id 2 was never written (or was deleted while its embedding was computed).
    store
        .set_dense(&coding(), vec![(2, axis(1, 0.0)), (1, axis(0, 0.0))])
        .expect("ids that do not exist are skipped, not an error");
    assert_eq!(
        store.count(&coding()).unwrap(),
        1,
        "set_dense never creates points"
    );
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(0, 0.0), &no_filter(), 5)),
        vec![1]
    );
    assert_eq!(store.count(&testing()).unwrap(), 0);
}

/// The static first pass stores its vector in the dense slot with [`STATIC_FLAG`]; a search
/// picks one kind with `static_dense`, and `set_dense` (the transformer's vector) clears the
/// flag while keeping the rest of the payload.
pub fn static_vectors_until_set_dense(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    let mut a = point(1, "a.rs", "rust", "a", "fn a() {}", Some(axis(0, 0.0)));
    a.payload.insert(STATIC_FLAG.into(), json!(true));
    let b = point(2, "b.rs", "rust", "b", "fn b() {}", Some(axis(0, 0.1)));
    store.upsert(&coding(), vec![a, b]).unwrap();
    let only = |flag| SearchFilter {
        static_dense: Some(flag),
        ..Default::default()
    };
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(0, 0.0), &only(true), 5)),
        vec![1]
    );
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(0, 0.0), &only(false), 5)),
        vec![2]
    );
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(0, 0.0), &no_filter(), 5)),
        vec![1, 2]
    );

    store.set_dense(&coding(), vec![(1, axis(3, 0.0))]).unwrap();
    assert!(dense(&*store, &coding(), axis(3, 0.0), &only(true), 5).is_empty());
    let after = dense(&*store, &coding(), axis(3, 0.0), &only(false), 5);
    assert_eq!(ids(&after).first(), Some(&1));
    assert_eq!(
        after[0].payload,
        payload("a.rs", "rust", "a", "fn a() {}"),
        "set_dense removes the flag and keeps the rest"
    );
}

pub fn empty_sparse_vectors(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    let mut p = point(9, "src/blank.rs", "rust", "blank", "", Some(axis(5, 0.0)));
    p.sparse = SparseVec::default();
    let mut q = point(10, "src/blank2.rs", "rust", "blank2", "", None);
    q.sparse = SparseVec::default();
    store
        .upsert(&coding(), vec![p, q])
        .expect("a chunk without tokens is accepted");
    assert_eq!(store.count(&coding()).unwrap(), 2);
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(5, 0.0), &no_filter(), 5)),
        vec![9]
    );
    store
        .set_dense(&coding(), vec![(10, axis(6, 0.0))])
        .unwrap();
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(6, 0.0), &no_filter(), 1)),
        vec![10]
    );
    assert!(lexical(&*store, &coding(), "blank", &no_filter(), 5).is_empty());
}

pub fn filters(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let all = |f: &SearchFilter| {
        let d = id_set(&dense(&*store, &coding(), axis(0, 0.5), f, 10));
        let l = id_set(&lexical(
            &*store,
            &coding(),
            "parse header body socket main raw",
            f,
            10,
        ));
        let s = id_set(&store.scroll(&coding(), f, 10).unwrap());
        (d, l, s)
    };
    let set = |v: &[u64]| v.iter().copied().collect::<HashSet<u64>>();

    let f = SearchFilter {
        paths: Some(vec!["src/parse.rs".into(), "app/main.py".into()]),
        ..Default::default()
    };
    let (d, l, s) = all(&f);
    assert_eq!(d, set(&[1, 2, 4]), "dense + paths");
    assert_eq!(s, set(&[1, 2, 4]), "scroll + paths");
    assert!(
        l.is_subset(&set(&[1, 2, 4])) && l.contains(&1),
        "lexical + paths: {l:?}"
    );

    let f = SearchFilter {
        language: Some("python".into()),
        ..Default::default()
    };
    let (d, l, s) = all(&f);
    assert_eq!(d, set(&[4, 5]));
    assert_eq!(s, set(&[4, 5]));
    assert!(
        l.is_subset(&set(&[4, 5])) && l.contains(&5),
        "lexical + language: {l:?}"
    );

    let f = SearchFilter {
        symbol_lc: Some("parse_header".into()),
        ..Default::default()
    };
    let (d, l, s) = all(&f);
    assert_eq!(
        d,
        set(&[1, 5]),
        "symbol_lc matches regardless of the symbol's case"
    );
    assert_eq!(s, set(&[1, 5]));
    assert_eq!(l, set(&[1, 5]));

    let f = SearchFilter {
        paths: Some(vec!["src/parse.rs".into(), "app/util.py".into()]),
        language: Some("rust".into()),
        symbol_lc: Some("parse_header".into()),
        ..Default::default()
    };
    let (d, l, s) = all(&f);
    assert_eq!(
        (d, l, s),
        (set(&[1]), set(&[1]), set(&[1])),
        "conditions are conjunctive"
    );

    // Flags (memory / unsaved) are absent on ordinary points; tags match any of the listed ones.
    let mut flagged = point(
        40,
        "memory:40",
        "text",
        "",
        "parse header note",
        Some(axis(0, 0.5)),
    );
    flagged.payload.insert("memory".into(), true.into());
    flagged
        .payload
        .insert("tags".into(), serde_json::json!(["decision", "perf"]));
    let mut unsaved = point(
        41,
        "src/parse.rs",
        "rust",
        "parse_header",
        "parse header draft",
        Some(axis(0, 0.5)),
    );
    unsaved.payload.insert("unsaved".into(), true.into());
    store.upsert(&coding(), vec![flagged, unsaved]).unwrap();
    let (d, _, s) = all(&SearchFilter {
        memory: Some(true),
        ..Default::default()
    });
    assert_eq!((d, s), (set(&[40]), set(&[40])), "memory only");
    let (d, _, _) = all(&SearchFilter {
        memory: Some(false),
        unsaved: Some(false),
        ..Default::default()
    });
    assert!(
        !d.contains(&40) && !d.contains(&41) && d.contains(&1),
        "flags excluded: {d:?}"
    );
    let (_, _, s) = all(&SearchFilter {
        unsaved: Some(true),
        ..Default::default()
    });
    assert_eq!(s, set(&[41]), "unsaved only");
    let (_, _, s) = all(&SearchFilter {
        tags: Some(vec!["perf".into(), "other".into()]),
        ..Default::default()
    });
    assert_eq!(s, set(&[40]), "any tag");
    let (_, _, s) = all(&SearchFilter {
        kind: Some("struct".into()),
        ..Default::default()
    });
    assert!(s.is_empty(), "kind filter");
    let (_, _, s) = all(&SearchFilter {
        kind: Some("function".into()),
        memory: Some(false),
        ..Default::default()
    });
    assert!(s.contains(&1) && !s.contains(&40), "kind filter");
    let (_, _, s) = all(&SearchFilter {
        tags: Some(vec![]),
        ..Default::default()
    });
    assert!(s.is_empty(), "an empty tag list matches nothing");
    store.delete_ids(&coding(), &[40, 41]).unwrap();

    let f = SearchFilter {
        language: Some("cobol".into()),
        ..Default::default()
    };
    let (d, l, s) = all(&f);
    assert!(d.is_empty() && l.is_empty() && s.is_empty());

    let f = SearchFilter {
        paths: Some(Vec::new()),
        ..Default::default()
    };
    let (d, l, s) = all(&f);
    assert!(
        d.is_empty() && l.is_empty() && s.is_empty(),
        "an empty path list matches nothing"
    );
}

pub fn scroll_lists_without_ranking(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    assert!(store
        .scroll(&coding(), &no_filter(), 10)
        .unwrap()
        .is_empty());
    store.upsert(&coding(), sample()).unwrap();
    let listed = store.scroll(&coding(), &no_filter(), 100).unwrap();
    assert_eq!(id_set(&listed), (1..=5).collect());
    let p3 = listed.iter().find(|p| p.id == 3).unwrap();
    assert_eq!(
        p3.payload["path"],
        json!("src/net.rs"),
        "scroll returns payloads"
    );
    assert_eq!(
        store.scroll(&coding(), &no_filter(), 2).unwrap().len(),
        2,
        "limit is respected"
    );
    assert!(
        store.scroll(&coding(), &no_filter(), 0).unwrap().is_empty(),
        "limit 0"
    );
}

pub fn delete_paths_and_ids(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    store.delete_paths(&coding(), &[]).expect("no paths: no-op");
    store.delete_ids(&coding(), &[]).expect("no ids: no-op");
    store
        .delete_paths(&testing(), &["src/parse.rs".into()])
        .expect("unknown namespace: no-op");

    store
        .delete_paths(&coding(), &["src/parse.rs".into(), "nope.rs".into()])
        .unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 3);
    let left = id_set(&store.scroll(&coding(), &no_filter(), 10).unwrap());
    assert_eq!(left, [3, 4, 5].into_iter().collect());
    assert!(!ids(&lexical(&*store, &coding(), "parse_body", &no_filter(), 10)).contains(&2));
    assert!(!ids(&dense(&*store, &coding(), axis(0, 0.0), &no_filter(), 10)).contains(&1));

    store.delete_ids(&coding(), &[4, 999]).unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 2);
    assert_eq!(
        id_set(&store.scroll(&coding(), &no_filter(), 10).unwrap()),
        [3, 5].into_iter().collect()
    );
    assert!(!ids(&dense(&*store, &coding(), axis(3, 0.0), &no_filter(), 10)).contains(&4));
}

pub fn reupsert_replaces(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let new_content = "fn parse_header(buf: &[u8]) -> Header { brandnewtoken(buf) }";
    store
        .upsert(
            &coding(),
            vec![point(
                1,
                "src/header.rs",
                "rust",
                "parse_header",
                new_content,
                Some(axis(5, 0.2)),
            )],
        )
        .unwrap();
    assert_eq!(
        store.count(&coding()).unwrap(),
        5,
        "same id replaces, count unchanged"
    );
    let hit = lexical(&*store, &coding(), "brandnewtoken", &no_filter(), 5);
    assert_eq!(ids(&hit), vec![1]);
    assert_eq!(
        hit[0].payload["path"],
        json!("src/header.rs"),
        "payload replaced"
    );
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(5, 0.2), &no_filter(), 1)),
        vec![1],
        "dense replaced"
    );
    let by_old_path = SearchFilter {
        paths: Some(vec!["src/parse.rs".into()]),
        ..Default::default()
    };
    assert_eq!(
        id_set(&store.scroll(&coding(), &by_old_path, 10).unwrap()),
        [2].into_iter().collect()
    );

    // Re-upserting without a dense vector drops the old one (the whole point is replaced).
    store
        .upsert(
            &coding(),
            vec![point(
                1,
                "src/header.rs",
                "rust",
                "parse_header",
                new_content,
                None,
            )],
        )
        .unwrap();
    assert!(!ids(&dense(&*store, &coding(), axis(5, 0.2), &no_filter(), 10)).contains(&1));
    assert_eq!(
        ids(&lexical(
            &*store,
            &coding(),
            "brandnewtoken",
            &no_filter(),
            5
        )),
        vec![1]
    );
}

pub fn namespaces_are_isolated(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let test_content = "fn test_open_socket() { assert!(open_socket(\"x\").is_ok()) }";
    store
        .upsert(
            &testing(),
            vec![point(
                1,
                "tests/net.rs",
                "rust",
                "test_open_socket",
                test_content,
                Some(axis(2, 0.0)),
            )],
        )
        .unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 5);
    assert_eq!(store.count(&testing()).unwrap(), 1);

    // The same id in two namespaces is two points.
    let t = dense(&*store, &testing(), axis(0, 0.0), &no_filter(), 10);
    assert_eq!(ids(&t), vec![1]);
    assert_eq!(t[0].payload["path"], json!("tests/net.rs"));
    let c = dense(&*store, &coding(), axis(2, 0.0), &no_filter(), 10);
    assert!(
        c.iter().all(|h| h.payload["path"] != json!("tests/net.rs")),
        "testing never leaks into coding"
    );
    let l = lexical(&*store, &coding(), "test_open_socket", &no_filter(), 10);
    assert!(l.iter().all(|h| h.payload["path"] != json!("tests/net.rs")));
    assert_eq!(store.scroll(&testing(), &no_filter(), 10).unwrap().len(), 1);

    store.delete_ids(&testing(), &[1]).unwrap();
    assert_eq!(store.count(&testing()).unwrap(), 0);
    assert_eq!(
        store.count(&coding()).unwrap(),
        5,
        "deletes stay in their namespace"
    );
    store
        .delete_paths(&coding(), &["src/net.rs".into()])
        .unwrap();
    assert_eq!(store.count(&coding()).unwrap(), 4);
    let docs = Namespace::new("documentation").unwrap();
    assert_eq!(store.count(&docs).unwrap(), 0);
}

pub fn reopen_after_flush(make: &Factory) {
    let env = Env::new();
    let content = "fn late_embedding() {}";
    {
        let store = env.open(make);
        store.upsert(&coding(), sample()).unwrap();
        store
            .upsert(
                &coding(),
                vec![point(
                    50,
                    "src/late.rs",
                    "rust",
                    "late_embedding",
                    content,
                    None,
                )],
            )
            .unwrap();
        store
            .upsert(
                &testing(),
                vec![point(
                    60,
                    "tests/t.rs",
                    "rust",
                    "t",
                    "fn t() {}",
                    Some(axis(6, 0.0)),
                )],
            )
            .unwrap();
        store
            .set_dense(&coding(), vec![(50, axis(7, 0.0))])
            .unwrap();
        store.delete_ids(&coding(), &[5]).unwrap();
        store.flush().unwrap();
    }
    {
        let store = env.open(make);
        assert_eq!(store.count(&coding()).unwrap(), 5);
        assert_eq!(store.count(&testing()).unwrap(), 1);
        assert_eq!(
            ids(&dense(&*store, &coding(), axis(7, 0.0), &no_filter(), 1)),
            vec![50]
        );
        assert_eq!(
            ids(&dense(&*store, &coding(), axis(2, 0.0), &no_filter(), 1)),
            vec![3]
        );
        let l = lexical(&*store, &coding(), "late_embedding", &no_filter(), 3);
        assert_eq!(ids(&l).first(), Some(&50));
        assert_eq!(
            l[0].payload,
            payload("src/late.rs", "rust", "late_embedding", content)
        );
        let f = SearchFilter {
            language: Some("python".into()),
            ..Default::default()
        };
        assert_eq!(
            ids(&store.scroll(&coding(), &f, 10).unwrap()),
            vec![4],
            "payload indexes survive"
        );
        assert_eq!(
            ids(&dense(&*store, &testing(), axis(6, 0.0), &no_filter(), 5)),
            vec![60]
        );
        // Still writable after reopening.
        store
            .upsert(
                &coding(),
                vec![point(70, "src/new.rs", "rust", "new", "fn new() {}", None)],
            )
            .unwrap();
        assert_eq!(store.count(&coding()).unwrap(), 6);
        store.flush().unwrap();
    }
    // Reopening with another dense dimension is refused (the model changed), not a panic.
    match make(env.dir.path(), DIM * 2) {
        Err(_) => {}
        Ok(store) => {
            let r = store.upsert(
                &coding(),
                vec![point(
                    80,
                    "x.rs",
                    "rust",
                    "x",
                    "fn x() {}",
                    Some(vec![0.5; DIM * 2]),
                )],
            );
            assert!(
                r.is_err(),
                "data written with {DIM} dimensions must not accept {}",
                DIM * 2
            );
        }
    }
}

pub fn dimension_mismatch_is_error(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let bad = point(
        99,
        "bad.rs",
        "rust",
        "bad",
        "fn bad() {}",
        Some(vec![1.0; DIM + 1]),
    );
    let good = point(
        98,
        "good.rs",
        "rust",
        "good",
        "fn good() {}",
        Some(axis(0, 0.0)),
    );
    match store.upsert(&coding(), vec![good, bad]) {
        Err(StoreError::Dimension { expected, got }) => assert_eq!((expected, got), (DIM, DIM + 1)),
        other => panic!("expected a dimension error, got {other:?}"),
    }
    assert!(matches!(
        store.set_dense(&coding(), vec![(1, vec![1.0; DIM - 1])]),
        Err(StoreError::Dimension { .. })
    ));
    assert!(matches!(
        store.search(
            &coding(),
            &SearchVector::Dense(vec![1.0; 3]),
            &no_filter(),
            5
        ),
        Err(StoreError::Dimension { .. })
    ));
    assert!(matches!(
        store.search(&coding(), &SearchVector::Dense(Vec::new()), &no_filter(), 5),
        Err(StoreError::Dimension { .. })
    ));
    // Nothing was half-written, and the store still works.
    assert_eq!(store.count(&coding()).unwrap(), 5);
    assert_eq!(
        ids(&dense(&*store, &coding(), axis(1, 0.0), &no_filter(), 1)),
        vec![2]
    );
}

pub fn bulk_upsert_then_search(make: &Factory) {
    const N: u64 = 1000;
    let env = Env::new();
    let store = env.open(make);
    let points: Vec<StorePoint> = (0..N)
        .map(|i| {
            let sym = format!("handler_{i}");
            let content = format!("fn {sym}(req: Request) -> Response {{ route(req, {i}) }}");
            let dense = (i % 3 != 0).then(|| pseudo_random(i));
            point(
                i,
                &format!("src/h{}.rs", i / 10),
                if i % 2 == 0 { "rust" } else { "go" },
                &sym,
                &content,
                dense,
            )
        })
        .collect();
    store.upsert(&coding(), points).unwrap();
    assert_eq!(store.count(&coding()).unwrap(), N);

    let check = |store: &dyn VectorStore| {
        for i in [1u64, 2, 500, 997, 998] {
            let hits = dense(store, &coding(), pseudo_random(i), &no_filter(), 5);
            assert_eq!(
                hits.first().map(|h| h.id),
                Some(i),
                "exact vector finds its point"
            );
            assert_eq!(hits.len(), 5);
            assert_descending(&hits);
        }
        for i in [0u64, 3, 499, 999] {
            let hits = lexical(store, &coding(), &format!("handler_{i}"), &no_filter(), 5);
            assert_eq!(
                hits.first().map(|h| h.id),
                Some(i),
                "identifier finds its chunk: {:?}",
                ids(&hits)
            );
        }
        let f = SearchFilter {
            paths: Some(vec!["src/h42.rs".into()]),
            language: Some("go".into()),
            ..Default::default()
        };
        let hits = dense(store, &coding(), pseudo_random(7), &f, 20);
        let expected: HashSet<u64> = (420..430).filter(|i| i % 2 == 1 && i % 3 != 0).collect();
        assert_eq!(id_set(&hits), expected, "filtered dense search");
        let sparse_only = (0..N).filter(|i| i % 3 == 0).count();
        let all_dense = dense(store, &coding(), pseudo_random(1), &no_filter(), N as usize);
        assert_eq!(
            all_dense.len(),
            N as usize - sparse_only,
            "only points with a dense vector"
        );
    };
    check(&*store);
    store.optimize(&coding()).unwrap();
    store
        .optimize(&testing())
        .expect("optimizing an empty namespace is a no-op");
    assert_eq!(
        store.count(&coding()).unwrap(),
        N,
        "optimize keeps every point"
    );
    check(&*store);
}

pub fn concurrent_use(make: &Factory) {
    let env = Env::new();
    let store = env.open(make);
    store.upsert(&coding(), sample()).unwrap();
    let store = &*store;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                let ns = if t % 2 == 0 { coding() } else { testing() };
                for i in 0..25u64 {
                    let id = 1000 + t * 100 + i;
                    let sym = format!("worker_{t}_{i}");
                    store
                        .upsert(
                            &ns,
                            vec![point(id, "src/w.rs", "rust", &sym, "fn w() {}", None)],
                        )
                        .unwrap();
                    store.set_dense(&ns, vec![(id, pseudo_random(id))]).unwrap();
                    let hits = dense(store, &ns, pseudo_random(id), &no_filter(), 1);
                    assert_eq!(ids(&hits), vec![id]);
                    let _ = lexical(store, &coding(), "parse", &no_filter(), 3);
                }
            });
        }
    });
    assert_eq!(store.count(&coding()).unwrap(), 5 + 50);
    assert_eq!(store.count(&testing()).unwrap(), 50);
}
