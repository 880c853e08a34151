//! The reference graph, from syntax trees, on demand: references of a name, callers and
//! callees of a definition. Nothing is stored: the files that contain the name (as a word)
//! are parsed when asked, unsaved buffers instead of their files, so the answer is as fresh
//! as the index's file list. No language server is involved.
//!
//! Resolution is approximate. With several definitions of one name, a use in file F belongs
//! to the closest definition: one in F itself, else one in a module F imports, else one in
//! F's folder, else (no closer one) every definition of the name.

use std::collections::{BTreeMap, HashSet};

use codemem_core::chunk::{occurrences, Occurrence};
use codemem_core::Language;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::project::Project;
use crate::scope::NamespaceScope;
use crate::symbols::{enclosing, SymbolDef};
use crate::walk;

/// Default and largest number of reference sites per answer.
pub const DEFAULT_REF_LIMIT: usize = 200;
pub const MAX_REF_LIMIT: usize = 2000;
const MAX_NAME_BYTES: usize = 200;

/// A definition of the name asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefDefinition {
    /// The workspace root, when a session has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub symbol: String,
    pub kind: String,
}

/// One use of a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefSite {
    /// The workspace root, when a session has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub path: String,
    pub line: u32,
    /// 1-based byte column.
    pub column: u32,
    /// The innermost definition the use is in (`None` at module level).
    pub caller: Option<String>,
    /// The use calls the name.
    pub call: bool,
    /// Found in an unsaved editor buffer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsaved: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct References {
    pub name: String,
    pub definitions: Vec<RefDefinition>,
    pub references: Vec<RefSite>,
    /// More sites exist than `limit`.
    pub truncated: bool,
}

/// A name a definition calls, with where that name is defined.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Callee {
    pub name: String,
    /// Lines (in the caller's file) of the calls.
    pub lines: Vec<u32>,
    pub definitions: Vec<RefDefinition>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Callees {
    pub name: String,
    pub definition: RefDefinition,
    pub callees: Vec<Callee>,
}

/// What a reference question is about: a name, optionally pinned to one definition by its
/// file and a line inside it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefQuery {
    pub name: String,
    /// The file of the definition meant (relative to its root, or absolute).
    #[serde(default)]
    pub path: Option<String>,
    /// A line inside that definition (1-based); without it, the file's definition of the name.
    #[serde(default)]
    pub line: Option<u32>,
    /// Most reference sites returned (1..=2000, default 200).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only the uses that call the name: its callers.
    #[serde(default)]
    pub calls_only: bool,
}

impl RefQuery {
    /// The name (its last part when qualified: `Cart.total` → `total`) or why it is invalid.
    fn leaf(&self) -> Result<&str> {
        let name = self.name.trim();
        let leaf = name
            .rsplit(['.', ':', '#'])
            .find(|p| !p.is_empty())
            .unwrap_or("");
        if leaf.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(ServiceError::InvalidInput(format!(
                "name must be an identifier of 1..={MAX_NAME_BYTES} bytes (e.g. `parse_config` or `Config.parse`)"
            )));
        }
        if !leaf
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            return Err(ServiceError::InvalidInput(format!(
                "`{leaf}` is not an identifier: give a function, method, class or type name"
            )));
        }
        Ok(leaf)
    }

    fn limit(&self) -> Result<usize> {
        match self.limit {
            None => Ok(DEFAULT_REF_LIMIT),
            Some(n) if (1..=MAX_REF_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ServiceError::InvalidInput(format!(
                "limit must be 1..={MAX_REF_LIMIT}, got {n}"
            ))),
        }
    }
}

/// The path parts a module is named by: folders and the file stem, without the extension,
/// and without the stem of a package entry file (`__init__.py`, `index.ts`, `mod.rs`, ...).
fn module_parts(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').collect();
    if let Some(last) = parts.pop() {
        let stem = last.split('.').next().unwrap_or(last);
        if !matches!(stem, "__init__" | "index" | "mod" | "lib" | "main") {
            parts.push(stem);
        }
    }
    parts
}

/// The module path each import line of `text` names, as its parts: `from shop.pricing import
/// x` → shop, pricing; `import { a } from '../store/atoms'` → store, atoms; `use crate::a::b;`
/// → a, b; `#include "x/y.h"` → x, y.
fn imports(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim_start) {
        let module = if let Some(rest) = line.strip_prefix("from ") {
            rest.split_whitespace().next()
        } else if let Some(rest) = line
            .strip_prefix("import ")
            .or_else(|| line.strip_prefix("use "))
            .or_else(|| line.strip_prefix("pub use "))
            .or_else(|| line.strip_prefix("#include"))
        {
            // A quoted source (JS `import x from 'm'`, C includes) wins over the first word.
            quoted(rest).or_else(|| rest.split_whitespace().next())
        } else if line.starts_with("export ") || line.contains("require(") {
            quoted(line)
        } else {
            None
        };
        let Some(m) = module else {
            continue;
        };
        let parts: Vec<String> = m
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .filter(|p| !p.is_empty() && !matches!(*p, "crate" | "super" | "self" | "h"))
            .map(str::to_string)
            .collect();
        if !parts.is_empty() {
            out.push(parts);
        }
    }
    out
}

/// The first '…' or "…" string in `s`, after a `from` when there is one.
fn quoted(s: &str) -> Option<&str> {
    let s = s.rsplit_once(" from ").map_or(s, |(_, r)| r);
    let start = s.find(['\'', '"'])?;
    let q = s[start..].chars().next()?;
    let rest = &s[start + 1..];
    rest.find(q).map(|end| &rest[..end])
}

/// How many trailing parts of a module path match the module `def_path` is (its stem, then
/// its folders, backwards, until they differ); 0 when the import does not name it.
fn import_match(def_path: &str, import: &[String]) -> usize {
    let parts = module_parts(def_path);
    let Some(stem) = parts.last() else {
        return 0;
    };
    let Some(i) = import.iter().rposition(|t| t == stem) else {
        return 0;
    };
    1 + import[..i]
        .iter()
        .rev()
        .zip(parts[..parts.len() - 1].iter().rev())
        .take_while(|(a, b)| a == b)
        .count()
}

/// How close a definition in `def_path` is to a use in `use_path` (compared as a tuple, higher
/// is closer): the same file; how much of the definition's module an import names; the same
/// folder.
fn closeness(def_path: &str, use_path: &str, imports: &[Vec<String>]) -> (bool, usize, bool) {
    let dir = |p: &str| p.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    (
        def_path == use_path,
        imports
            .iter()
            .map(|i| import_match(def_path, i))
            .max()
            .unwrap_or(0),
        dir(def_path) == dir(use_path),
    )
}

/// Whether a use of a method's name can be that method: where a method needs a receiver
/// (Python, JavaScript/TypeScript, Go) a bare name is something else; in the class's own file
/// the receiver must be the instance or the class (`self`, `cls`, `this`, `super`, the class
/// name), since other receivers there are mostly other types' methods of the same name.
fn method_use(o: &Occurrence, lang: Language, own_file: bool, class: &str) -> bool {
    let needs_receiver = matches!(
        lang,
        Language::Python
            | Language::JavaScript
            | Language::TypeScript
            | Language::Tsx
            | Language::Go
    );
    match &o.receiver {
        None => !needs_receiver,
        Some(r) if own_file => {
            matches!(r.as_str(), "self" | "cls" | "this" | "super") || r == class
        }
        Some(_) => true,
    }
}

/// Keeps the definitions closest to a use in `use_path` (same file, imported module, same
/// folder; all of them when none is closer than the others).
fn retain_closest(defs: &mut Vec<RefDefinition>, use_path: &str, imports: &[Vec<String>]) {
    let best = defs
        .iter()
        .map(|d| closeness(&d.path, use_path, imports))
        .max()
        .unwrap_or_default();
    defs.retain(|d| closeness(&d.path, use_path, imports) == best);
}

/// Contains `name` as a whole word (identifier characters on neither side).
fn has_word(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(name).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(ident)
            && !text[i + name.len()..].chars().next().is_some_and(ident)
    })
}

struct Source {
    path: String,
    language: Language,
    text: String,
    symbols: Vec<SymbolDef>,
    unsaved: bool,
}

impl Project {
    /// Every code file's text (the unsaved buffer when there is one) in `scope` (only `only`,
    /// when given) that `keep` accepts, read from inside the root only.
    fn sources(
        &self,
        scope: &NamespaceScope,
        only: Option<&str>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Vec<Source> {
        let overlay = self.overlay_texts();
        let unsaved: HashSet<&str> = overlay.iter().map(|(p, _, _)| p.as_str()).collect();
        let files: Vec<(String, Language, Vec<SymbolDef>)> = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(p, e)| {
                e.language.is_code()
                    && scope.allows(&e.namespace)
                    && !unsaved.contains(p.as_str())
                    && only.is_none_or(|o| o == p.as_str())
            })
            .map(|(p, e)| (p.clone(), e.language, e.symbols.clone()))
            .collect();
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        let mut out = Vec::new();
        for (path, language, symbols) in files {
            let abs = self.root.join(&path);
            // A file swapped for a link (or a link in its folders) since indexing must not
            // take the read outside the root.
            let inside = abs
                .canonicalize()
                .is_ok_and(|c| c.starts_with(&root) && c.is_file());
            if !inside {
                continue;
            }
            let Ok(bytes) = std::fs::read(&abs) else {
                continue;
            };
            if bytes.len() as u64 > self.cfg.index.max_file_bytes {
                continue;
            }
            let Ok(text) = walk::decode_text(&bytes) else {
                continue;
            };
            if keep(&text) {
                out.push(Source {
                    path,
                    language,
                    text,
                    symbols,
                    unsaved: false,
                });
            }
        }
        let overlay_symbols = self.overlay_symbols();
        for (path, language, text) in overlay {
            let Some((_, ns, (symbols, _))) = overlay_symbols.iter().find(|(p, _, _)| *p == path)
            else {
                continue;
            };
            if language.is_code()
                && scope.allows(ns)
                && only.is_none_or(|o| o == path)
                && keep(&text)
            {
                let symbols = symbols.clone();
                out.push(Source {
                    path,
                    language,
                    text,
                    symbols,
                    unsaved: true,
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Definitions named `leaf` across the index (and unsaved buffers).
    fn definitions_named(&self, leaf: &str, scope: &NamespaceScope) -> Vec<RefDefinition> {
        let mut defs: Vec<RefDefinition> = self
            .find_symbol_in(leaf, None, 500, scope)
            .into_iter()
            .filter(|m| codemem_core::lexical::symbol_leaf(&m.name) == leaf)
            .map(|m| RefDefinition {
                root: None,
                path: m.path,
                line: m.start_line,
                end_line: m.end_line,
                symbol: m.name,
                kind: m.kind,
            })
            .collect();
        defs.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        defs.dedup();
        defs
    }

    /// The definition `q.path`/`q.line` points at (the innermost one named `leaf` around the
    /// line), or an error saying what is there.
    fn pinned(
        &self,
        q: &RefQuery,
        leaf: &str,
        defs: &[RefDefinition],
        scope: &NamespaceScope,
    ) -> Result<Option<RefDefinition>> {
        let (Some(path), line) = (&q.path, q.line) else {
            if q.line.is_some() {
                return Err(ServiceError::InvalidInput(
                    "line needs path: give the file of the definition too".into(),
                ));
            }
            return Ok(None);
        };
        let line = line.unwrap_or(0);
        let mut here: Vec<&RefDefinition> = defs
            .iter()
            .filter(|d| &d.path == path && (line == 0 || (d.line <= line && line <= d.end_line)))
            .collect();
        here.sort_by_key(|d| d.end_line - d.line);
        // A name the chunker does not list (a variable, a definition under `if TYPE_CHECKING`)
        // still pins the question to that file when it is on the line given.
        let named_here = || {
            let src = self
                .sources(scope, Some(path), &|t| has_word(t, leaf))
                .pop()?;
            occurrences(src.language, &src.text, &|n| n == leaf)
                .into_iter()
                .find(|o| {
                    if line == 0 {
                        o.definition
                    } else {
                        o.line == line
                    }
                })
                .map(|o| RefDefinition {
                    root: None,
                    path: path.clone(),
                    line: o.line,
                    end_line: o.line,
                    symbol: leaf.to_string(),
                    kind: "name".into(),
                })
        };
        match here.first() {
            Some(d) => Ok(Some((*d).clone())),
            None => match named_here() {
                Some(d) => Ok(Some(d)),
                None => Err(ServiceError::InvalidInput(format!(
                    "no definition of `{leaf}` in {path}{}: the name's definitions are {}",
                    if line > 0 {
                        format!(" around line {line}")
                    } else {
                        String::new()
                    },
                    if defs.is_empty() {
                        "not indexed (check the spelling, or run `codemem index`)".to_string()
                    } else {
                        defs.iter()
                            .take(5)
                            .map(|d| format!("{}:{}", d.path, d.line))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))),
            },
        }
    }

    /// Uses of a name (not its definitions' own names), in path and line order; pinned to one
    /// definition when `path` (and `line`) are given.
    pub fn references(&self, q: &RefQuery, scope: &NamespaceScope) -> Result<References> {
        let leaf = q.leaf()?;
        let limit = q.limit()?;
        let all_defs = self.definitions_named(leaf, scope);
        let target = self.pinned(q, leaf, &all_defs, scope)?;
        // A method is used where its class is: its own file, or a file that names the class
        // (imports, instantiates, annotates or subclasses it). Uses through receivers of
        // unknown type elsewhere are left out, as a type checker would.
        let class = target
            .as_ref()
            .filter(|t| t.kind == "method")
            .and_then(|t| t.symbol.rsplit_once('.'))
            .map(|(owner, _)| owner.rsplit('.').next().unwrap_or(owner).to_string());
        let sources = self.sources(scope, None, &|t| has_word(t, leaf));
        let mut sites = Vec::new();
        for s in &sources {
            let occ: Vec<Occurrence> = occurrences(s.language, &s.text, &|n| n == leaf)
                .into_iter()
                .filter(|o| !o.definition && (o.call || !q.calls_only))
                .filter(|o| match (&target, &class) {
                    (Some(t), Some(c)) => method_use(o, s.language, s.path == t.path, c),
                    // The line that names a definition the chunker does not list.
                    (Some(t), None) if t.kind == "name" => !(s.path == t.path && o.line == t.line),
                    _ => true,
                })
                .collect();
            if occ.is_empty() {
                continue;
            }
            if let (Some(t), Some(c)) = (&target, &class) {
                if s.path != t.path && !has_word(&s.text, c) {
                    continue;
                }
            }
            if let Some(t) = &target {
                let imports = imports(&s.text);
                let best = all_defs
                    .iter()
                    .map(|d| closeness(&d.path, &s.path, &imports))
                    .max()
                    .unwrap_or_default();
                if closeness(&t.path, &s.path, &imports) < best {
                    continue;
                }
            }
            for o in occ {
                sites.push(RefSite {
                    root: None,
                    caller: enclosing(&s.symbols, o.line).map(|d| d.name.clone()),
                    path: s.path.clone(),
                    line: o.line,
                    column: o.column,
                    call: o.call,
                    unsaved: s.unsaved,
                });
            }
        }
        let truncated = sites.len() > limit;
        sites.truncate(limit);
        Ok(References {
            name: leaf.to_string(),
            definitions: match target {
                Some(t) => vec![t],
                None => all_defs,
            },
            references: sites,
            truncated,
        })
    }

    /// The calls inside one definition, grouped by name, each with where it is defined.
    pub fn callees(&self, q: &RefQuery, scope: &NamespaceScope) -> Result<Callees> {
        let leaf = q.leaf()?;
        let limit = q.limit()?;
        let all_defs = self.definitions_named(leaf, scope);
        let def = match self.pinned(q, leaf, &all_defs, scope)? {
            Some(d) => d,
            None => match all_defs.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(ServiceError::InvalidInput(format!(
                        "no definition of `{leaf}` is indexed (check the spelling, or run `codemem index`)"
                    )))
                }
                many => {
                    return Err(ServiceError::InvalidInput(format!(
                        "`{leaf}` is defined {} times ({}); give path (and line) to pick one",
                        many.len(),
                        many.iter()
                            .take(5)
                            .map(|d| format!("{}:{}", d.path, d.line))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            },
        };
        let Some(src) = self
            .sources(scope, Some(&def.path), &|_| true)
            .into_iter()
            .find(|s| s.path == def.path)
        else {
            return Err(ServiceError::InvalidInput(format!(
                "{} cannot be read now; re-index and try again",
                def.path
            )));
        };
        let mut by_name: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for o in occurrences(src.language, &src.text, &|_| true) {
            if o.call && def.line <= o.line && o.line <= def.end_line {
                by_name.entry(o.name).or_default().push(o.line);
            }
        }
        let imports = imports(&src.text);
        let callees = by_name
            .into_iter()
            .take(limit)
            .map(|(name, mut lines)| {
                lines.dedup();
                let mut defs = self.definitions_named(&name, scope);
                retain_closest(&mut defs, &src.path, &imports);
                Callee {
                    name,
                    lines,
                    definitions: defs,
                }
            })
            .collect();
        Ok(Callees {
            name: leaf.to_string(),
            definition: def,
            callees,
        })
    }
}

/// Hits whose definitions and callers `get_context` adds, and how many of each per hit.
pub(crate) const RELATED_FROM_HITS: usize = 3;
const RELATED_PER_HIT: usize = 3;

impl Project {
    /// The chunk (with its whole text) of an indexed file that covers `line`.
    fn chunk_at(&self, path: &str, line: u32) -> Option<codemem_core::Hit> {
        let ns = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)?
            .namespace
            .clone();
        let ns = codemem_core::Namespace::new(&ns).ok()?;
        let filter = codemem_store::SearchFilter {
            paths: Some(vec![path.to_string()]),
            memory: Some(false),
            unsaved: Some(false),
            ..Default::default()
        };
        let points = self.store.scroll(&ns, &filter, 1000).ok()?;
        points
            .iter()
            .filter_map(|p| crate::search::to_hit(0.0, &p.payload, true))
            .filter(|h| h.start_line <= line && line <= h.end_line)
            .min_by_key(|h| h.end_line - h.start_line)
    }

    /// For a hit that is a definition: the chunks of the definitions it calls (when one is
    /// closest) and of the functions that call it, at most [`RELATED_PER_HIT`] each.
    fn related_to(&self, h: &codemem_core::Hit, scope: &NamespaceScope) -> Vec<codemem_core::Hit> {
        let Some(symbol) = &h.symbol else {
            return Vec::new();
        };
        let q = RefQuery {
            name: codemem_core::lexical::symbol_leaf(symbol).to_string(),
            path: Some(h.path.clone()),
            line: None,
            limit: Some(50),
            calls_only: true,
        };
        let mut at: Vec<(String, u32)> = Vec::new();
        if let Ok(c) = self.callees(&q, scope) {
            for callee in c.callees {
                if let [d] = callee.definitions.as_slice() {
                    if !(d.path == h.path && h.start_line <= d.line && d.line <= h.end_line) {
                        at.push((d.path.clone(), d.line));
                    }
                }
                if at.len() >= RELATED_PER_HIT {
                    break;
                }
            }
        }
        if let Ok(r) = self.references(&q, scope) {
            at.extend(
                r.references
                    .into_iter()
                    .filter(|s| !s.unsaved && s.caller.is_some())
                    .map(|s| (s.path, s.line))
                    .take(RELATED_PER_HIT),
            );
        }
        let mut out: Vec<codemem_core::Hit> = Vec::new();
        for (path, line) in at {
            if let Some(c) = self.chunk_at(&path, line) {
                if !out
                    .iter()
                    .any(|o| o.path == c.path && o.start_line == c.start_line)
                {
                    out.push(c);
                }
            }
        }
        out
    }
}

impl crate::Workspace {
    /// [`Project::references`] across the session's roots (`q.path` may be absolute, or
    /// relative to a root); sites carry their root when the session has several.
    pub fn references(&self, q: &RefQuery, scope: &NamespaceScope) -> Result<References> {
        let targets = self.projects_for(q.path.as_deref())?;
        let multi = targets.len() > 1;
        let limit = q.limit()?;
        let mut out: Option<References> = None;
        let mut first_err = None;
        for (root, project, rel) in targets {
            let q = RefQuery {
                path: rel,
                ..q.clone()
            };
            // A root holding the same relative path without the definition is not an error
            // while another root answers.
            let mut a = match project.references(&q, scope) {
                Ok(a) => a,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            if multi {
                let r = Some(root.display().to_string());
                a.definitions.iter_mut().for_each(|d| d.root = r.clone());
                a.references.iter_mut().for_each(|s| s.root = r.clone());
            }
            match &mut out {
                None => out = Some(a),
                Some(o) => {
                    o.definitions.extend(a.definitions);
                    o.references.extend(a.references);
                    o.truncated |= a.truncated;
                }
            }
        }
        let mut out = match (out, first_err) {
            (Some(o), _) => o,
            (None, Some(e)) => return Err(e),
            (None, None) => return Err(ServiceError::NoRoot),
        };
        out.truncated |= out.references.len() > limit;
        out.references.truncate(limit);
        Ok(out)
    }

    /// The reference question for the name under the cursor of an editor (0-based line,
    /// UTF-16 character, as LSP counts): on a definition's name, that definition; elsewhere
    /// the name, pinned to its closest definition when exactly one is closest.
    pub fn ref_query_at(
        &self,
        abs: &std::path::Path,
        pos: crate::Position,
        calls_only: bool,
    ) -> Result<RefQuery> {
        let (_, project, rel) = self
            .projects_for(Some(&abs.display().to_string()))?
            .into_iter()
            .next()
            .ok_or(ServiceError::NoRoot)?;
        let rel = rel.unwrap_or_default();
        let language = Language::detect(&rel).unwrap_or(Language::Text);
        let text = match self.document_text(abs) {
            Some(t) => t,
            None => project
                .sources(&NamespaceScope::All, Some(&rel), &|_| true)
                .pop()
                .map(|s| s.text)
                .ok_or_else(|| {
                    ServiceError::InvalidInput(format!("{rel} is not an indexed code file"))
                })?,
        };
        let line_text = text.lines().nth(pos.line as usize).unwrap_or("");
        let utf16 = |bytes: u32| -> u32 {
            line_text
                .get(..(bytes as usize).saturating_sub(1))
                .map_or(0, |p| p.encode_utf16().count() as u32)
        };
        let at = occurrences(language, &text, &|_| true)
            .into_iter()
            .find(|o| {
                let start = utf16(o.column);
                o.line == pos.line + 1
                    && start <= pos.character
                    && pos.character <= start + o.name.encode_utf16().count() as u32
            })
            .ok_or_else(|| {
                ServiceError::InvalidInput(
                    "no identifier under the cursor: put it on a function, method, class or type name"
                        .into(),
                )
            })?;
        let mut q = RefQuery {
            name: at.name.clone(),
            calls_only,
            ..Default::default()
        };
        if at.definition {
            q.path = Some(rel);
            q.line = Some(at.line);
        } else {
            let mut defs = project.definitions_named(&at.name, &NamespaceScope::All);
            retain_closest(&mut defs, &rel, &imports(&text));
            if let [one] = defs.as_slice() {
                q.path = Some(one.path.clone());
                q.line = Some(one.line);
            }
        }
        Ok(q)
    }

    /// `get_context`'s additions after its best hits: the definitions they call and the
    /// functions that call them (not inside one of `hits`), in the hits' roots.
    pub(crate) fn related_hits(
        &self,
        hits: &[codemem_core::Hit],
        scope: &NamespaceScope,
    ) -> Vec<codemem_core::Hit> {
        let mut out: Vec<codemem_core::Hit> = Vec::new();
        for h in hits.iter().take(RELATED_FROM_HITS) {
            let path = match &h.root {
                Some(r) => std::path::Path::new(r).join(&h.path).display().to_string(),
                None => h.path.clone(),
            };
            let Ok(targets) = self.projects_for(Some(&path)) else {
                continue;
            };
            for (root, project, _) in targets {
                for mut r in project.related_to(h, scope) {
                    let seen = hits.iter().chain(&out).any(|o| {
                        o.path == r.path && o.start_line <= r.start_line && r.end_line <= o.end_line
                    });
                    if !seen {
                        r.root = h.root.as_ref().map(|_| root.display().to_string());
                        out.push(r);
                    }
                }
            }
        }
        out
    }

    /// [`Project::callees`] in the root that holds the definition.
    pub fn callees(&self, q: &RefQuery, scope: &NamespaceScope) -> Result<Callees> {
        let targets = self.projects_for(q.path.as_deref())?;
        let multi = targets.len() > 1;
        let mut first_err = None;
        for (root, project, rel) in targets {
            let q = RefQuery {
                path: rel,
                ..q.clone()
            };
            match project.callees(&q, scope) {
                Ok(mut c) => {
                    if multi {
                        let r = Some(root.display().to_string());
                        c.definition.root = r.clone();
                        for d in c.callees.iter_mut().flat_map(|c| c.definitions.iter_mut()) {
                            d.root = r.clone();
                        }
                    }
                    return Ok(c);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(ServiceError::NoRoot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        assert!(has_word("x = parse(1)", "parse"));
        assert!(!has_word("x = parser(1)", "parse"));
        assert!(!has_word("x = reparse(1)", "parse"));
        assert!(has_word("parse", "parse"));
        assert!(!has_word("$parse", "parse"));
    }

    #[test]
    fn closeness_prefers_same_file_then_imports_then_folder() {
        let imp = |t: &str| imports(t);
        let shop = imp("from shop.pricing import apply_discount");
        assert_eq!(
            closeness("shop/pricing.py", "shop/pricing.py", &shop),
            (true, 2, true)
        );
        assert_eq!(
            closeness("shop/pricing.py", "app/cart.py", &shop),
            (false, 2, false)
        );
        // Same file name, other package: the import names shop's.
        assert_eq!(
            closeness("legacy/pricing.py", "app/cart.py", &shop),
            (false, 1, false)
        );
        assert_eq!(
            closeness("app/util.py", "app/cart.py", &[]),
            (false, 0, true)
        );
        assert_eq!(
            closeness("lib/util.py", "app/cart.py", &[]),
            (false, 0, false)
        );
        // A package entry file is imported by its folder's name; src layouts and aliases.
        let js = imp("import { atom } from '../vanilla'");
        assert_eq!(
            closeness("src/vanilla/index.ts", "src/react/x.ts", &js).1,
            1
        );
        let py = imp("from flask.app import Flask");
        assert_eq!(closeness("src/flask/app.py", "tests/t.py", &py).1, 2);
        let rs = imp("use crate::refs::{RefQuery, References};");
        assert_eq!(closeness("server/service/src/refs.rs", "x.rs", &rs).1, 1);
        let c = imp("#include \"net/http.h\"");
        assert_eq!(closeness("src/net/http.h", "src/main.c", &c).1, 2);
        let req = imp("const store = require('./store/atoms')");
        assert_eq!(closeness("lib/store/atoms.js", "lib/x.js", &req).1, 2);
    }

    #[test]
    fn names_are_validated() {
        let q = |n: &str| RefQuery {
            name: n.into(),
            ..Default::default()
        };
        assert_eq!(q("Cart.total").leaf().unwrap(), "total");
        assert_eq!(q("crate::p::parse").leaf().unwrap(), "parse");
        assert!(q("").leaf().is_err());
        assert!(q("a b").leaf().is_err());
        assert!(q(&"x".repeat(300)).leaf().is_err());
        let mut l = q("f");
        l.limit = Some(0);
        assert!(l.limit().is_err());
        l.limit = Some(MAX_REF_LIMIT + 1);
        assert!(l.limit().is_err());
    }
}
