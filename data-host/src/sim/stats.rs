//! What the simulated gateway has seen, for tests and the CLI.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the simulator's counters, all since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Connections open right now (past the handshake or not).
    pub active_connections: u64,
    /// `reqHistoricalData` messages received, violating ones included.
    pub historical_requests: u64,
    /// Historical requests refused with error 162 for breaking a pacing rule.
    pub violations: u64,
    /// `cancelHistoricalData` messages received (whether or not the request was
    /// still open).
    pub cancels: u64,
    /// `reqHeadTimestamp` messages received.
    pub head_timestamp_requests: u64,
    /// `reqContractDetails` messages received.
    pub contract_detail_requests: u64,
}

/// The live counters behind [`SimStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) active_connections: AtomicU64,
    pub(crate) historical_requests: AtomicU64,
    pub(crate) violations: AtomicU64,
    pub(crate) cancels: AtomicU64,
    pub(crate) head_timestamp_requests: AtomicU64,
    pub(crate) contract_detail_requests: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SimStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            connections: read(&self.connections),
            active_connections: read(&self.active_connections),
            historical_requests: read(&self.historical_requests),
            violations: read(&self.violations),
            cancels: read(&self.cancels),
            head_timestamp_requests: read(&self.head_timestamp_requests),
            contract_detail_requests: read(&self.contract_detail_requests),
        }
    }
}

/// Counts a connection as active for as long as it lives.
#[derive(Debug)]
pub(crate) struct ActiveConnection<'a>(&'a Counters);

impl<'a> ActiveConnection<'a> {
    pub(crate) fn new(counters: &'a Counters) -> Self {
        Counters::bump(&counters.connections);
        Counters::bump(&counters.active_connections);
        Self(counters)
    }
}

impl Drop for ActiveConnection<'_> {
    fn drop(&mut self) {
        self.0.active_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
