//! [`PacingScheduler`]: the FIFO wait for a [`PacingPermit`], cancellable, on
//! `tokio::time`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::limits::{PacingLimits, PacingStats, RequestKey};
use super::state::{State, Waiter};
use crate::ib::Cancelled;

/// Paces IB historical requests; cheap to clone (clones share one budget, as all
/// clients of one IB Gateway must).
#[derive(Clone)]
pub struct PacingScheduler {
    inner: Arc<Inner>,
}

impl fmt::Debug for PacingScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacingScheduler")
            .field("limits", &self.inner.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The right to send one historical request now. The send was recorded when it was
/// granted; dropping the permit marks the request no longer open. Hold it until IB has
/// answered (or the request was cancelled at IB).
pub struct PacingPermit {
    pub(super) inner: Option<Arc<Inner>>,
    pub(super) granted_at: Instant,
    pub(super) waited: Duration,
}

impl fmt::Debug for PacingPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacingPermit")
            .field("granted_at", &self.granted_at)
            .field("waited", &self.waited)
            .finish()
    }
}

impl PacingPermit {
    /// When the send was granted (and recorded).
    pub fn granted_at(&self) -> Instant {
        self.granted_at
    }

    /// How long the request waited for it.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for PacingPermit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            update(&inner, |state| state.open = state.open.saturating_sub(1));
        }
    }
}

/// What the clones of one scheduler share.
pub(super) struct Inner {
    pub(super) limits: PacingLimits,
    state: Mutex<State>,
    /// Wakes the waiters when `State::next_wake` changed.
    wake_changed: Notify,
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies `change` to the state, then dispatches (and wakes the waiters when the next
/// wake-up time moved).
fn update(inner: &Arc<Inner>, change: impl FnOnce(&mut State)) {
    let changed = {
        let mut state = inner.lock();
        change(&mut state);
        state.dispatch(inner, Instant::now())
    };
    if changed {
        inner.wake_changed.notify_waiters();
    }
}

/// Removes a waiter from the queue when its acquire ends without a permit (cancelled
/// or dropped).
struct QueueGuard<'a> {
    inner: &'a Arc<Inner>,
    id: u64,
    armed: bool,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let id = self.id;
        update(self.inner, |state| {
            if let Some(pos) = state.queue.iter().position(|w| w.id == id) {
                state.queue.remove(pos);
                state.stats.cancelled += 1;
            }
        });
    }
}

impl PacingScheduler {
    /// A scheduler enforcing `limits`.
    pub fn new(limits: PacingLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                state: Mutex::new(State::default()),
                wake_changed: Notify::new(),
            }),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> &PacingLimits {
        &self.inner.limits
    }

    /// Counters for health reports.
    pub fn stats(&self) -> PacingStats {
        let state = self.inner.lock();
        let next_grant_in = match (state.queue.is_empty(), state.next_wake) {
            (false, Some(at)) => Some(at.saturating_duration_since(Instant::now())),
            _ => None,
        };
        PacingStats {
            waiting: state.queue.len(),
            open: state.open,
            next_grant_in,
            ..state.stats
        }
    }

    /// Waits until sending `key` now cannot break a pacing rule, records the send and
    /// returns the permit for it. Returns [`Cancelled`] as soon as `cancel` fires
    /// (nothing is recorded then; a permit granted at that very moment is dropped,
    /// leaving its send recorded). Dropping the returned future also leaves the queue.
    pub async fn acquire(
        &self,
        key: &RequestKey,
        cancel: &CancellationToken,
    ) -> Result<PacingPermit, Cancelled> {
        if cancel.is_cancelled() {
            return Err(Cancelled);
        }
        let inner = &self.inner;
        let (tx, mut rx) = oneshot::channel();
        let mut id = 0;
        let weight = inner.limits.weight(key.what_to_show);
        update(inner, |state| {
            id = state.next_id;
            state.next_id += 1;
            state.queue.push_back(Waiter {
                id,
                key: key.clone(),
                weight,
                enqueued: Instant::now(),
                tx,
            });
        });
        let mut guard = QueueGuard {
            inner,
            id,
            armed: true,
        };
        loop {
            // Register for wake-up changes before reading the wake time, so none is missed.
            let wake_changed = inner.wake_changed.notified();
            tokio::pin!(wake_changed);
            wake_changed.as_mut().enable();
            let wake = inner.lock().next_wake;
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Cancelled),
                granted = &mut rx => {
                    return match granted {
                        Ok(permit) => {
                            guard.armed = false;
                            Ok(permit)
                        }
                        // The sender is only dropped unsent when this acquire was
                        // already gone; treat it as a cancellation all the same.
                        Err(_) => Err(Cancelled),
                    };
                }
                () = timer => {
                    // The first waiter to wake dispatches; the others find it done.
                    let now = Instant::now();
                    let due = inner.lock().next_wake.is_some_and(|at| at <= now);
                    if due {
                        update(inner, |_| {});
                    }
                }
                () = &mut wake_changed => {}
            }
        }
    }
}
