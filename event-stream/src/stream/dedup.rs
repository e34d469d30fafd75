//! Deduplication by envelope id: a bounded local LRU in front of an optional shared
//! store (Redis, see [`RedisStore`]).
//!
//! An id is remembered once its message is finally handled (done or dead-lettered), not
//! when handling starts: a consumer that dies mid-handling leaves the id unremembered,
//! so the redelivery is handled (at-least-once) instead of being skipped and lost.
//!
//! Across processes, checking and remembering are not enough: two consumers given the
//! same message (a rebalance, a republished command) could both check before either
//! remembers. So checking *takes* the id in the shared store with a lease (one atomic
//! step: taken by nobody, or by this process, becomes this process's for
//! [`DEFAULT_LEASE`]); another process finding the lease waits ([`Check::InFlight`])
//! until the id is remembered (a duplicate) or the lease lapses (its holder died: the
//! id is free to handle again).
//! Effects that must happen once are made idempotent by the handler too (the gateway
//! uses the command id as the operation id).
//!
//! A shared store that fails is logged and counted, never a crash; what happens to the
//! message then is the [`StoreFailure`] policy: `open` handles it (a duplicate is
//! possible), `closed` keeps it unhandled and uncommitted until the store answers.

mod redis;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use lru::LruCache;

pub use self::redis::RedisStore;

/// Metric: messages skipped as duplicates, by consumer and where the id was found.
pub const DEDUP_HITS_TOTAL: &str = "stream_dedup_duplicates_total";
/// Metric: failed shared-store calls, by store.
pub const DEDUP_STORE_ERRORS_TOTAL: &str = "stream_dedup_store_errors_total";

/// A shared store failed (down, timed out, refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{store}: {message}")]
pub struct StoreError {
    /// Which store.
    pub store: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The store ids are shared through, across consumers and restarts.
#[async_trait]
pub trait SharedStore: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs, metrics and health (`redis`).
    fn name(&self) -> &'static str;
    /// Whether `key` was remembered.
    async fn seen(&self, key: &str) -> Result<bool, StoreError>;
    /// In one atomic step: when `key` is free or leased to `holder` already, leases it
    /// to `holder` for `lease`; else says whether it is remembered or leased elsewhere.
    async fn take(&self, key: &str, holder: &str, lease: Duration) -> Result<Taken, StoreError>;
    /// Remembers `key` for `ttl`, replacing a lease on it.
    async fn remember(&self, key: &str, ttl: Duration) -> Result<(), StoreError>;
}

/// The answer of [`SharedStore::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Leased to the caller: handle it.
    Yours,
    /// Remembered: handled already.
    Done,
    /// Leased to another holder, which is handling it now.
    Elsewhere,
}

/// What to do with a message when the shared store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreFailure {
    /// Handle it: availability over exactly-once (a duplicate may get through).
    #[default]
    Open,
    /// Do not handle it until the store answers: the message waits, uncommitted.
    Closed,
}

impl StoreFailure {
    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFailure::Open => "open",
            StoreFailure::Closed => "closed",
        }
    }
}

impl std::str::FromStr for StoreFailure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(StoreFailure::Open),
            "closed" => Ok(StoreFailure::Closed),
            other => Err(format!(
                "`{other}` is not a policy; expected open or closed"
            )),
        }
    }
}

/// The answer of [`Dedup::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Not seen: handle it.
    New,
    /// Seen before (`local` or in the shared store): skip it.
    Duplicate {
        /// Found in the local LRU (else in the shared store).
        local: bool,
    },
    /// The shared store failed and the policy is `closed`: try again later.
    Unavailable(StoreError),
    /// Another process is handling it right now: ask again shortly (it ends remembered,
    /// or its lease lapses and the id is free).
    InFlight,
}

/// What `/health` and the closing of a service report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DedupReport {
    /// `memory` or the shared store's name.
    pub store: &'static str,
    /// `open` or `closed`.
    pub on_store_failure: &'static str,
    /// Whether the shared store answered its last call (always true without one).
    pub store_up: bool,
    /// Duplicates skipped.
    pub duplicates: u64,
    /// Failed shared-store calls.
    pub store_errors: u64,
}

/// A shared store with its policy, key lifetime, and this process's lease.
#[derive(Debug)]
struct Shared {
    store: Arc<dyn SharedStore>,
    policy: StoreFailure,
    ttl: Duration,
    lease: Duration,
    /// This process's name on the leases it holds: a retry of a message in this process
    /// finds its own lease and goes on; another process waits.
    holder: String,
}

/// The dedup stage of a stream service.
#[derive(Debug)]
pub struct Dedup {
    local: Mutex<LruCache<String, ()>>,
    /// Ids being handled in this process right now: a copy arriving meanwhile waits for
    /// the first to finish (and then finds it remembered) instead of passing `check`
    /// too, which it would while the first has not been remembered yet.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    shared: Option<Shared>,
    duplicates: AtomicU64,
    store_errors: AtomicU64,
    store_up: AtomicBool,
}

/// An id claimed for handling (see [`Dedup::claim`]); released on drop.
#[derive(Debug)]
pub struct Claim<'a> {
    owner: &'a Dedup,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut in_flight = self
            .owner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map's and this claim's handles left: nobody waits, forget the id.
        // (Claimers clone the handle under this same lock, so the count is exact.)
        if Arc::strong_count(&self.lock) == 2 {
            in_flight.remove(&self.key);
        }
    }
}

/// Ids the local LRU keeps by default.
pub const DEFAULT_LOCAL_CAPACITY: usize = 100_000;
/// How long the shared store keeps an id by default: longer than the commands topic's
/// retention (1 d), so a replay of the whole topic is still recognised.
pub const DEFAULT_TTL: Duration = Duration::from_secs(2 * 24 * 3600);
/// How long a process holds an id it is handling before another may take it over: longer
/// than a handler with its retries normally takes (a lapsed lease on a live holder lets
/// a duplicate through, as without leases), short enough that a crashed holder's
/// messages are not held up for long (a rebalance itself takes seconds).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

impl Dedup {
    /// The local LRU alone, keeping `capacity` ids (at least 1).
    pub fn local(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            local: Mutex::new(LruCache::new(capacity)),
            in_flight: Mutex::default(),
            shared: None,
            duplicates: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            store_up: AtomicBool::new(true),
        }
    }

    /// Adds a shared store behind the LRU.
    pub fn with_shared(
        mut self,
        store: Arc<dyn SharedStore>,
        policy: StoreFailure,
        ttl: Duration,
    ) -> Self {
        self.shared = Some(Shared {
            store,
            policy,
            ttl,
            lease: DEFAULT_LEASE,
            holder: format!("lease:{}", uuid::Uuid::new_v4()),
        });
        self
    }

    /// How long an id being handled stays this process's in the shared store (default
    /// [`DEFAULT_LEASE`]; no effect without a shared store).
    pub fn lease(mut self, lease: Duration) -> Self {
        if let Some(shared) = &mut self.shared {
            shared.lease = lease;
        }
        self
    }

    /// Claims `id` for consumer `scope` until the returned guard drops, waiting while
    /// another task of this process holds it. Held from before [`Self::check`] until
    /// after [`Self::remember`], so concurrent copies of one message are handled once.
    pub async fn claim(&self, scope: &str, id: &str) -> Claim<'_> {
        let key = key(scope, id);
        let lock = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        Claim {
            owner: self,
            key,
            lock,
            guard: Some(guard),
        }
    }

    /// Whether `id` was handled already by consumer `scope` (ids are per consumer: two
    /// services handling the same event do not hide it from each other).
    pub async fn check(&self, scope: &str, id: &str) -> Check {
        let key = key(scope, id);
        if self.lock().get(&key).is_some() {
            return self.duplicate(scope, true);
        }
        let Some(shared) = &self.shared else {
            return Check::New;
        };
        match shared.store.take(&key, &shared.holder, shared.lease).await {
            Ok(taken) => {
                self.store_up.store(true, Ordering::Relaxed);
                match taken {
                    Taken::Yours => Check::New,
                    Taken::Done => {
                        self.lock().put(key, ());
                        self.duplicate(scope, false)
                    }
                    Taken::Elsewhere => Check::InFlight,
                }
            }
            Err(error) => {
                self.store_failed(&error, "checking an id");
                match shared.policy {
                    StoreFailure::Open => Check::New,
                    StoreFailure::Closed => Check::Unavailable(error),
                }
            }
        }
    }

    /// Remembers that `id` is finally handled. A store that fails is counted and
    /// logged: the message is done either way, a later duplicate is the only risk.
    pub async fn remember(&self, scope: &str, id: &str) {
        let key = key(scope, id);
        self.lock().put(key.clone(), ());
        if let Some(shared) = &self.shared {
            match shared.store.remember(&key, shared.ttl).await {
                Ok(()) => self.store_up.store(true, Ordering::Relaxed),
                Err(error) => self.store_failed(&error, "remembering an id"),
            }
        }
    }

    /// Counters and state.
    pub fn report(&self) -> DedupReport {
        DedupReport {
            store: self.shared.as_ref().map_or("memory", |s| s.store.name()),
            on_store_failure: self
                .shared
                .as_ref()
                .map_or(StoreFailure::Open, |s| s.policy)
                .as_str(),
            store_up: self.store_up.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, ()>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn duplicate(&self, scope: &str, local: bool) -> Check {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
        let found = if local { "local" } else { "shared" };
        metrics::counter!(DEDUP_HITS_TOTAL, "consumer" => scope.to_owned(), "found" => found)
            .increment(1);
        Check::Duplicate { local }
    }

    fn store_failed(&self, error: &StoreError, doing: &str) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        let was_up = self.store_up.swap(false, Ordering::Relaxed);
        metrics::counter!(DEDUP_STORE_ERRORS_TOTAL, "store" => error.store).increment(1);
        let policy = self.shared.as_ref().map_or("open", |s| s.policy.as_str());
        // Once per outage at warn level; every failure at debug.
        if was_up {
            tracing::warn!(%error, policy, "dedup store failed while {doing}");
        } else {
            tracing::debug!(%error, policy, "dedup store still failing while {doing}");
        }
    }
}

fn key(scope: &str, id: &str) -> String {
    format!("hostbridge:dedup:{scope}:{id}")
}

#[cfg(test)]
mod tests;
