//! The file manifest: what was indexed, from which bytes, and whether its embeddings are done.

use std::collections::HashMap;

use codemem_core::Language;
use codemem_kv::{KeyValue, Table, WriteOp};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::symbols::SymbolDef;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub size: u64,
    pub mtime_ns: i128,
    /// blake3 of the file bytes.
    pub hash: String,
    pub namespace: String,
    pub language: Language,
    pub chunks: u32,
    /// All chunks have their dense vectors in the store (durably).
    pub complete: bool,
    /// Definitions in the file, for exact and fuzzy symbol lookup.
    #[serde(default)]
    pub symbols: Vec<SymbolDef>,
    /// Lines of the indexed text (newlines + 1, as LSP counts them), so positions can be
    /// checked without reading the file; `None` in entries written before it was kept.
    #[serde(default)]
    pub lines: Option<u32>,
}

/// Bumped when `FileEntry` gains data older entries lack; older manifests are re-chunked
/// (embeddings come from the cache).
pub const MANIFEST_VERSION: u32 = 3;

pub fn load(kv: &dyn KeyValue) -> Result<HashMap<String, FileEntry>> {
    let mut out = HashMap::new();
    for (k, v) in kv.scan(Table::Files)? {
        let path = String::from_utf8(k)
            .map_err(|_| ServiceError::Corrupt("non-UTF-8 manifest key".into()))?;
        let entry: FileEntry = serde_json::from_slice(&v)
            .map_err(|e| ServiceError::Corrupt(format!("manifest entry {path}: {e}")))?;
        out.insert(path, entry);
    }
    Ok(out)
}

pub fn put_op(path: &str, e: &FileEntry) -> WriteOp {
    WriteOp::Put {
        table: Table::Files,
        key: path.as_bytes().to_vec(),
        value: serde_json::to_vec(e).expect("FileEntry serialises"),
    }
}

pub fn delete_op(path: &str) -> WriteOp {
    WriteOp::Delete {
        table: Table::Files,
        key: path.as_bytes().to_vec(),
    }
}

/// Named metadata values (JSON).
pub fn get_meta<T: for<'de> Deserialize<'de>>(kv: &dyn KeyValue, key: &str) -> Result<Option<T>> {
    match kv.get(Table::Meta, key.as_bytes())? {
        Some(v) => Ok(serde_json::from_slice(&v).ok()),
        None => Ok(None),
    }
}

pub fn meta_op<T: Serialize>(key: &str, value: &T) -> WriteOp {
    WriteOp::Put {
        table: Table::Meta,
        key: key.as_bytes().to_vec(),
        value: serde_json::to_vec(value).expect("meta serialises"),
    }
}
