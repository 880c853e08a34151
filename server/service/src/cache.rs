//! The embedding cache: (model id, chunker version, content hash) → vector, in the KV store.

use codemem_core::CHUNKER_VERSION;
use codemem_kv::{KeyValue, Table, WriteOp};

use crate::error::Result;

pub fn cache_key(model_id: &str, content_hash: &str) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(model_id.as_bytes());
    h.update(&[0]);
    h.update(&CHUNKER_VERSION.to_le_bytes());
    h.update(content_hash.as_bytes());
    h.finalize().as_bytes()[..20].to_vec()
}

pub fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode(b: &[u8], dim: usize) -> Option<Vec<f32>> {
    if b.len() != dim * 4 {
        return None; // a vector of another model/dim: treat as a miss
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

pub fn lookup(kv: &dyn KeyValue, keys: &[Vec<u8>], dim: usize) -> Result<Vec<Option<Vec<f32>>>> {
    Ok(kv
        .get_many(Table::Embeddings, keys)?
        .into_iter()
        .map(|v| v.and_then(|b| decode(&b, dim)))
        .collect())
}

pub fn put_op(key: Vec<u8>, v: &[f32]) -> WriteOp {
    WriteOp::Put {
        table: Table::Embeddings,
        key,
        value: encode(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_key_depends_on_model() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(decode(&encode(&v), 3).unwrap(), v);
        assert!(decode(&encode(&v), 4).is_none());
        assert_ne!(cache_key("a", "h"), cache_key("b", "h"));
        assert_eq!(cache_key("a", "h"), cache_key("a", "h"));
    }
}
