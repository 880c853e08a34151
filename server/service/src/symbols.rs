//! Definitions by name: the symbols of every indexed file (kept in the manifest) and of open
//! unsaved buffers, matched exactly first, then fuzzily (case, `_`/`-`, prefix, substring,
//! identifier parts, subsequence).

use codemem_core::chunk::Definition;
use codemem_core::lexical::{split_identifier, symbol_leaf};
use codemem_core::ChunkKind;
use serde::{Deserialize, Serialize};

use crate::project::Project;

/// One definition in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolDef {
    pub name: String,
    pub kind: ChunkKind,
    pub start_line: u32,
    pub end_line: u32,
}

impl From<Definition> for SymbolDef {
    fn from(d: Definition) -> Self {
        SymbolDef {
            name: d.symbol,
            kind: d.kind,
            start_line: d.start_line,
            end_line: d.end_line,
        }
    }
}

/// The definition enclosing `line` (1-based): the innermost one. Memory attribution and
/// "which symbol is here" for every front end.
pub fn enclosing(symbols: &[SymbolDef], line: u32) -> Option<&SymbolDef> {
    symbols
        .iter()
        .filter(|s| s.start_line <= line && line <= s.end_line)
        .min_by_key(|s| s.end_line - s.start_line)
}

/// Memories that belong to the definition `s` (one of `all`, the file's definitions): pinned
/// by its name, or by a line whose innermost definition is `s`.
pub fn memories_of<'a>(
    memories: &'a [crate::Memory],
    s: &SymbolDef,
    all: &[SymbolDef],
) -> Vec<&'a crate::Memory> {
    memories
        .iter()
        .filter(|m| match (&m.symbol, m.line) {
            (Some(sym), _) => symbol_leaf(sym) == symbol_leaf(&s.name),
            (None, Some(l)) => enclosing(all, l) == Some(s),
            (None, None) => false,
        })
        .collect()
}

/// A definition that matched a name query.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolMatch {
    pub name: String,
    pub kind: String,
    pub root: String,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub namespace: String,
    pub language: String,
    /// 1.0 exact, lower for looser matches.
    pub score: f32,
    pub exact: bool,
    /// The definition is in an editor buffer that is not saved.
    pub unsaved: bool,
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_subsequence(needle: &str, hay: &str) -> bool {
    let mut h = hay.chars();
    needle.chars().all(|n| h.any(|c| c == n))
}

/// How well `name` (a possibly qualified symbol) matches `query`; `None` if it does not.
pub fn match_score(query: &str, name: &str) -> Option<(f32, bool)> {
    let leaf = symbol_leaf(name);
    if leaf == query || name == query {
        return Some((1.0, true));
    }
    if leaf.eq_ignore_ascii_case(query) || name.eq_ignore_ascii_case(query) {
        return Some((0.95, true));
    }
    let (q, l) = (normalise(query), normalise(leaf));
    if q.is_empty() || l.is_empty() {
        return None;
    }
    // Shorter extra text ranks higher among looser matches.
    let closeness = q.len() as f32 / l.len().max(q.len()) as f32;
    if q == l {
        return Some((0.9, false));
    }
    if l.starts_with(&q) {
        return Some((0.7 + 0.15 * closeness, false));
    }
    if l.contains(&q) {
        return Some((0.55 + 0.15 * closeness, false));
    }
    let parts: Vec<String> = split_identifier(query)
        .into_iter()
        .map(|p| p.to_lowercase())
        .collect();
    if parts.len() > 1 && parts.iter().all(|p| l.contains(p.as_str())) {
        return Some((0.5 + 0.1 * closeness, false));
    }
    if q.len() >= 3 && is_subsequence(&q, &l) {
        return Some((0.3 + 0.15 * closeness, false));
    }
    None
}

impl Project {
    /// Definitions of one indexed file (workspace-relative).
    pub fn symbols_of(&self, rel: &str) -> Vec<SymbolDef> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(rel)
            .map(|e| e.symbols.clone())
            .unwrap_or_default()
    }

    /// Definitions matching `name`, best first; `kind` restricts to one chunk kind.
    pub fn find_symbol(
        &self,
        name: &str,
        kind: Option<ChunkKind>,
        limit: usize,
    ) -> Vec<SymbolMatch> {
        self.find_symbol_in(name, kind, limit, &crate::NamespaceScope::All)
    }

    /// `find_symbol` over the files of the namespaces in `scope` only.
    pub fn find_symbol_in(
        &self,
        name: &str,
        kind: Option<ChunkKind>,
        limit: usize,
        scope: &crate::NamespaceScope,
    ) -> Vec<SymbolMatch> {
        let name = name.trim();
        let mut out = Vec::new();
        if name.is_empty() {
            return out;
        }
        let root = self.root.display().to_string();
        let overlay = self.overlay_symbols();
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        let disk = files
            .iter()
            .filter(|(p, _)| !overlay.iter().any(|(op, _, _)| op == *p))
            .map(|(p, e)| {
                (
                    p.as_str(),
                    e.namespace.as_str(),
                    e.language.as_str(),
                    &e.symbols,
                    false,
                )
            });
        let unsaved = overlay
            .iter()
            .map(|(p, ns, syms)| (p.as_str(), ns.as_str(), syms.1.as_str(), &syms.0, true));
        for (path, ns, language, symbols, is_unsaved) in disk.chain(unsaved) {
            if !scope.allows(ns) {
                continue;
            }
            for s in symbols.iter() {
                if kind.is_some_and(|k| k != s.kind) {
                    continue;
                }
                if let Some((score, exact)) = match_score(name, &s.name) {
                    out.push(SymbolMatch {
                        name: s.name.clone(),
                        kind: s.kind.as_str().to_string(),
                        root: root.clone(),
                        path: path.to_string(),
                        start_line: s.start_line,
                        end_line: s.end_line,
                        namespace: ns.to_string(),
                        language: language.to_string(),
                        score,
                        exact,
                        unsaved: is_unsaved,
                    });
                }
            }
        }
        sort_matches(&mut out);
        out.truncate(limit);
        out
    }
}

/// Best first; among equals, product code before tests, then shorter paths, then by name.
pub fn sort_matches(v: &mut [SymbolMatch]) {
    v.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| (a.namespace != "coding").cmp(&(b.namespace != "coding")))
            .then_with(|| a.path.len().cmp(&b.path.len()))
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.start_line.cmp(&b.start_line))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, start: u32, end: u32) -> SymbolDef {
        SymbolDef {
            name: name.into(),
            kind: ChunkKind::Function,
            start_line: start,
            end_line: end,
        }
    }

    fn memory(id: &str, symbol: Option<&str>, line: Option<u32>) -> crate::Memory {
        serde_json::from_value(serde_json::json!({
            "id": id, "text": id, "namespace": "coding", "symbol": symbol, "line": line, "created_at": 0
        }))
        .unwrap()
    }

    #[test]
    fn memories_belong_to_the_innermost_definition_or_their_symbol() {
        let all = [
            def("Server", 1, 40),
            def("Server::start", 5, 20),
            def("Server::stop", 22, 30),
        ];
        assert_eq!(
            enclosing(&all, 10).map(|s| s.name.as_str()),
            Some("Server::start")
        );
        assert_eq!(enclosing(&all, 35).map(|s| s.name.as_str()), Some("Server"));
        assert_eq!(enclosing(&all, 50), None);
        let memories = [
            memory("by-line", None, Some(12)),
            memory("by-name", Some("start"), None),
            memory("in-class", None, Some(35)),
            memory("unpinned", None, None),
            memory("other-name", Some("Client::start_x"), None),
        ];
        // (definition, the memories it shows)
        let table: [(&SymbolDef, &[&str]); 3] = [
            (&all[1], &["by-line", "by-name"]),
            (&all[0], &["in-class"]),
            (&all[2], &[]),
        ];
        for (d, want) in table {
            let got: Vec<&str> = memories_of(&memories, d, &all)
                .iter()
                .map(|m| m.id.as_str())
                .collect();
            assert_eq!(got, want, "{}", d.name);
        }
    }

    #[test]
    fn exact_beats_fuzzy() {
        let s = |q, n| match_score(q, n).map(|(s, _)| s).unwrap_or(0.0);
        assert_eq!(
            match_score("parse_config", "parse_config"),
            Some((1.0, true))
        );
        assert_eq!(match_score("handle", "Router::handle"), Some((1.0, true)));
        assert!(s("ParseConfig", "parse_config") > s("parse", "parse_config"));
        assert!(
            s("parse", "parse_config") > s("config", "parse_config"),
            "prefix beats substring"
        );
        assert!(
            s("config", "parse_config") > s("pcfg", "parse_config"),
            "substring beats subsequence"
        );
        assert!(s("prs", "parse_config") > 0.0, "subsequence");
        assert_eq!(match_score("zzz", "parse_config"), None);
        assert_eq!(
            match_score("configParse", "parse_config").map(|(_, e)| e),
            Some(false),
            "identifier parts in any order"
        );
        assert_eq!(match_score("", "x"), None);
    }
}
