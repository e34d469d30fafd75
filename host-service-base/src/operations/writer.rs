//! The store's one writer thread. Every write the registry makes after it opened goes
//! through here, so that no async thread ever runs a redb commit (an fsync, and a wait
//! for redb's single write transaction when another commit is under way).
//!
//! Writes are coalesced: what arrives while a commit runs is gathered and committed
//! together, the newest state of each operation only. A burst of 50 operations
//! reporting progress therefore makes a handful of commits, not 50 queued on the write
//! lock. Callers that promise durability (status changes) wait for the commit that
//! holds their write with [`Writer::wait`]; progress does not wait.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use redb::Database;

use super::handle::lock;
use super::model::OperationInfo;
use super::store::commit;

/// The batch a write went into; [`Writer::wait`] returns once it was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

#[derive(Debug, Default)]
struct Pending {
    /// The newest state of each operation written since the last commit started.
    puts: HashMap<String, OperationInfo>,
    /// Operations to delete (applied before `puts`, so an id removed and then created
    /// again ends with the new operation).
    removes: HashSet<String>,
    /// The batch now gathering writes; the writer takes it whole and opens the next.
    open_batch: u64,
    /// The newest batch whose commit ended (succeeded or failed).
    committed: u64,
    /// No more writes: the writer drains what is pending and exits.
    closed: bool,
}

#[derive(Debug, Default)]
struct Queue {
    pending: Mutex<Pending>,
    /// Signalled when there is work or the queue closes.
    work: Condvar,
    /// Signalled after each commit.
    done: Condvar,
    /// Commits made, for figures and tests.
    commits: AtomicU64,
}

/// The handle of the writer thread; dropping it drains the queue and joins the thread,
/// so the file is closed once the store is.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer of `db`; `label` names the store in logs.
    pub(crate) fn start(db: Arc<Database>, label: String) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        lock(&queue.pending).open_batch = 1;
        let thread = std::thread::Builder::new()
            .name("operations-store".to_owned())
            .spawn({
                let queue = queue.clone();
                move || run(&queue, &db, &label)
            })?;
        Ok(Self {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues `info` as the newest state of its operation.
    pub(crate) fn put(&self, info: OperationInfo) -> Ticket {
        let mut pending = lock(&self.queue.pending);
        pending.puts.insert(info.operation_id.clone(), info);
        self.queue.work.notify_one();
        Ticket(pending.open_batch)
    }

    /// Queues the deletion of `ids` (and drops any state of theirs not yet written).
    pub(crate) fn remove(&self, ids: &[String]) -> Ticket {
        let mut pending = lock(&self.queue.pending);
        for id in ids {
            pending.puts.remove(id);
            pending.removes.insert(id.clone());
        }
        self.queue.work.notify_one();
        Ticket(pending.open_batch)
    }

    /// Blocks until the commit holding `ticket`'s write has ended. A failed commit was
    /// logged by the writer; the in-memory state stays authoritative either way.
    pub(crate) fn wait(&self, ticket: Ticket) {
        let mut pending = lock(&self.queue.pending);
        while pending.committed < ticket.0 {
            pending = self
                .queue
                .done
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Commits made so far.
    pub(crate) fn commits(&self) -> u64 {
        self.queue.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.queue.pending).closed = true;
        self.queue.work.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the operations store writer panicked");
        }
    }
}

/// Releases every waiter when the writer ends, even by a panic, so that no caller
/// waits for a commit that will never come.
struct ReleaseWaiters<'a>(&'a Queue);

impl Drop for ReleaseWaiters<'_> {
    fn drop(&mut self) {
        let mut pending = lock(&self.0.pending);
        pending.committed = u64::MAX;
        pending.closed = true;
        self.0.done.notify_all();
    }
}

fn run(queue: &Queue, db: &Database, label: &str) {
    let _release = ReleaseWaiters(queue);
    loop {
        let (puts, removes, batch) = {
            let mut pending = lock(&queue.pending);
            while pending.puts.is_empty() && pending.removes.is_empty() && !pending.closed {
                pending = queue
                    .work
                    .wait(pending)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if pending.puts.is_empty() && pending.removes.is_empty() {
                return; // closed and drained
            }
            let batch = pending.open_batch;
            pending.open_batch += 1;
            (
                std::mem::take(&mut pending.puts),
                std::mem::take(&mut pending.removes),
                batch,
            )
        };
        let removes: Vec<String> = removes.into_iter().collect();
        if let Err(error) = commit(db, &removes, puts.values()) {
            tracing::error!(
                %error,
                store = label,
                operations = puts.len(),
                "could not persist operations"
            );
        }
        queue.commits.fetch_add(1, Ordering::Relaxed);
        lock(&queue.pending).committed = batch;
        queue.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::model::{OperationProgress, OperationStatus};
    use crate::operations::store::Store;

    fn info(id: &str, items: u64) -> OperationInfo {
        let now = chrono::Utc::now();
        OperationInfo {
            operation_id: id.to_owned(),
            operation_type: "test".to_owned(),
            status: OperationStatus::Running,
            created_at: now,
            started_at: Some(now),
            completed_at: None,
            updated_at: now,
            progress: OperationProgress {
                items_processed: items,
                ..OperationProgress::default()
            },
            metadata: serde_json::json!({}),
            error_message: None,
            result_summary: None,
            warnings: vec![],
        }
    }

    #[test]
    fn the_newest_state_wins_and_a_removal_then_a_new_put_keeps_the_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("ops.redb")).expect("open");
        for items in 0..100 {
            store.queue_put(info("a", items));
        }
        store.queue_put(info("gone", 1));
        store.queue_remove(&["gone".to_owned(), "b".to_owned()]);
        let ticket = store.queue_put(info("b", 7));
        store.wait(ticket);
        let mut stored = store.load_all().expect("load");
        stored.sort_by(|x, y| x.operation_id.cmp(&y.operation_id));
        let seen: Vec<_> = stored
            .iter()
            .map(|i| (i.operation_id.as_str(), i.progress.items_processed))
            .collect();
        assert_eq!(seen, [("a", 99), ("b", 7)]);
        assert!(store.commits() >= 1);
    }

    #[test]
    fn dropping_the_store_writes_what_was_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ops.redb");
        {
            let store = Store::open(&path).expect("open");
            for n in 0..50 {
                store.queue_put(info(&format!("op{n}"), n));
            }
        } // no wait: the drop drains the queue and closes the file
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.load_all().expect("load").len(), 50);
    }
}
