//! [`KafkaWriter`]: an idempotent, `acks=all` producer for one topic, usable as a sync
//! [`Writer`] and as an [`AsyncWriter`].
//!
//! `write` only enqueues into librdkafka (which batches by `linger.ms`/`batch.size` and
//! retries on its own); a background thread serves delivery reports, counted by the
//! producer context. `flush` waits at most `flush_timeout` and then reports every
//! message written since the previous flush that failed or is still queued. Flushing
//! per message defeats batching; it exists only as an opt-in for the benchmark that
//! measures how much.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::config::KafkaConfig;
use super::context::{join_error, kafka_error};
use super::delivery::{Deliveries, DeliveryCounter};
use super::producer_config::ProducerSettings;
use crate::error::StreamError;
use crate::message::RawMessage;
use crate::writer::{AsyncWriter, Writer};

/// How long `write` waits between attempts while librdkafka's queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// Lifetime counters of a [`KafkaWriter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KafkaWriterStats {
    /// Messages accepted by `write` (enqueued).
    pub written: u64,
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Messages librdkafka gave up on.
    pub failed: u64,
    /// `flush` calls that reached the producer (explicit, from `close`, or per message).
    pub flush_calls: u64,
}

type Inner = ThreadedProducer<DeliveryCounter>;

/// An idempotent producer writing [`RawMessage`]s to one topic.
pub struct KafkaWriter {
    /// `None` once closed.
    producer: Option<Arc<Inner>>,
    deliveries: Arc<Deliveries>,
    topic: String,
    flush_timeout: Duration,
    flush_per_message: bool,
    /// Messages enqueued in the current epoch (only `&mut self` touches it).
    written_in_epoch: u64,
    written: u64,
    flush_calls: u64,
}

impl std::fmt::Debug for KafkaWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaWriter")
            .field("topic", &self.topic)
            .field("closed", &self.producer.is_none())
            .field("stats", &self.stats())
            .finish()
    }
}

impl KafkaWriter {
    /// A producer for `topic`. Connecting happens in the background: a broker that is
    /// down shows up as undelivered messages on `flush`, not as an error here.
    pub fn new(
        config: &KafkaConfig,
        settings: ProducerSettings,
        topic: impl Into<String>,
    ) -> Result<Self, StreamError> {
        let topic = topic.into();
        if topic.is_empty() {
            return Err(StreamError::config("topic", "must not be empty"));
        }
        let deliveries = Arc::new(Deliveries::default());
        let producer = Inner::from_config_and_context(
            &settings.apply(config)?,
            DeliveryCounter(deliveries.clone()),
        )
        .map_err(|e| kafka_error("creating the producer", e))?;
        Ok(KafkaWriter {
            producer: Some(Arc::new(producer)),
            deliveries,
            topic,
            flush_timeout: settings.flush_timeout,
            flush_per_message: false,
            written_in_epoch: 0,
            written: 0,
            flush_calls: 0,
        })
    }

    /// Flushes after every message: the anti-pattern, for the benchmark only.
    pub fn with_flush_per_message(mut self, on: bool) -> Self {
        self.flush_per_message = on;
        self
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Lifetime counters.
    pub fn stats(&self) -> KafkaWriterStats {
        KafkaWriterStats {
            written: self.written,
            delivered: self.deliveries.delivered(),
            failed: self.deliveries.failed(),
            flush_calls: self.flush_calls,
        }
    }

    /// Why this writer cannot deliver any more, if so: the producer had a fatal
    /// error, or the broker refused its identity (fenced it, forgot its id, or its
    /// sequence broke — seen after a broker outage). Every later message would fail;
    /// the way on is a new writer.
    pub fn fatal_error(&self) -> Option<String> {
        let producer = self.producer.as_ref()?;
        if let Some((code, reason)) = producer.client().fatal_error() {
            return Some(format!("{code:?}: {reason}"));
        }
        self.deliveries
            .identity_lost()
            .then(|| "the broker no longer accepts this producer's id or epoch".to_owned())
    }

    fn producer(&self) -> Result<&Arc<Inner>, StreamError> {
        self.producer
            .as_ref()
            .ok_or(StreamError::Closed("kafka writer"))
    }

    /// One attempt to enqueue. `Ok(false)` means the queue is full: retry later.
    fn try_enqueue(&mut self, message: &RawMessage) -> Result<bool, StreamError> {
        let producer = self.producer()?;
        let epoch = self.deliveries.current_epoch();
        let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.topic, epoch)
            .payload(&message.value[..]);
        if let Some(key) = &message.key {
            record = record.key(&key[..]);
        }
        if !message.headers.is_empty() {
            let headers = message.headers.iter().fold(
                OwnedHeaders::new_with_capacity(message.headers.len()),
                |headers, (name, value)| {
                    headers.insert(Header {
                        key: name,
                        value: Some(&value[..]),
                    })
                },
            );
            record = record.headers(headers);
        }
        match producer.send(record) {
            Ok(()) => {
                self.written += 1;
                self.written_in_epoch += 1;
                Ok(true)
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Ok(false),
            Err((e, _)) => Err(kafka_error("enqueueing a message", e)),
        }
    }

    fn queue_full_error(&self) -> StreamError {
        StreamError::transport(
            "kafka",
            format!(
                "the producer queue stayed full for {:?} (is the broker reachable?)",
                self.flush_timeout
            ),
        )
    }

    /// Closes the current epoch after `producer.flush` returned and says what of it was
    /// not delivered. When `closing`, messages of earlier epochs still queued count too:
    /// releasing the producer drops them, so they are lost rather than late.
    fn settle(
        &mut self,
        flushed: Result<(), KafkaError>,
        closing: bool,
    ) -> Result<(), StreamError> {
        self.flush_calls += 1;
        let still_queued = closing.then(|| {
            let stats = self.stats();
            stats.written.saturating_sub(stats.delivered + stats.failed)
        });
        let (undelivered, first_error) = self
            .deliveries
            .end_epoch(self.written_in_epoch, still_queued);
        self.written_in_epoch = 0;
        match flushed {
            _ if undelivered > 0 => Err(StreamError::Undelivered {
                undelivered,
                first_error,
            }),
            // Everything of this epoch is delivered; a flush timeout left over from an
            // earlier epoch's stragglers is not this flush's failure.
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) | Ok(()) => Ok(()),
            Err(e) => Err(kafka_error("flush", e)),
        }
    }

    fn flush_blocking(&mut self, closing: bool) -> Result<(), StreamError> {
        let flushed = flush_producer(self.producer()?, self.flush_timeout);
        self.settle(flushed, closing)
    }

    async fn flush_async(&mut self, closing: bool) -> Result<(), StreamError> {
        let producer = self.producer()?.clone();
        let timeout = self.flush_timeout;
        // librdkafka's flush blocks the calling thread; keep it off the async workers.
        let flushed = tokio::task::spawn_blocking(move || flush_producer(&producer, timeout))
            .await
            .map_err(|e| join_error("flush", e))?;
        self.settle(flushed, closing)
    }
}

/// Longest step of [`flush_producer`]'s wait.
const FLUSH_STEP_MAX: Duration = Duration::from_millis(20);

/// librdkafka's flush with a finer wait than rdkafka's. rdkafka's `flush` polls the
/// producer's queue for up to 100 ms between checks, but a `ThreadedProducer`'s own
/// thread serves the delivery reports that poll waits for, so every flush that finds
/// a message in flight costs at least 100 ms. Short flushes that grow from 1 ms to
/// [`FLUSH_STEP_MAX`] return within a step of the last delivery, and keep librdkafka's
/// "flushing" state (send now, do not linger) raised while waiting.
fn flush_producer(producer: &Inner, timeout: Duration) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    let mut step = Duration::from_millis(1);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match producer.flush(step.min(remaining)) {
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) if remaining > step => {
                step = (step * 2).min(FLUSH_STEP_MAX);
            }
            done => return done,
        }
    }
}

impl Writer<Bytes, Bytes> for KafkaWriter {
    fn write(&mut self, message: RawMessage) -> Result<(), StreamError> {
        let deadline = Instant::now() + self.flush_timeout;
        while !self.try_enqueue(&message)? {
            if Instant::now() >= deadline {
                return Err(self.queue_full_error());
            }
            // Serving delivery reports is what frees room in the queue.
            self.producer()?.poll(QUEUE_FULL_BACKOFF);
        }
        if self.flush_per_message {
            self.flush_blocking(false)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.flush_blocking(false)
    }

    fn close(&mut self) -> Result<(), StreamError> {
        if self.producer.is_none() {
            return Ok(());
        }
        let flushed = self.flush_blocking(true);
        drop(self.producer.take());
        flushed
    }
}

#[async_trait]
impl AsyncWriter<Bytes, Bytes> for KafkaWriter {
    async fn write(&mut self, message: RawMessage) -> Result<(), StreamError> {
        let deadline = Instant::now() + self.flush_timeout;
        while !self.try_enqueue(&message)? {
            if Instant::now() >= deadline {
                return Err(self.queue_full_error());
            }
            tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
        }
        if self.flush_per_message {
            self.flush_async(false).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StreamError> {
        self.flush_async(false).await
    }

    async fn close(&mut self) -> Result<(), StreamError> {
        if self.producer.is_none() {
            return Ok(());
        }
        let flushed = self.flush_async(true).await;
        if let Some(producer) = self.producer.take() {
            // Dropping the producer joins its poll thread and purges: blocking work.
            tokio::task::spawn_blocking(move || drop(producer))
                .await
                .map_err(|e| join_error("close", e))?;
        }
        flushed
    }
}

impl Drop for KafkaWriter {
    fn drop(&mut self) {
        let stats = self.stats();
        let queued = stats.written.saturating_sub(stats.delivered + stats.failed);
        if self.producer.is_some() && queued > 0 {
            tracing::warn!(
                topic = %self.topic,
                queued,
                "kafka writer dropped without close: messages still queued may be lost"
            );
        }
    }
}
