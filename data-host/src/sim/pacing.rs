//! IB's historical-data pacing rules, enforced the way IB Gateway enforces them: a
//! request that breaks one is refused with error 162 instead of being answered.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// IB's limits on historical-data requests. [`Default`] is IB's published rules; tests
/// shrink the time windows with [`SimPacing::time_scaled`] or set fields directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimPacing {
    /// The long window: at most `max_requests_per_window` requests in any `window`.
    pub window: Duration,
    /// Requests allowed in `window` (IB: 60 in 10 minutes).
    pub max_requests_per_window: u32,
    /// No identical request (same contract, end, duration, bar size, what-to-show,
    /// RTH flag) within this long of an accepted one (IB: 15 s).
    pub identical_window: Duration,
    /// The short window for requests on the same contract, exchange and what-to-show.
    pub same_contract_window: Duration,
    /// Requests allowed for one (contract, exchange, what-to-show) in
    /// `same_contract_window` (IB: 5 in 2 s; a sixth is a violation).
    pub max_same_contract: u32,
    /// Historical requests that may be open (accepted, not yet answered or cancelled)
    /// at once (IB: 50).
    pub max_open: u32,
    /// How many requests one BID_ASK request counts as (IB: 2).
    pub bid_ask_weight: u32,
}

impl Default for SimPacing {
    fn default() -> Self {
        Self::IB
    }
}

impl SimPacing {
    /// IB's published rules.
    pub const IB: Self = Self {
        window: Duration::from_secs(600),
        max_requests_per_window: 60,
        identical_window: Duration::from_secs(15),
        same_contract_window: Duration::from_secs(2),
        max_same_contract: 5,
        max_open: 50,
        bid_ask_weight: 2,
    };

    /// The same limits with every time window divided by `divisor` (at least 1), so a
    /// test can cross a window quickly.
    pub fn time_scaled(self, divisor: u32) -> Self {
        let divisor = divisor.max(1);
        Self {
            window: self.window / divisor,
            identical_window: self.identical_window / divisor,
            same_contract_window: self.same_contract_window / divisor,
            ..self
        }
    }

    fn longest_window(&self) -> Duration {
        self.window
            .max(self.identical_window)
            .max(self.same_contract_window)
    }
}

/// Which rule a refused request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    TooManyOpen,
    Identical,
    SameContract,
    Window,
}

/// How the pacer tells requests apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PacingKey {
    /// Contract, exchange and what-to-show.
    pub(crate) contract: String,
    /// Everything that makes two requests identical.
    pub(crate) full: String,
    /// 2 for BID_ASK with IB's rules, else 1.
    pub(crate) weight: u32,
}

#[derive(Debug)]
struct Accepted {
    at: Instant,
    key: PacingKey,
}

/// The gateway-wide record of accepted historical requests.
#[derive(Debug)]
pub(crate) struct Pacer {
    rules: SimPacing,
    accepted: VecDeque<Accepted>,
    open: u32,
}

impl Pacer {
    pub(crate) fn new(rules: SimPacing) -> Self {
        Self {
            rules,
            accepted: VecDeque::new(),
            open: 0,
        }
    }

    /// Accepts the request (counting it, and holding `key.weight` open slots until
    /// [`Self::release`]) or names the rule it breaks. Only accepted requests count
    /// toward later decisions.
    pub(crate) fn admit(&mut self, key: PacingKey, now: Instant) -> Result<(), Violation> {
        let rules = self.rules;
        let horizon = rules.longest_window();
        while self
            .accepted
            .front()
            .is_some_and(|a| now.saturating_duration_since(a.at) >= horizon)
        {
            self.accepted.pop_front();
        }
        let within = |a: &Accepted, span: Duration| now.saturating_duration_since(a.at) < span;

        if self.open.saturating_add(key.weight) > rules.max_open {
            return Err(Violation::TooManyOpen);
        }
        if self
            .accepted
            .iter()
            .any(|a| within(a, rules.identical_window) && a.key.full == key.full)
        {
            return Err(Violation::Identical);
        }
        let same: u32 = self
            .accepted
            .iter()
            .filter(|a| within(a, rules.same_contract_window) && a.key.contract == key.contract)
            .map(|a| a.key.weight)
            .sum();
        if same.saturating_add(key.weight) > rules.max_same_contract {
            return Err(Violation::SameContract);
        }
        let total: u32 = self
            .accepted
            .iter()
            .filter(|a| within(a, rules.window))
            .map(|a| a.key.weight)
            .sum();
        if total.saturating_add(key.weight) > rules.max_requests_per_window {
            return Err(Violation::Window);
        }
        self.open = self.open.saturating_add(key.weight);
        self.accepted.push_back(Accepted { at: now, key });
        Ok(())
    }

    /// Frees the open slots of an accepted request that was answered, refused after
    /// all, or cancelled.
    pub(crate) fn release(&mut self, weight: u32) {
        self.open = self.open.saturating_sub(weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(contract: &str, full: &str, weight: u32) -> PacingKey {
        PacingKey {
            contract: contract.into(),
            full: full.into(),
            weight,
        }
    }

    #[test]
    fn sixth_request_on_one_contract_within_two_seconds_is_refused() {
        let mut pacer = Pacer::new(SimPacing::IB);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(pacer.admit(key("AAPL", &format!("r{i}"), 1), t0), Ok(()));
        }
        assert_eq!(
            pacer.admit(key("AAPL", "r5", 1), t0),
            Err(Violation::SameContract)
        );
        assert_eq!(pacer.admit(key("MSFT", "r5", 1), t0), Ok(()));
        assert_eq!(
            pacer.admit(key("AAPL", "r6", 1), t0 + Duration::from_secs(2)),
            Ok(())
        );
    }

    #[test]
    fn identical_requests_need_fifteen_seconds() {
        let mut pacer = Pacer::new(SimPacing::IB);
        let t0 = Instant::now();
        assert_eq!(pacer.admit(key("A", "same", 1), t0), Ok(()));
        assert_eq!(
            pacer.admit(key("A", "same", 1), t0 + Duration::from_secs(14)),
            Err(Violation::Identical)
        );
        assert_eq!(
            pacer.admit(key("A", "same", 1), t0 + Duration::from_secs(15)),
            Ok(())
        );
    }

    #[test]
    fn sixty_per_ten_minutes_with_bid_ask_counting_twice() {
        let mut pacer = Pacer::new(SimPacing::IB);
        let t0 = Instant::now();
        for i in 0..29 {
            let at = t0 + Duration::from_secs(3 * i);
            assert_eq!(
                pacer.admit(key(&format!("C{i}"), &format!("r{i}"), 2), at),
                Ok(())
            );
            pacer.release(2);
        }
        let at = t0 + Duration::from_secs(100);
        assert_eq!(pacer.admit(key("X", "x", 2), at), Ok(()));
        assert_eq!(pacer.admit(key("Y", "y", 1), at), Err(Violation::Window));
        assert_eq!(
            pacer.admit(key("Y", "y", 1), t0 + Duration::from_secs(600)),
            Ok(())
        );
    }

    #[test]
    fn open_requests_are_capped_until_released() {
        let rules = SimPacing {
            max_open: 2,
            ..SimPacing::IB
        };
        let mut pacer = Pacer::new(rules);
        let t0 = Instant::now();
        assert_eq!(pacer.admit(key("A", "a", 1), t0), Ok(()));
        assert_eq!(pacer.admit(key("B", "b", 1), t0), Ok(()));
        assert_eq!(
            pacer.admit(key("C", "c", 1), t0),
            Err(Violation::TooManyOpen)
        );
        pacer.release(1);
        assert_eq!(pacer.admit(key("C", "c", 1), t0), Ok(()));
    }

    #[test]
    fn scaling_shrinks_only_the_windows() {
        let scaled = SimPacing::IB.time_scaled(100);
        assert_eq!(scaled.window, Duration::from_secs(6));
        assert_eq!(scaled.identical_window, Duration::from_millis(150));
        assert_eq!(scaled.max_requests_per_window, 60);
    }
}
