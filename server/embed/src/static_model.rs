//! A static embedding table distilled from the installed MiniLM: the first, fast pass.
//!
//! Building (once per model, ~30 s on 2 cores): for every vocabulary id, MiniLM runs on
//! `[CLS] id [SEP]` and the output row at the token's position is kept. Special and
//! `[unusedN]` rows are zeroed; row r (0-based among the kept ids) is multiplied by ln(r + 2);
//! each row is stored as int8 with its own scale. The file sits beside the model
//! (`static-v1.table`) with its sha256 (`static-v1.table.sha256`); a file whose hash, header or
//! model pin does not match is rebuilt.
//!
//! Encoding a text: camelCase split, WordPiece without special tokens or truncation, `[UNK]`
//! dropped, rows summed, L2-normalised. About two orders of magnitude faster than the
//! transformer, and weaker: it is a first pass for hybrid search, replaced chunk by chunk by
//! the transformer's vectors.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

use crate::assets::{asset_file, AssetKind, AssetPaths, MODEL_NAME};
use crate::onnx::{environment, DIM};
use crate::{EmbedError, Embedder, Result};

/// File name of the table beside the model.
pub const TABLE_FILE: &str = "static-v1.table";
const MAGIC: &[u8; 8] = b"CMSTATIC";
const FORMAT: u32 = 1;
/// Vocabulary ids per forward pass while building.
const BUILD_BATCH: usize = 256;

/// The static model: one int8 row (with a scale) per vocabulary id.
pub struct StaticEmbedder {
    tokenizer: Tokenizer,
    scales: Vec<f32>,
    rows: Vec<i8>,
    model_id: String,
    unk: Option<u32>,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("model_id", &self.model_id)
            .field("vocab", &self.scales.len())
            .finish_non_exhaustive()
    }
}

/// Where the table of `paths`' model lives.
pub fn table_path(paths: &AssetPaths) -> PathBuf {
    paths.model_dir.join(TABLE_FILE)
}

fn sha_path(table: &Path) -> PathBuf {
    let mut s = table.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The model pin the table was distilled from (a new model means a new table).
fn model_pin() -> &'static str {
    &asset_file(AssetKind::ModelOnnx).sha256[..16]
}

fn model_err(what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(format!("static table: {what}"))
}

/// Loads the tokenizer without the padding and truncation baked into `tokenizer.json`.
fn load_tokenizer(paths: &AssetPaths) -> Result<Tokenizer> {
    let mut t = Tokenizer::from_file(&paths.tokenizer)
        .map_err(|e| EmbedError::Model(format!("{}: {e}", paths.tokenizer.display())))?;
    t.with_padding(None);
    t.with_truncation(None)
        .map_err(|e| model_err(format!("disabling truncation: {e}")))?;
    Ok(t)
}

/// A special or reserved token (`[PAD]`, `[CLS]`, `[unused12]`, ...): its row stays zero.
fn reserved(token: &str) -> bool {
    token.len() > 2 && token.starts_with('[') && token.ends_with(']')
}

/// Splits camelCase and acronym boundaries with spaces (`parseHTTPRequest` →
/// `parse HTTP Request`), so WordPiece sees words instead of one unknown run.
pub fn split_camel(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out
}

#[derive(Debug)]
struct Table {
    scales: Vec<f32>,
    rows: Vec<i8>,
}

impl Table {
    fn to_bytes(&self) -> Vec<u8> {
        let vocab = self.scales.len();
        let mut b = Vec::with_capacity(32 + vocab * (4 + DIM));
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT.to_le_bytes());
        b.extend_from_slice(&(vocab as u32).to_le_bytes());
        b.extend_from_slice(&(DIM as u32).to_le_bytes());
        b.extend_from_slice(model_pin().as_bytes());
        for s in &self.scales {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.extend(self.rows.iter().map(|&q| q as u8));
        b
    }

    fn from_bytes(b: &[u8], vocab: usize) -> std::result::Result<Table, String> {
        let header = 8 + 4 + 4 + 4 + 16;
        if b.len() < header || &b[..8] != MAGIC {
            return Err("not a codemem static table".into());
        }
        let u = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        if u(8) != FORMAT as usize {
            return Err(format!("format {} (expected {FORMAT})", u(8)));
        }
        if u(12) != vocab || u(16) != DIM {
            return Err(format!("{} × {} (expected {vocab} × {DIM})", u(12), u(16)));
        }
        if &b[20..36] != model_pin().as_bytes() {
            return Err("distilled from another model".into());
        }
        if b.len() != header + vocab * (4 + DIM) {
            return Err(format!(
                "{} bytes, expected {}",
                b.len(),
                header + vocab * (4 + DIM)
            ));
        }
        let scales = b[header..header + vocab * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let rows = b[header + vocab * 4..].iter().map(|&x| x as i8).collect();
        Ok(Table { scales, rows })
    }
}

/// Runs MiniLM on `[CLS] id [SEP]` for `ids` and returns each id's output row at position 1.
fn distil_rows(paths: &AssetPaths, ids: std::ops::Range<u32>, threads: usize) -> Result<Vec<f32>> {
    use ort::session::Session;
    use ort::value::Tensor;
    paths.verify_sizes()?;
    let env = environment(&paths.runtime_lib)?;
    let onnx = std::fs::read(&paths.model_onnx).map_err(|e| EmbedError::MissingAsset {
        what: format!("model.onnx (unreadable: {e})"),
        path: paths.model_onnx.display().to_string(),
    })?;
    let ort_err = |e: ort::Error| model_err(e.to_string());
    let mut session = Session::builder(&env)
        .map_err(ort_err)?
        .with_intra_threads(threads)
        .map_err(|e| model_err(e.to_string()))?
        .with_config_entry("session.intra_op.allow_spinning", "0")
        .map_err(|e| model_err(e.to_string()))?
        .commit_from_memory(&onnx)
        .map_err(ort_err)?;
    let type_ids = session
        .inputs()
        .iter()
        .any(|i| i.name() == "token_type_ids");
    let all: Vec<u32> = ids.collect();
    let mut out = Vec::with_capacity(all.len() * DIM);
    for batch in all.chunks(BUILD_BATCH) {
        let n = batch.len();
        let input: Vec<i64> = batch.iter().flat_map(|&id| [101, id as i64, 102]).collect();
        let mut inputs = ort::inputs![
            "input_ids" => Tensor::from_array(([n, 3], input)).map_err(ort_err)?,
            "attention_mask" => Tensor::from_array(([n, 3], vec![1i64; n * 3])).map_err(ort_err)?,
        ];
        if type_ids {
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array(([n, 3], vec![0i64; n * 3]))
                    .map_err(ort_err)?
                    .into(),
            ));
        }
        let outputs = session.run(inputs).map_err(ort_err)?;
        let value = match outputs.get("last_hidden_state") {
            Some(v) => v,
            None => &outputs[0],
        };
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
        if shape.len() != 3 || shape[0] as usize != n || shape[1] != 3 || shape[2] as usize != DIM {
            return Err(model_err(format!(
                "unexpected model output shape {shape:?}"
            )));
        }
        for b in 0..n {
            let at = (b * 3 + 1) * DIM;
            out.extend_from_slice(&data[at..at + DIM]);
        }
    }
    Ok(out)
}

/// Distils the table (zeroing, Zipf weighting, int8 rows).
fn build(paths: &AssetPaths, tokenizer: &Tokenizer, threads: usize) -> Result<Table> {
    let vocab = tokenizer.get_vocab_size(true) as u32;
    let raw = distil_rows(paths, 0..vocab, threads)?;
    let mut scales = vec![0f32; vocab as usize];
    let mut rows = vec![0i8; vocab as usize * DIM];
    let mut kept = 0usize;
    for id in 0..vocab as usize {
        if tokenizer
            .id_to_token(id as u32)
            .is_none_or(|t| reserved(&t))
        {
            continue;
        }
        let weight = ((kept + 2) as f32).ln();
        kept += 1;
        let row = &raw[id * DIM..(id + 1) * DIM];
        let max = row.iter().fold(0f32, |m, x| m.max((x * weight).abs()));
        if max == 0.0 || !max.is_finite() {
            continue;
        }
        let scale = max / 127.0;
        scales[id] = scale;
        for (q, x) in rows[id * DIM..(id + 1) * DIM].iter_mut().zip(row) {
            *q = (x * weight / scale).round().clamp(-127.0, 127.0) as i8;
        }
    }
    Ok(Table { scales, rows })
}

/// Writes `bytes` and its sha256 beside it, each through a temporary file and a rename, so a
/// concurrent reader sees the old file or the new one, never a torn one.
fn write_table(path: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let sha = hex(&Sha256::digest(bytes));
    let tmp = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(format!(".tmp{}", std::process::id()));
        PathBuf::from(s)
    };
    let (t1, t2) = (tmp(path), tmp(&sha_path(path)));
    std::fs::write(&t1, bytes)?;
    std::fs::write(&t2, format!("{sha}\n"))?;
    std::fs::rename(&t1, path)?;
    std::fs::rename(&t2, sha_path(path))?;
    Ok(sha)
}

/// Reads a table whose sha256 matches its sidecar; why not, otherwise.
fn read_table(path: &Path, vocab: usize) -> std::result::Result<(Table, String), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let want = std::fs::read_to_string(sha_path(path)).map_err(|e| format!("sha256 file: {e}"))?;
    let got = hex(&Sha256::digest(&bytes));
    if want.trim() != got {
        return Err(format!(
            "sha256 {got} differs from the recorded {}",
            want.trim()
        ));
    }
    Ok((Table::from_bytes(&bytes, vocab)?, got))
}

/// An exclusive `flock` on `<table>.lock`, held while building; released on drop (and by the
/// kernel if the process dies). Best effort: without it two processes just both build.
struct BuildLock(Option<std::fs::File>);

impl BuildLock {
    fn take(table: &Path) -> BuildLock {
        use std::os::fd::AsRawFd;
        let mut p = table.as_os_str().to_owned();
        p.push(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(p))
            .ok();
        if let Some(f) = &file {
            // SAFETY: flock on a descriptor this struct owns; blocks until the holder is done.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        }
        BuildLock(file)
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(f) = &self.0 {
            // SAFETY: as above.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

impl StaticEmbedder {
    /// Loads the table beside the model in `paths`, building it first when it is missing,
    /// corrupt or made from another model. `threads`: for the one-time build (0 = one per core).
    pub fn load_or_build(paths: &AssetPaths, threads: usize) -> Result<StaticEmbedder> {
        let tokenizer = load_tokenizer(paths)?;
        let vocab = tokenizer.get_vocab_size(true);
        let path = table_path(paths);
        // One builder at a time across processes: the others wait, then read its table.
        let _lock = match read_table(&path, vocab) {
            Ok(_) => None,
            Err(_) => Some(BuildLock::take(&path)),
        };
        let (table, sha) = match read_table(&path, vocab) {
            Ok(t) => t,
            Err(why) => {
                if path.exists() {
                    tracing::warn!(path = %path.display(), why, "rebuilding the static table");
                }
                let threads = if threads == 0 {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                } else {
                    threads
                };
                let started = Instant::now();
                let table = build(paths, &tokenizer, threads)?;
                let sha = write_table(&path, &table.to_bytes())
                    .map_err(|e| model_err(format!("writing {}: {e}", path.display())))?;
                tracing::info!(
                    path = %path.display(),
                    sha256 = %sha,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "static table built"
                );
                (table, sha)
            }
        };
        let unk = tokenizer.token_to_id("[UNK]");
        Ok(StaticEmbedder {
            tokenizer,
            scales: table.scales,
            rows: table.rows,
            model_id: format!("{MODEL_NAME}-static-v1:{}", &sha[..12]),
            unk,
        })
    }

    /// The table's vector of `text`, or `None` when no token of it is known (nothing to
    /// rank by).
    pub fn encode(&self, text: &str) -> Option<Vec<f32>> {
        let enc = self.tokenizer.encode(split_camel(text), false).ok()?;
        let mut acc = [0f32; DIM];
        let mut any = false;
        for &id in enc.get_ids() {
            if Some(id) == self.unk {
                continue;
            }
            let id = id as usize;
            let Some(&scale) = self.scales.get(id) else {
                continue;
            };
            if scale == 0.0 {
                continue;
            }
            any = true;
            for (a, &q) in acc.iter_mut().zip(&self.rows[id * DIM..(id + 1) * DIM]) {
                *a += scale * q as f32;
            }
        }
        let norm = acc.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !any || norm == 0.0 || !norm.is_finite() {
            return None;
        }
        Some(acc.iter().map(|x| x / norm).collect())
    }
}

impl Embedder for StaticEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        DIM
    }

    /// Texts without a known token get a zero vector (the trait has no "none"); callers that
    /// store vectors use [`StaticEmbedder::encode`].
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| self.encode(t).unwrap_or_else(|| vec![0.0; DIM]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_is_split_at_word_and_acronym_boundaries() {
        assert_eq!(split_camel("parseHTTPRequest"), "parse HTTP Request");
        assert_eq!(split_camel("getX2Value"), "get X2 Value");
        assert_eq!(split_camel("snake_case stays"), "snake_case stays");
        assert_eq!(split_camel("HTTPServer"), "HTTP Server");
        assert_eq!(split_camel("ÉtéÀ"), "Été À");
    }

    #[test]
    fn reserved_tokens_are_recognised() {
        assert!(reserved("[PAD]"));
        assert!(reserved("[unused42]"));
        assert!(!reserved("["));
        assert!(!reserved("##ing"));
        assert!(!reserved("[]"));
    }

    #[test]
    fn table_bytes_round_trip_and_reject_mismatches() {
        let vocab = 3;
        let t = Table {
            scales: vec![0.5, 0.0, 2.0],
            rows: (0..vocab * DIM).map(|i| (i % 255) as i8).collect(),
        };
        let b = t.to_bytes();
        let back = Table::from_bytes(&b, vocab).unwrap();
        assert_eq!(back.scales, t.scales);
        assert_eq!(back.rows, t.rows);
        assert!(Table::from_bytes(&b, vocab + 1)
            .unwrap_err()
            .contains("expected"));
        assert!(Table::from_bytes(&b[..b.len() - 1], vocab).is_err());
        let mut other = b.clone();
        other[20] ^= 1;
        assert!(Table::from_bytes(&other, vocab)
            .unwrap_err()
            .contains("another model"));
    }
}
