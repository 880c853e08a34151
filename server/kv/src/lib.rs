//! codemem-kv: small durable key-value state.
//!
//! Owns the `KeyValue` trait used for the embedding cache, the file manifest and index
//! metadata, and its backends: embedded on redb (`RedbStore`: crash-safe, a write returns only
//! after it is durable) and Redis (`RedisStore`, pooled, behind a circuit breaker).
//! `SharedCacheKv` keeps a project's state in redb and shares the embedding cache through Redis.
//!
//! Keys and values are opaque bytes here; the service gives them meaning. This crate must not
//! know about chunks, vectors, LSP or MCP.

mod redb_store;
mod redis_store;
mod shared_cache;
mod team;
pub mod testing;

pub use redb_store::RedbStore;
pub use redis_store::{RedisHealth, RedisOptions, RedisStore};
pub use shared_cache::{SharedCacheKv, SharedCacheStats};
pub use team::{Lease, ProjectState, Subscription};

/// Logical tables. Backends map them to redb tables or key prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// cache key → f32 vector (little endian).
    Embeddings,
    /// workspace-relative path → file entry.
    Files,
    /// small named values (last run stats, last commit, ...).
    Meta,
    /// memory id → memory record (JSON): notes written with `remember`.
    Memories,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Embeddings,
        Table::Files,
        Table::Meta,
        Table::Memories,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Table::Embeddings => "embeddings",
            Table::Files => "files",
            Table::Meta => "meta",
            Table::Memories => "memories",
        }
    }
}

/// One change inside an atomic [`KeyValue::write`].
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("key-value store at {path} is already open in another process; stop it or wait for it to finish")]
    Busy { path: String },
    #[error("key-value store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("key-value store operation `{op}` failed: {reason}")]
    Operation { op: &'static str, reason: String },
    /// The remote server could not be reached or its circuit breaker is open.
    #[error("{backend} at {url} is unavailable: {reason}")]
    Unavailable {
        backend: &'static str,
        url: String,
        reason: String,
    },
}

pub type Result<T, E = KvError> = std::result::Result<T, E>;

/// Durable byte-keyed tables. Thread-safe; every method is synchronous.
pub trait KeyValue: Send + Sync {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// One lookup per key, in order, in one consistent snapshot.
    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Applies all ops atomically; durable when it returns Ok.
    fn write(&self, ops: Vec<WriteOp>) -> Result<()>;
    /// Every entry of a table, in key order.
    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    fn len(&self, table: Table) -> Result<u64>;
}

/// Shared tests every backend must pass.
pub mod contract {
    use super::*;

    /// Every case; `kv` must start empty.
    pub fn run_all(kv: &dyn KeyValue) {
        put_get_delete(kv);
        tables_are_isolated(kv);
        batch_is_atomic_and_ordered(kv);
    }

    fn put_get_delete(kv: &dyn KeyValue) {
        kv.write(vec![WriteOp::Put {
            table: Table::Meta,
            key: b"a".to_vec(),
            value: b"1".to_vec(),
        }])
        .unwrap();
        assert_eq!(
            kv.get(Table::Meta, b"a").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        kv.write(vec![WriteOp::Delete {
            table: Table::Meta,
            key: b"a".to_vec(),
        }])
        .unwrap();
        assert_eq!(kv.get(Table::Meta, b"a").unwrap(), None);
        // Deleting a missing key is not an error.
        kv.write(vec![WriteOp::Delete {
            table: Table::Meta,
            key: b"zz".to_vec(),
        }])
        .unwrap();
    }

    fn tables_are_isolated(kv: &dyn KeyValue) {
        kv.write(vec![WriteOp::Put {
            table: Table::Files,
            key: b"k".to_vec(),
            value: b"f".to_vec(),
        }])
        .unwrap();
        assert_eq!(kv.get(Table::Embeddings, b"k").unwrap(), None);
        assert_eq!(
            kv.get(Table::Files, b"k").unwrap().as_deref(),
            Some(&b"f"[..])
        );
    }

    fn batch_is_atomic_and_ordered(kv: &dyn KeyValue) {
        let mut ops = Vec::new();
        for i in 0..100u32 {
            ops.push(WriteOp::Put {
                table: Table::Embeddings,
                key: i.to_be_bytes().to_vec(),
                value: vec![i as u8; 8],
            });
        }
        ops.push(WriteOp::Delete {
            table: Table::Embeddings,
            key: 5u32.to_be_bytes().to_vec(),
        });
        kv.write(ops).unwrap();
        assert_eq!(kv.len(Table::Embeddings).unwrap(), 99);
        let keys: Vec<Vec<u8>> = [1u32, 5, 7]
            .iter()
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        let got = kv.get_many(Table::Embeddings, &keys).unwrap();
        assert_eq!(got[0].as_deref(), Some(&[1u8; 8][..]));
        assert_eq!(got[1], None);
        assert_eq!(got[2].as_deref(), Some(&[7u8; 8][..]));
        let all = kv.scan(Table::Embeddings).unwrap();
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
