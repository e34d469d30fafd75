//! One registered operation: its shared state ([`Entry`]) and the handle the code doing
//! the work uses to report on it ([`OperationHandle`]).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::events::EventHub;
use super::model::{
    OperationEvent, OperationEventKind, OperationInfo, OperationProgress, OperationStatus,
};
use super::registry::Shared;
use super::writer::Ticket;

/// Locks a mutex, recovering from poisoning: the data behind our locks is always left
/// consistent (every update is a plain field assignment), so a panic elsewhere must not
/// take the registry down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The mutable part of an operation, behind [`Entry::state`].
#[derive(Debug)]
pub(crate) struct EntryState {
    pub(crate) info: OperationInfo,
    pub(crate) hub: EventHub,
    last_progress_persist: Option<Instant>,
}

impl EntryState {
    /// The current state as an event: `terminal` once finished, else `snapshot`.
    pub(crate) fn snapshot_event(&self) -> OperationEvent {
        let kind = if self.info.status.is_terminal() {
            OperationEventKind::Terminal
        } else {
            OperationEventKind::Snapshot
        };
        OperationEvent {
            kind,
            seq: self.hub.seq(),
            operation: self.info.clone(),
        }
    }
}

/// One operation in the registry.
#[derive(Debug)]
pub(crate) struct Entry {
    state: Mutex<EntryState>,
    pub(crate) token: CancellationToken,
    /// `seq` of the newest state queued for the store. States are queued outside
    /// `state` (readers never wait on the store); this lock orders them, and a state
    /// older than the queued one is dropped, so the store never goes back in time.
    queued: Mutex<Option<(u64, Ticket)>>,
}

impl Entry {
    pub(crate) fn new(info: OperationInfo, token: CancellationToken) -> Self {
        Self {
            state: Mutex::new(EntryState {
                info,
                hub: EventHub::default(),
                last_progress_persist: None,
            }),
            token,
            queued: Mutex::new(None),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, EntryState> {
        lock(&self.state)
    }

    pub(crate) fn info(&self) -> OperationInfo {
        self.lock().info.clone()
    }

    /// Runs `queue` unless a state at least as new as `seq` was already queued; returns
    /// the ticket of the newest queued state, which holds this change either way. The
    /// lock is held while queueing, so two threads cannot queue out of order.
    pub(crate) fn queue_if_newer(&self, seq: u64, queue: impl FnOnce() -> Ticket) -> Ticket {
        let mut queued = lock(&self.queued);
        match *queued {
            Some((newest, ticket)) if newest >= seq => ticket,
            _ => {
                let ticket = queue();
                *queued = Some((seq, ticket));
                ticket
            }
        }
    }
}

/// What an update changes, which decides its event kind and whether it is written
/// through to the store at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Status,
    Progress,
}

/// The handle of one operation, held by the code doing the work. Cheap to clone.
///
/// Every method is synchronous, so it can be called from async code and from
/// `spawn_blocking` loops alike. Status changes are committed to the store before the
/// method returns (the store's writer thread commits; on a Tokio worker the wait is a
/// `block_in_place`, so other tasks keep running); progress is queued for that thread
/// at most once per `progress_persist_interval` and the method returns at once. A store
/// failure is logged and the in-memory state stays authoritative. Once the operation is
/// terminal, every update is ignored and returns `false`: a `complete()` after a cancel
/// cannot overwrite `cancelled`.
#[derive(Clone)]
pub struct OperationHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) entry: Arc<Entry>,
    id: Arc<str>,
}

impl fmt::Debug for OperationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationHandle")
            .field("operation_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl OperationHandle {
    pub(crate) fn new(shared: Arc<Shared>, entry: Arc<Entry>) -> Self {
        let id = Arc::from(entry.lock().info.operation_id.as_str());
        Self { shared, entry, id }
    }

    /// The operation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cancellation token of this operation (a child of the registry's token). It
    /// fires when the operation is cancelled; long loops should check it.
    pub fn token(&self) -> CancellationToken {
        self.entry.token.clone()
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.entry.token.is_cancelled()
    }

    /// A copy of the current state.
    pub fn info(&self) -> OperationInfo {
        self.entry.info()
    }

    /// The current status.
    pub fn status(&self) -> OperationStatus {
        self.entry.lock().info.status
    }

    /// `pending` → `running`. Returns false in any other state.
    pub fn start(&self) -> bool {
        self.apply(Change::Status, |info| {
            if info.status != OperationStatus::Pending {
                return false;
            }
            info.status = OperationStatus::Running;
            info.started_at = Some(Utc::now());
            true
        })
    }

    /// Edits the progress in place (the percentage is clamped afterwards). `edit` runs
    /// under the operation's lock: keep it short and do not call this handle from it.
    pub fn progress(&self, edit: impl FnOnce(&mut OperationProgress)) -> bool {
        self.apply(Change::Progress, |info| {
            edit(&mut info.progress);
            true
        })
    }

    /// Replaces the progress (the percentage is clamped).
    pub fn set_progress(&self, progress: OperationProgress) -> bool {
        self.progress(|p| *p = progress)
    }

    /// Adds a non-fatal warning.
    pub fn warn(&self, message: impl Into<String>) -> bool {
        let message = message.into();
        self.apply(Change::Progress, |info| {
            info.warnings.push(message);
            true
        })
    }

    /// Finishes successfully with `result_summary`; progress goes to 100 %.
    pub fn complete(&self, result_summary: Value) -> bool {
        self.apply(Change::Status, |info| {
            info.status = OperationStatus::Completed;
            info.completed_at = Some(Utc::now());
            info.result_summary = Some(result_summary);
            info.progress.percentage = 100.0;
            true
        })
    }

    /// Finishes with an error.
    pub fn fail(&self, message: impl Into<String>) -> bool {
        let message = message.into();
        self.apply(Change::Status, |info| {
            info.status = OperationStatus::Failed;
            info.completed_at = Some(Utc::now());
            info.error_message = Some(message);
            true
        })
    }

    /// Finishes as cancelled with `reason` as the error message, then fires the token.
    pub fn mark_cancelled(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        let changed = self.apply(Change::Status, |info| {
            info.status = OperationStatus::Cancelled;
            info.completed_at = Some(Utc::now());
            info.error_message = Some(reason);
            true
        });
        if changed {
            // After the status change, so work that sees the token sees `cancelled`.
            self.entry.token.cancel();
        }
        changed
    }

    /// Finishes as failed with `reason`, then fires the token: the work was stopped by
    /// the service (a shutdown), not by anyone who asked for it, so it is not
    /// `cancelled`, and it ends the same way as work found unfinished after a crash.
    pub fn interrupt(&self, reason: impl Into<String>) -> bool {
        let changed = self.fail(reason);
        if changed {
            // After the status change, so work that sees the token sees `failed`.
            self.entry.token.cancel();
        }
        changed
    }

    /// Applies `edit` unless the operation is terminal (or `edit` declines), publishes
    /// the change and writes it to the store when due.
    fn apply(&self, change: Change, edit: impl FnOnce(&mut OperationInfo) -> bool) -> bool {
        let (seq, to_write) = {
            let mut guard = self.entry.lock();
            let state = &mut *guard;
            if state.info.status.is_terminal() || !edit(&mut state.info) {
                return false;
            }
            state.info.progress.normalize();
            state.info.updated_at = Utc::now();
            let kind = match change {
                _ if state.info.status.is_terminal() => OperationEventKind::Terminal,
                Change::Status => OperationEventKind::Status,
                Change::Progress => OperationEventKind::Progress,
            };
            let seq = state.hub.publish(kind, &state.info);
            if self.shared.feed.receiver_count() > 0 {
                // An error only means the last watcher left meanwhile.
                let _ = self.shared.feed.send(OperationEvent {
                    kind,
                    seq,
                    operation: state.info.clone(),
                });
            }
            let interval = self.shared.config.progress_persist_interval;
            let due = change == Change::Status
                || state
                    .last_progress_persist
                    .is_none_or(|at| at.elapsed() >= interval);
            if due && self.shared.has_store() {
                state.last_progress_persist = Some(Instant::now());
                (seq, Some(state.info.clone()))
            } else {
                (seq, None)
            }
        };
        if let Some(info) = to_write {
            self.shared
                .persist(&self.entry, seq, info, change == Change::Status);
        }
        true
    }
}
