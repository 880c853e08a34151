//! Token-budgeted context for agents: the chunks most useful for a question, merged per file
//! in file order, trimmed to fit a budget, with what was left out and how to get it.
//!
//! Every front end (MCP `get_context`, `codemem context`) gets the same bundle and the same
//! rendering (`ContextBundle::text`), and the budget bounds that rendered text.

use std::collections::HashMap;

use codemem_core::{Hit, Namespace};
use serde::{Deserialize, Serialize};

use crate::{Result, ServiceError};

pub const DEFAULT_BUDGET: usize = 4000;
pub const MIN_BUDGET: usize = 200;
pub const MAX_BUDGET: usize = 100_000;
/// Search hits considered for one bundle.
pub const CANDIDATES: usize = 40;
/// Below this many tokens left, a piece is not started (a few lines say little).
const MIN_PIECE: usize = 40;
const MORE: &str = "call get_context again with a larger budget_tokens, or read a listed range (path:start-end) directly";
/// Left-out entries kept listed while pieces can still be dropped instead.
const KEEP_LISTED: usize = 3;
/// Entries listed under "left out" at most; the rest are counted.
const MAX_OMITTED_LISTED: usize = 20;

/// How tokens are counted: a stated estimate, not a tokenizer.
pub const TOKEN_BOUND: &str =
    "ceil(ASCII bytes / 3) + 1 per byte of non-ASCII text: an over-estimate for code and English (LLM tokenizers average 3.5-4.5 bytes a token there) and a strict bound for non-ASCII text under byte-level tokenizers; dense punctuation can take more";

/// The token estimate of `s` (see [`TOKEN_BOUND`]).
pub fn estimate_tokens(s: &str) -> usize {
    let (mut ascii, mut other) = (0usize, 0usize);
    for c in s.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += c.len_utf8();
        }
    }
    ascii.div_ceil(3) + other
}

/// A request for token-budgeted context (`Workspace::context`, `codemem context`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContextQuery {
    /// The question; may be empty when `symbol` or `location` says what the context is about.
    #[serde(default)]
    pub text: String,
    /// Context about this definition (its name: `parse_config`, `Config.parse`).
    #[serde(default)]
    pub symbol: Option<String>,
    /// Context about the definition around this place: a file (relative to its root, or
    /// absolute) and a 1-based line.
    #[serde(default)]
    pub location: Option<ContextLocation>,
    /// `None`: [`DEFAULT_BUDGET`].
    #[serde(default)]
    pub budget_tokens: Option<usize>,
    /// Empty: the configured default namespaces.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub path_glob: Option<String>,
}

/// A place in a file (see [`ContextQuery::location`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContextLocation {
    pub path: String,
    pub line: u32,
}

/// What a context request without exactly one subject is told.
pub const ONE_SUBJECT: &str =
    "give exactly one of query (a question), symbol (a definition's name) or location ({path, line})";

/// The search behind a context request, and its checked budget. A symbol is searched as its
/// name (an identifier query ranks its definition first); a location must have been turned
/// into its definition's name (`Workspace::context`).
pub fn search_for(q: &ContextQuery) -> Result<(codemem_core::Query, usize)> {
    let budget = budget(q.budget_tokens)?;
    let text = match (&q.symbol, q.location.is_some(), q.text.trim().is_empty()) {
        (Some(s), false, true) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 512 {
                return Err(ServiceError::InvalidInput(
                    "symbol must be a definition's name of 1-512 bytes".into(),
                ));
            }
            s.to_string()
        }
        (None, false, _) => q.text.clone(),
        _ => return Err(ServiceError::InvalidInput(ONE_SUBJECT.into())),
    };
    let mut query = codemem_core::Query::new(text);
    query.namespaces = q.namespaces.clone();
    query.path_glob = q.path_glob.clone();
    query.k = CANDIDATES;
    query.full_text = true;
    Ok((query, budget))
}

/// What a front end prints around each hit's snippet (path, lines, symbol, score), counted
/// per hit when search and recall answers are fitted to `max_tokens`.
pub const HIT_OVERHEAD_TOKENS: usize = 30;

/// Checks an optional `max_tokens` for search and recall answers.
pub fn max_tokens(requested: Option<usize>) -> Result<Option<usize>> {
    match requested {
        Some(b) if !(MIN_BUDGET..=MAX_BUDGET).contains(&b) => Err(ServiceError::InvalidInput(
            format!("max_tokens must be between {MIN_BUDGET} and {MAX_BUDGET}, got {b}"),
        )),
        other => Ok(other),
    }
}

/// Fits ranked hits to `max_tokens`: each costs [`HIT_OVERHEAD_TOKENS`] plus its snippet's
/// estimate; the first one that does not fit whole is cut at a line (ending in `…`) when a
/// line fits, and the rest are dropped. Returns how many hits were dropped.
pub fn fit_hits<T>(
    hits: &mut Vec<T>,
    max_tokens: usize,
    snippet: impl Fn(&mut T) -> &mut String,
) -> usize {
    let mut used = 0;
    let mut keep = hits.len();
    for (i, h) in hits.iter_mut().enumerate() {
        let s = snippet(h);
        let cost = HIT_OVERHEAD_TOKENS + estimate_tokens(s);
        if used + cost <= max_tokens {
            used += cost;
            continue;
        }
        // Parts are estimated separately: their sum bounds the whole's estimate.
        let room = max_tokens.saturating_sub(used + HIT_OVERHEAD_TOKENS + estimate_tokens("…"));
        let (mut cut, mut cut_tokens) = (String::new(), 0);
        for line in s.split_inclusive('\n') {
            let t = estimate_tokens(line);
            if cut_tokens + t > room {
                break;
            }
            cut.push_str(line);
            cut_tokens += t;
        }
        keep = if cut.is_empty() {
            i
        } else {
            cut.push('…');
            *s = cut;
            i + 1
        };
        break;
    }
    let dropped = hits.len() - keep;
    hits.truncate(keep);
    dropped
}

/// Checks a requested budget (`None`: the default).
pub fn budget(requested: Option<usize>) -> Result<usize> {
    let b = requested.unwrap_or(DEFAULT_BUDGET);
    if !(MIN_BUDGET..=MAX_BUDGET).contains(&b) {
        return Err(ServiceError::InvalidInput(format!(
            "budget_tokens must be between {MIN_BUDGET} and {MAX_BUDGET}, got {b}"
        )));
    }
    Ok(b)
}

/// One contiguous piece of a file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextPiece {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub language: String,
    /// Definitions whose chunks make up the piece.
    pub symbols: Vec<String>,
    pub text: String,
    /// The piece was cut short to fit the budget (`end_line` is where it stops).
    pub cut: bool,
    /// Its share of the budget, rendering included.
    pub tokens: usize,
    /// Best rank of its hits (0 = the top hit).
    #[serde(skip, default)]
    rank: usize,
}

/// A relevant piece that did not fit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Omitted {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub tokens: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextBundle {
    pub budget_tokens: usize,
    /// Tokens of `text()` (≤ `budget_tokens`).
    pub tokens_used: usize,
    pub token_count: String,
    /// Files in order of their best hit; pieces of one file in line order.
    pub pieces: Vec<ContextPiece>,
    pub omitted: Vec<Omitted>,
    /// What to do to see the rest.
    pub more: Option<String>,
    /// How many of `omitted` the text lists (the rest are counted).
    pub omitted_listed: usize,
}

/// A path as the bundle shows it: with its root when several roots are open.
fn shown(root: Option<&str>, path: &str) -> String {
    match root {
        Some(r) => format!("{r}/{path}"),
        None => path.to_string(),
    }
}

fn header(root: Option<&str>, path: &str, start: u32, end: u32, cut: bool) -> String {
    let shown = shown(root, path);
    format!(
        "## {shown}:{start}-{end}{}\n",
        if cut {
            " (cut here to fit the budget)"
        } else {
            ""
        }
    )
}

fn render_piece(
    root: Option<&str>,
    path: &str,
    start: u32,
    end: u32,
    cut: bool,
    body: &str,
) -> String {
    let mut s = header(root, path, start, end, cut);
    s.push_str("```\n");
    s.push_str(body);
    if !body.ends_with('\n') {
        s.push('\n');
    }
    if cut {
        s.push_str("…\n");
    }
    s.push_str("```\n");
    s
}

/// A file's lines from several chunks, merged where they overlap or touch.
struct Segment {
    root: Option<String>,
    path: String,
    language: String,
    /// Best (lowest) rank of its hits.
    rank: usize,
    start: u32,
    lines: Vec<String>,
    symbols: Vec<String>,
}

impl Segment {
    fn end(&self) -> u32 {
        self.start + self.lines.len() as u32 - 1
    }
}

/// (root, path) of a file.
type FileKey = (Option<String>, String);

fn segments(hits: &[Hit]) -> Vec<Segment> {
    // Files in order of their best hit, each with its (rank, hit)s.
    let mut files: Vec<(FileKey, Vec<(usize, &Hit)>)> = Vec::new();
    let mut at: HashMap<FileKey, usize> = HashMap::new();
    for (rank, h) in hits.iter().enumerate() {
        if h.memory_id.is_some() || h.snippet.trim().is_empty() {
            continue;
        }
        let key = (h.root.clone(), h.path.clone());
        let i = *at.entry(key.clone()).or_insert_with(|| {
            files.push((key, Vec::new()));
            files.len() - 1
        });
        files[i].1.push((rank, h));
    }
    let mut out = Vec::new();
    for ((root, path), mut hs) in files {
        hs.sort_by_key(|(_, h)| (h.start_line, h.end_line));
        let mut cur: Option<Segment> = None;
        for (rank, h) in hs {
            let lines: Vec<String> = h.snippet.lines().map(str::to_string).collect();
            if lines.is_empty() {
                continue;
            }
            let start = h.start_line.max(1);
            match &mut cur {
                Some(seg) if start <= seg.end() + 1 => {
                    // Overlapping or adjacent: append the lines past the segment's end.
                    let skip = (seg.end() + 1).saturating_sub(start) as usize;
                    seg.lines.extend(lines.into_iter().skip(skip));
                    seg.rank = seg.rank.min(rank);
                    if let Some(s) = &h.symbol {
                        if !seg.symbols.contains(s) {
                            seg.symbols.push(s.clone());
                        }
                    }
                }
                _ => {
                    if let Some(done) = cur.take() {
                        out.push(done);
                    }
                    cur = Some(Segment {
                        root: root.clone(),
                        path: path.clone(),
                        language: h.language.as_str().to_string(),
                        rank,
                        start,
                        lines,
                        symbols: h.symbol.iter().cloned().collect(),
                    });
                }
            }
        }
        out.extend(cur);
    }
    out
}

/// Packs ranked hits (with their full text, `Query::full_text`) into at most `budget` tokens
/// of rendered text. Segments go in by rank; one that does not fit is cut at a line when at
/// least [`MIN_PIECE`] tokens are left, else listed as left out. A footer that lists what was
/// left out is part of the budget.
pub fn pack(hits: &[Hit], budget: usize) -> ContextBundle {
    let mut segs = segments(hits);
    segs.sort_by_key(|s| s.rank);
    // Room for the footer (what was left out); `fit` below makes sure of the rest.
    let reserve = (budget / 5).min(MAX_OMITTED_LISTED * 25 + 60);
    let mut left = budget - reserve;
    let mut taken: Vec<(usize, ContextPiece)> = Vec::new();
    let mut omitted = Vec::new();
    for s in &segs {
        let body = s.lines.join("\n");
        let whole = render_piece(s.root.as_deref(), &s.path, s.start, s.end(), false, &body);
        let cost = estimate_tokens(&whole);
        if cost <= left {
            left -= cost;
            taken.push((s.rank, piece(s, s.end(), false, body, cost)));
            continue;
        }
        if left >= MIN_PIECE {
            // As many whole lines as fit, with the cut marker.
            let mut n = s.lines.len();
            while n > 0 {
                let end = s.start + n as u32 - 1;
                let body = s.lines[..n].join("\n");
                let text = render_piece(s.root.as_deref(), &s.path, s.start, end, true, &body);
                let c = estimate_tokens(&text);
                if c <= left {
                    left -= c;
                    taken.push((s.rank, piece(s, end, true, body, c)));
                    // The rest of the segment is left out: say where it is.
                    let rest = s.lines[n..].join("\n");
                    omitted.push(Omitted {
                        root: s.root.clone(),
                        path: s.path.clone(),
                        start_line: end + 1,
                        end_line: s.end(),
                        tokens: estimate_tokens(&rest),
                    });
                    break;
                }
                n = n * 3 / 4; // shrink fast; the final fit is checked above
            }
            if n > 0 {
                continue;
            }
        }
        omitted.push(Omitted {
            root: s.root.clone(),
            path: s.path.clone(),
            start_line: s.start,
            end_line: s.end(),
            tokens: cost,
        });
    }
    // Files in order of their best piece, pieces of one file in line order.
    let mut file_rank: HashMap<FileKey, usize> = HashMap::new();
    for (rank, p) in &taken {
        let r = file_rank
            .entry((p.root.clone(), p.path.clone()))
            .or_insert(*rank);
        *r = (*r).min(*rank);
    }
    taken.sort_by_key(|(_, p)| {
        (
            file_rank[&(p.root.clone(), p.path.clone())],
            p.path.clone(),
            p.start_line,
        )
    });
    let pieces: Vec<ContextPiece> = taken.into_iter().map(|(_, p)| p).collect();
    let more = (!omitted.is_empty() || pieces.iter().any(|p| p.cut)).then(|| MORE.to_string());
    let listed = omitted.len().min(MAX_OMITTED_LISTED);
    let mut b = ContextBundle {
        budget_tokens: budget,
        tokens_used: 0,
        token_count: TOKEN_BOUND.to_string(),
        pieces,
        omitted,
        more,
        omitted_listed: listed,
    };
    b.fit();
    b
}

fn piece(s: &Segment, end: u32, cut: bool, text: String, tokens: usize) -> ContextPiece {
    ContextPiece {
        rank: s.rank,
        root: s.root.clone(),
        path: s.path.clone(),
        start_line: s.start,
        end_line: end,
        language: s.language.clone(),
        symbols: s.symbols.clone(),
        text,
        cut,
        tokens,
    }
}

impl ContextBundle {
    /// Makes the whole text fit the budget: list fewer left-out entries (counting the rest),
    /// then leave out the lowest-ranked pieces.
    fn fit(&mut self) {
        loop {
            let t = estimate_tokens(&self.text());
            if t <= self.budget_tokens {
                self.tokens_used = t;
                return;
            }
            // Keep the first few left-out ranges listed; drop the lowest-ranked piece instead.
            if self.omitted_listed > KEEP_LISTED.min(self.omitted.len()) {
                self.omitted_listed -= 1;
                continue;
            }
            let Some(worst) = (0..self.pieces.len()).max_by_key(|&i| self.pieces[i].rank) else {
                if self.omitted_listed > 0 {
                    self.omitted_listed -= 1;
                    continue;
                }
                // Only fixed messages are left; MIN_BUDGET covers them.
                self.tokens_used = t;
                return;
            };
            let p = self.pieces.remove(worst);
            self.omitted.insert(
                0,
                Omitted {
                    root: p.root,
                    path: p.path,
                    start_line: p.start_line,
                    end_line: p.end_line,
                    tokens: p.tokens,
                },
            );
            self.more.get_or_insert_with(|| MORE.to_string());
        }
    }

    /// The bundle as one text for a model: each piece with its `path:start-end` header, then
    /// what was left out (within the budget).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            out.push_str(&render_piece(
                p.root.as_deref(),
                &p.path,
                p.start_line,
                p.end_line,
                p.cut,
                &p.text,
            ));
        }
        if self.pieces.is_empty() {
            out.push_str(if self.omitted.is_empty() {
                "No indexed code or docs matched.\n"
            } else {
                "Nothing fit the budget.\n"
            });
        }
        if !self.omitted.is_empty() {
            out.push_str("Left out (did not fit the budget):\n");
            for o in self.omitted.iter().take(self.omitted_listed) {
                out.push_str(&format!(
                    "- {}:{}-{} (~{} tokens)\n",
                    shown(o.root.as_deref(), &o.path),
                    o.start_line,
                    o.end_line,
                    o.tokens
                ));
            }
            if self.omitted.len() > self.omitted_listed {
                out.push_str(&format!(
                    "- and {} more\n",
                    self.omitted.len() - self.omitted_listed
                ));
            }
        }
        if let Some(m) = &self.more {
            out.push_str(m);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_fitted_to_max_tokens_in_rank_order() {
        let line = "let value = compute(input);\n"; // 28 ASCII bytes: 10 tokens
        let mut hits: Vec<String> = (0..5).map(|_| line.repeat(10)).collect(); // 30 + 100 each
        let dropped = fit_hits(&mut hits, 300, |h| h);
        // Two whole hits (260), then the third cut to what fits in the rest.
        assert_eq!(dropped, 2);
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0], line.repeat(10));
        assert!(
            hits[2].ends_with('…') && hits[2].lines().count() < 10,
            "{:?}",
            hits[2]
        );
        let total: usize = hits
            .iter()
            .map(|h| HIT_OVERHEAD_TOKENS + estimate_tokens(h))
            .sum();
        assert!(total <= 300, "{total}");
        // Nothing cut when everything fits; no room for a line drops the hit.
        let mut all: Vec<String> = vec!["a\n".into(); 3];
        assert_eq!(fit_hits(&mut all, 1000, |h| h), 0);
        let mut none: Vec<String> = vec![line.repeat(10)];
        assert_eq!(fit_hits(&mut none, 35, |h| h), 1);
        assert!(none.is_empty());
        assert!(max_tokens(Some(50)).is_err());
        assert_eq!(max_tokens(None).unwrap(), None);
        assert_eq!(max_tokens(Some(500)).unwrap(), Some(500));
    }
    use codemem_core::{ChunkKind, Language, Namespace};

    fn hit(path: &str, start: u32, lines: &[&str], symbol: Option<&str>) -> Hit {
        Hit {
            path: path.into(),
            start_line: start,
            end_line: start + lines.len() as u32 - 1,
            symbol: symbol.map(str::to_string),
            kind: ChunkKind::Function,
            namespace: Namespace::coding(),
            language: Language::Rust,
            score: 1.0,
            snippet: lines.join("\n") + "\n",
            unsaved: false,
            root: None,
            memory_id: None,
            explain: None,
        }
    }

    fn body(n: usize, tag: &str) -> Vec<String> {
        (0..n)
            .map(|i| format!("    let {tag}_{i} = compute_{tag}({i}); // line"))
            .collect()
    }

    #[test]
    fn tokens_are_over_counted_for_non_ascii() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcd"), 2);
        assert_eq!(estimate_tokens("日本"), 6);
    }

    #[test]
    fn overlapping_chunks_merge_and_files_keep_line_order() {
        let a1 = body(10, "a");
        let a1: Vec<&str> = a1.iter().map(String::as_str).collect();
        let hits = [
            hit("src/b.rs", 1, &["fn b() {}"], Some("b")),
            hit("src/a.rs", 20, &a1, Some("late")),
            hit("src/a.rs", 5, &a1[..6], Some("early")),
            hit("src/a.rs", 8, &a1[..5], None), // overlaps 5-10
        ];
        let b = pack(&hits, 4000);
        let got: Vec<(String, u32, u32)> = b
            .pieces
            .iter()
            .map(|p| (p.path.clone(), p.start_line, p.end_line))
            .collect();
        // b.rs ranks first; a.rs's pieces in line order, 5-10 and 8-12 merged into 5-12.
        assert_eq!(
            got,
            [
                ("src/b.rs".into(), 1, 1),
                ("src/a.rs".into(), 5, 12),
                ("src/a.rs".into(), 20, 29)
            ]
        );
        assert!(b.omitted.is_empty() && b.more.is_none());
        assert!(b.pieces.iter().all(|p| !p.cut));
    }

    #[test]
    fn every_bundle_fits_its_budget_and_says_what_was_left_out() {
        let bodies: Vec<Vec<String>> = (0..30).map(|i| body(40, &format!("f{i}"))).collect();
        let hits: Vec<Hit> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let lines: Vec<&str> = b.iter().map(String::as_str).collect();
                hit(&format!("src/f{i}.rs"), 1, &lines, Some("f"))
            })
            .collect();
        for budget in [MIN_BUDGET, 500, 1000, 4000, 20_000] {
            let b = pack(&hits, budget);
            assert!(b.tokens_used <= budget, "{budget}: {}", b.tokens_used);
            assert_eq!(b.tokens_used, estimate_tokens(&b.text()));
            // Every candidate file is accounted for: in the bundle or listed as left out.
            let mut seen: Vec<&str> = b.pieces.iter().map(|p| p.path.as_str()).collect();
            seen.extend(b.omitted.iter().map(|o| o.path.as_str()));
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 30, "{budget}");
            if budget < 20_000 {
                assert!(!b.omitted.is_empty(), "{budget}");
                assert!(b.text().contains("Left out"), "{budget}");
                assert!(b.more.is_some());
            }
        }
        // The best hit comes first, whole when it fits.
        let b = pack(&hits, 4000);
        assert_eq!(b.pieces[0].path, "src/f0.rs");
        assert!(!b.pieces[0].cut);
    }

    #[test]
    fn a_piece_that_does_not_fit_is_cut_at_a_line() {
        let big = body(200, "x");
        let lines: Vec<&str> = big.iter().map(String::as_str).collect();
        let b = pack(&[hit("src/big.rs", 10, &lines, Some("x"))], 1000);
        assert_eq!(b.pieces.len(), 1);
        let p = &b.pieces[0];
        assert!(p.cut && p.start_line == 10 && p.end_line < 209, "{p:?}");
        assert_eq!(p.text.lines().count() as u32, p.end_line - p.start_line + 1);
        assert!(b.text().contains("(cut here to fit the budget)"));
        assert!(b.tokens_used <= 1000);
        // The rest of the piece is listed as left out, from the line after the cut.
        assert_eq!(
            (b.omitted[0].start_line, b.omitted[0].end_line),
            (p.end_line + 1, 209)
        );
        assert!(b
            .text()
            .contains(&format!("src/big.rs:{}-209", p.end_line + 1)));
    }

    #[test]
    fn budgets_outside_the_range_are_refused() {
        assert_eq!(budget(None).unwrap(), DEFAULT_BUDGET);
        assert!(budget(Some(MIN_BUDGET - 1)).is_err());
        assert!(budget(Some(MAX_BUDGET + 1)).is_err());
    }
}
