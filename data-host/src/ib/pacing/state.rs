//! The scheduler's bookkeeping: the queue of waiters, the budgets of recorded sends,
//! and the dispatch that decides who may be sent now (the fairness rules of the
//! module docs).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::limits::{GroupKey, PacingLimits, PacingStats, RequestKey};
use super::scheduler::{Inner, PacingPermit};

/// One acquire waiting for its permit.
pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) key: RequestKey,
    pub(super) weight: u32,
    pub(super) enqueued: Instant,
    pub(super) tx: oneshot::Sender<PacingPermit>,
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

/// Everything the scheduler knows, behind its one lock.
#[derive(Default)]
pub(super) struct State {
    pub(super) queue: VecDeque<Waiter>,
    window: Budget,
    bursts: HashMap<GroupKey, Budget>,
    last_sent: HashMap<RequestKey, Instant>,
    /// The latest grant, for [`PacingLimits::min_interval`].
    last_grant: Option<Instant>,
    pub(super) open: usize,
    /// The earliest instant a time-based block of a waiter clears (the queue is looked
    /// at again then).
    pub(super) next_wake: Option<Instant>,
    pub(super) next_id: u64,
    pub(super) stats: PacingStats,
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
        if let Some(last) = self.last_grant {
            // Zero (the default) never blocks: `last <= now`.
            let free_at = last + limits.min_interval;
            if free_at > now {
                shared = true;
                sooner(free_at);
            }
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
        self.last_grant = Some(now);
        self.open += 1;
    }

    /// Sends every waiter that may go now, in order (see the module docs for who may
    /// pass whom), and sets `next_wake`. Returns whether `next_wake` changed.
    pub(super) fn dispatch(&mut self, inner: &Arc<Inner>, now: Instant) -> bool {
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
