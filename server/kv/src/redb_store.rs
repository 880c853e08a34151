//! Embedded backend on redb: one file, ACID, fsync on commit.

use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::{KeyValue, KvError, Result, Table, WriteOp};

const EMBEDDINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("embeddings");
const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const MEMORIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("memories");

fn def(t: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match t {
        Table::Embeddings => EMBEDDINGS,
        Table::Files => FILES,
        Table::Meta => META,
        Table::Memories => MEMORIES,
    }
}

fn op_err(op: &'static str) -> impl Fn(String) -> KvError {
    move |reason| KvError::Operation { op, reason }
}

macro_rules! try_op {
    ($op:literal, $e:expr) => {
        $e.map_err(|e| op_err($op)(e.to_string()))?
    };
}

/// redb's in-memory page cache per database.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens or creates the database file (parent directories must exist).
    pub fn open(path: &Path) -> Result<RedbStore> {
        // redb's page cache defaults to 1 GiB and grows toward the file's size (the embedding
        // cache of a big project is hundreds of MB) in every open project of the daemon.
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => KvError::Busy {
                    path: path.display().to_string(),
                },
                other => KvError::Open {
                    path: path.display().to_string(),
                    reason: other.to_string(),
                },
            })?;
        // Create every table up front so reads never hit "table does not exist".
        let tx = try_op!("open", db.begin_write());
        for t in Table::ALL {
            try_op!("open", tx.open_table(def(t)));
        }
        try_op!("open", tx.commit());
        Ok(RedbStore { db })
    }
}

impl KeyValue for RedbStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = try_op!("get", self.db.begin_read());
        let t = try_op!("get", tx.open_table(def(table)));
        let v = try_op!("get", t.get(key));
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let tx = try_op!("get_many", self.db.begin_read());
        let t = try_op!("get_many", tx.open_table(def(table)));
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let v = try_op!("get_many", t.get(k.as_slice()));
            out.push(v.map(|g| g.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let tx = try_op!("write", self.db.begin_write());
        {
            let mut tables = Vec::new();
            for t in Table::ALL {
                tables.push((t, try_op!("write", tx.open_table(def(t)))));
            }
            type Open<'t> = Vec<(Table, redb::Table<'t, &'static [u8], &'static [u8]>)>;
            let table = |tables: &mut Open<'_>, t: Table| {
                tables
                    .iter()
                    .position(|(x, _)| *x == t)
                    .expect("all tables opened")
            };
            for op in ops {
                match op {
                    WriteOp::Put {
                        table: t,
                        key,
                        value,
                    } => {
                        let i = table(&mut tables, t);
                        try_op!(
                            "write",
                            tables[i].1.insert(key.as_slice(), value.as_slice())
                        );
                    }
                    WriteOp::Delete { table: t, key } => {
                        let i = table(&mut tables, t);
                        try_op!("write", tables[i].1.remove(key.as_slice()));
                    }
                }
            }
        }
        try_op!("write", tx.commit());
        Ok(())
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let tx = try_op!("scan", self.db.begin_read());
        let t = try_op!("scan", tx.open_table(def(table)));
        let mut out = Vec::new();
        for item in try_op!("scan", t.iter()) {
            let (k, v) = try_op!("scan", item);
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn len(&self, table: Table) -> Result<u64> {
        let tx = try_op!("len", self.db.begin_read());
        let t = try_op!("len", tx.open_table(def(table)));
        Ok(try_op!("len", t.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let kv = RedbStore::open(&dir.path().join("kv.redb")).unwrap();
        crate::contract::run_all(&kv);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kv.redb");
        {
            let kv = RedbStore::open(&p).unwrap();
            kv.write(vec![WriteOp::Put {
                table: Table::Files,
                key: b"a".to_vec(),
                value: b"b".to_vec(),
            }])
            .unwrap();
        }
        let kv = RedbStore::open(&p).unwrap();
        assert_eq!(
            kv.get(Table::Files, b"a").unwrap().as_deref(),
            Some(&b"b"[..])
        );
    }

    #[test]
    fn second_open_is_busy_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kv.redb");
        let _kv = RedbStore::open(&p).unwrap();
        assert!(matches!(RedbStore::open(&p), Err(KvError::Busy { .. })));
    }
}
