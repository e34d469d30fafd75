//! The Kafka sink: envelopes to the events topic, key = subject, the `type`, `id` and
//! `correlation_id` headers, JSON values. Its state (connected, queued, dropped, last
//! error) is what `/api/v1/health` reports under `events.sinks.kafka`.
//!
//! A broker that is down never stops the gateway: writes queue in librdkafka up to its
//! limits, a flush every [`FLUSH_EVERY`] learns what was delivered, and what could not
//! be delivered is dropped and counted. librdkafka reconnects by itself, so publishing
//! resumes when the broker comes back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use event_stream::kafka::{KafkaAdmin, KafkaWriter};
use event_stream::memory::MemoryReader;
use event_stream::{AsyncWriter, Envelope, Message, StreamError};
use futures::StreamExt;
use serde_json::{Value, json};

use super::EVENTS_DROPPED_TOTAL;
use super::config::KafkaSinkSettings;

/// How often the sink flushes (and so learns whether the broker takes its events).
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How long the first broker check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the health route reports about the sink.
#[derive(Debug)]
pub struct KafkaSinkState {
    topic: String,
    /// `None` until the first check or flush.
    connected: Mutex<Option<bool>>,
    written: AtomicU64,
    delivered: AtomicU64,
    /// Delivered by writers replaced after a fatal producer error.
    delivered_before: AtomicU64,
    /// Producers replaced after a fatal error.
    replaced: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    last_error: Mutex<Option<String>>,
    running: AtomicBool,
    /// The buffer's evictions already counted in `dropped` (the reader keeps a total).
    missed_seen: AtomicU64,
}

impl KafkaSinkState {
    pub(super) fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            connected: Mutex::new(None),
            written: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            delivered_before: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            last_error: Mutex::new(None),
            running: AtomicBool::new(false),
            missed_seen: AtomicU64::new(0),
        }
    }

    /// Whether the last check or flush reached the broker.
    pub fn connected(&self) -> bool {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or(false)
    }

    fn set_connected(&self, up: bool, error: Option<String>) {
        let mut connected = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *connected != Some(up) {
            if up {
                tracing::info!(topic = %self.topic, "kafka event sink connected");
            } else {
                tracing::warn!(topic = %self.topic, error = error.as_deref().unwrap_or(""), "kafka event sink cannot reach the broker; events are dropped and counted until it can");
            }
        }
        *connected = Some(up);
        if let Some(error) = error {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(error);
        }
    }

    fn drop_events(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(EVENTS_DROPPED_TOTAL, "sink" => "kafka").increment(n);
        }
    }

    /// The `events.sinks.kafka` object of the health route.
    pub fn report(&self) -> Value {
        json!({
            "topic": self.topic,
            "running": self.running.load(Ordering::Relaxed),
            "connected": *self.connected.lock().unwrap_or_else(PoisonError::into_inner),
            "written": self.written.load(Ordering::Relaxed),
            "delivered": self.delivered.load(Ordering::Relaxed),
            "queued": self.queued.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "producers_replaced": self.replaced.load(Ordering::Relaxed),
            "last_error": *self.last_error.lock().unwrap_or_else(PoisonError::into_inner),
        })
    }
}

/// The envelope as a Kafka message: key subject, JSON value, the envelope headers.
fn encode(envelope: &Envelope) -> Message<Bytes, Bytes> {
    let mut message = Message::new(Bytes::from(envelope.to_json()));
    message.key = envelope.subject.clone().map(Bytes::from);
    message.headers = envelope.clone().into_message().headers;
    message
}

/// Runs the sink until its reader's token fires, then sends what it still holds
/// (bounded by the caller's shutdown deadline).
pub(super) async fn run(
    mut reader: MemoryReader<String, Arc<Envelope>>,
    settings: KafkaSinkSettings,
    state: Arc<KafkaSinkState>,
) {
    let mut writer =
        match KafkaWriter::new(&settings.config, settings.producer.clone(), &settings.topic) {
            Ok(writer) => writer,
            Err(e) => {
                state.set_connected(false, Some(e.to_string()));
                return;
            }
        };
    state.running.store(true, Ordering::Relaxed);
    probe(&settings, &state).await;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_flush = 0u64;
    loop {
        tokio::select! {
            item = reader.next() => match item {
                Some(Ok(message)) => {
                    write(&mut writer, &state, &message.value).await;
                    since_flush += 1;
                }
                Some(Err(_)) | None => break,
            },
            _ = tick.tick() => {
                if since_flush > 0 {
                    flush(&mut writer, &state, &reader).await;
                    since_flush = 0;
                    if let Some(fatal) = writer.fatal_error() {
                        match replace(&settings, &state, &writer, &fatal) {
                            Some(fresh) => writer = fresh,
                            None => break,
                        }
                    }
                } else if !state.connected() {
                    // Idle and down: look again, so health turns green when it is back.
                    probe(&settings, &state).await;
                }
            }
        }
    }
    // Stopping: what is still queued here goes out, then one last flush.
    while let Some(message) = reader.try_next() {
        write(&mut writer, &state, &message.value).await;
    }
    let outcome = writer.close().await;
    settle(&writer, &state, &reader, outcome);
    state.running.store(false, Ordering::Relaxed);
}

/// A new writer in place of one whose producer failed fatally; what the old one still
/// held is lost and counted. `None` when no producer can be made (bad settings).
fn replace(
    settings: &KafkaSinkSettings,
    state: &KafkaSinkState,
    old: &KafkaWriter,
    fatal: &str,
) -> Option<KafkaWriter> {
    tracing::warn!(topic = %settings.topic, error = %fatal, "kafka event producer failed fatally; starting a new one");
    let stats = old.stats();
    state.drop_events(stats.written.saturating_sub(stats.delivered + stats.failed));
    state
        .delivered_before
        .fetch_add(stats.delivered, Ordering::Relaxed);
    state.replaced.fetch_add(1, Ordering::Relaxed);
    state.set_connected(false, Some(format!("producer failed fatally: {fatal}")));
    match KafkaWriter::new(&settings.config, settings.producer.clone(), &settings.topic) {
        Ok(writer) => Some(writer),
        Err(e) => {
            state.set_connected(false, Some(e.to_string()));
            None
        }
    }
}

async fn write(writer: &mut KafkaWriter, state: &KafkaSinkState, envelope: &Envelope) {
    match writer.write(encode(envelope)).await {
        Ok(()) => {
            state.written.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            state.drop_events(1);
            state.set_connected(false, Some(e.to_string()));
        }
    }
}

async fn flush(
    writer: &mut KafkaWriter,
    state: &KafkaSinkState,
    reader: &MemoryReader<String, Arc<Envelope>>,
) {
    let outcome = writer.flush().await;
    settle(writer, state, reader, outcome);
}

fn settle(
    writer: &KafkaWriter,
    state: &KafkaSinkState,
    reader: &MemoryReader<String, Arc<Envelope>>,
    outcome: Result<(), StreamError>,
) {
    let stats = writer.stats();
    state.delivered.store(
        state.delivered_before.load(Ordering::Relaxed) + stats.delivered,
        Ordering::Relaxed,
    );
    state.queued.store(
        stats.written.saturating_sub(stats.delivered + stats.failed) + reader.queued() as u64,
        Ordering::Relaxed,
    );
    // Evicted from this sink's buffer while it could not keep up.
    let missed = reader.missed();
    state.drop_events(missed.saturating_sub(state.missed_seen.swap(missed, Ordering::Relaxed)));
    match outcome {
        Ok(()) => state.set_connected(true, None),
        Err(StreamError::Undelivered {
            undelivered,
            first_error,
        }) => {
            state.drop_events(undelivered);
            state.set_connected(
                false,
                first_error.or_else(|| Some(format!("{undelivered} event(s) not delivered"))),
            );
        }
        Err(e) => state.set_connected(false, Some(e.to_string())),
    }
}

/// Asks the broker for its topics: the sink's connected state before any event.
async fn probe(settings: &KafkaSinkSettings, state: &KafkaSinkState) {
    let admin = match KafkaAdmin::new(&settings.config) {
        Ok(admin) => admin.with_timeout(PROBE_TIMEOUT),
        Err(e) => {
            state.set_connected(false, Some(e.to_string()));
            return;
        }
    };
    match admin.list_topics().await {
        Ok(_) => state.set_connected(true, None),
        Err(e) => state.set_connected(
            false,
            Some(format!("{}: {e}", settings.config.bootstrap_servers)),
        ),
    }
}
