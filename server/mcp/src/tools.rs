//! The tools: argument types (their JSON schemas are generated from these structs), the
//! descriptions models read, and the translation to `Workspace` calls and back to text +
//! structured content. Nothing here decides what a search or a memory is.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use codemem_core::{Language, Namespace, Query};
use codemem_service::{NewMemory, RecallQuery, ServiceError, Workspace};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;

/// How many symbol matches `find_symbol` returns.
const SYMBOL_LIMIT: usize = 20;
/// Longest argument string accepted anywhere (text of a memory is limited by the service).
const MAX_ARG_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchCodeArgs {
    /// What to look for: a question in plain words ("where are failed HTTP calls retried")
    /// or an exact identifier ("RateLimiter"), whose definition then ranks first.
    pub query: String,
    /// Namespaces to search: coding, architecture, documentation, testing, shared (see
    /// list_namespaces). Default: coding and documentation.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Only files whose workspace-relative path matches this glob, e.g. "src/**/*.rs" or "server/api/**".
    #[serde(default)]
    pub path: Option<String>,
    /// Only this language: rust, python, javascript, typescript, tsx, go, java, c, cpp, markdown, ...
    #[serde(default)]
    pub language: Option<String>,
    /// Number of results, 1-200 (default 10).
    #[serde(default)]
    pub k: Option<u32>,
    /// Debug: add each hit's ranking signals (list ranks, fusion, definition, path match,
    /// prior, diversity) to the answer, to see why it ranks where it does.
    #[serde(default)]
    pub explain: Option<bool>,
    /// Fit the snippets to this many tokens, 200-100000 (the same estimate as get_context):
    /// lower-ranked hits are left out, the last one kept may be cut at a line.
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetContextArgs {
    /// The question or task, in plain words or with identifiers ("how are retries of failed
    /// HTTP calls scheduled"). Give exactly one of query, symbol and location.
    #[serde(default)]
    pub query: Option<String>,
    /// Context about a definition, by name ("parse_config", "Config.parse").
    #[serde(default)]
    pub symbol: Option<String>,
    /// Context about the definition around a place: {path (relative to its root, or
    /// absolute), line (1-based)}.
    #[serde(default)]
    pub location: Option<LocationArg>,
    /// Most tokens the answer may take, 200-100000 (default 4000). Counted with a
    /// conservative bound (see `token_count` in the answer).
    #[serde(default)]
    pub budget_tokens: Option<u32>,
    /// Namespaces to draw from (see list_namespaces). Default: coding and documentation.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Only files whose workspace-relative path matches this glob, e.g. "src/**".
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationArg {
    pub path: String,
    pub line: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindSymbolArgs {
    /// The name to look up: exact ("parse_config"), partial ("parse") or a camelCase fragment.
    pub name: String,
    /// Only definitions of this kind: function, method, class, struct, enum, interface, trait, impl, module, constant, type.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefArgs {
    /// The function, method, class or type: "parse_config", or qualified "Config.parse".
    pub name: String,
    /// The file of the definition meant, as search results and find_symbol show it
    /// (relative to its workspace root) or absolute; needed when several share the name.
    #[serde(default)]
    pub path: Option<String>,
    /// A line inside that definition (1-based).
    #[serde(default)]
    pub line: Option<u32>,
    /// Most sites returned, 1-2000 (default 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl RefArgs {
    fn query(self, calls_only: bool) -> codemem_service::RefQuery {
        codemem_service::RefQuery {
            name: self.name,
            path: self.path,
            line: self.line,
            limit: self.limit.map(|l| l as usize),
            calls_only,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallArgs {
    /// What you want to remember or know, in plain words.
    pub query: String,
    /// Namespaces to search; default: all of them.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Only memories carrying at least one of these tags (documentation is then left out).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Number of results, 1-200 (default 10).
    #[serde(default)]
    pub k: Option<u32>,
    /// Fit the answer's texts to this many tokens, 200-100000 (the same estimate as
    /// get_context): lower-ranked results are left out, the last one kept may be cut.
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RememberArgs {
    /// The note itself, self-contained (it will be read later without this conversation):
    /// a decision and its reason, a pitfall, how something works. At most 16 KiB.
    pub text: String,
    /// Where it belongs: coding, architecture, documentation, testing, or shared for
    /// cross-cutting notes (see list_namespaces).
    pub namespace: String,
    /// Short labels to find it by, e.g. ["auth", "decision"] (letters, digits, - _ . : /).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Pin to this file (workspace-relative, e.g. "src/db/pool.rs"); editors show the note there.
    #[serde(default)]
    pub path: Option<String>,
    /// Pin to this symbol in that file, e.g. "ConnectionPool::acquire".
    #[serde(default)]
    pub symbol: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetArgs {
    /// The memory id, as returned by remember or recall (e.g. "mem_0123456789abcdef").
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReindexArgs {
    /// A workspace root, or any path inside one, to re-index (its whole root is brought up to
    /// date). Default: every root.
    #[serde(default)]
    pub path: Option<String>,
}

/// Every tool: (name, description, schema of its arguments, annotations).
pub fn tools() -> Vec<Tool> {
    fn tool<T: JsonSchema>(
        name: &'static str,
        description: &'static str,
        ann: ToolAnnotations,
    ) -> Tool {
        Tool::new(name, description, Arc::new(schema_of::<T>())).with_annotations(ann)
    }
    let read = || ToolAnnotations::new().read_only(true).open_world(false);
    vec![
        tool::<SearchCodeArgs>(
            "search_code",
            "Search this workspace's code and docs. Ask in plain words (\"where do we retry failed HTTP calls?\") or give an exact identifier (\"RateLimiter\"): the definition of an identifier ranks first. Lexical and semantic ranking are fused. Each hit has the file path (relative to its workspace root), line range, symbol, a snippet and a score; the answer also says how fresh the index is (files still being indexed, unsaved editor buffers). Narrow with `path` (a glob), `language` or `namespaces`. Use find_symbol instead when you know a definition's name.",
            read(),
        ),
        tool::<GetContextArgs>(
            "get_context",
            "The code and docs most useful for a question, ready to read, within a token budget (default 4000): whole chunks of the best-ranked files, merged per file in line order, each headed `path:start-end`; a piece cut short to fit says so. Lists what was left out (with ranges to read) and how to get more. Prefer it over several search_code calls when you need to understand how something works.",
            read(),
        ),
        tool::<FindSymbolArgs>(
            "find_symbol",
            "Find where a function, method, class, struct, trait, ... is defined, by name. Exact matches come first, then fuzzy ones (case-insensitive, prefix, camelCase/snake_case parts). Returns path, line range, kind and language of each definition. Faster and more precise than search_code when you know (part of) the name.",
            read(),
        ),
        tool::<RefArgs>(
            "find_references",
            "Where a function, method, class or type is used: every use in code (calls, imports, mentions; not comments or strings) with file, line, column and the function it is in, from the syntax trees of the indexed files and unsaved buffers. Give `path` (and `line`) of the definition when several share the name: uses are then matched to the closest definition (same file, then imported module, then same folder). Method uses count only in files that name the method's class.",
            read(),
        ),
        tool::<RefArgs>(
            "callers",
            "Who calls a function or method: the call sites with the function each call is in (same matching as find_references, calls only).",
            read(),
        ),
        tool::<RefArgs>(
            "callees",
            "What a function or method calls: each called name with its call lines and where it is defined (the closest definitions: same file, imported module, same folder, else every one). Give `path` (and `line`) when several definitions share the name.",
            read(),
        ),
        tool::<RecallArgs>(
            "recall",
            "Recall notes saved with `remember` (decisions, pitfalls, explanations left by people and agents) together with relevant documentation, ranked by meaning. Use it at the start of a task to learn what is already known. Each memory comes with its id, namespace, tags and the file/symbol it is pinned to.",
            read(),
        ),
        tool::<RememberArgs>(
            "remember",
            "Save a durable note for future sessions and teammates: a decision and why, a pitfall, how something works. Write it self-contained. Optionally pin it to a file (`path`) and `symbol`; editors then show it next to that code. Returns the memory id (needed by `forget`). The note is stored on disk before this returns.",
            ToolAnnotations::new().read_only(false).destructive(false).idempotent(false).open_world(false),
        ),
        tool::<ForgetArgs>(
            "forget",
            "Delete a memory by its id (from remember or recall). Use it when a note is wrong or obsolete.",
            ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(false),
        ),
        tool::<NoArgs>(
            "index_status",
            "How complete and fresh the index is: per workspace root, files and points per namespace, files still waiting for embeddings, whether indexing is running, the last indexed commit against HEAD, memories, unsaved buffers, and the health of the storage backends. Check it when results look incomplete.",
            read(),
        ),
        tool::<ReindexArgs>(
            "reindex",
            "Bring the index up to date with the files on disk; only changed files are re-read and only new chunks embedded. Rarely needed: the index follows file changes by itself. Waits until the run finishes; sends progress notifications when the request has a progressToken and stops early on notifications/cancelled (the next run resumes).",
            ToolAnnotations::new().read_only(false).destructive(false).idempotent(true).open_world(false),
        ),
        tool::<NoArgs>(
            "list_namespaces",
            "List the namespaces you can search and write (coding, architecture, documentation, testing, shared, plus configured ones), what each holds, and how many files, points and memories each has.",
            read(),
        ),
    ]
}

/// The JSON schema of `T` as MCP wants it: an object schema without `$schema`/`title`, and
/// optional fields typed plainly (not `["string", "null"]`), which some clients mishandle.
pub fn schema_of<T: JsonSchema>() -> JsonObject {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    let mut v = serde_json::to_value(schema).unwrap_or_else(|_| json!({"type": "object"}));
    fn strip_null(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(types)) = m.get("type") {
                    let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                    if kept.len() == 1 {
                        m.insert("type".into(), kept[0].clone());
                    }
                }
                if let Some(Value::Array(any)) = m.get("anyOf") {
                    let kept: Vec<Value> = any
                        .iter()
                        .filter(|s| s.get("type") != Some(&json!("null")))
                        .cloned()
                        .collect();
                    if kept.len() == 1 {
                        m.remove("anyOf");
                        if let Value::Object(inner) = &kept[0] {
                            for (k, val) in inner {
                                m.entry(k.clone()).or_insert(val.clone());
                            }
                        }
                    }
                }
                m.remove("default");
                for (_, child) in m.iter_mut() {
                    strip_null(child);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strip_null),
            _ => {}
        }
    }
    strip_null(&mut v);
    let mut obj = match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    };
    obj.remove("$schema");
    obj.remove("title");
    obj.insert("type".into(), json!("object"));
    obj.entry("properties").or_insert(json!({}));
    obj
}

/// A failed call, as the model will read it.
pub struct ToolFailure(pub String);

impl From<ServiceError> for ToolFailure {
    fn from(e: ServiceError) -> Self {
        if e.is_invalid_input() {
            ToolFailure(e.to_string())
        } else {
            ToolFailure(format!("codemem could not complete the request: {e}"))
        }
    }
}

impl From<String> for ToolFailure {
    fn from(s: String) -> Self {
        ToolFailure(s)
    }
}

pub type ToolResult = Result<CallToolResult, ToolFailure>;

pub fn failure_result(f: ToolFailure) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(f.0)])
}

fn ok(text: String, structured: Value) -> ToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(structured);
    Ok(r)
}

/// Parses a tool's arguments; the error names the tool, what was wrong and what is expected.
pub fn parse_args<T: DeserializeOwned + JsonSchema>(
    tool: &str,
    args: Option<JsonObject>,
) -> Result<T, ToolFailure> {
    let args = args.unwrap_or_default();
    if let Some((k, _)) = args.iter().find(|(_, v)| too_big(v)) {
        return Err(ToolFailure(format!(
            "invalid arguments for {tool}: `{k}` is larger than {MAX_ARG_BYTES} bytes; send less"
        )));
    }
    serde_json::from_value(Value::Object(args)).map_err(|e| {
        let schema = schema_of::<T>();
        let fields = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(|r| r.as_array())
                    .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                p.iter()
                    .map(|(name, s)| {
                        let ty = match s.get("type") {
                            Some(Value::String(t)) if t == "array" => "string[]".to_string(),
                            Some(Value::String(t)) => t.clone(),
                            _ => "value".into(),
                        };
                        format!(
                            "{name}{}: {ty}",
                            if required.contains(&name.as_str()) {
                                ""
                            } else {
                                "?"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        ToolFailure(format!(
            "invalid arguments for {tool}: {e}. Expected {{{fields}}}."
        ))
    })
}

fn too_big(v: &Value) -> bool {
    match v {
        Value::String(s) => s.len() > MAX_ARG_BYTES,
        Value::Array(a) => a.len() > 1000 || a.iter().any(too_big),
        Value::Object(o) => o.len() > 1000 || o.values().any(too_big),
        _ => false,
    }
}

fn namespaces(names: &[String]) -> Result<Vec<Namespace>, ToolFailure> {
    names
        .iter()
        .map(|n| {
            Namespace::new(n).map_err(|_| {
                ToolFailure(format!(
                    "`{n}` is not a namespace; call list_namespaces for the valid ones (coding, architecture, documentation, testing, shared, ...)"
                ))
            })
        })
        .collect()
}

/// The requested `k`, or 10; its range is checked by the service (`Query::validate`).
fn k_of(k: Option<u32>) -> usize {
    k.map_or(10, |k| k as usize)
}

fn multi_root(ws: &Workspace) -> bool {
    ws.roots().len() > 1
}

fn shown_path(multi: bool, root: Option<&str>, path: &str) -> String {
    match (multi, root) {
        (true, Some(r)) => format!("{r}/{path}"),
        _ => path.to_string(),
    }
}

fn snippet_lines(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, l) in s.lines().enumerate() {
        if i == max {
            out.push_str("    …\n");
            break;
        }
        let _ = writeln!(out, "    {l}");
    }
    out
}

/// The namespaces a search-like call reads: those asked for, within the caller's scope; a
/// scoped caller that names none gets the configured defaults it may read.
fn read_namespaces(
    ws: &Workspace,
    who: &Principal,
    requested: Option<Vec<String>>,
) -> Result<Vec<Namespace>, ToolFailure> {
    let default = if who.namespaces.is_some() {
        ws.default_namespaces()
    } else {
        Vec::new()
    };
    namespaces(&who.scope_read(&requested.unwrap_or_default(), default)?)
}

pub fn search_code(ws: &Workspace, who: &Principal, a: SearchCodeArgs) -> ToolResult {
    let mut q = Query::new(a.query.clone());
    q.namespaces = read_namespaces(ws, who, a.namespaces)?;
    q.k = k_of(a.k);
    q.explain = a.explain.unwrap_or(false);
    if let Some(l) = &a.language {
        q.language = Some(Language::parse(l).ok_or_else(|| {
            ToolFailure(format!(
                "unknown language `{l}`; use one of: {}",
                Language::ALL
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?);
    }
    q.path_glob = a.path.clone();
    q.max_tokens = a.max_tokens.map(|t| t as usize);
    let resp = ws.search(&q)?;
    let multi = multi_root(ws);
    let f = &resp.freshness;
    let mut text = format!(
        "{} result{} for {:?} ({}, {:.1} ms)",
        resp.hits.len(),
        if resp.hits.len() == 1 { "" } else { "s" },
        a.query,
        match resp.mode {
            codemem_core::SearchMode::Hybrid => "hybrid",
            codemem_core::SearchMode::Lexical => "lexical",
            codemem_core::SearchMode::Dense => "dense",
        },
        resp.took_ms
    );
    let mut notes = Vec::new();
    if f.pending_files > 0 {
        notes.push(format!(
            "{} files still awaiting embeddings, lexical only for them",
            f.pending_files
        ));
    }
    if f.stale {
        notes.push("HEAD moved since the last index".to_string());
    }
    if f.unsaved_files > 0 {
        notes.push(format!(
            "{} unsaved editor buffers included",
            f.unsaved_files
        ));
    }
    if !resp.dense_available {
        notes.push("semantic ranking unavailable (model not loaded)".into());
    }
    if resp.omitted_hits > 0 {
        notes.push(format!(
            "{} lower-ranked results left out to fit max_tokens",
            resp.omitted_hits
        ));
    }
    if !notes.is_empty() {
        let _ = write!(text, "; {}", notes.join("; "));
    }
    text.push('\n');
    for (i, h) in resp.hits.iter().enumerate() {
        let _ = writeln!(
            text,
            "\n{}. {}:{}-{}{}  [{}, {}]{}  score {:.3}",
            i + 1,
            shown_path(multi, h.root.as_deref(), &h.path),
            h.start_line,
            h.end_line,
            h.symbol
                .as_deref()
                .map(|s| format!("  {} {s}", h.kind.as_str()))
                .unwrap_or_default(),
            h.namespace,
            h.language.as_str(),
            if h.unsaved { " (unsaved)" } else { "" },
            h.score
        );
        if let Some(e) = &h.explain {
            let _ = writeln!(text, "   why: {}", e.summary());
        }
        text.push_str(&snippet_lines(&h.snippet, 12));
    }
    if resp.hits.is_empty() {
        text.push_str(
            "\nNo match. Try other words, fewer filters, or more namespaces (list_namespaces).\n",
        );
    }
    let structured = serde_json::to_value(&resp).map_err(|e| ToolFailure(e.to_string()))?;
    ok(text, structured)
}

pub fn get_context(ws: &Workspace, who: &Principal, a: GetContextArgs) -> ToolResult {
    let q = codemem_service::ContextQuery {
        namespaces: read_namespaces(ws, who, a.namespaces)?,
        text: a.query.unwrap_or_default(),
        symbol: a.symbol,
        location: a
            .location
            .map(|l| codemem_service::context::ContextLocation {
                path: l.path,
                line: l.line,
            }),
        budget_tokens: a.budget_tokens.map(|b| b as usize),
        path_glob: a.path,
    };
    let bundle = ws.context(&q)?;
    // The pieces' text is the answer's text; the structured part only describes it, so the
    // budget is not spent twice.
    let mut structured = serde_json::to_value(&bundle).unwrap_or_default();
    if let Some(pieces) = structured.get_mut("pieces").and_then(Value::as_array_mut) {
        for p in pieces {
            if let Some(o) = p.as_object_mut() {
                o.remove("text");
            }
        }
    }
    // The same left-out entries as the text lists, plus the total.
    if let Some(o) = structured.as_object_mut() {
        o.insert("omitted_total".into(), json!(bundle.omitted.len()));
        if let Some(list) = o.get_mut("omitted").and_then(Value::as_array_mut) {
            list.truncate(bundle.omitted_listed);
        }
    }
    ok(bundle.text(), structured)
}

pub fn find_symbol(ws: &Workspace, who: &Principal, a: FindSymbolArgs) -> ToolResult {
    let found = ws.find_symbol_in(&a.name, a.kind.as_deref(), SYMBOL_LIMIT, &who.scope())?;
    let multi = multi_root(ws);
    let mut text = if found.is_empty() {
        format!(
            "No definition named like {:?}. Try search_code with a description instead.\n",
            a.name
        )
    } else {
        format!(
            "{} definition{} for {:?}:\n",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
            a.name
        )
    };
    for m in &found {
        let _ = writeln!(
            text,
            "- {} {} — {}:{}-{} [{}, {}]{}{}",
            m.kind,
            m.name,
            shown_path(multi, Some(&m.root), &m.path),
            m.start_line,
            m.end_line,
            m.namespace,
            m.language,
            if m.exact { " (exact)" } else { "" },
            if m.unsaved { " (unsaved)" } else { "" },
        );
    }
    ok(text, json!({ "matches": found }))
}

pub fn find_references(ws: &Workspace, who: &Principal, a: RefArgs) -> ToolResult {
    references(ws, who, a, false)
}

pub fn callers(ws: &Workspace, who: &Principal, a: RefArgs) -> ToolResult {
    references(ws, who, a, true)
}

fn references(ws: &Workspace, who: &Principal, a: RefArgs, calls_only: bool) -> ToolResult {
    let r = ws.references(&a.query(calls_only), &who.scope())?;
    let at = |root: &Option<String>, path: &str, line: u32| {
        format!(
            "{}:{line}",
            shown_path(root.is_some(), root.as_deref(), path)
        )
    };
    let mut text = format!(
        "{} {} of {} ({} definition{}{}):\n",
        r.references.len(),
        if calls_only { "call sites" } else { "uses" },
        r.name,
        r.definitions.len(),
        if r.definitions.len() == 1 { "" } else { "s" },
        if r.truncated {
            "; more exist, raise `limit`"
        } else {
            ""
        }
    );
    for d in &r.definitions {
        let _ = writeln!(
            text,
            "- defined: {} {} — {}",
            d.kind,
            d.symbol,
            at(&d.root, &d.path, d.line)
        );
    }
    for s in &r.references {
        let _ = writeln!(
            text,
            "- {}:{} {}{}{}",
            at(&s.root, &s.path, s.line),
            s.column,
            if s.call { "call" } else { "use" },
            s.caller
                .as_deref()
                .map(|c| format!(" in {c}"))
                .unwrap_or_default(),
            if s.unsaved { " (unsaved)" } else { "" }
        );
    }
    ok(text, serde_json::to_value(&r).unwrap_or_default())
}

pub fn callees(ws: &Workspace, who: &Principal, a: RefArgs) -> ToolResult {
    let c = ws.callees(&a.query(false), &who.scope())?;
    let d = &c.definition;
    let mut text = format!(
        "{} ({} {}:{}) calls {} name{}:\n",
        c.name,
        d.kind,
        shown_path(d.root.is_some(), d.root.as_deref(), &d.path),
        d.line,
        c.callees.len(),
        if c.callees.len() == 1 { "" } else { "s" }
    );
    for e in &c.callees {
        let defs: Vec<String> = e
            .definitions
            .iter()
            .map(|d| {
                format!(
                    "{}:{}",
                    shown_path(d.root.is_some(), d.root.as_deref(), &d.path),
                    d.line
                )
            })
            .collect();
        let _ = writeln!(
            text,
            "- {} (line {}) {}",
            e.name,
            e.lines
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if defs.is_empty() {
                "— not defined in the index".to_string()
            } else {
                format!("→ {}", defs.join(", "))
            }
        );
    }
    ok(text, serde_json::to_value(&c).unwrap_or_default())
}

pub fn recall(ws: &Workspace, who: &Principal, a: RecallArgs) -> ToolResult {
    let requested = a.namespaces.unwrap_or_default();
    // Unscoped tokens search every namespace (empty list); scoped ones only theirs.
    let names = match &who.namespaces {
        None => requested.clone(),
        Some(scope) => who.scope_read(&requested, scope.clone())?,
    };
    let q = RecallQuery {
        text: a.query.clone(),
        namespaces: namespaces(&names)?,
        tags: a.tags.unwrap_or_default(),
        k: k_of(a.k),
        max_tokens: a.max_tokens.map(|t| t as usize),
    };
    let resp = ws.recall(&q)?;
    let multi = multi_root(ws);
    let mut text = format!(
        "{} result{} for {:?}{}\n",
        resp.hits.len(),
        if resp.hits.len() == 1 { "" } else { "s" },
        a.query,
        if resp.omitted_hits > 0 {
            format!(
                "; {} lower-ranked left out to fit max_tokens",
                resp.omitted_hits
            )
        } else {
            String::new()
        }
    );
    for (i, h) in resp.hits.iter().enumerate() {
        match &h.memory {
            Some(m) => {
                let pin = match (&m.path, &m.symbol) {
                    (Some(p), Some(s)) => format!(", pinned to {p} ({s})"),
                    (Some(p), None) => format!(", pinned to {p}"),
                    (None, Some(s)) => format!(", about {s}"),
                    _ => String::new(),
                };
                let tags = if m.tags.is_empty() {
                    String::new()
                } else {
                    format!(", tags: {}", m.tags.join(", "))
                };
                let _ = writeln!(
                    text,
                    "\n{}. memory {} [{}{}{}]  score {:.3}",
                    i + 1,
                    m.id,
                    m.namespace,
                    tags,
                    pin,
                    h.score
                );
                text.push_str(&snippet_lines(&m.text, 20));
            }
            None => {
                let _ = writeln!(
                    text,
                    "\n{}. {}:{}-{} [{}]  score {:.3}",
                    i + 1,
                    shown_path(multi, h.hit.root.as_deref(), &h.hit.path),
                    h.hit.start_line,
                    h.hit.end_line,
                    h.hit.namespace,
                    h.score
                );
                text.push_str(&snippet_lines(&h.hit.snippet, 8));
            }
        }
    }
    if resp.hits.is_empty() {
        text.push_str("Nothing recalled. Nobody has saved a note about this yet (see remember).\n");
    }
    let structured = serde_json::to_value(&resp).map_err(|e| ToolFailure(e.to_string()))?;
    ok(text, structured)
}

pub fn remember(ws: &Workspace, who: &Principal, a: RememberArgs) -> ToolResult {
    who.require_write("remember")?;
    if !who.may_use(&a.namespace) {
        return Err(who.out_of_scope(&a.namespace).into());
    }
    namespaces(std::slice::from_ref(&a.namespace))?;
    if a.text.trim().is_empty() {
        return Err(ToolFailure(
            "the memory text is empty; write the note in `text`".into(),
        ));
    }
    let m = ws.remember(NewMemory {
        text: a.text,
        namespace: a.namespace,
        tags: a.tags.unwrap_or_default(),
        path: a.path,
        symbol: a.symbol,
        line: None,
        author: Some(format!("mcp:{}", who.name)),
    })?;
    let text = format!(
        "Remembered as {} in {}{}. Use forget with this id to delete it.",
        m.id,
        m.namespace,
        m.path
            .as_deref()
            .map(|p| format!(", pinned to {p}"))
            .unwrap_or_default()
    );
    let structured = json!({ "id": m.id, "memory": m });
    ok(text, structured)
}

pub fn forget(ws: &Workspace, who: &Principal, a: ForgetArgs) -> ToolResult {
    who.require_write("forget")?;
    let id = a.id.trim();
    if !(id.starts_with("mem_")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(ToolFailure(format!(
            "{id:?} is not a memory id; ids look like \"mem_0123456789abcdef\" (see recall)"
        )));
    }
    if who.namespaces.is_some() {
        // The memory's namespace is not known before deleting it, so a namespace-limited
        // token cannot prove it may delete this one.
        return Err(ToolFailure(format!(
            "the token `{}` is limited to namespaces and cannot forget memories; use an unrestricted write token",
            who.name
        )));
    }
    let removed = ws.forget(id)?;
    if !removed {
        return Err(ToolFailure(format!(
            "no memory with id {id}; recall shows the ids of existing memories"
        )));
    }
    ok(
        format!("Forgot {id}."),
        json!({ "id": id, "removed": true }),
    )
}

pub fn index_status(ws: &Workspace, who: &Principal) -> ToolResult {
    let st = ws.status_in(&who.scope())?;
    let mut text = format!(
        "state: {}; model: {}\n",
        st.state,
        st.model.as_deref().unwrap_or("none (lexical only)")
    );
    for r in &st.roots {
        let p = &r.project;
        let _ = writeln!(
            text,
            "\n{}{}\n  files indexed: {}, awaiting embeddings: {}, memories: {}, unsaved buffers: {}",
            p.root,
            if r.indexing { " (indexing…)" } else { "" },
            p.files_indexed,
            p.pending_files,
            r.memories,
            r.unsaved_files
        );
        let _ = writeln!(
            text,
            "  last indexed commit: {}; HEAD: {}",
            p.last_commit.as_deref().unwrap_or("-"),
            p.head_commit.as_deref().unwrap_or("-")
        );
        for n in &p.namespaces {
            let _ = writeln!(
                text,
                "  {:<14} {:>6} files {:>8} points",
                n.name, n.files, n.points
            );
        }
        if let Some(e) = &r.last_error {
            let _ = writeln!(text, "  last error: {e}");
        }
    }
    for b in &st.backends {
        let _ = writeln!(
            text,
            "backend {} ({}): {}{}",
            b.name,
            b.kind,
            if b.healthy { "healthy" } else { "UNHEALTHY" },
            b.breaker
                .as_deref()
                .map(|s| format!(", breaker {s}"))
                .unwrap_or_default()
        );
    }
    let structured = serde_json::to_value(&st).map_err(|e| ToolFailure(e.to_string()))?;
    ok(text, structured)
}

pub fn list_namespaces(ws: &Workspace, who: &Principal) -> ToolResult {
    let visible = ws.namespaces_in(&who.scope())?;
    let mut text = String::from("Namespaces:\n");
    for n in &visible {
        let _ = writeln!(
            text,
            "- {}: {} ({} files, {} points, {} memories)",
            n.name, n.description, n.files, n.points, n.memories
        );
    }
    let access = if who.can_write() {
        "read and write"
    } else {
        "read only"
    };
    let _ = writeln!(text, "\nYour token (`{}`) may {access} these.", who.name);
    ok(text, json!({ "namespaces": visible, "access": access }))
}

/// Resolves reindex's optional path to the root it names (sandboxed).
pub fn reindex_target(ws: &Workspace, a: &ReindexArgs) -> Result<Option<PathBuf>, ToolFailure> {
    match &a.path {
        None => Ok(None),
        Some(p) => {
            let (root, _) = ws.resolve_path(p)?;
            Ok(Some(root))
        }
    }
}

pub fn reindex(
    ws: &Workspace,
    root: Option<PathBuf>,
    progress: &dyn codemem_service::ProgressSink,
    cancel: &AtomicBool,
) -> ToolResult {
    let stats = ws.reindex(root.as_deref(), progress, cancel)?;
    let cancelled = stats.iter().any(|s| s.cancelled);
    let mut text = String::new();
    for s in &stats {
        let _ = writeln!(
            text,
            "{} files scanned, {} re-indexed, {} unchanged, {} deleted, {} skipped; {} chunks embedded ({} from cache) in {:.1} s{}",
            s.files_scanned,
            s.files_indexed,
            s.files_unchanged,
            s.files_deleted,
            s.files_skipped,
            s.chunks_embedded,
            s.cache_hits,
            s.elapsed_ms as f64 / 1000.0,
            if s.cancelled { " — cancelled; the next run resumes" } else { "" }
        );
    }
    let structured = json!({ "runs": stats, "cancelled": cancelled });
    ok(text, structured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_plain_objects() {
        for t in tools() {
            let s = &t.input_schema;
            assert_eq!(s["type"], "object", "{}", t.name);
            assert!(s.get("$schema").is_none());
            let text = serde_json::to_string(s).unwrap();
            assert!(!text.contains("null"), "{}: {text}", t.name);
            assert!(t.description.as_ref().unwrap().len() > 60, "{}", t.name);
        }
        let s = schema_of::<SearchCodeArgs>();
        assert_eq!(s["required"], json!(["query"]));
        assert_eq!(s["properties"]["namespaces"]["type"], "array");
        assert_eq!(s["properties"]["k"]["type"], "integer");
    }

    #[test]
    fn bad_arguments_say_what_is_expected() {
        let e = parse_args::<SearchCodeArgs>("search_code", None)
            .err()
            .unwrap()
            .0;
        assert!(
            e.contains("missing field `query`") && e.contains("query: string"),
            "{e}"
        );
        let mut a = JsonObject::new();
        a.insert("query".into(), json!(5));
        let e = parse_args::<SearchCodeArgs>("search_code", Some(a))
            .err()
            .unwrap()
            .0;
        assert!(e.contains("invalid type"), "{e}");
        let mut a = JsonObject::new();
        a.insert("query".into(), json!("x"));
        a.insert("bogus".into(), json!(1));
        let e = parse_args::<SearchCodeArgs>("search_code", Some(a))
            .err()
            .unwrap()
            .0;
        assert!(e.contains("unknown field `bogus`"), "{e}");
        let mut a = JsonObject::new();
        a.insert("query".into(), json!("x".repeat(MAX_ARG_BYTES + 1)));
        let e = parse_args::<SearchCodeArgs>("search_code", Some(a))
            .err()
            .unwrap()
            .0;
        assert!(e.contains("larger than"), "{e}");
    }
}
