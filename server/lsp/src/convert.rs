//! from_proto / to_proto: LSP types ↔ service types. Nothing else.

use std::path::{Path, PathBuf};

use codemem_core::{ChunkKind, Hit};
use codemem_service::{Position as SvcPosition, SearchResponse, SymbolMatch, TextChange};
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::Error;
use tower_lsp_server::ls_types::{
    Location, Position, Range, SymbolInformation, SymbolKind, TextDocumentContentChangeEvent, Uri,
};

pub fn path(uri: &Uri) -> Result<PathBuf, Error> {
    if uri.scheme().as_str() != "file" {
        return Err(Error::invalid_params(format!(
            "only file:// URIs are supported, got {}",
            uri.as_str()
        )));
    }
    uri.to_file_path().map(|p| p.into_owned()).ok_or_else(|| {
        Error::invalid_params(format!("cannot map {} to a local path", uri.as_str()))
    })
}

pub fn uri(path: &Path) -> Option<Uri> {
    Uri::from_file_path(path)
}

pub fn position(p: Position) -> SvcPosition {
    SvcPosition {
        line: p.line,
        character: p.character,
    }
}

pub fn changes(events: Vec<TextDocumentContentChangeEvent>) -> Vec<TextChange> {
    events
        .into_iter()
        .map(|e| TextChange {
            range: e.range.map(|r| (position(r.start), position(r.end))),
            text: e.text,
        })
        .collect()
}

/// Whole lines `start..=end` (1-based) as an LSP range.
pub fn lines(start: u32, end: u32) -> Range {
    Range::new(
        Position::new(start.saturating_sub(1), 0),
        Position::new(end, 0),
    )
}

fn absolute(root: Option<&str>, rel: &str) -> PathBuf {
    match root {
        Some(r) => Path::new(r).join(rel),
        None => PathBuf::from(rel),
    }
}

/// An LSP `Location` of a reference-graph site: `root` (the site's, else the document's) +
/// `rel`, on 1-based `line`, spanning the name from its 1-based byte `column` when given
/// (else the whole line).
pub fn ref_location(
    doc_root: Option<&Path>,
    root: Option<&str>,
    rel: &str,
    line: u32,
    span: Option<(u32, u32)>,
) -> Option<Value> {
    let abs = match (root, doc_root) {
        (Some(r), _) => Path::new(r).join(rel),
        (None, Some(d)) => d.join(rel),
        (None, None) => PathBuf::from(rel),
    };
    let range = match span {
        // Byte columns: exact for ASCII lines, which identifiers' lines mostly are.
        Some((col, len)) => Range::new(
            Position::new(line.saturating_sub(1), col.saturating_sub(1)),
            Position::new(line.saturating_sub(1), col.saturating_sub(1) + len),
        ),
        None => lines(line, line),
    };
    Some(json!({ "uri": uri(&abs)?.as_str(), "range": range }))
}

pub fn hit(h: &Hit) -> Value {
    let uri = uri(&absolute(h.root.as_deref(), &h.path)).map(|u| u.as_str().to_string());
    let mut v = json!({
        "uri": uri,
        "range": lines(h.start_line, h.end_line),
        "path": h.path,
        "symbol": h.symbol,
        "kind": h.kind.as_str(),
        "score": h.score,
        "snippet": h.snippet,
        "namespace": h.namespace.as_str(),
        "language": h.language.as_str(),
        "unsaved": h.unsaved,
    });
    if let Some(e) = &h.explain {
        v["explain"] = json!(e);
    }
    v
}

pub fn search_response(r: &SearchResponse) -> Value {
    json!({
        "hits": r.hits.iter().map(hit).collect::<Vec<_>>(),
        "freshness": r.freshness,
        "mode": r.mode,
        "denseAvailable": r.dense_available,
        "tookMs": r.took_ms,
    })
}

pub fn symbol_kind(kind: &str) -> SymbolKind {
    match ChunkKind::parse(kind) {
        Some(ChunkKind::Function) => SymbolKind::FUNCTION,
        Some(ChunkKind::Method) => SymbolKind::METHOD,
        Some(ChunkKind::Class | ChunkKind::Type) => SymbolKind::CLASS,
        Some(ChunkKind::Struct) => SymbolKind::STRUCT,
        Some(ChunkKind::Enum) => SymbolKind::ENUM,
        Some(ChunkKind::Interface | ChunkKind::Trait) => SymbolKind::INTERFACE,
        Some(ChunkKind::Impl) => SymbolKind::OBJECT,
        Some(ChunkKind::Module) => SymbolKind::MODULE,
        Some(ChunkKind::Constant) => SymbolKind::CONSTANT,
        Some(ChunkKind::Section) => SymbolKind::STRING,
        Some(ChunkKind::Memory) => SymbolKind::KEY,
        Some(ChunkKind::Block) | None => SymbolKind::NULL,
    }
}

#[allow(deprecated)] // `deprecated` is a required field of SymbolInformation
fn symbol_information(
    name: &str,
    kind: SymbolKind,
    path: &Path,
    range: Range,
    container: Option<String>,
) -> Option<SymbolInformation> {
    Some(SymbolInformation {
        name: name.to_string(),
        kind,
        tags: None,
        deprecated: None,
        location: Location::new(uri(path)?, range),
        container_name: container,
    })
}

pub fn symbol_match(m: &SymbolMatch) -> Option<SymbolInformation> {
    let container = Some(if m.unsaved {
        format!("{} (unsaved)", m.path)
    } else {
        m.path.clone()
    });
    symbol_information(
        &m.name,
        symbol_kind(&m.kind),
        &absolute(Some(&m.root), &m.path),
        lines(m.start_line, m.end_line),
        container,
    )
}

/// A semantic hit as a workspace symbol (only hits that name a definition).
pub fn hit_symbol(h: &Hit) -> Option<SymbolInformation> {
    let name = h.symbol.as_deref()?;
    symbol_information(
        name,
        symbol_kind(h.kind.as_str()),
        &absolute(h.root.as_deref(), &h.path),
        lines(h.start_line, h.end_line),
        Some(format!("{} (related)", h.path)),
    )
}
