//! A deterministic, model-free embedder for tests of other layers.

use crate::{Embedder, Result};

/// Bag of hashed tokens: each lower-cased alphanumeric token adds ±1 to one of `dim` buckets
/// (both chosen by its blake3 hash), then the vector is L2-normalised. Texts that share words
/// get a higher cosine similarity; the same text always gets the same vector, on every
/// platform. A text without tokens (e.g. "") maps to a fixed unit vector.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
    model_id: String,
}

impl HashEmbedder {
    /// Panics if `dim` is 0.
    pub fn new(dim: usize) -> Self {
        assert!(dim > 0, "HashEmbedder needs dim > 0");
        HashEmbedder {
            dim,
            model_id: format!("hash-{dim}"),
        }
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        let mut any = false;
        for token in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
        {
            self.add(&mut v, &token.to_lowercase());
            any = true;
        }
        if !any {
            self.add(&mut v, "\u{0}empty");
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        } else {
            // Every token cancelled out (+1/-1 in one bucket): still return a unit vector.
            v[0] = 1.0;
        }
        v
    }

    fn add(&self, v: &mut [f32], token: &str) {
        let h = blake3::hash(token.as_bytes());
        let b = h.as_bytes();
        let x = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let bucket = (x % self.dim as u64) as usize;
        v[bucket] += if b[8] & 1 == 0 { 1.0 } else { -1.0 };
    }
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn emb(e: &HashEmbedder, texts: &[&str]) -> Vec<Vec<f32>> {
        e.embed(&texts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    #[test]
    fn deterministic_normalised_and_sized() {
        let e = HashEmbedder::new(64);
        assert_eq!(e.model_id(), "hash-64");
        assert_eq!(e.dim(), 64);
        let a = emb(&e, &["open the file", "", "!!!", "open the file"]);
        assert_eq!(a.len(), 4);
        assert_eq!(a[0], a[3]);
        for v in &a {
            assert_eq!(v.len(), 64);
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-5, "norm {n}");
        }
        assert_eq!(a[1], a[2], "token-less texts share one vector");
        assert_eq!(a[0], emb(&HashEmbedder::new(64), &["Open THE file"])[0]);
        assert!(emb(&e, &[]).is_empty());
    }

    #[test]
    fn shared_words_are_closer() {
        let e = HashEmbedder::new(256);
        let v = emb(
            &e,
            &[
                "read file contents",
                "read the file from disk",
                "average of numbers",
            ],
        );
        assert!(
            cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.2,
            "{} vs {}",
            cos(&v[0], &v[1]),
            cos(&v[0], &v[2])
        );
    }

    #[test]
    fn usable_as_trait_object() {
        let e: Box<dyn Embedder> = Box::new(HashEmbedder::new(8));
        assert_eq!(e.embed(&["x".into()]).unwrap()[0].len(), 8);
    }
}
