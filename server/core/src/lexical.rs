//! Identifier-aware lexical analysis and BM25-style sparse vectors.
//!
//! Identifiers are kept whole (lower-cased) *and* split into their camelCase / snake_case /
//! digit parts, so `parseHttpRequest` matches the queries `parseHttpRequest`, `http request`
//! and `parse`. Documents get BM25 term-frequency weights (length-normalised against a fixed
//! average); the store applies IDF at query time, so a query weighs each token 1.

use std::collections::HashMap;

/// A sparse vector with sorted, unique indices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseVec {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVec {
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Typical chunk length in tokens; a fixed average keeps weights independent of corpus order.
const AVG_DOC_TOKENS: f32 = 120.0;
/// Symbol-name tokens count this many times: a chunk is most "about" what it defines.
const SYMBOL_WEIGHT: u32 = 3;
/// Prefix of the token that marks "this chunk defines <identifier>".
const DEFINES: &str = "\u{1}def:";

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "in",
    "is", "it", "of", "on", "or", "that", "the", "this", "to", "what", "when", "where", "which",
    "who", "why", "with", "i", "we", "you", "can", "code", "find", "show", "me",
];

/// Stable 32-bit FNV-1a: the token → dimension map must never change between versions.
pub fn token_id(token: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in token.as_bytes() {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Light suffix stripping so `embeddings`/`embedding`/`embedded` meet: plural first, then
/// `-ing`/`-ed`.
fn stem(w: &str) -> String {
    let mut w = w.to_string();
    let n = w.len();
    if n > 4 && w.ends_with("ies") {
        w.truncate(n - 3);
        w.push('y');
    } else if n > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        w.truncate(n - 1);
    }
    let n = w.len();
    if n > 5 && w.ends_with("ing") {
        w.truncate(n - 3);
    } else if n > 4 && w.ends_with("ed") && !w.ends_with("eed") {
        w.truncate(n - 2);
    }
    w
}

/// Splits an identifier into its camelCase / snake_case / digit parts, lower-cased.
pub fn split_identifier(ident: &str) -> Vec<String> {
    let chars: Vec<char> = ident.chars().collect();
    let mut parts = Vec::new();
    let mut cur = String::new();
    for i in 0..chars.len() {
        let c = chars[i];
        if c == '_' || c == '-' || c == '$' {
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_uppercase() && c.is_uppercase() && next_lower)
                || (prev.is_alphabetic() && c.is_ascii_digit())
                || (prev.is_ascii_digit() && c.is_alphabetic());
            if boundary {
                parts.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

fn for_each_word<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start = None;
    for (i, c) in text.char_indices() {
        let word_char = c.is_alphanumeric() || c == '_' || c == '$';
        match (word_char, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

/// The terms of `text`: each identifier whole (lower-cased) plus its stemmed parts.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, |w| {
        if w.len() > 64 {
            return; // hashes, base64, minified code: noise
        }
        let whole = w.to_lowercase();
        let parts = split_identifier(w);
        if parts.len() > 1 {
            if whole.len() >= 2 {
                out.push(whole);
            }
            for p in parts {
                if p.len() >= 2 && !p.bytes().all(|b| b.is_ascii_digit()) {
                    out.push(stem(&p));
                }
            }
        } else if whole.len() >= 2 && !whole.bytes().all(|b| b.is_ascii_digit()) {
            out.push(stem(&whole));
        }
    });
    out
}

fn defines_token(symbol: &str) -> String {
    format!("{DEFINES}{}", symbol.to_lowercase())
}

/// The last segment of a qualified name (`Foo::bar`, `a.b.c`) is what people type.
pub fn symbol_leaf(symbol: &str) -> &str {
    symbol.rsplit([':', '.', '#']).next().unwrap_or(symbol)
}

/// Document vector: BM25 tf weights over content, symbol (boosted) and file name.
pub fn document_vector(path: &str, symbol: Option<&str>, content: &str) -> SparseVec {
    let mut tf: HashMap<String, u32> = HashMap::new();
    let mut len = 0u32;
    for t in tokens(content) {
        *tf.entry(t).or_default() += 1;
        len += 1;
    }
    let file_name = path.rsplit('/').next().unwrap_or(path);
    for t in tokens(file_name) {
        *tf.entry(t).or_default() += 1;
    }
    if let Some(sym) = symbol {
        for t in tokens(sym) {
            *tf.entry(t).or_default() += SYMBOL_WEIGHT;
        }
        *tf.entry(defines_token(symbol_leaf(sym))).or_default() += SYMBOL_WEIGHT;
    }
    let norm = K1 * (1.0 - B + B * (len.max(1) as f32) / AVG_DOC_TOKENS);
    let mut pairs: Vec<(u32, f32)> = tf
        .into_iter()
        .map(|(t, f)| {
            let f = f as f32;
            (token_id(&t), f * (K1 + 1.0) / (f + norm))
        })
        .collect();
    finish(&mut pairs)
}

/// Query vector: weight 1 per distinct token; identifier-looking words also ask for the chunk
/// that defines them.
pub fn query_vector(text: &str) -> SparseVec {
    let mut pairs: Vec<(u32, f32)> = Vec::new();
    let words: Vec<&str> = {
        let mut v = Vec::new();
        for_each_word(text, |w| v.push(w));
        v
    };
    let content_words = words
        .iter()
        .filter(|w| !STOP_WORDS.contains(&w.to_lowercase().as_str()))
        .count();
    for t in tokens(text) {
        // Drop stop words unless the whole query is stop words ("where is it").
        if content_words > 0 && STOP_WORDS.contains(&t.as_str()) {
            continue;
        }
        pairs.push((token_id(&t), 1.0));
    }
    let mut idents = query_identifiers(text);
    // A one-word query (`Router`) is an identifier even though it "starts a sentence".
    if let Some(leaf) = identifier_query(text) {
        if !idents.contains(&leaf) {
            idents.push(leaf);
        }
    }
    for w in idents {
        pairs.push((token_id(&defines_token(w)), 2.0));
    }
    finish(&mut pairs)
}

/// The distinct terms of a query that carry meaning (stop words dropped), for matching
/// against file and folder names.
pub fn content_tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tokens(text) {
        if !STOP_WORDS.contains(&t.as_str()) && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The words of a query that name code: `parseHttpRequest`, `read_file`, `HTTPServer`, or a
/// capitalised word that does not merely start the sentence (`How`, `Where`).
pub fn query_identifiers(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut first = true;
    for_each_word(text, |w| {
        let sentence_start = first
            && split_identifier(w).len() == 1
            && !w.contains('_')
            && w.chars().skip(1).all(|c| !c.is_uppercase());
        first = false;
        if looks_like_identifier(w)
            && !sentence_start
            && !STOP_WORDS.contains(&w.to_lowercase().as_str())
            && !out.contains(&w)
        {
            out.push(w);
        }
    });
    out
}

/// `parseHttpRequest`, `read_file`, `HTTPServer`, `Foo` (a capitalised type name) — not `the`.
pub fn looks_like_identifier(w: &str) -> bool {
    w.len() >= 3
        && (w.contains('_')
            || split_identifier(w).len() > 1
            || w.chars().next().is_some_and(|c| c.is_uppercase()))
}

/// If the whole query is one identifier (optionally qualified), returns its last segment.
pub fn identifier_query(text: &str) -> Option<&str> {
    let t = text.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let leaf = symbol_leaf(t.trim_end_matches("()"));
    let ok = !leaf.is_empty()
        && leaf
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        && leaf.chars().next().is_some_and(|c| !c.is_ascii_digit());
    ok.then_some(leaf)
}

fn finish(pairs: &mut Vec<(u32, f32)>) -> SparseVec {
    pairs.sort_by_key(|p| p.0);
    let mut out = SparseVec::default();
    for (i, v) in pairs.drain(..) {
        if out.indices.last() == Some(&i) {
            let last = out.values.last_mut().expect("same length");
            *last = last.max(v);
        } else {
            out.indices.push(i);
            out.values.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_identifiers() {
        assert_eq!(
            split_identifier("parseHttpRequest"),
            ["parse", "http", "request"]
        );
        assert_eq!(split_identifier("HTTPServer"), ["http", "server"]);
        assert_eq!(split_identifier("read_file_v2"), ["read", "file", "v", "2"]);
        assert_eq!(split_identifier("x"), ["x"]);
    }

    #[test]
    fn keeps_whole_identifier_and_parts() {
        let t = tokens("fn parseHttpRequest(buf: &[u8])");
        assert!(t.contains(&"parsehttprequest".to_string()));
        assert!(t.contains(&"http".to_string()));
        assert!(t.contains(&"request".to_string()));
        assert!(t.contains(&"buf".to_string()));
    }

    #[test]
    fn stems_plurals() {
        assert_eq!(tokens("embeddings"), tokens("embedding"));
        assert_eq!(tokens("caches"), vec!["cache".to_string()]);
        assert_eq!(tokens("class"), vec!["class".to_string()]);
    }

    #[test]
    fn vectors_are_sorted_unique_and_weighted() {
        let v = document_vector("src/a.rs", Some("parse"), "parse parse parse other");
        assert!(v.indices.windows(2).all(|w| w[0] < w[1]));
        let parse = v.values[v
            .indices
            .iter()
            .position(|i| *i == token_id("parse"))
            .unwrap()];
        let other = v.values[v
            .indices
            .iter()
            .position(|i| *i == token_id("other"))
            .unwrap()];
        assert!(parse > other);
        let q = query_vector("where is the parseHttpRequest function");
        assert!(!q.indices.contains(&token_id("the")));
        assert!(q
            .indices
            .contains(&token_id(&defines_token("parseHttpRequest"))));
    }

    #[test]
    fn definition_token_links_query_and_symbol() {
        let d = document_vector("x.rs", Some("Store::open_shard"), "fn open_shard() {}");
        let q = query_vector("open_shard");
        assert!(q.indices.contains(&token_id(&defines_token("open_shard"))));
        assert!(d.indices.contains(&token_id(&defines_token("open_shard"))));
    }

    #[test]
    fn query_identifier_words() {
        let cases: &[(&str, &[&str])] = &[
            (
                "How does ShouldBindJSON pick a decoder",
                &["ShouldBindJSON"],
            ),
            ("where is read_file called", &["read_file"]),
            ("Where are routes matched", &[]),
            ("what does the Router type hold", &["Router"]),
            ("HTTPServer", &["HTTPServer"]),
            ("the the", &[]),
        ];
        for (q, want) in cases {
            assert_eq!(&query_identifiers(q), want, "{q}");
        }
        assert_eq!(
            content_tokens("how are the Routes matched"),
            ["route", "match"]
        );
        // A lone capitalised type name still asks for its definition.
        let q = query_vector("Router");
        assert!(q.indices.contains(&token_id(&defines_token("Router"))));
    }

    #[test]
    fn identifier_queries() {
        assert_eq!(identifier_query("EmbeddingCache"), Some("EmbeddingCache"));
        assert_eq!(identifier_query("Store::open"), Some("open"));
        assert_eq!(identifier_query("how does it work"), None);
    }

    #[test]
    fn unicode_and_noise_do_not_panic() {
        let _ = tokens("naïve Übergröße 日本語 ß𝔘 \u{0}\u{ffff}");
        let _ = query_vector(&"a".repeat(10_000));
        assert!(tokens(&"x".repeat(100)).is_empty());
    }
}
