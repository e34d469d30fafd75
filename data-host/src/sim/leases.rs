//! What connections and requests hold while they live, released on drop: a client
//! id, a registration that `cancelHistoricalData` can reach, open-request slots.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use host_service_base::CancellationToken;

use super::Shared;

/// A client id held by a live connection (IB allows one connection per id).
pub(super) struct ClientIdLease<'a> {
    ids: &'a Mutex<HashSet<i32>>,
    id: i32,
}

impl<'a> ClientIdLease<'a> {
    pub(super) fn take(ids: &'a Mutex<HashSet<i32>>, id: i32) -> Option<Self> {
        let inserted = ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        // Not `then_some`: a lease built eagerly and dropped would release the id
        // its holder still uses (and deadlock on the lock held above).
        inserted.then(|| Self { ids, id })
    }
}

impl Drop for ClientIdLease<'_> {
    fn drop(&mut self) {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The historical requests of one connection still being answered, by request id.
#[derive(Debug, Default, Clone)]
pub(super) struct OpenRequests(Arc<Mutex<HashMap<i32, (u64, CancellationToken)>>>);

impl OpenRequests {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, (u64, CancellationToken)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers request `id`; returns the ticket to [`Self::finish`] it with.
    pub(super) fn open(&self, id: i32, token: CancellationToken) -> u64 {
        static TICKETS: AtomicU64 = AtomicU64::new(0);
        let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
        if let Some((_, previous)) = self.lock().insert(id, (ticket, token)) {
            previous.cancel();
        }
        ticket
    }

    /// Forgets request `id` if it is still the one `ticket` registered.
    pub(super) fn finish(&self, id: i32, ticket: u64) {
        let mut open = self.lock();
        if open.get(&id).is_some_and(|(t, _)| *t == ticket) {
            open.remove(&id);
        }
    }

    /// Cancels request `id`; `false` if no such request is open.
    pub(super) fn cancel(&self, id: i32) -> bool {
        self.lock()
            .remove(&id)
            .map(|(_, token)| token.cancel())
            .is_some()
    }
}

/// Frees a request's open-request slots when its answer is done or abandoned.
pub(super) struct OpenSlots {
    pub(super) shared: Arc<Shared>,
    pub(super) weight: u32,
}

impl Drop for OpenSlots {
    fn drop(&mut self) {
        if self.weight > 0 {
            self.shared.pacer().release(self.weight);
        }
    }
}
