//! [`Operations`]: the registry itself (open, create, look up, list, cancel, subscribe).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::{DEFAULT_CANCEL_REASON, INTERRUPTED_BY_RESTART, OperationsConfig};
use super::error::{CancelError, OperationsError};
use super::events::{EventStream, Refresh};
use super::handle::{Entry, OperationHandle};
use super::model::{
    OperationEvent, OperationFilter, OperationInfo, OperationProgress, OperationStatus,
};
use super::store::Store;
use crate::error::HostError;
use crate::names::{First, NameRule, check_name};

/// State shared by the registry and every handle.
pub(crate) struct Shared {
    pub(crate) config: OperationsConfig,
    pub(crate) store: Option<Store>,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    root: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Ids this open found pending or running and marked interrupted.
    interrupted: Vec<String>,
    /// Every change of every operation, for whoever watches them all (the gateway's
    /// event publisher). Sent under the operation's lock, so one operation's changes
    /// keep their order.
    pub(crate) feed: tokio::sync::broadcast::Sender<OperationEvent>,
}

impl Shared {
    pub(crate) fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// Queues `info` (the state after change `seq`) for the store's writer thread,
    /// unless a newer state is already queued, and with `durable` waits until this
    /// state or the newer one is committed (see [`Store::wait`]: the runtime keeps
    /// serving meanwhile). Called without the entry lock held. Progress passes
    /// `durable: false`: it is coalesced and written in the background, so a burst of
    /// writers costs few commits.
    pub(crate) fn persist(&self, entry: &Entry, seq: u64, info: OperationInfo, durable: bool) {
        let Some(store) = &self.store else { return };
        let ticket = entry.queue_if_newer(seq, || store.queue_put(info));
        if durable {
            store.wait(ticket);
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Changes the registry-wide feed keeps for a receiver that is behind.
pub const FEED_BUFFER: usize = 4096;

/// A caller-chosen operation id (a training session id): it becomes a URL path segment,
/// so `[A-Za-z0-9_.-]`, 1 to 128 characters, not dots only.
pub const OPERATION_ID: NameRule = NameRule {
    punctuation: "_.-",
    max_len: 128,
    first: First::Any,
};

/// The registry of long-running operations. Cheap to clone; all clones share one state.
///
/// The store (when configured) stays open while any clone, [`OperationHandle`] or
/// spawned task is alive.
#[derive(Clone)]
pub struct Operations {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Operations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operations")
            .field("store", &self.shared.store.as_ref().map(Store::path))
            .field("operations", &self.shared.read().len())
            .finish_non_exhaustive()
    }
}

impl Operations {
    /// Opens the registry. With a store, every stored operation is loaded; those that
    /// were pending or running (the process died under them) become `failed` with
    /// [`INTERRUPTED_BY_RESTART`] and are written back; expired ones are pruned.
    pub fn open(config: OperationsConfig) -> Result<Self, OperationsError> {
        let store = config.store_path.as_deref().map(Store::open).transpose()?;
        let root = CancellationToken::new();
        let mut entries = HashMap::new();
        let mut interrupted_ids = Vec::new();
        if let Some(store) = &store {
            let mut loaded = store.load_all()?;
            let now = Utc::now();
            let mut interrupted = Vec::new();
            for info in loaded.iter_mut().filter(|i| !i.status.is_terminal()) {
                info.status = OperationStatus::Failed;
                info.error_message = Some(INTERRUPTED_BY_RESTART.to_owned());
                info.completed_at = Some(now);
                info.updated_at = now;
                interrupted.push(info.clone());
            }
            store.put_all(&interrupted)?;
            interrupted_ids = interrupted.iter().map(|i| i.operation_id.clone()).collect();
            if !interrupted.is_empty() {
                tracing::warn!(
                    count = interrupted.len(),
                    "operations interrupted by a restart marked failed"
                );
            }
            for info in loaded {
                let entry = Entry::new(info.clone(), root.child_token());
                entries.insert(info.operation_id, Arc::new(entry));
            }
        }
        let ops = Self::from_parts(config, store, entries, root, interrupted_ids);
        ops.prune(Utc::now());
        Ok(ops)
    }

    /// An in-memory registry with the default settings.
    pub fn in_memory() -> Self {
        Self::in_memory_with(OperationsConfig::default())
    }

    /// An in-memory registry with `config` (its `store_path` is ignored).
    pub fn in_memory_with(config: OperationsConfig) -> Self {
        Self::from_parts(
            OperationsConfig {
                store_path: None,
                ..config
            },
            None,
            HashMap::new(),
            CancellationToken::new(),
            Vec::new(),
        )
    }

    /// The operations this registry found pending or running when it was opened (the
    /// process died under them) and marked `failed`: work that may still be going on
    /// elsewhere (a session on a host) and may need stopping.
    pub fn interrupted_at_open(&self) -> &[String] {
        &self.shared.interrupted
    }

    fn from_parts(
        config: OperationsConfig,
        store: Option<Store>,
        entries: HashMap<String, Arc<Entry>>,
        root: CancellationToken,
        interrupted: Vec<String>,
    ) -> Self {
        // Closed from the start: `wait()` then means "until no task is running";
        // closing does not stop spawning.
        let tracker = TaskTracker::new();
        tracker.close();
        Self {
            shared: Arc::new(Shared {
                config,
                store,
                entries: RwLock::new(entries),
                root,
                tracker,
                interrupted,
                feed: tokio::sync::broadcast::channel(FEED_BUFFER).0,
            }),
        }
    }

    /// The configuration this registry was opened with.
    pub fn config(&self) -> &OperationsConfig {
        &self.shared.config
    }

    /// The store file, if any.
    pub fn store_path(&self) -> Option<&Path> {
        self.shared.store.as_ref().map(Store::path)
    }

    /// Commits the store's writer thread made since the open (`None` in memory): how
    /// far it coalesced, against the number of changes that asked to be written.
    pub fn store_commits(&self) -> Option<u64> {
        self.shared.store.as_ref().map(Store::commits)
    }

    /// Registers a new `pending` operation and persists it. A `null` metadata becomes
    /// `{}`. The id is `op_{type}_{YYYYmmdd_HHMMSS}_{8 hex}`.
    pub fn create(&self, operation_type: impl Into<String>, metadata: Value) -> OperationHandle {
        let operation_type = operation_type.into();
        let now = Utc::now();
        let entries = self.shared.write();
        let id = loop {
            let id = new_id(&operation_type, now);
            if !entries.contains_key(&id) {
                break id;
            }
        };
        self.insert_new(entries, id, operation_type, metadata, now)
    }

    /// A fresh id in the registry's format, `op_{type}_{YYYYmmdd_HHMMSS}_{8 hex}`, for
    /// work that must be named before it is registered here (a gateway starts a host
    /// session under the id its operation will carry). Unique with overwhelming
    /// probability; [`create_with_id`](Self::create_with_id) still refuses a duplicate.
    pub fn new_id(operation_type: &str) -> String {
        new_id(operation_type, Utc::now())
    }

    /// Registers a new `pending` operation under a caller-chosen `id` (a training
    /// session id, say): 1 to 128 characters of `[A-Za-z0-9_.-]`, so it is safe in a URL
    /// path. An id already in the registry is a conflict.
    pub fn create_with_id(
        &self,
        id: &str,
        operation_type: impl Into<String>,
        metadata: Value,
    ) -> Result<OperationHandle, HostError> {
        // `.` and `..` are valid characters but not addressable ids: URL parsing
        // resolves them as dot segments, even percent-encoded (the rule refuses them).
        check_name(&OPERATION_ID, "id", id)?;
        let entries = self.shared.write();
        if entries.contains_key(id) {
            return Err(HostError::Conflict {
                message: format!("`{id}` already exists"),
            });
        }
        Ok(self.insert_new(
            entries,
            id.to_owned(),
            operation_type.into(),
            metadata,
            Utc::now(),
        ))
    }

    fn insert_new(
        &self,
        mut entries: RwLockWriteGuard<'_, HashMap<String, Arc<Entry>>>,
        id: String,
        operation_type: String,
        metadata: Value,
        now: DateTime<Utc>,
    ) -> OperationHandle {
        let info = OperationInfo {
            operation_id: id.clone(),
            operation_type,
            status: OperationStatus::Pending,
            created_at: now,
            started_at: None,
            completed_at: None,
            updated_at: now,
            progress: OperationProgress::default(),
            metadata: if metadata.is_null() {
                json!({})
            } else {
                metadata
            },
            error_message: None,
            result_summary: None,
            warnings: Vec::new(),
        };
        let entry = Arc::new(Entry::new(info.clone(), self.shared.root.child_token()));
        entries.insert(id, entry.clone());
        drop(entries);
        // Outside the map lock; `persist` skips this write if a faster change (a cancel
        // from another thread) already queued a newer state. Durable before the id is
        // handed out: a client holding it must find the operation after a restart.
        self.shared.persist(&entry, 0, info, true);
        OperationHandle::new(self.shared.clone(), entry)
    }

    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.shared.read().get(id).cloned()
    }

    /// The handle of an existing operation.
    pub fn handle(&self, id: &str) -> Option<OperationHandle> {
        let entry = self.entry(id)?;
        Some(OperationHandle::new(self.shared.clone(), entry))
    }

    /// The current state of one operation.
    pub fn get(&self, id: &str) -> Option<OperationInfo> {
        Some(self.entry(id)?.info())
    }

    /// Operations matching `filter`, newest first, after offset/limit; with the number
    /// that matched before offset/limit and the number of active (pending or running)
    /// operations in the whole registry.
    pub fn list(&self, filter: &OperationFilter) -> (Vec<OperationInfo>, usize, usize) {
        // Only the page is cloned: a listing of 20 among 100,000 kept operations copies
        // 20 infos (progress, results), not all of them.
        let mut active = 0;
        let (page, total): (Vec<Arc<Entry>>, usize) = {
            let entries = self.shared.read();
            let mut matching = Vec::new();
            for (id, entry) in entries.iter() {
                let state = entry.lock();
                active += usize::from(!state.info.status.is_terminal());
                if filter.matches(&state.info) {
                    matching.push((state.info.created_at, id.as_str(), entry));
                }
            }
            matching.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
            let page = matching
                .iter()
                .skip(filter.offset)
                .take(filter.limit.unwrap_or(usize::MAX))
                .map(|(_, _, entry)| Arc::clone(entry))
                .collect();
            (page, matching.len())
        };
        let page = page.iter().map(|entry| entry.info()).collect();
        (page, total, active)
    }

    /// Number of pending or running operations.
    pub fn active_count(&self) -> usize {
        let entries = self.shared.read();
        entries
            .values()
            .filter(|e| !e.lock().info.status.is_terminal())
            .count()
    }

    /// Cancels one operation: status `cancelled` with `reason` (default
    /// [`DEFAULT_CANCEL_REASON`]), then its token fires. Work stops cooperatively.
    pub fn cancel(&self, id: &str, reason: Option<String>) -> Result<OperationInfo, CancelError> {
        let handle = self.handle(id).ok_or_else(|| CancelError::NotFound {
            operation_id: id.to_owned(),
        })?;
        let reason = reason.unwrap_or_else(|| DEFAULT_CANCEL_REASON.to_owned());
        if handle.mark_cancelled(reason) {
            Ok(handle.info())
        } else {
            Err(CancelError::AlreadyFinished {
                operation_id: id.to_owned(),
                status: handle.status(),
            })
        }
    }

    /// Cancels every pending or running operation, as if a user had cancelled each
    /// (each ends `cancelled` with `reason`); returns how many.
    pub fn cancel_all(&self, reason: &str) -> usize {
        self.end_all(|handle| handle.mark_cancelled(reason))
    }

    /// Interrupts every pending or running operation (at shutdown): each ends `failed`
    /// with `reason` and its token fires. Returns how many.
    pub fn interrupt_all(&self, reason: &str) -> usize {
        self.end_all(|handle| handle.interrupt(reason))
    }

    /// Applies `end` to a handle of every operation; counts those it ended. The map is
    /// copied first so that `end` (which persists) runs without the registry's lock.
    fn end_all(&self, end: impl Fn(&OperationHandle) -> bool) -> usize {
        let entries: Vec<Arc<Entry>> = self.shared.read().values().cloned().collect();
        entries
            .into_iter()
            .filter(|entry| end(&OperationHandle::new(self.shared.clone(), entry.clone())))
            .count()
    }

    /// Every change of every operation from now on (`status`, `progress` and `terminal`
    /// events; no snapshots), each operation's in order. A receiver more than
    /// [`FEED_BUFFER`] changes behind gets `Lagged(n)` and continues with the newest.
    /// Nothing is built for the feed while nobody watches it.
    pub fn watch_all(&self) -> tokio::sync::broadcast::Receiver<OperationEvent> {
        self.shared.feed.subscribe()
    }

    /// The changes of one operation: a snapshot first, then every change in order,
    /// ending after the terminal event (at once for a finished operation). `None` for
    /// an unknown id.
    pub fn subscribe(&self, id: &str) -> Option<EventStream> {
        let entry = self.entry(id)?;
        let (first, receiver) = {
            let mut state = entry.lock();
            let first = state.snapshot_event();
            let receiver = (!state.info.status.is_terminal()).then(|| state.hub.receiver());
            (first, receiver)
        };
        let weak = Arc::downgrade(&entry);
        let refresh: Refresh = Box::new(move || Some(weak.upgrade()?.lock().snapshot_event()));
        Some(EventStream::new(first, receiver, refresh))
    }
}

/// `op_{type}_{YYYYmmdd_HHMMSS}_{8 hex}`; the type is reduced to `[A-Za-z0-9_-]` so
/// that ids are safe in URL paths.
fn new_id(operation_type: &str, now: DateTime<Utc>) -> String {
    let kind: String = operation_type
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let short = hex.get(..8).unwrap_or(&hex);
    format!("op_{kind}_{}_{short}", now.format("%Y%m%d_%H%M%S"))
}
