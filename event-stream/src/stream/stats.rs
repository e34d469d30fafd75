//! Per-consumer counters: kept in the process for reports and health, and recorded on
//! the `metrics` facade (the Prometheus endpoint of whoever installed a recorder).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Metric: messages by final outcome (`handled`, `dead_lettered`, `duplicate`), per
/// consumer.
pub const MESSAGES_TOTAL: &str = "stream_messages_total";
/// Metric: handler calls that failed, per consumer and kind (`transient`, `permanent`).
pub const HANDLER_FAILURES_TOTAL: &str = "stream_handler_failures_total";
/// Metric: retries after a transient failure, per consumer.
pub const RETRIES_TOTAL: &str = "stream_retries_total";
/// Metric: seconds from receiving a message to its final outcome, per consumer.
pub const HANDLING_SECONDS: &str = "stream_handling_seconds";

/// What one consumer did so far.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    received: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    duplicates: AtomicU64,
    abandoned: AtomicU64,
    commits: AtomicU64,
    commit_errors: AtomicU64,
}

/// A snapshot of [`ConsumerStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerReport {
    /// The consumer's name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its topics.
    pub topics: Vec<String>,
    /// Messages read.
    pub received: u64,
    /// Handled for good.
    pub handled: u64,
    /// Handler calls that failed (every attempt).
    pub failed: u64,
    /// Retries after transient failures.
    pub retried: u64,
    /// Given up on and put on the dead-letter topic.
    pub dead_lettered: u64,
    /// Skipped as already handled.
    pub duplicates: u64,
    /// Left unfinished at a stop (handled again after the restart).
    pub abandoned: u64,
    /// Commits made.
    pub commits: u64,
    /// Commits that failed (the next one covers them).
    pub commit_errors: u64,
    /// Messages being handled now.
    pub in_flight: u64,
}

/// Recorders for one consumer.
#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) name: String,
    pub(super) stats: ConsumerStats,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Recorder {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            stats: ConsumerStats::default(),
        }
    }

    pub(super) fn received(&self) {
        bump(&self.stats.received);
    }

    fn outcome(&self, outcome: &'static str, took: Duration) {
        metrics::counter!(MESSAGES_TOTAL, "consumer" => self.name.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(HANDLING_SECONDS, "consumer" => self.name.clone())
            .record(took.as_secs_f64());
    }

    pub(super) fn handled(&self, took: Duration) {
        bump(&self.stats.handled);
        self.outcome("handled", took);
    }

    pub(super) fn dead_lettered(&self, took: Duration) {
        bump(&self.stats.dead_lettered);
        self.outcome("dead_lettered", took);
    }

    pub(super) fn duplicate(&self, took: Duration) {
        bump(&self.stats.duplicates);
        self.outcome("duplicate", took);
    }

    pub(super) fn abandoned(&self) {
        bump(&self.stats.abandoned);
    }

    pub(super) fn failed(&self, transient: bool) {
        bump(&self.stats.failed);
        let kind = if transient { "transient" } else { "permanent" };
        metrics::counter!(HANDLER_FAILURES_TOTAL, "consumer" => self.name.clone(), "kind" => kind)
            .increment(1);
    }

    pub(super) fn retried(&self) {
        bump(&self.stats.retried);
        metrics::counter!(RETRIES_TOTAL, "consumer" => self.name.clone()).increment(1);
    }

    pub(super) fn committed(&self, ok: bool) {
        bump(if ok {
            &self.stats.commits
        } else {
            &self.stats.commit_errors
        });
    }

    pub(super) fn report(&self, group: &str, topics: &[String], in_flight: u64) -> ConsumerReport {
        let s = &self.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerReport {
            name: self.name.clone(),
            group: group.to_owned(),
            topics: topics.to_vec(),
            received: get(&s.received),
            handled: get(&s.handled),
            failed: get(&s.failed),
            retried: get(&s.retried),
            dead_lettered: get(&s.dead_lettered),
            duplicates: get(&s.duplicates),
            abandoned: get(&s.abandoned),
            commits: get(&s.commits),
            commit_errors: get(&s.commit_errors),
            in_flight,
        }
    }
}
