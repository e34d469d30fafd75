//! The numbers and keys of pacing: [`PacingLimits`] (IB's rules as numbers), the
//! [`ContractKey`] and [`RequestKey`] a request is paced by, and [`PacingStats`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ib::segment::{IbDuration, Segment, WhatToShow};
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
    /// Shortest time between any two grants (not one of IB's rules; zero, the
    /// default, is off). The IB provider sets it a little above the spacing of
    /// `ibapi`'s 50 messages/s rate limiter, so that the limiter never holds a granted
    /// request back: a request then reaches IB when it was granted (and recorded),
    /// not up to a second later at the end of a burst, which the margin would not
    /// cover. Not scaled by [`time_divided_by`](PacingLimits::time_divided_by): the
    /// message rate it follows is not scaled either.
    pub min_interval: Duration,
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
            min_interval: Duration::ZERO,
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
            min_interval: Duration::ZERO,
        }
    }

    /// The same limits with every duration of IB's rules (and the margin) divided by
    /// `divisor` (at least 1), e.g. 60 to turn IB's 10 minutes into 10 s for the
    /// simulator. [`min_interval`](PacingLimits::min_interval) is kept.
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
    pub(super) fn weight(&self, what: WhatToShow) -> u32 {
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

    pub(super) fn group(&self) -> GroupKey {
        (self.contract.clone(), self.what_to_show)
    }
}

/// The burst group of a request: contract, exchange and what-to-show.
pub(super) type GroupKey = (ContractKey, WhatToShow);

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
    /// While requests wait: how long until the next one may be sent (for progress
    /// messages such as "waiting 9 s for IB pacing").
    pub next_grant_in: Option<Duration>,
}
