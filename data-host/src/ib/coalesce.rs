//! Coalescing: identical concurrent requests share one piece of work.
//!
//! The first caller of [`Coalescer::run`] for a key starts the work (on its own tokio
//! task); every caller arriving with the same key while it runs waits for the same
//! result and gets a clone of it (make `V` an `Arc` or another cheap clone). The key
//! is forgotten as soon as the work finishes: results are never cached beyond the
//! in-flight window, so the next caller starts afresh.
//!
//! Cancellation is per caller: a caller whose token fires (or whose future is dropped)
//! leaves at once with [`CoalesceError::Cancelled`]. The work gets its own
//! [`CancellationToken`], which fires only when every caller waiting for it has gone;
//! the key is forgotten at that moment too, so a later caller starts new work instead
//! of joining a cancelled one. Work should watch its token and stop promptly (it runs
//! on to completion otherwise, with nobody to hand the result to).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use host_service_base::HostError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Cancelled;
use crate::provider::DataError;

/// Why a coalesced call returned without the work's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoalesceError {
    /// This caller cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The shared work panicked or was dropped (runtime shutting down) before it
    /// produced a value.
    #[error("the shared request failed without a result")]
    WorkFailed,
}

impl From<Cancelled> for CoalesceError {
    fn from(_: Cancelled) -> Self {
        Self::Cancelled
    }
}

impl From<CoalesceError> for DataError {
    fn from(error: CoalesceError) -> Self {
        match error {
            CoalesceError::Cancelled => DataError::Cancelled,
            CoalesceError::WorkFailed => DataError::Host(HostError::internal(error)),
        }
    }
}

/// Counters for health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoalesceStats {
    /// Keys with work in flight now.
    pub in_flight: usize,
    /// Pieces of work started.
    pub started: u64,
    /// Calls that joined work already in flight instead of starting their own.
    pub joined: u64,
    /// Pieces of work cancelled because every caller left.
    pub abandoned: u64,
}

type Outcome<V> = Option<Result<V, CoalesceError>>;

struct Flight<V> {
    id: u64,
    callers: usize,
    cancel: CancellationToken,
    result: watch::Receiver<Outcome<V>>,
}

struct Flights<K, V> {
    map: HashMap<K, Flight<V>>,
    next_id: u64,
    stats: CoalesceStats,
}

/// Runs identical concurrent requests once. Cheap to clone (clones share the
/// in-flight table).
pub struct Coalescer<K, V> {
    flights: Arc<Mutex<Flights<K, V>>>,
}

impl<K, V> Clone for Coalescer<K, V> {
    fn clone(&self) -> Self {
        Self {
            flights: Arc::clone(&self.flights),
        }
    }
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self {
            flights: Arc::new(Mutex::new(Flights {
                map: HashMap::new(),
                next_id: 0,
                stats: CoalesceStats::default(),
            })),
        }
    }
}

impl<K, V> fmt::Debug for Coalescer<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flights = lock(&self.flights);
        f.debug_struct("Coalescer")
            .field("stats", &flights.stats)
            .field("in_flight", &flights.map.len())
            .finish()
    }
}

fn lock<K, V>(flights: &Mutex<Flights<K, V>>) -> MutexGuard<'_, Flights<K, V>> {
    flights.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One caller's membership of a flight: leaving (cancel, drop) before the result
/// decrements the flight's callers and cancels the work when none are left.
struct Membership<'a, K: Hash + Eq, V> {
    flights: &'a Mutex<Flights<K, V>>,
    key: &'a K,
    id: u64,
    done: bool,
}

impl<K: Hash + Eq, V> Drop for Membership<'_, K, V> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut flights = lock(self.flights);
        let Some(flight) = flights.map.get_mut(self.key) else {
            return;
        };
        if flight.id != self.id {
            return;
        }
        flight.callers = flight.callers.saturating_sub(1);
        if flight.callers == 0 {
            flight.cancel.cancel();
            flights.map.remove(self.key);
            flights.stats.abandoned += 1;
            flights.stats.in_flight = flights.map.len();
        }
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty coalescer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters for health reports.
    pub fn stats(&self) -> CoalesceStats {
        let flights = lock(&self.flights);
        CoalesceStats {
            in_flight: flights.map.len(),
            ..flights.stats
        }
    }

    /// The value of the work for `key`: started with `make` (given the work's own
    /// cancellation token) when no work for `key` is in flight, shared otherwise
    /// (`make` is then not called). Returns [`CoalesceError::Cancelled`] as soon as
    /// `cancel` fires; the work goes on while other callers wait for it.
    ///
    /// The work runs on a spawned tokio task, so this must be called within a tokio
    /// runtime.
    pub async fn run<F, Fut>(
        &self,
        key: K,
        cancel: &CancellationToken,
        make: F,
    ) -> Result<V, CoalesceError>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        if cancel.is_cancelled() {
            return Err(CoalesceError::Cancelled);
        }
        let (id, mut result, start) = {
            let mut flights = lock(&self.flights);
            if let Some(flight) = flights.map.get_mut(&key) {
                flight.callers += 1;
                let joined = (flight.id, flight.result.clone(), None);
                flights.stats.joined += 1;
                joined
            } else {
                let id = flights.next_id;
                flights.next_id += 1;
                let token = CancellationToken::new();
                let (tx, rx) = watch::channel(None);
                let flight = Flight {
                    id,
                    callers: 1,
                    cancel: token.clone(),
                    result: rx.clone(),
                };
                flights.map.insert(key.clone(), flight);
                flights.stats.started += 1;
                flights.stats.in_flight = flights.map.len();
                (id, rx, Some((tx, token)))
            }
        };
        let mut membership = Membership {
            flights: &self.flights,
            key: &key,
            id,
            done: false,
        };

        if let Some((tx, token)) = start {
            // `make` runs outside the lock (it is the caller's code); if it panics, the
            // membership's drop abandons the flight.
            let work = make(token);
            let flights = Arc::clone(&self.flights);
            let task_key = key.clone();
            tokio::spawn(async move {
                let outcome = AssertUnwindSafe(work)
                    .catch_unwind()
                    .await
                    .map_err(|_| CoalesceError::WorkFailed);
                {
                    // Forget the key before publishing: a caller arriving after this
                    // starts new work; every caller that joined sees the result.
                    let mut flights = lock(&flights);
                    if flights.map.get(&task_key).is_some_and(|f| f.id == id) {
                        flights.map.remove(&task_key);
                        flights.stats.in_flight = flights.map.len();
                    }
                }
                tx.send_replace(Some(outcome));
            });
        }

        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(CoalesceError::Cancelled),
            published = result.wait_for(Option::is_some) => {
                membership.done = true;
                match published {
                    Ok(outcome) => outcome.clone().unwrap_or(Err(CoalesceError::WorkFailed)),
                    // The task ended without publishing (dropped at runtime shutdown).
                    Err(_) => Err(CoalesceError::WorkFailed),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::time::{Instant, sleep};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_identical_calls_run_the_work_once() {
        let c: Coalescer<&'static str, Arc<Vec<u32>>> = Coalescer::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..20).map(|_| {
            let (c, runs) = (c.clone(), Arc::clone(&runs));
            async move {
                c.run("AAPL 1h", &CancellationToken::new(), move |_| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    sleep(secs(1)).await;
                    Arc::new(vec![1, 2, 3])
                })
                .await
            }
        });
        let t0 = Instant::now();
        let results = futures::future::join_all(calls).await;
        assert_eq!(t0.elapsed(), secs(1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(results.len(), 20);
        let first = results[0].clone().expect("value");
        for r in &results {
            let v = r.clone().expect("value");
            assert!(Arc::ptr_eq(&v, &first), "all share the one result");
        }
        let stats = c.stats();
        assert_eq!((stats.started, stats.joined, stats.in_flight), (1, 19, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_from_spawned_tasks_share_the_work() {
        let c: Coalescer<u32, u64> = Coalescer::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (c, runs) = (c.clone(), Arc::clone(&runs));
            tasks.push(tokio::spawn(async move {
                c.run(7, &CancellationToken::new(), move |_| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    sleep(secs(3)).await;
                    42
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("task"), Ok(42));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_run_separately() {
        let c: Coalescer<u32, u32> = Coalescer::new();
        let none = CancellationToken::new();
        let (a, b) = tokio::join!(
            c.run(1, &none, |_| async {
                sleep(secs(1)).await;
                10
            }),
            c.run(2, &none, |_| async {
                sleep(secs(1)).await;
                20
            }),
        );
        assert_eq!((a, b), (Ok(10), Ok(20)));
        assert_eq!(c.stats().started, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn finished_work_is_not_cached() {
        let c: Coalescer<u32, usize> = Coalescer::new();
        let runs = Arc::new(AtomicUsize::new(0));
        for expected in 1..=3 {
            let runs = Arc::clone(&runs);
            let v = c
                .run(1, &CancellationToken::new(), move |_| async move {
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                })
                .await;
            assert_eq!(v, Ok(expected));
            assert_eq!(c.stats().in_flight, 0);
        }
    }

    /// Work that records whether its token fired, and finishes after `secs` otherwise.
    fn watched_work(
        fired: Arc<AtomicBool>,
        after: u64,
    ) -> impl FnOnce(CancellationToken) -> futures::future::BoxFuture<'static, &'static str> {
        move |token| {
            async move {
                tokio::select! {
                    () = token.cancelled() => {
                        fired.store(true, Ordering::SeqCst);
                        "cancelled"
                    }
                    () = sleep(secs(after)) => "bars",
                }
            }
            .boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_of_two_callers_cancelling_does_not_cancel_the_work() {
        let c: Coalescer<u32, &'static str> = Coalescer::new();
        let fired = Arc::new(AtomicBool::new(false));
        let leaver = CancellationToken::new();
        let (c1, l1, f1) = (c.clone(), leaver.clone(), Arc::clone(&fired));
        let first = tokio::spawn(async move { c1.run(1, &l1, watched_work(f1, 10)).await });
        tokio::task::yield_now().await;
        let (c2, f2) = (c.clone(), Arc::clone(&fired));
        let t0 = Instant::now();
        let second = tokio::spawn(async move {
            c2.run(1, &CancellationToken::new(), watched_work(f2, 99))
                .await
        });
        sleep(secs(2)).await;
        leaver.cancel();
        assert_eq!(first.await.expect("task"), Err(CoalesceError::Cancelled));
        assert_eq!(
            t0.elapsed(),
            secs(2),
            "the cancelling caller leaves at once"
        );
        assert_eq!(second.await.expect("task"), Ok("bars"));
        assert_eq!(
            t0.elapsed(),
            secs(10),
            "the first caller's work, not a new one"
        );
        assert!(!fired.load(Ordering::SeqCst));
        assert_eq!(c.stats().abandoned, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn all_callers_cancelling_cancels_the_work() {
        let c: Coalescer<u32, &'static str> = Coalescer::new();
        let fired = Arc::new(AtomicBool::new(false));
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let mut tasks = Vec::new();
        for token in [a.clone(), b.clone()] {
            let (c, f) = (c.clone(), Arc::clone(&fired));
            tasks.push(tokio::spawn(async move {
                c.run(1, &token, watched_work(f, 10)).await
            }));
            tokio::task::yield_now().await;
        }
        sleep(secs(1)).await;
        a.cancel();
        sleep(secs(1)).await;
        assert!(!fired.load(Ordering::SeqCst), "one caller still waits");
        b.cancel();
        for t in tasks {
            assert_eq!(t.await.expect("task"), Err(CoalesceError::Cancelled));
        }
        tokio::task::yield_now().await;
        assert!(fired.load(Ordering::SeqCst), "the work saw its token fire");
        let stats = c.stats();
        assert_eq!((stats.in_flight, stats.abandoned), (0, 1));

        // The key is free again: a new caller starts new work rather than joining the
        // cancelled one.
        let fresh = c
            .run(1, &CancellationToken::new(), |_| async { "fresh" })
            .await;
        assert_eq!(fresh, Ok("fresh"));
        assert_eq!(c.stats().started, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_a_callers_future_counts_as_leaving() {
        let c: Coalescer<u32, &'static str> = Coalescer::new();
        let fired = Arc::new(AtomicBool::new(false));
        let r = tokio::time::timeout(
            secs(1),
            c.run(
                1,
                &CancellationToken::new(),
                watched_work(Arc::clone(&fired), 10),
            ),
        )
        .await;
        assert!(r.is_err());
        tokio::task::yield_now().await;
        assert!(fired.load(Ordering::SeqCst));
        assert_eq!(c.stats().in_flight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn already_cancelled_caller_starts_nothing() {
        let c: Coalescer<u32, u32> = Coalescer::new();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let started = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&started);
        let r = c
            .run(1, &cancel, move |_| {
                s.store(true, Ordering::SeqCst);
                async { 1 }
            })
            .await;
        assert_eq!(r, Err(CoalesceError::Cancelled));
        assert!(!started.load(Ordering::SeqCst));
        assert_eq!(c.stats().started, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn panicking_work_fails_every_caller_and_frees_the_key() {
        let c: Coalescer<u32, u32> = Coalescer::new();
        let none = CancellationToken::new();
        async fn explode() -> u32 {
            sleep(secs(1)).await;
            panic!("work failed (expected by this test)")
        }
        let (a, b) = tokio::join!(
            c.run(1, &none, |_| explode()),
            c.run(1, &none, |_| async { 2 })
        );
        assert_eq!(
            (a, b),
            (
                Err(CoalesceError::WorkFailed),
                Err(CoalesceError::WorkFailed)
            )
        );
        assert_eq!(c.stats().in_flight, 0);
        assert_eq!(c.run(1, &none, |_| async { 3 }).await, Ok(3));
        assert!(matches!(
            DataError::from(CoalesceError::WorkFailed),
            DataError::Host(_)
        ));
        assert!(matches!(
            DataError::from(CoalesceError::Cancelled),
            DataError::Cancelled
        ));
    }
}
