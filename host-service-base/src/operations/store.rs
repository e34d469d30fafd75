//! Persistence of operations in one redb file: table `operations`, id → JSON bytes.
//!
//! redb takes an exclusive lock on the file, so only one process (and one
//! [`Operations`](super::Operations)) can have a given store open; a second open fails
//! with [`OperationsError::Open`]. Every commit is durable (fsync) when it returns.
//! Once open, writes go through the store's writer thread ([`super::writer`]), never
//! through the thread that changed the operation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::error::OperationsError;
use super::model::OperationInfo;
use super::writer::{Ticket, Writer};

const OPERATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("operations");

/// Page cache of the store. The data is a few KB per operation and read once at open,
/// so redb's 1 GiB default cache would only be wasted address space.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

/// The redb-backed store of one registry.
pub(crate) struct Store {
    db: Arc<Database>,
    path: PathBuf,
    writer: Writer,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, creating its directory. The integrity of
    /// the file is checked on open, so a damaged file is an error, never a panic.
    pub(crate) fn open(path: &Path) -> Result<Self, OperationsError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OperationsError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|source| OperationsError::Open {
                path: path.to_owned(),
                source,
            })?;
        // Create the table now so that readers never meet a missing table.
        let txn = db.begin_write().map_err(OperationsError::store)?;
        txn.open_table(OPERATIONS).map_err(OperationsError::store)?;
        txn.commit().map_err(OperationsError::store)?;
        let db = Arc::new(db);
        // The thread could not start (out of threads): an I/O failure of the store.
        let writer = Writer::start(db.clone(), path.display().to_string())
            .map_err(|e| OperationsError::store(redb::StorageError::Io(e)))?;
        Ok(Self {
            db,
            path: path.to_owned(),
            writer,
        })
    }

    /// The file of this store.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes several operations in one transaction, now, on this thread: all or
    /// none. Only for the open, before anything else writes.
    pub(crate) fn put_all(&self, infos: &[OperationInfo]) -> Result<(), OperationsError> {
        commit(&self.db, &[], infos).map(drop)
    }

    /// Queues `info` for the writer thread; returns at once.
    pub(crate) fn queue_put(&self, info: OperationInfo) -> Ticket {
        self.writer.put(info)
    }

    /// Queues the deletion of `ids` for the writer thread; returns at once.
    pub(crate) fn queue_remove(&self, ids: &[String]) -> Ticket {
        self.writer.remove(ids)
    }

    /// Waits until the write of `ticket` is committed. On a worker thread of a
    /// multi-threaded Tokio runtime the wait is a `block_in_place`, so the runtime
    /// hands that worker's other tasks to another thread instead of stalling them.
    /// Elsewhere (a plain thread, `spawn_blocking`, a current-thread runtime, where
    /// `block_in_place` is not allowed) it simply blocks: the commit is milliseconds.
    pub(crate) fn wait(&self, ticket: Ticket) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let on_multi_thread = Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
        if on_multi_thread {
            tokio::task::block_in_place(|| self.writer.wait(ticket));
        } else {
            self.writer.wait(ticket);
        }
    }

    /// Commits made by the writer thread so far.
    pub(crate) fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Reads every stored operation. A row that does not parse, or whose key is not its
    /// `operation_id`, is skipped with a warning (and left in place for inspection).
    pub(crate) fn load_all(&self) -> Result<Vec<OperationInfo>, OperationsError> {
        let txn = self.db.begin_read().map_err(OperationsError::store)?;
        let table = txn.open_table(OPERATIONS).map_err(OperationsError::store)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(OperationsError::store)? {
            let (key, value) = row.map_err(OperationsError::store)?;
            let key = key.value();
            match serde_json::from_slice::<OperationInfo>(value.value()) {
                Ok(info) if info.operation_id == key => out.push(info),
                Ok(info) => tracing::warn!(
                    store = %self.path.display(),
                    key,
                    operation_id = %info.operation_id,
                    "skipping stored operation whose id does not match its key"
                ),
                Err(error) => tracing::warn!(
                    store = %self.path.display(),
                    key,
                    %error,
                    "skipping stored operation that does not parse"
                ),
            }
        }
        Ok(out)
    }
}

/// One transaction: deletes `removes`, then writes `puts`; all or none. Returns how
/// many of `removes` existed. Serializing happens here, on the calling (writer) thread.
pub(crate) fn commit<'a>(
    db: &Database,
    removes: &[String],
    puts: impl IntoIterator<Item = &'a OperationInfo>,
) -> Result<usize, OperationsError> {
    let rows = puts
        .into_iter()
        .map(|info| {
            serde_json::to_vec(info)
                .map(|json| (info.operation_id.as_str(), json))
                .map_err(|source| OperationsError::Serialize {
                    operation_id: info.operation_id.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if removes.is_empty() && rows.is_empty() {
        return Ok(0);
    }
    let txn = db.begin_write().map_err(OperationsError::store)?;
    let mut removed = 0;
    {
        let mut table = txn.open_table(OPERATIONS).map_err(OperationsError::store)?;
        for id in removes {
            if table
                .remove(id.as_str())
                .map_err(OperationsError::store)?
                .is_some()
            {
                removed += 1;
            }
        }
        for (id, json) in &rows {
            table
                .insert(*id, json.as_slice())
                .map_err(OperationsError::store)?;
        }
    }
    txn.commit().map_err(OperationsError::store)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::model::{OperationProgress, OperationStatus};

    fn info(id: &str) -> OperationInfo {
        let now = chrono::Utc::now();
        OperationInfo {
            operation_id: id.to_owned(),
            operation_type: "test".to_owned(),
            status: OperationStatus::Completed,
            created_at: now,
            started_at: Some(now),
            completed_at: Some(now),
            updated_at: now,
            progress: OperationProgress::default(),
            metadata: serde_json::json!({}),
            error_message: None,
            result_summary: Some(serde_json::json!({"rows": 3})),
            warnings: vec![],
        }
    }

    #[test]
    fn corrupt_rows_are_skipped_and_good_rows_survive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/ops.redb");
        let store = Store::open(&path).expect("open");
        store.put_all(&[info("a"), info("b")]).expect("put");
        {
            let txn = store.db.begin_write().expect("txn");
            {
                let mut table = txn.open_table(OPERATIONS).expect("table");
                table
                    .insert("junk", b"{not json".as_slice())
                    .expect("insert");
                let wrong_key = serde_json::to_vec(&info("other")).expect("json");
                table.insert("c", wrong_key.as_slice()).expect("insert");
            }
            txn.commit().expect("commit");
        }
        let mut ids: Vec<_> = store
            .load_all()
            .expect("load")
            .into_iter()
            .map(|i| i.operation_id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            commit(&store.db, &["a".to_owned(), "zzz".to_owned()], []).expect("rm"),
            1
        );
        assert_eq!(store.load_all().expect("load").len(), 1);
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ops.redb");
        let _first = Store::open(&path).expect("open");
        assert!(matches!(
            Store::open(&path),
            Err(OperationsError::Open { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ops.redb");
        std::fs::write(&path, vec![0x5a_u8; 10_000]).expect("write");
        assert!(matches!(
            Store::open(&path),
            Err(OperationsError::Open { .. })
        ));
    }
}
