//! Delivery accounting of a [`super::KafkaWriter`]: the producer context counts every
//! delivery report, and a flush asks what of its period was not delivered.
//!
//! Every message carries the number of the flush period ("epoch") it was written in as
//! its delivery opaque. A flush ends the current epoch, so a message reported as still
//! queued by one flush and failing later is not reported again by the next one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};

use super::context::{client_error, log_line};

/// Counters shared by the writer and its producer context.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    epoch: Mutex<Epoch>,
    /// A delivery failed because the broker no longer accepts the producer's id or
    /// epoch: every later message would fail the same way.
    identity_lost: AtomicBool,
}

#[derive(Debug, Default)]
struct Epoch {
    number: usize,
    /// Outcomes (delivered or failed) of this epoch's messages.
    done: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Deliveries {
    fn epoch(&self) -> MutexGuard<'_, Epoch> {
        // The lock only guards counters; a panic elsewhere cannot leave them torn.
        self.epoch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epoch a message written now belongs to.
    pub(super) fn current_epoch(&self) -> usize {
        self.epoch().number
    }

    /// Messages delivered, over the writer's life.
    pub(super) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Messages failed, over the writer's life.
    pub(super) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Whether the broker refused the producer's identity (see [`identity_refused`]).
    pub(super) fn identity_lost(&self) -> bool {
        self.identity_lost.load(Ordering::Relaxed)
    }

    /// Records the outcome of a message written in `epoch`.
    fn record(&self, epoch: usize, failure: Option<String>) {
        match &failure {
            None => self.delivered.fetch_add(1, Ordering::Relaxed),
            Some(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        let mut current = self.epoch();
        if current.number == epoch {
            current.done += 1;
            if let Some(error) = failure {
                current.failed += 1;
                current.first_error.get_or_insert(error);
            }
        }
    }

    /// Ends the current epoch, in which `written` messages were enqueued, and returns
    /// how many of them were not delivered (failed, or no outcome yet) with the first
    /// error. `still_queued` overrides the "no outcome yet" count (closing counts earlier
    /// epochs' stragglers too: they are dropped with the producer).
    pub(super) fn end_epoch(
        &self,
        written: u64,
        still_queued: Option<u64>,
    ) -> (u64, Option<String>) {
        let mut epoch = self.epoch();
        let queued = still_queued.unwrap_or_else(|| written.saturating_sub(epoch.done));
        let undelivered = epoch.failed + queued;
        let first_error = epoch.first_error.take();
        *epoch = Epoch {
            number: epoch.number.wrapping_add(1),
            ..Epoch::default()
        };
        (undelivered, first_error)
    }
}

/// Errors after which an idempotent producer cannot go on: the broker fenced or forgot
/// its producer id, or its sequence no longer lines up (seen after a broker outage,
/// when the epoch bump of KIP-360 does not succeed).
fn identity_refused(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::InvalidProducerIdMapping
                | RDKafkaErrorCode::UnknownProducerId
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
        )
    )
}

/// The producer context: counts delivery reports, logs through `tracing`.
pub(super) struct DeliveryCounter(pub(super) Arc<Deliveries>);

impl ClientContext for DeliveryCounter {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&error, reason);
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, epoch: usize) {
        let failure = result.as_ref().err().map(|(e, _)| {
            if identity_refused(e) {
                self.0.identity_lost.store(true, Ordering::Relaxed);
            }
            e.to_string()
        });
        self.0.record(epoch, failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_reports_its_own_epoch_once() {
        let d = Deliveries::default();
        let first = d.current_epoch();
        // Epoch 1: three written, one delivered, one failed, one without an outcome.
        d.record(first, None);
        d.record(first, Some("timed out".into()));
        assert_eq!(d.end_epoch(3, None), (2, Some("timed out".into())));

        // The straggler fails after its flush: counted in the totals, not reported again.
        let second = d.current_epoch();
        assert_ne!(first, second);
        d.record(first, Some("late".into()));
        d.record(second, None);
        assert_eq!(d.end_epoch(1, None), (0, None));
        assert_eq!((d.delivered(), d.failed()), (2, 2));
    }

    #[test]
    fn closing_counts_every_message_still_queued() {
        let d = Deliveries::default();
        assert_eq!(d.end_epoch(2, None), (2, None));
        // Nothing new written, but the two from before are still queued at close.
        assert_eq!(d.end_epoch(0, Some(2)), (2, None));
    }
}
