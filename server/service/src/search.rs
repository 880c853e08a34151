//! Hybrid search: lexical (BM25 over identifier-aware tokens) and dense (the local model)
//! candidates from every requested namespace, ranked by `rank` (weighted reciprocal rank
//! fusion plus code-aware signals); an exact identifier query puts its definition first.

use std::collections::HashMap;
use std::time::Instant;

use codemem_core::lexical::{identifier_query, query_vector};
use codemem_core::{ChunkKind, Explain, Hit, Language, Namespace, Query, SearchMode};
use codemem_store::{ScoredPoint, SearchFilter, SearchVector};
use globset::Glob;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, ServiceError};
use crate::manifest;
use crate::project::{git_head, Project};
use crate::rank::{self, Candidate, QueryFeatures};

const SNIPPET_MAX_LINES: usize = 40;
const SNIPPET_MAX_BYTES: usize = 4000;

/// How current the index behind an answer is.
#[derive(Debug, Clone, Serialize, PartialEq, Deserialize)]
pub struct Freshness {
    pub indexed_files: usize,
    /// Files whose dense vectors are not all stored (still found lexically).
    pub pending_files: usize,
    pub last_indexed_at: Option<u64>,
    pub last_commit: Option<String>,
    pub head_commit: Option<String>,
    /// The checked-out commit differs from the one last indexed.
    pub stale: bool,
    /// Files whose unsaved editor buffer is searched instead of the disk version.
    pub unsaved_files: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    pub hits: Vec<Hit>,
    pub mode: SearchMode,
    /// False when the model is not loaded: results are lexical only.
    pub dense_available: bool,
    pub freshness: Freshness,
    pub took_ms: f64,
    /// Hits left out to fit `max_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_hits: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

type Key = (Namespace, u64);

#[derive(Clone, Copy)]
enum List {
    Lexical,
    Dense,
    FirstPass,
}

fn candidate(p: &Map<String, Value>) -> Candidate {
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    Candidate {
        path: s("path").unwrap_or("").to_string(),
        namespace: s("namespace").unwrap_or("").to_string(),
        symbol: s("symbol").map(str::to_string),
        ..Candidate::default()
    }
}

impl Project {
    /// Hybrid search over code and docs (memories are left to `recall`).
    pub fn search(&self, q: &Query) -> Result<SearchResponse> {
        self.search_with(
            q,
            SearchFilter {
                memory: Some(false),
                ..Default::default()
            },
        )
    }

    /// `search` with extra store conditions (memory / tags / kind).
    pub(crate) fn search_with(&self, q: &Query, base: SearchFilter) -> Result<SearchResponse> {
        let started = Instant::now();
        q.validate()?;
        let mut namespaces = self.resolve_namespaces(&q.namespaces)?;
        let features = QueryFeatures::new(&q.text);
        // A question about tests searches them too, unless the caller chose the namespaces.
        if q.namespaces.is_empty() && rank::asks_for(&features.asking, "tests") {
            if let Ok(t) = self.cfg.namespace("testing") {
                if !namespaces.contains(&t) {
                    namespaces.push(t);
                }
            }
        }
        if q.mode == SearchMode::Dense && self.embedder.is_none() {
            return Err(ServiceError::Embed(codemem_embed::EmbedError::Model(
                "dense search needs the embedding model; run `scripts/setup`, or search with --mode lexical".into(),
            )));
        }
        let mut filter = SearchFilter {
            language: q.language.map(|l| l.as_str().to_string()),
            ..base
        };
        let unsaved_paths = self.overlay_paths();
        if let Some(glob) = &q.path_glob {
            let m = Glob::new(glob)
                .map_err(|e| codemem_core::CoreError::InvalidGlob {
                    glob: glob.clone(),
                    reason: e.to_string(),
                })?
                .compile_matcher();
            let files = self.files.read().unwrap_or_else(|e| e.into_inner());
            let mut paths: Vec<String> = files
                .keys()
                .filter(|p| m.is_match(p.as_str()))
                .cloned()
                .collect();
            paths.extend(
                unsaved_paths
                    .iter()
                    .filter(|p| m.is_match(p.as_str()) && !files.contains_key(*p))
                    .cloned(),
            );
            filter.paths = Some(paths);
        }
        let freshness = self.freshness()?;
        let dense_available = self.embedder.is_some();
        if filter.paths.as_ref().is_some_and(|p| p.is_empty()) {
            return Ok(SearchResponse {
                hits: vec![],
                mode: q.mode,
                dense_available,
                freshness,
                took_ms: ms(started),
                omitted_hits: 0,
            });
        }
        // Disk chunks of files with an unsaved buffer are dropped below: fetch enough to cover them.
        let depth = (q.k * 4).max(40) + if unsaved_paths.is_empty() { 0 } else { 40 };

        let mut lists: Vec<(List, Vec<(Key, ScoredPoint)>)> = Vec::new();
        if q.mode != SearchMode::Dense {
            let sv = SearchVector::Sparse(query_vector(&q.text));
            lists.push((
                List::Lexical,
                self.ranked(&namespaces, &sv, &filter, depth)?,
            ));
        }
        if q.mode != SearchMode::Lexical {
            if let Some(e) = &self.embedder {
                // While files wait for the model, some dense slots hold first-pass vectors:
                // each model's query vector meets only its own kind.
                let refining = freshness.pending_files > 0;
                let only = |first_pass: bool| SearchFilter {
                    static_dense: refining.then_some(first_pass),
                    ..filter.clone()
                };
                let v = e.embed_query(&q.text)?;
                lists.push((
                    List::Dense,
                    self.ranked(&namespaces, &SearchVector::Dense(v), &only(false), depth)?,
                ));
                let first_pass = e.first_pass().filter(|_| {
                    refining
                        && q.mode == SearchMode::Hybrid
                        && self.cfg.search.ranking.first_pass_weight > 0.0
                });
                if let Some(fp) = first_pass {
                    let v = fp.embed_query(&q.text)?;
                    if v.iter().any(|x| *x != 0.0) {
                        lists.push((
                            List::FirstPass,
                            self.ranked(&namespaces, &SearchVector::Dense(v), &only(true), depth)?,
                        ));
                    }
                }
            }
        }

        // Every chunk either list found, with its rank in each.
        let mut found: HashMap<Key, (ScoredPoint, Candidate)> = HashMap::new();
        // One list that found anything (lexical mode, dense mode, or hybrid before the model
        // has embedded anything and without a first pass) keeps its own scores: fusing it with
        // nothing would only flatten them.
        let single_list = lists.iter().filter(|(_, l)| !l.is_empty()).count() <= 1;
        for (which, list) in lists {
            for (rank, (key, p)) in list.into_iter().enumerate() {
                let list_score = p.score;
                let (_, c) = found.entry(key).or_insert_with(|| {
                    let c = candidate(&p.payload);
                    (p, c)
                });
                c.list_score = list_score;
                match which {
                    List::Lexical => c.lexical_rank = Some(rank),
                    List::Dense => c.dense_rank = Some(rank),
                    List::FirstPass => c.first_pass_rank = Some(rank),
                }
            }
        }
        // An identifier query wants the chunk that defines it, even if neither list has it.
        if let Some(ident) = identifier_query(&q.text) {
            let by_symbol = SearchFilter {
                symbol_lc: Some(ident.to_lowercase()),
                ..filter.clone()
            };
            for ns in &namespaces {
                for p in self.store.scroll(ns, &by_symbol, 20)? {
                    found.entry((ns.clone(), p.id)).or_insert_with(|| {
                        let c = candidate(&p.payload);
                        (p, c)
                    });
                }
            }
        }
        // Drop what this answer must not show before ranking, so a dropped chunk (the disk copy
        // of a file with an unsaved buffer, another process's buffer) takes no file's "first
        // chunk" place in the per-file decay. A fixed order keeps ties reproducible.
        let mut kept: Vec<(Key, (ScoredPoint, Candidate))> = found
            .into_iter()
            .filter(|(_, (p, _))| {
                let unsaved = p
                    .payload
                    .get("unsaved")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if unsaved {
                    // Team mode: another process's unsaved buffer is not ours to show.
                    return p
                        .payload
                        .get("owner")
                        .and_then(Value::as_str)
                        .is_none_or(|o| Some(o) == self.team_owner());
                }
                !p.payload
                    .get("path")
                    .and_then(Value::as_str)
                    .is_some_and(|path| unsaved_paths.contains(path))
            })
            .collect();
        kept.sort_by(|a, b| (a.0 .0.as_str(), a.0 .1).cmp(&(b.0 .0.as_str(), b.0 .1)));
        let (points, cands): (Vec<ScoredPoint>, Vec<Candidate>) =
            kept.into_iter().map(|(_, v)| v).unzip();
        let scored = rank::score_all(&features, &cands, &self.cfg.search.ranking, single_list);
        let mut ranked: Vec<(f32, Explain, ScoredPoint)> = scored
            .into_iter()
            .zip(points)
            .map(|((s, e), p)| (s, e, p))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.id.cmp(&b.2.id)));
        let mut hits: Vec<Hit> = ranked
            .into_iter()
            .take(q.k)
            .filter_map(|(s, e, p)| {
                let mut h = to_hit(s, &p.payload, q.full_text)?;
                h.explain = q.explain.then_some(e);
                Some(h)
            })
            .collect();
        let omitted_hits = match crate::context::max_tokens(q.max_tokens)? {
            Some(max) => crate::context::fit_hits(&mut hits, max, |h| &mut h.snippet),
            None => 0,
        };
        Ok(SearchResponse {
            hits,
            mode: q.mode,
            dense_available,
            freshness,
            took_ms: ms(started),
            omitted_hits,
        })
    }

    /// One ranked list across namespaces. Scores of one kind (cosine or BM25) are comparable
    /// enough across shards to merge by score.
    fn ranked(
        &self,
        namespaces: &[Namespace],
        v: &SearchVector,
        filter: &SearchFilter,
        depth: usize,
    ) -> Result<Vec<(Key, ScoredPoint)>> {
        let mut all = Vec::new();
        for ns in namespaces {
            for p in self.store.search(ns, v, filter, depth)? {
                all.push(((ns.clone(), p.id), p));
            }
        }
        all.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        all.truncate(depth);
        Ok(all)
    }

    pub(crate) fn resolve_namespaces(&self, requested: &[Namespace]) -> Result<Vec<Namespace>> {
        if requested.is_empty() {
            return Ok(self.cfg.default_namespaces());
        }
        let mut out = Vec::new();
        for ns in requested {
            let ns = self.cfg.namespace(ns.as_str())?;
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        Ok(out)
    }

    pub fn freshness(&self) -> Result<Freshness> {
        let unsaved_files = self.overlay_paths().len();
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        let last_commit: Option<String> =
            manifest::get_meta::<Option<String>>(self.kv.as_ref(), "last_commit")?.flatten();
        let head_commit = git_head(&self.root);
        Ok(Freshness {
            indexed_files: files.len(),
            pending_files: files.values().filter(|e| !e.complete).count(),
            last_indexed_at: manifest::get_meta(self.kv.as_ref(), "indexed_at")?,
            stale: last_commit.is_some() && head_commit.is_some() && last_commit != head_commit,
            last_commit,
            head_commit,
            unsaved_files,
        })
    }
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

fn snippet(content: &str) -> String {
    let mut out = String::new();
    for (i, line) in content.lines().enumerate() {
        if i >= SNIPPET_MAX_LINES || out.len() + line.len() > SNIPPET_MAX_BYTES {
            out.push('…');
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A hit from a point's payload; `full_text`: the chunk's whole text instead of a snippet.
pub(crate) fn to_hit(score: f32, p: &Map<String, Value>, full_text: bool) -> Option<Hit> {
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
    Some(Hit {
        path: s("path")?.to_string(),
        start_line: n("start_line"),
        end_line: n("end_line"),
        symbol: s("symbol").map(str::to_string),
        kind: s("kind")
            .and_then(ChunkKind::parse)
            .unwrap_or(ChunkKind::Block),
        namespace: Namespace::new(s("namespace")?).ok()?,
        language: s("language")
            .and_then(Language::parse)
            .unwrap_or(Language::Text),
        score,
        snippet: {
            let content = s("content").unwrap_or("");
            if full_text {
                content.to_string()
            } else {
                snippet(content)
            }
        },
        unsaved: p.get("unsaved").and_then(Value::as_bool).unwrap_or(false),
        root: None,
        memory_id: s("memory_id").map(str::to_string),
        explain: None,
    })
}
