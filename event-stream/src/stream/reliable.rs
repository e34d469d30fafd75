//! The reliability layer around a handler: decode, dedup, a correlation span, retries
//! with backoff, the dead-letter topic. One call of [`Reliability::process`] takes one
//! message to its final outcome, or leaves it unfinished when the service stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::correlation;
use super::dead_letter::{self, DeadLetter, class};
use super::dedup::{Check, Dedup};
use super::handler::{HandleError, Handler};
use super::retry::RetryPolicy;
use super::stats::Recorder;
use super::transport::{BoxWriter, Transport};
use crate::Envelope;
use crate::error::StreamError;
use crate::message::RawMessage;

/// Called for every dead letter written, with the envelope when the message decoded
/// (the gateway publishes `command.rejected` from it).
pub(super) type DeadLetterHook = Arc<dyn Fn(&DeadLetter, Option<&Envelope>) + Send + Sync>;

/// How a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The handler succeeded.
    Handled,
    /// Already handled: skipped.
    Duplicate,
    /// Given up on: on the dead-letter topic.
    DeadLettered,
    /// The service stopped first: not finished, so not committed.
    Abandoned,
}

impl Outcome {
    /// Whether the message is finally handled (its offset may be committed).
    pub(super) fn is_final(self) -> bool {
        self != Outcome::Abandoned
    }
}

/// Dead-letter writers, one per dead-letter topic, opened on first use.
pub(super) struct DeadLetters {
    transport: Arc<dyn Transport>,
    writers: Mutex<HashMap<String, BoxWriter>>,
    hook: Option<DeadLetterHook>,
}

impl DeadLetters {
    pub(super) fn new(transport: Arc<dyn Transport>, hook: Option<DeadLetterHook>) -> Self {
        Self {
            transport,
            writers: Mutex::new(HashMap::new()),
            hook,
        }
    }

    /// Writes and flushes one dead letter: it is delivered before its offset can be
    /// committed.
    async fn send(&self, letter: &DeadLetter, original: &RawMessage) -> Result<(), StreamError> {
        let source = letter.topic.as_deref().unwrap_or("unknown");
        let topic = dead_letter::topic_for(source);
        let mut writers = self.writers.lock().await;
        if !writers.contains_key(&topic) {
            let writer = self.transport.writer(&topic)?;
            writers.insert(topic.clone(), writer);
        }
        let writer = writers
            .get_mut(&topic)
            .ok_or(StreamError::Closed("dead-letter writer"))?;
        writer.write(letter.message(original)).await?;
        writer.flush().await
    }

    /// Flushes and closes every writer.
    pub(super) async fn close(&self) -> Result<(), StreamError> {
        let mut first_error = None;
        for (_, mut writer) in self.writers.lock().await.drain() {
            if let Err(e) = writer.close().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The stages every consumer of a service shares.
pub(super) struct Reliability {
    pub(super) dedup: Arc<Dedup>,
    pub(super) retry: RetryPolicy,
    pub(super) dead_letters: DeadLetters,
}

/// Who is handling: the consumer's name (dedup scope, metrics) and group.
pub(super) struct Consumer {
    pub(super) name: String,
    pub(super) group: String,
    pub(super) handler: Arc<dyn Handler>,
    pub(super) recorder: Recorder,
}

impl Reliability {
    /// Takes `message` to its final outcome (or leaves it when `stop` fires).
    pub(super) async fn process(
        &self,
        consumer: &Consumer,
        message: RawMessage,
        stop: &CancellationToken,
    ) -> Outcome {
        let started = Instant::now();
        consumer.recorder.received();
        let position = message.position.clone();
        let envelope = match Envelope::from_json(&message.value) {
            Ok(envelope) => envelope,
            Err(error) => {
                let letter = self.letter(consumer, &message, None, class::UNDECODABLE, 0);
                let letter = DeadLetter {
                    message: error.to_string(),
                    ..letter
                };
                tracing::warn!(consumer = %consumer.name, ?position, %error, "undecodable message: dead-lettering it");
                return self
                    .give_up(consumer, &message, None, letter, started, stop)
                    .await;
            }
        };
        // An envelope without one starts its chain: its own id is the correlation id,
        // the same on every delivery of it.
        // Handlers get the envelope as it came (an archive keeps it unchanged); the
        // chain id is in the span and in `correlation::current()`.
        let correlation_id = envelope.chain_id();
        let span = tracing::info_span!(
            "handle",
            consumer = %consumer.name,
            event_id = %envelope.id,
            event_type = %envelope.event_type,
            correlation_id = %correlation_id,
            topic = position.as_ref().map(|p| p.topic.as_str()),
            partition = position.as_ref().map(|p| p.partition),
            offset = position.as_ref().map(|p| p.offset),
        );
        let handling = self.handle(consumer, &message, envelope, started, stop);
        correlation::scope(correlation_id, handling.instrument(span)).await
    }

    async fn handle(
        &self,
        consumer: &Consumer,
        message: &RawMessage,
        envelope: Envelope,
        started: Instant,
        stop: &CancellationToken,
    ) -> Outcome {
        // A replayed dead letter is handled again even though its id was seen.
        let id = match dead_letter::replays(&message.headers) {
            0 => envelope.id.to_string(),
            n => format!("{}#replay{n}", envelope.id),
        };
        // Held until this copy's outcome is remembered: a concurrent copy waits here,
        // then finds it a duplicate.
        let _claim = self.dedup.claim(&consumer.name, &id).await;
        if let Some(outcome) = self.deduplicate(consumer, &id, started, stop).await {
            return outcome;
        }
        let mut delays = self.retry.delays();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // A handler that panics fails this message for good, not the consumer.
            let call = AssertUnwindSafe(consumer.handler.handle(envelope.clone())).catch_unwind();
            let result = call.await.unwrap_or_else(|panic| {
                Err(HandleError::permanent(class::PANICKED, panic_text(&*panic)))
            });
            let error = match result {
                Ok(()) => {
                    self.dedup.remember(&consumer.name, &id).await;
                    consumer.recorder.handled(started.elapsed());
                    tracing::debug!(attempts, "handled");
                    return Outcome::Handled;
                }
                Err(error) => error,
            };
            consumer.recorder.failed(error.is_transient());
            let delay = match &error {
                HandleError::Transient(_) => delays.next(),
                HandleError::Permanent { .. } => None,
            };
            let Some(delay) = delay else {
                let (class, text) = match &error {
                    HandleError::Transient(m) => (
                        class::RETRIES_EXHAUSTED,
                        format!("gave up after {attempts} attempt(s): {m}"),
                    ),
                    HandleError::Permanent { class, message } => (class.as_str(), message.clone()),
                };
                tracing::warn!(attempts, %error, "dead-lettering");
                let letter = DeadLetter {
                    message: text,
                    ..self.letter(consumer, message, Some(&envelope), class, attempts)
                };
                let outcome = self
                    .give_up(consumer, message, Some(&envelope), letter, started, stop)
                    .await;
                if outcome.is_final() {
                    self.dedup.remember(&consumer.name, &id).await;
                }
                return outcome;
            };
            tracing::info!(attempts, %error, ?delay, "transient failure: retrying");
            consumer.recorder.retried();
            if !pause(delay, stop).await {
                consumer.recorder.abandoned();
                return Outcome::Abandoned;
            }
        }
    }

    /// `Some(outcome)` when the message must not be handled now: a duplicate, or the
    /// service stopped while waiting for the dedup store (unavailable and fail-closed,
    /// or another process handling the same id).
    async fn deduplicate(
        &self,
        consumer: &Consumer,
        id: &str,
        started: Instant,
        stop: &CancellationToken,
    ) -> Option<Outcome> {
        let mut waits = RetryPolicy {
            max_attempts: u32::MAX,
            ..self.retry
        }
        .delays();
        loop {
            match self.dedup.check(&consumer.name, id).await {
                Check::New => return None,
                Check::Duplicate { local } => {
                    tracing::debug!(local, "duplicate: skipped");
                    consumer.recorder.duplicate(started.elapsed());
                    return Some(Outcome::Duplicate);
                }
                waiting => {
                    let delay = waits.next().unwrap_or(self.retry.max_delay);
                    if let Check::Unavailable(error) = &waiting {
                        tracing::debug!(%error, ?delay, "dedup store unavailable (fail-closed): waiting");
                    } else {
                        // Another process holds the id: it is remembered soon, or its
                        // lease lapses.
                        tracing::debug!(?delay, "handled by another consumer now: waiting");
                    }
                    if !pause(delay, stop).await {
                        consumer.recorder.abandoned();
                        return Some(Outcome::Abandoned);
                    }
                }
            }
        }
    }

    fn letter(
        &self,
        consumer: &Consumer,
        message: &RawMessage,
        envelope: Option<&Envelope>,
        class: &str,
        attempts: u32,
    ) -> DeadLetter {
        let position = message.position.as_ref();
        DeadLetter {
            topic: position.map(|p| p.topic.clone()),
            partition: position.map(|p| p.partition),
            offset: position.map(|p| p.offset),
            class: class.to_owned(),
            message: String::new(),
            attempts,
            group: consumer.group.clone(),
            event_id: envelope.map(|e| e.id.to_string()),
            correlation_id: envelope.and_then(|e| e.correlation_id.clone()),
        }
    }

    /// Puts the message on its dead-letter topic, retrying the write until it is
    /// delivered or the service stops.
    async fn give_up(
        &self,
        consumer: &Consumer,
        message: &RawMessage,
        envelope: Option<&Envelope>,
        letter: DeadLetter,
        started: Instant,
        stop: &CancellationToken,
    ) -> Outcome {
        let mut waits = RetryPolicy {
            max_attempts: u32::MAX,
            ..self.retry
        }
        .delays();
        loop {
            match self.dead_letters.send(&letter, message).await {
                Ok(()) => break,
                Err(error) => {
                    let delay = waits.next().unwrap_or(self.retry.max_delay);
                    tracing::warn!(%error, ?delay, "writing a dead letter failed: retrying");
                    if !pause(delay, stop).await {
                        consumer.recorder.abandoned();
                        return Outcome::Abandoned;
                    }
                }
            }
        }
        consumer.recorder.dead_lettered(started.elapsed());
        if let Some(hook) = &self.dead_letters.hook {
            hook(&letter, envelope);
        }
        Outcome::DeadLettered
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("the handler panicked: {text}")
}

/// Sleeps `delay`; false when `stop` fired first.
async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stop.cancelled() => false,
    }
}
