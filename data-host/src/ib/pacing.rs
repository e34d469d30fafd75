//! The pacing scheduler: every IB historical request waits here until sending it cannot
//! break one of IB's pacing rules, so IB never answers with a pacing violation (162).
//!
//! The rules ([`PacingLimits`], IB's values by default, all configurable so tests and
//! the simulator can scale time down):
//!
//! 1. at most 60 historical requests in any rolling 10 minutes;
//! 2. no identical request (same contract, bar size, what-to-show, end time and
//!    duration: one [`RequestKey`]) within 15 s;
//! 3. at most 5 requests for the same contract, exchange and what-to-show in any 2 s
//!    (a sixth is a violation);
//! 4. at most 50 historical requests open at once;
//! 5. a `BID_ASK` request counts twice against rules 1 and 3 (once against rule 4).
//!
//! A send is recorded at the instant [`PacingScheduler::acquire`] grants it; the
//! [`PacingPermit`] it returns stands for the open request and frees its slot (rule 4)
//! when dropped. A recorded send at `s` counts against a window of length `w` while
//! `now < s + w + margin` ([`PacingLimits::margin`] absorbs network jitter between our
//! clock and IB's). A budget smaller than a request's weight is treated as that weight
//! (and a limit of 0 as 1), so no request can wait forever.
//!
//! **Fairness.** Waiters are served in arrival order, with one relaxation so that a
//! request held back by a rule that concerns only itself does not hold up everyone:
//!
//! * the shared budgets (rule 1 and open slots) are strictly FIFO: when the oldest
//!   waiter does not fit, nobody behind it is sent, even a lighter request that would
//!   fit (so a `BID_ASK` waiting for two units is not starved by single ones);
//! * within one (contract, exchange, what-to-show) group the burst budget (rule 3) is
//!   FIFO: a waiter held by it holds back the later waiters of its group only;
//! * a waiter held only by its own identical-request interval (rule 2) or by its group's
//!   burst budget lets later waiters of other groups pass.
//!
//! A waiter is therefore never starved: once its own interval and its group's burst have
//! passed, it is first in line for everything it needs.
//!
//! Time is `tokio::time`, so tests run on the paused clock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Cancelled;
use super::segment::{IbDuration, Segment, WhatToShow};
use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

/// IB's pacing rules, as numbers. [`Default`] is IB's values plus a small
/// [`margin`](PacingLimits::margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingLimits {
    /// The long window (IB: 10 minutes).
    pub window: Duration,
    /// Requests allowed in any `window` (IB: 60; `BID_ASK` counts as
    /// [`bid_ask_weight`](PacingLimits::bid_ask_weight)).
    pub max_per_window: u32,
    /// Shortest interval between two identical requests (IB: 15 s).
    pub identical_interval: Duration,
    /// The burst window for one contract, exchange and what-to-show (IB: 2 s).
    pub burst_window: Duration,
    /// Requests allowed in any `burst_window` for one contract, exchange and
    /// what-to-show (IB: 5; a sixth is a violation).
    pub max_per_burst: u32,
    /// Historical requests open at once (IB: 50).
    pub max_open: usize,
    /// How many requests a `BID_ASK` request counts as against `max_per_window` and
    /// `max_per_burst` (IB: 2).
    pub bid_ask_weight: u32,
    /// Added to every window and interval, so that jitter between our send and IB's
    /// receipt cannot turn an exact boundary into a violation. Not one of IB's rules;
    /// 250 ms by default.
    pub margin: Duration,
}

impl Default for PacingLimits {
    fn default() -> Self {
        Self::ib()
    }
}

impl PacingLimits {
    /// IB's limits, with the default 250 ms margin.
    pub const fn ib() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_per_window: 60,
            identical_interval: Duration::from_secs(15),
            burst_window: Duration::from_secs(2),
            max_per_burst: 5,
            max_open: 50,
            bid_ask_weight: 2,
            margin: Duration::from_millis(250),
        }
    }

    /// IB's limits exactly, no margin (what the simulator enforces).
    pub const fn ib_exact() -> Self {
        let mut limits = Self::ib();
        limits.margin = Duration::ZERO;
        limits
    }

    /// No pacing at all: every request is granted at once. For tests that must show a
    /// pacing check can fail, and for sources that need no pacing.
    pub const fn disabled() -> Self {
        Self {
            window: Duration::ZERO,
            max_per_window: u32::MAX,
            identical_interval: Duration::ZERO,
            burst_window: Duration::ZERO,
            max_per_burst: u32::MAX,
            max_open: usize::MAX,
            bid_ask_weight: 1,
            margin: Duration::ZERO,
        }
    }

    /// The same limits with every duration divided by `divisor` (at least 1), e.g. 60
    /// to turn IB's 10 minutes into 10 s for the simulator.
    pub fn time_divided_by(self, divisor: u32) -> Self {
        let d = divisor.max(1);
        Self {
            window: self.window / d,
            identical_interval: self.identical_interval / d,
            burst_window: self.burst_window / d,
            margin: self.margin / d,
            ..self
        }
    }

    /// How many units `what` costs against the request budgets.
    fn weight(&self, what: WhatToShow) -> u32 {
        if what.counts_twice() {
            self.bid_ask_weight.max(1)
        } else {
            1
        }
    }
}

/// What IB identifies a contract by for pacing: the 5-per-2-s rule is per contract,
/// exchange and what-to-show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContractKey {
    /// The symbol.
    pub symbol: Symbol,
    /// The kind of instrument (IB security type).
    pub instrument: InstrumentType,
    /// The exchange the request goes to (`SMART`, `IDEALPRO`, ...).
    pub exchange: String,
}

impl ContractKey {
    /// A contract key.
    pub fn new(symbol: Symbol, instrument: InstrumentType, exchange: impl Into<String>) -> Self {
        Self {
            symbol,
            instrument,
            exchange: exchange.into(),
        }
    }
}

/// One historical request as IB's pacing sees it. Two requests with equal keys are
/// "identical" (15 s rule); the (`contract`, `what_to_show`) part is the burst group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// Contract and exchange.
    pub contract: ContractKey,
    /// Bar size.
    pub timeframe: Timeframe,
    /// What the bars are built from.
    pub what_to_show: WhatToShow,
    /// The request's end time (`None`: "now").
    pub end: Option<DateTime<Utc>>,
    /// How far back from `end`.
    pub duration: IbDuration,
}

impl RequestKey {
    /// The key of the request for one segment.
    pub fn for_segment(
        contract: ContractKey,
        timeframe: Timeframe,
        what_to_show: WhatToShow,
        segment: &Segment,
    ) -> Self {
        Self {
            contract,
            timeframe,
            what_to_show,
            end: Some(segment.end),
            duration: segment.ib_duration(),
        }
    }

    fn group(&self) -> GroupKey {
        (self.contract.clone(), self.what_to_show)
    }
}

type GroupKey = (ContractKey, WhatToShow);

/// Counters for `/health/detailed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacingStats {
    /// Requests granted so far.
    pub granted: u64,
    /// Of those, how many had to wait.
    pub delayed: u64,
    /// Total time granted requests spent waiting.
    pub waited_total: Duration,
    /// The longest single wait.
    pub longest_wait: Duration,
    /// Requests waiting now.
    pub waiting: usize,
    /// Requests open now (permits not yet dropped).
    pub open: usize,
    /// Acquires that were cancelled (or dropped) while waiting.
    pub cancelled: u64,
}

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
    inner: Option<Arc<Inner>>,
    granted_at: Instant,
    waited: Duration,
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

struct Inner {
    limits: PacingLimits,
    state: Mutex<State>,
    /// Wakes the waiters when `State::next_wake` changed.
    wake_changed: Notify,
}

struct Waiter {
    id: u64,
    key: RequestKey,
    weight: u32,
    enqueued: Instant,
    tx: oneshot::Sender<PacingPermit>,
}

/// Sends of one budget still inside their window, oldest first, with their weights.
#[derive(Default)]
struct Budget {
    sends: VecDeque<(Instant, u32)>,
    used: u64,
}

impl Budget {
    fn prune(&mut self, now: Instant, keep_for: Duration) {
        while let Some(&(at, weight)) = self.sends.front() {
            if at + keep_for > now {
                break;
            }
            self.sends.pop_front();
            self.used -= u64::from(weight);
        }
    }

    fn record(&mut self, at: Instant, weight: u32) {
        self.sends.push_back((at, weight));
        self.used += u64::from(weight);
    }

    /// `None` when `weight` more fits within `max`; otherwise when it will (given no
    /// further sends): when enough of the oldest sends have left the window.
    fn blocked_until(&self, weight: u32, max: u32, keep_for: Duration) -> Option<Instant> {
        let need = u64::from(weight.min(max.max(1)));
        let max = u64::from(max);
        if self.used + need <= max {
            return None;
        }
        let excess = self.used + need - max;
        let mut freed = 0;
        for &(at, w) in &self.sends {
            freed += u64::from(w);
            if freed >= excess {
                return Some(at + keep_for);
            }
        }
        // Unreachable with consistent bookkeeping (`used` is the sum of `sends`); the
        // newest send's expiry is a safe answer either way.
        self.sends.back().map(|&(at, _)| at + keep_for)
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Waiter>,
    window: Budget,
    bursts: HashMap<GroupKey, Budget>,
    last_sent: HashMap<RequestKey, Instant>,
    open: usize,
    /// The earliest instant a time-based block of a waiter clears (the queue is looked
    /// at again then).
    next_wake: Option<Instant>,
    next_id: u64,
    stats: PacingStats,
}

/// Why the waiter under consideration cannot be sent now.
#[derive(Default)]
struct Blocked {
    /// By a shared budget: nobody behind may pass.
    shared: bool,
    /// By its group's burst budget.
    group: bool,
    /// By its own identical-request interval.
    identical: bool,
    /// The earliest instant one of the time-based rules holding it clears (`None`:
    /// only a permit drop can unblock it).
    until: Option<Instant>,
}

impl State {
    fn prune(&mut self, now: Instant, limits: &PacingLimits) {
        self.window.prune(now, limits.window + limits.margin);
        let burst_keep = limits.burst_window + limits.margin;
        self.bursts.retain(|_, budget| {
            budget.prune(now, burst_keep);
            !budget.sends.is_empty()
        });
        let identical_keep = limits.identical_interval + limits.margin;
        self.last_sent
            .retain(|_, &mut at| at + identical_keep > now);
    }

    fn check(
        &self,
        key: &RequestKey,
        weight: u32,
        now: Instant,
        limits: &PacingLimits,
    ) -> Option<Blocked> {
        let mut blocked = Blocked::default();
        // The earliest instant one of the time-based blocks clears: then this waiter
        // may go, or at least stop holding up others; the dispatch then looks again.
        let mut sooner = |t: Instant| {
            blocked.until = Some(blocked.until.map_or(t, |u| u.min(t)));
        };
        let mut shared = false;
        let (mut group, mut identical) = (false, false);
        if self.open >= limits.max_open.max(1) {
            // Only a dropped permit frees an open slot, and a drop dispatches.
            shared = true;
        }
        if let Some(t) =
            self.window
                .blocked_until(weight, limits.max_per_window, limits.window + limits.margin)
        {
            shared = true;
            sooner(t);
        }
        if let Some(t) = self.bursts.get(&key.group()).and_then(|b| {
            b.blocked_until(
                weight,
                limits.max_per_burst,
                limits.burst_window + limits.margin,
            )
        }) {
            group = true;
            sooner(t);
        }
        if let Some(&at) = self.last_sent.get(key) {
            let free_at = at + limits.identical_interval + limits.margin;
            if free_at > now {
                identical = true;
                sooner(free_at);
            }
        }
        if !(shared || group || identical) {
            return None;
        }
        blocked.shared = shared;
        blocked.group = group;
        blocked.identical = identical;
        Some(blocked)
    }

    fn record(&mut self, key: &RequestKey, weight: u32, now: Instant, limits: &PacingLimits) {
        self.window
            .record(now, weight.min(limits.max_per_window.max(1)));
        self.bursts
            .entry(key.group())
            .or_default()
            .record(now, weight.min(limits.max_per_burst.max(1)));
        self.last_sent.insert(key.clone(), now);
        self.open += 1;
    }

    /// Sends every waiter that may go now, in order (see the module docs for who may
    /// pass whom), and sets `next_wake`. Returns whether `next_wake` changed.
    fn dispatch(&mut self, inner: &Arc<Inner>, now: Instant) -> bool {
        let limits = &inner.limits;
        self.prune(now, limits);
        let mut held_groups: HashSet<GroupKey> = HashSet::new();
        let mut held_keys: HashSet<RequestKey> = HashSet::new();
        let mut wake: Option<Instant> = None;
        let mut i = 0;
        while i < self.queue.len() {
            let waiter = &self.queue[i];
            if waiter.tx.is_closed() {
                // Its acquire was dropped; its guard removes it too, whoever is first.
                self.queue.remove(i);
                self.stats.cancelled += 1;
                continue;
            }
            if held_keys.contains(&waiter.key) || held_groups.contains(&waiter.key.group()) {
                i += 1;
                continue;
            }
            match self.check(&waiter.key, waiter.weight, now, limits) {
                None => {
                    let Some(waiter) = self.queue.remove(i) else {
                        break;
                    };
                    self.grant(inner, waiter, now);
                }
                Some(blocked) => {
                    if let Some(t) = blocked.until {
                        wake = Some(wake.map_or(t, |w| w.min(t)));
                    }
                    if blocked.shared {
                        break;
                    }
                    if blocked.group {
                        held_groups.insert(waiter.key.group());
                    }
                    if blocked.identical {
                        held_keys.insert(waiter.key.clone());
                    }
                    i += 1;
                }
            }
        }
        self.stats.waiting = self.queue.len();
        self.stats.open = self.open;
        let changed = self.next_wake != wake;
        self.next_wake = wake;
        changed
    }

    fn grant(&mut self, inner: &Arc<Inner>, waiter: Waiter, now: Instant) {
        self.record(&waiter.key, waiter.weight, now, &inner.limits);
        let waited = now.saturating_duration_since(waiter.enqueued);
        let permit = PacingPermit {
            inner: Some(Arc::clone(inner)),
            granted_at: now,
            waited,
        };
        match waiter.tx.send(permit) {
            Ok(()) => {
                let stats = &mut self.stats;
                stats.granted += 1;
                if !waited.is_zero() {
                    stats.delayed += 1;
                }
                stats.waited_total += waited;
                stats.longest_wait = stats.longest_wait.max(waited);
            }
            Err(mut permit) => {
                // The acquire went away in the meantime. Free the open slot here (the
                // permit's own drop would take the lock we hold); the recorded send
                // stays, which only makes pacing more conservative.
                permit.inner = None;
                self.open = self.open.saturating_sub(1);
                self.stats.cancelled += 1;
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
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
        PacingStats {
            waiting: state.queue.len(),
            open: state.open,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(symbol: &str, exchange: &str) -> ContractKey {
        let symbol = Symbol::parse(symbol).expect("test symbol");
        let instrument = InstrumentType::guess(&symbol);
        ContractKey::new(symbol, instrument, exchange)
    }

    fn key(symbol: &str, what: WhatToShow, end_hour: i64) -> RequestKey {
        let end =
            DateTime::<Utc>::from_timestamp(1_700_000_000 + end_hour * 3600, 0).expect("valid");
        RequestKey {
            contract: contract(symbol, "SMART"),
            timeframe: Timeframe::M1,
            what_to_show: what,
            end: Some(end),
            duration: IbDuration::covering(chrono::TimeDelta::days(1)),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Acquires now and returns how long it took (paused clock: virtual time).
    async fn timed(s: &PacingScheduler, k: &RequestKey) -> (PacingPermit, Duration) {
        let t0 = Instant::now();
        let p = s
            .acquire(k, &CancellationToken::new())
            .await
            .expect("not cancelled");
        (p, t0.elapsed())
    }

    // ---- the independent checker -------------------------------------------------

    /// One event of a run: a grant or a release, in the order they happened.
    #[derive(Debug, Clone)]
    enum Event {
        Grant {
            id: usize,
            at: Instant,
            key: RequestKey,
        },
        Release {
            id: usize,
        },
    }

    /// IB's rules written out again, deliberately not using the scheduler's types or
    /// code: returns every violation found in `log`.
    fn ib_violations(log: &[Event]) -> Vec<String> {
        const WINDOW: Duration = Duration::from_secs(600);
        const MAX_WINDOW: u32 = 60;
        const IDENTICAL: Duration = Duration::from_secs(15);
        const BURST: Duration = Duration::from_secs(2);
        const MAX_BURST: u32 = 5;
        const MAX_OPEN: usize = 50;
        let weight = |k: &RequestKey| {
            if k.what_to_show == WhatToShow::BidAsk {
                2
            } else {
                1
            }
        };
        let grants: Vec<(Instant, &RequestKey)> = log
            .iter()
            .filter_map(|e| match e {
                Event::Grant { at, key, .. } => Some((*at, key)),
                Event::Release { .. } => None,
            })
            .collect();
        let mut out = Vec::new();
        // Every window [t, t + len) that starts at a grant: the maximal ones.
        for &(t, k) in &grants {
            let in_window: u32 = grants
                .iter()
                .filter(|(s, _)| *s >= t && *s < t + WINDOW)
                .map(|(_, k)| weight(k))
                .sum();
            if in_window > MAX_WINDOW {
                out.push(format!(
                    "{in_window} request units in the 10 min from {t:?}"
                ));
            }
            let same_group = |o: &RequestKey| {
                o.contract.symbol == k.contract.symbol
                    && o.contract.instrument == k.contract.instrument
                    && o.contract.exchange == k.contract.exchange
                    && o.what_to_show == k.what_to_show
            };
            let in_burst: u32 = grants
                .iter()
                .filter(|(s, o)| *s >= t && *s < t + BURST && same_group(o))
                .map(|(_, o)| weight(o))
                .sum();
            if in_burst > MAX_BURST {
                out.push(format!(
                    "{in_burst} units for {} {} in the 2 s from {t:?}",
                    k.contract.symbol, k.what_to_show
                ));
            }
            let repeats = grants
                .iter()
                .filter(|(s, o)| *s > t && *s < t + IDENTICAL && *o == k)
                .count();
            if repeats > 0 {
                out.push(format!("{repeats} identical repeats within 15 s of {t:?}"));
            }
        }
        let mut open = HashSet::new();
        for e in log {
            match e {
                Event::Grant { id, at, .. } => {
                    open.insert(*id);
                    if open.len() > MAX_OPEN {
                        out.push(format!("{} requests open at {at:?}", open.len()));
                    }
                }
                Event::Release { id } => {
                    open.remove(id);
                }
            }
        }
        out
    }

    /// SplitMix64: deterministic test randomness without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[usize::try_from(self.below(items.len() as u64)).expect("small")]
        }
    }

    /// 200 random requests: 4 symbols, mostly on SMART (a tenth on ARCA), random
    /// what-to-show (mostly TRADES, over a quarter BID_ASK), a third exact repeats of an
    /// earlier request; 30 % arrive within the first second, the rest over a minute;
    /// each is held open 1..120 s as if IB were answering (`slow`: 8..25 min, so that
    /// the open-requests cap binds).
    fn random_burst(seed: u64, slow: bool) -> Vec<(Duration, Duration, RequestKey)> {
        let mut rng = Rng(seed);
        let symbols = ["AAPL", "MSFT", "EURUSD", "SPY"];
        let whats = [
            WhatToShow::Trades,
            WhatToShow::Trades,
            WhatToShow::Trades,
            WhatToShow::Midpoint,
            WhatToShow::Bid,
            WhatToShow::BidAsk,
            WhatToShow::BidAsk,
        ];
        let timeframes = [Timeframe::M1, Timeframe::M5, Timeframe::H1];
        let mut keys: Vec<RequestKey> = Vec::new();
        let mut out = Vec::new();
        for _ in 0..200 {
            let k = if !keys.is_empty() && rng.below(3) == 0 {
                rng.pick(&keys).clone()
            } else {
                let end_hour = i64::try_from(rng.below(6)).expect("small");
                let symbol = symbols[usize::try_from(rng.below(4)).expect("small")];
                let mut k = key(symbol, *rng.pick(&whats), end_hour);
                if rng.below(10) == 0 {
                    k.contract.exchange = "ARCA".to_owned();
                }
                k.timeframe = *rng.pick(&timeframes);
                k
            };
            keys.push(k.clone());
            let arrive = if rng.below(10) < 3 {
                Duration::from_millis(rng.below(1_000))
            } else {
                Duration::from_millis(rng.below(60_000))
            };
            let hold = if slow {
                Duration::from_millis(480_000 + rng.below(1_020_000))
            } else {
                Duration::from_millis(1_000 + rng.below(119_000))
            };
            out.push((arrive, hold, k));
        }
        out
    }

    /// Runs the burst through a scheduler with `limits`, logging grants and releases.
    async fn run_burst(
        limits: PacingLimits,
        seed: u64,
        slow: bool,
    ) -> (Vec<Event>, PacingStats, Duration) {
        let scheduler = PacingScheduler::new(limits);
        let log = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (id, (arrive, hold, k)) in random_burst(seed, slow).into_iter().enumerate() {
            let (scheduler, log) = (scheduler.clone(), Arc::clone(&log));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(arrive).await;
                let permit = scheduler
                    .acquire(&k, &CancellationToken::new())
                    .await
                    .expect("never cancelled");
                let at = Instant::now();
                assert_eq!(
                    permit.granted_at(),
                    at,
                    "the grant is recorded when it is handed out"
                );
                log.lock()
                    .expect("log")
                    .push(Event::Grant { id, at, key: k });
                tokio::time::sleep(hold).await;
                log.lock().expect("log").push(Event::Release { id });
                drop(permit);
            }));
        }
        for t in tasks {
            t.await.expect("task ok");
        }
        let log = log.lock().expect("log").clone();
        let grant_span = log
            .iter()
            .filter_map(|e| match e {
                Event::Grant { at, .. } => Some(at.duration_since(start)),
                Event::Release { .. } => None,
            })
            .max()
            .unwrap_or_default();
        (log, scheduler.stats(), grant_span)
    }

    fn units(log: &[Event]) -> u32 {
        log.iter()
            .map(|e| match e {
                Event::Grant { key, .. } if key.what_to_show == WhatToShow::BidAsk => 2,
                Event::Grant { .. } => 1,
                Event::Release { .. } => 0,
            })
            .sum()
    }

    /// How close a log came to each limit: the most units in any 10 min, the most
    /// units of one group in any 2 s, the most requests open, the shortest interval
    /// between identical requests. Shows the burst really ran against every rule.
    fn peaks(log: &[Event]) -> (u32, u32, usize, Option<Duration>) {
        let weight = |k: &RequestKey| {
            if k.what_to_show == WhatToShow::BidAsk {
                2
            } else {
                1
            }
        };
        let grants: Vec<(Instant, &RequestKey)> = log
            .iter()
            .filter_map(|e| match e {
                Event::Grant { at, key, .. } => Some((*at, key)),
                Event::Release { .. } => None,
            })
            .collect();
        let (mut window, mut burst, mut gap) = (0, 0, None::<Duration>);
        for &(t, k) in &grants {
            let after = |len: Duration| grants.iter().filter(move |(s, _)| *s >= t && *s < t + len);
            window = window.max(after(secs(600)).map(|(_, o)| weight(o)).sum());
            let group =
                |o: &&RequestKey| o.contract == k.contract && o.what_to_show == k.what_to_show;
            burst = burst.max(
                after(secs(2))
                    .filter(|(_, o)| group(o))
                    .map(|(_, o)| weight(o))
                    .sum(),
            );
            for (s, _) in grants.iter().filter(|(s, o)| *s > t && *o == k) {
                let d = s.duration_since(t);
                gap = Some(gap.map_or(d, |g| g.min(d)));
            }
        }
        let (mut open, mut most) = (0_usize, 0);
        for e in log {
            match e {
                Event::Grant { .. } => open += 1,
                Event::Release { .. } => open -= 1,
            }
            most = most.max(open);
        }
        (window, burst, most, gap)
    }

    #[tokio::test(start_paused = true)]
    async fn random_burst_breaks_no_rule_exact_limits() {
        for seed in [1, 2, 3] {
            let (log, stats, span) = run_burst(PacingLimits::ib_exact(), seed, false).await;
            let violations = ib_violations(&log);
            assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
            assert_eq!(stats.granted, 200);
            assert!(stats.delayed > 0, "the burst must have been paced");
            assert_eq!((stats.open, stats.waiting), (0, 0));
            let (window, burst, _, gap) = peaks(&log);
            assert_eq!(
                (window, burst, gap),
                (60, 5, Some(secs(15))),
                "seed {seed}: limits reached exactly"
            );
            // Not needlessly slow: the 60-per-10-min budget is the bottleneck, so the
            // last grant comes within the window in which the last unit fits.
            let windows = u64::from(units(&log).div_ceil(60));
            assert!(
                span <= secs(600 * (windows - 1) + 240),
                "seed {seed}: {span:?} for {windows} windows"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_answers_hit_the_open_cap_and_break_no_rule() {
        for seed in [4, 5] {
            let (log, stats, _) = run_burst(PacingLimits::ib_exact(), seed, true).await;
            let violations = ib_violations(&log);
            assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
            assert_eq!(stats.granted, 200);
            let (window, _, open, _) = peaks(&log);
            assert_eq!(
                (window, open),
                (60, 50),
                "seed {seed}: limits reached exactly"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn random_burst_breaks_no_rule_default_limits() {
        for slow in [false, true] {
            let (log, stats, _) = run_burst(PacingLimits::default(), 7, slow).await;
            let violations = ib_violations(&log);
            assert!(violations.is_empty(), "{violations:#?}");
            assert_eq!(stats.granted, 200);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_checker_catches_an_unpaced_burst() {
        let (log, stats, span) = run_burst(PacingLimits::disabled(), 1, false).await;
        assert_eq!(stats.delayed, 0);
        assert!(span < secs(60));
        let violations = ib_violations(&log);
        let has = |what: &str| violations.iter().any(|v| v.contains(what));
        assert!(has("in the 10 min"), "{violations:#?}");
        assert!(has("identical"), "{violations:#?}");
        assert!(has("in the 2 s"), "{violations:#?}");
        assert!(has("open at"), "{violations:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_checker_counts_each_rule() {
        // Hand-made logs: exactly at the limits pass, one more fails.
        let t = Instant::now();
        let grant = |id, at, key| Event::Grant { id, at, key };
        let k = key("AAPL", WhatToShow::Trades, 0);
        let ok = vec![grant(0, t, k.clone()), grant(1, t + secs(15), k.clone())];
        assert!(ib_violations(&ok).is_empty());
        let bad = vec![grant(0, t, k.clone()), grant(1, t + secs(14), k.clone())];
        assert_eq!(ib_violations(&bad).len(), 1);
        let burst: Vec<Event> = (0..5)
            .map(|i| grant(i, t, key("AAPL", WhatToShow::Trades, i as i64)))
            .collect();
        assert!(ib_violations(&burst).is_empty());
        let mut six = burst.clone();
        six.push(grant(
            5,
            t + Duration::from_millis(1999),
            key("AAPL", WhatToShow::Trades, 5),
        ));
        assert!(!ib_violations(&six).is_empty());
        let bid_ask: Vec<Event> = (0..3)
            .map(|i| grant(i, t, key("AAPL", WhatToShow::BidAsk, i as i64)))
            .collect();
        assert!(!ib_violations(&bid_ask).is_empty(), "3 BID_ASK are 6 units");
    }

    // ---- single rules ------------------------------------------------------------

    #[tokio::test(start_paused = true)]
    async fn identical_request_waits_fifteen_seconds() {
        let s = PacingScheduler::new(PacingLimits::ib_exact());
        let k = key("AAPL", WhatToShow::Trades, 0);
        let (_p1, w1) = timed(&s, &k).await;
        assert_eq!(w1, Duration::ZERO);
        let (_p2, w2) = timed(&s, &k).await;
        assert_eq!(w2, secs(15));
        // A different end time is a different request.
        let (_p3, w3) = timed(&s, &key("AAPL", WhatToShow::Trades, 1)).await;
        assert_eq!(w3, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn margin_is_added_to_every_interval() {
        let s = PacingScheduler::new(PacingLimits::ib());
        let k = key("AAPL", WhatToShow::Trades, 0);
        let _p1 = timed(&s, &k).await;
        let (_p2, w2) = timed(&s, &k).await;
        assert_eq!(w2, secs(15) + Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn sixth_request_for_a_contract_waits_out_the_burst_window() {
        let s = PacingScheduler::new(PacingLimits::ib_exact());
        let mut permits = Vec::new();
        for h in 0..5 {
            let (p, w) = timed(&s, &key("AAPL", WhatToShow::Trades, h)).await;
            assert_eq!(w, Duration::ZERO);
            permits.push(p);
        }
        // Other what-to-show, other exchange, other symbol: other groups.
        let (_a, wa) = timed(&s, &key("AAPL", WhatToShow::Midpoint, 0)).await;
        let mut other_exchange = key("AAPL", WhatToShow::Trades, 9);
        other_exchange.contract.exchange = "ARCA".into();
        let (_b, wb) = timed(&s, &other_exchange).await;
        let (_c, wc) = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
        assert_eq!(
            (wa, wb, wc),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
        let (_d, wd) = timed(&s, &key("AAPL", WhatToShow::Trades, 5)).await;
        assert_eq!(wd, secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn bid_ask_counts_twice() {
        let s = PacingScheduler::new(PacingLimits::ib_exact());
        let (_p1, w1) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, 0)).await;
        let (_p2, w2) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, 1)).await;
        let (_p3, w3) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, 2)).await;
        assert_eq!(
            (w1, w2, w3),
            (Duration::ZERO, Duration::ZERO, secs(2)),
            "2 + 2 + 2 > 5"
        );

        // Against the 10-minute budget too: 30 BID_ASK fill it.
        let s = PacingScheduler::new(PacingLimits {
            max_per_burst: u32::MAX,
            ..PacingLimits::ib_exact()
        });
        let mut permits = Vec::new();
        for h in 0..30 {
            let (p, w) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, h)).await;
            assert_eq!(w, Duration::ZERO);
            permits.push(p);
        }
        let (_p, w) = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
        assert_eq!(w, secs(600));
    }

    #[tokio::test(start_paused = true)]
    async fn sixty_per_ten_minutes() {
        let s = PacingScheduler::new(PacingLimits {
            max_per_burst: u32::MAX,
            ..PacingLimits::ib_exact()
        });
        let mut permits = Vec::new();
        for h in 0..60 {
            let (p, w) = timed(&s, &key("SPY", WhatToShow::Trades, h)).await;
            assert_eq!(w, Duration::ZERO);
            permits.push(p);
            tokio::time::sleep(secs(1)).await;
            permits.clear();
        }
        // The first went at t=0, so the 61st may go at t=600 s; it is now t=60 s.
        let (_p, w) = timed(&s, &key("SPY", WhatToShow::Trades, 60)).await;
        assert_eq!(w, secs(540));
        assert_eq!(s.stats().granted, 61);
    }

    #[tokio::test(start_paused = true)]
    async fn open_requests_are_capped_until_a_permit_drops() {
        let s = PacingScheduler::new(PacingLimits {
            max_open: 2,
            ..PacingLimits::ib_exact()
        });
        let (p1, _) = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
        let (_p2, _) = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
        assert_eq!(s.stats().open, 2);
        let s2 = s.clone();
        let third =
            tokio::spawn(async move { timed(&s2, &key("SPY", WhatToShow::Trades, 0)).await.1 });
        tokio::time::sleep(secs(30)).await;
        assert_eq!(s.stats().waiting, 1);
        drop(p1);
        assert_eq!(third.await.expect("task"), secs(30));
        assert_eq!(
            s.stats().open,
            1,
            "the third's permit was dropped with its task"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_limits_grant_everything_at_once() {
        let s = PacingScheduler::new(PacingLimits::disabled());
        let k = key("AAPL", WhatToShow::BidAsk, 0);
        let mut permits = Vec::new();
        for _ in 0..500 {
            let (p, w) = timed(&s, &k).await;
            assert_eq!(w, Duration::ZERO);
            permits.push(p);
        }
        assert_eq!(s.stats().open, 500);
    }

    #[tokio::test(start_paused = true)]
    async fn time_divided_limits_scale_every_interval() {
        let limits = PacingLimits::ib().time_divided_by(60);
        assert_eq!(limits.window, secs(10));
        assert_eq!(limits.identical_interval, Duration::from_millis(250));
        assert_eq!(limits.max_per_window, 60);
        let s = PacingScheduler::new(limits);
        let k = key("AAPL", WhatToShow::Trades, 0);
        let _p1 = timed(&s, &k).await;
        let (_p2, w) = timed(&s, &k).await;
        // tokio's timer rounds a deadline up to the next millisecond.
        let exact = limits.identical_interval + limits.margin;
        assert!(w >= exact && w <= exact + Duration::from_millis(1), "{w:?}");
    }

    // ---- cancellation and fairness ------------------------------------------------

    #[tokio::test(start_paused = true)]
    async fn cancelled_waiter_leaves_at_once_and_unblocks_others() {
        let s = PacingScheduler::new(PacingLimits {
            max_per_window: 2,
            ..PacingLimits::ib_exact()
        });
        let _p = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
        // A BID_ASK needs 2 units, only 1 is left: it waits, and (FIFO) holds up the
        // single-unit request behind it.
        let cancel = CancellationToken::new();
        let (s1, c1) = (s.clone(), cancel.clone());
        let heavy = tokio::spawn(async move {
            s1.acquire(&key("MSFT", WhatToShow::BidAsk, 0), &c1)
                .await
                .map(drop)
        });
        tokio::task::yield_now().await;
        let s2 = s.clone();
        let light =
            tokio::spawn(async move { timed(&s2, &key("SPY", WhatToShow::Trades, 0)).await.1 });
        tokio::time::sleep(secs(5)).await;
        assert_eq!(
            s.stats().waiting,
            2,
            "the light request must not pass the heavy one"
        );
        let t0 = Instant::now();
        cancel.cancel();
        assert_eq!(heavy.await.expect("task"), Err(Cancelled));
        assert_eq!(t0.elapsed(), Duration::ZERO, "cancellation is immediate");
        assert_eq!(
            light.await.expect("task"),
            secs(5),
            "freed by the cancellation"
        );
        let stats = s.stats();
        assert_eq!((stats.cancelled, stats.waiting, stats.granted), (1, 0, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn already_cancelled_token_is_refused_without_recording() {
        let s = PacingScheduler::new(PacingLimits::ib_exact());
        let cancel = CancellationToken::new();
        cancel.cancel();
        let k = key("AAPL", WhatToShow::Trades, 0);
        assert_eq!(s.acquire(&k, &cancel).await.map(drop), Err(Cancelled));
        let (_p, w) = timed(&s, &k).await;
        assert_eq!(w, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_acquire_leaves_the_queue() {
        let s = PacingScheduler::new(PacingLimits {
            max_open: 1,
            ..PacingLimits::ib_exact()
        });
        let (p, _) = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
        let k = key("MSFT", WhatToShow::Trades, 0);
        let r = tokio::time::timeout(secs(1), s.acquire(&k, &CancellationToken::new())).await;
        assert!(r.is_err(), "times out while the slot is taken");
        assert_eq!(s.stats().waiting, 0);
        drop(p);
        assert_eq!(s.stats().open, 0);
        let (_p, w) = timed(&s, &k).await;
        assert_eq!(w, Duration::ZERO, "the dropped acquire recorded nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_waiting_for_its_interval_does_not_hold_up_others() {
        let s = PacingScheduler::new(PacingLimits::ib_exact());
        let k = key("AAPL", WhatToShow::Trades, 0);
        let _p = timed(&s, &k).await;
        let s1 = s.clone();
        let repeat = tokio::spawn(async move { timed(&s1, &k).await.1 });
        tokio::task::yield_now().await;
        // Same group, other request: passes the waiting repeat.
        let (_q, w) = timed(&s, &key("AAPL", WhatToShow::Trades, 1)).await;
        assert_eq!(w, Duration::ZERO);
        assert_eq!(repeat.await.expect("task"), secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_stops_holding_others_as_soon_as_the_shared_budget_frees() {
        // The repeat of A is held by the 5 s window (shared) until t=5 and by its own
        // 15 s interval until t=15: from t=5 on it must let the request behind it go.
        let limits = PacingLimits {
            window: secs(5),
            max_per_window: 2,
            ..PacingLimits::ib_exact()
        };
        let s = PacingScheduler::new(limits);
        let a = key("AAPL", WhatToShow::Trades, 0);
        let _p1 = timed(&s, &a).await;
        tokio::time::sleep(secs(1)).await;
        let _p2 = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
        let s1 = s.clone();
        let repeat = tokio::spawn(async move { timed(&s1, &a).await.1 });
        tokio::task::yield_now().await;
        let (_p3, w) = timed(&s, &key("SPY", WhatToShow::Trades, 0)).await;
        assert_eq!(w, secs(4), "goes when A's send leaves the window, at t=5");
        assert_eq!(repeat.await.expect("task"), secs(14), "A's repeat at t=15");
    }

    #[tokio::test(start_paused = true)]
    async fn burst_held_group_does_not_hold_up_other_groups_but_keeps_its_order() {
        let s = PacingScheduler::new(PacingLimits {
            max_per_burst: 1,
            ..PacingLimits::ib_exact()
        });
        let _first = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
        let waits = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = Vec::new();
        for (n, (sym, h)) in [("AAPL", 10), ("MSFT", 0), ("AAPL", 11), ("SPY", 0)]
            .into_iter()
            .enumerate()
        {
            let (s, waits) = (s.clone(), Arc::clone(&waits));
            tasks.push(tokio::spawn(async move {
                let (_p, w) = timed(&s, &key(sym, WhatToShow::Trades, h)).await;
                waits.lock().expect("waits").insert(n, w);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        let waits = waits.lock().expect("waits").clone();
        // Other groups pass the held AAPL requests; within AAPL, arrival order.
        let want = HashMap::from([
            (0, secs(2)),
            (1, Duration::ZERO),
            (2, secs(4)),
            (3, Duration::ZERO),
        ]);
        assert_eq!(waits, want);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_for_the_shared_budget_are_served_in_arrival_order() {
        let s = PacingScheduler::new(PacingLimits {
            max_per_window: 3,
            ..PacingLimits::ib_exact()
        });
        let t0 = Instant::now();
        let granted = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = Vec::new();
        for n in 0..12_i64 {
            let (s, granted) = (s.clone(), Arc::clone(&granted));
            let sym = ["AAPL", "MSFT", "SPY", "QQQ"][usize::try_from(n % 4).expect("small")];
            tasks.push(tokio::spawn(async move {
                let p = s
                    .acquire(&key(sym, WhatToShow::Trades, n), &CancellationToken::new())
                    .await;
                granted
                    .lock()
                    .expect("granted")
                    .insert(n, Instant::now().duration_since(t0));
                drop(p);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        let granted = granted.lock().expect("granted").clone();
        for n in 0..12_i64 {
            let window = u32::try_from(n / 3).expect("small");
            assert_eq!(granted[&n], secs(600) * window, "request {n}");
        }
    }
}
