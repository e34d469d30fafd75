//! The gateway's event publisher: everything that happens, as DESIGN.md envelopes, to
//! every configured sink, without ever slowing a request.
//!
//! ```text
//! operations registry ──watch_all──┐
//!                                  ├─ dispatcher (translate, throttle) ─▶ memory topic ─┬─▶ SSE clients
//! Events::publish (data.loaded, …) ┘                                                    ├─▶ Kafka sink
//!                                                                                       └─▶ Socket.IO clients
//! ```
//!
//! Producers never wait: `publish` is a `try_send` into a bounded queue (full = dropped
//! and counted), and the memory topic evicts the oldest event of a subscriber that
//! falls behind (counted as that sink's drops). Each sink reads at its own pace.

pub mod config;
pub mod kafka_sink;
pub mod socketio;
pub mod sse;
pub mod translate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use event_stream::memory::{MemoryBus, MemoryReader, MemoryWriter, Overflow, TopicConfig};
use event_stream::{AsyncWriter, Envelope, Message};
use host_service_base::operations::{OperationEvent, Operations};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{EventMode, EventSettings};
use kafka_sink::KafkaSinkState;
use socketio::SocketIoSink;
use translate::Translator;

use crate::pool::HealthChange;

/// The in-process topic every sink subscribes to.
const TOPIC: &str = "events";
/// Envelopes `publish` queues before it drops.
const PUBLISH_QUEUE: usize = 4096;
/// Prometheus counter of events dropped, by sink.
pub const EVENTS_DROPPED_TOTAL: &str = "hostbridge_events_dropped_total";
/// Prometheus counter of events published, by type.
pub const EVENTS_PUBLISHED_TOTAL: &str = "hostbridge_events_published_total";

/// The publisher. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    settings: EventSettings,
    bus: MemoryBus<String, Arc<Envelope>>,
    publish_tx: mpsc::Sender<Envelope>,
    // Taken by `spawn`: subscribed at build time, so nothing is missed before it runs.
    pending: Mutex<Option<Pending>>,
    published: AtomicU64,
    publish_dropped: AtomicU64,
    feed_lagged: AtomicU64,
    kafka: Option<Arc<KafkaSinkState>>,
    socketio: Option<Arc<SocketIoSink>>,
    /// Ends every client subscription (SSE) when the gateway starts shutting down.
    clients: CancellationToken,
}

struct Pending {
    feed: broadcast::Receiver<OperationEvent>,
    publish_rx: mpsc::Receiver<Envelope>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("mode", &self.inner.settings.mode)
            .finish_non_exhaustive()
    }
}

/// The running tasks of the publisher; [`EventTasks::shutdown`] flushes the sinks.
#[derive(Debug)]
pub struct EventTasks {
    stop: CancellationToken,
    dispatcher: JoinHandle<()>,
    sinks: Vec<JoinHandle<()>>,
}

impl EventTasks {
    /// Stops taking new events, lets the sinks send what they hold, and waits at most
    /// `deadline` for them. Returns whether everything finished in time.
    pub async fn shutdown(self, deadline: Duration) -> bool {
        self.stop.cancel();
        let all = async {
            let _ = self.dispatcher.await;
            for sink in self.sinks {
                let _ = sink.await;
            }
        };
        tokio::time::timeout(deadline, all).await.is_ok()
    }
}

impl Events {
    /// A publisher watching `ops`, with the sinks `settings` names (started by
    /// [`Events::spawn`]).
    pub fn new(settings: EventSettings, ops: &Operations) -> Self {
        let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let bus = MemoryBus::new(TopicConfig {
            capacity: settings.sink_buffer.max(1),
            overflow: Overflow::DropOldest,
        });
        let kafka = settings
            .kafka
            .as_ref()
            .map(|k| Arc::new(KafkaSinkState::new(&k.topic)));
        let socketio = settings
            .mode
            .socketio()
            .then(|| Arc::new(SocketIoSink::new()));
        Self {
            inner: Arc::new(Inner {
                pending: Mutex::new(Some(Pending {
                    feed: ops.watch_all(),
                    publish_rx,
                })),
                settings,
                bus,
                publish_tx,
                published: AtomicU64::new(0),
                publish_dropped: AtomicU64::new(0),
                feed_lagged: AtomicU64::new(0),
                kafka,
                socketio,
                clients: CancellationToken::new(),
            }),
        }
    }

    /// A subscriber for a client stream: ends with the client or at shutdown.
    pub fn subscribe_client(&self) -> MemoryReader<String, Arc<Envelope>> {
        self.subscribe(self.inner.clients.child_token())
    }

    /// Ends every client subscription and disconnects every Socket.IO client (the
    /// gateway is shutting down: open streams must not hold up the drain).
    pub async fn close_clients(&self) {
        self.inner.clients.cancel();
        if let Some(socketio) = &self.inner.socketio {
            socketio.close().await;
        }
    }

    /// The Socket.IO service for `/socket.io/` (`None` when the mode has no Socket.IO
    /// sink); connections must present `api_key` when it is set.
    pub fn socketio_service(
        &self,
        api_key: Option<String>,
    ) -> Option<socketioxide::service::SocketIoService<axum::Router>> {
        self.inner
            .socketio
            .as_ref()
            .map(|sink| sink.service(api_key))
    }

    /// The settings.
    pub fn settings(&self) -> &EventSettings {
        &self.inner.settings
    }

    /// Publishes `envelope` to every sink; never waits (a full queue drops it, counted).
    pub fn publish(&self, envelope: Envelope) {
        if self.inner.publish_tx.try_send(envelope).is_err() {
            self.inner.publish_dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(EVENTS_DROPPED_TOTAL, "sink" => "publish").increment(1);
        }
    }

    /// A subscriber of every envelope from now on, until `cancel` fires.
    pub fn subscribe(&self, cancel: CancellationToken) -> MemoryReader<String, Arc<Envelope>> {
        self.inner.bus.subscribe(TOPIC, cancel)
    }

    /// Publishes every change of a host pool's view as `host.health_changed` until
    /// `stop` fires.
    pub fn forward_health(
        &self,
        mut changes: broadcast::Receiver<HealthChange>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let events = self.clone();
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    () = stop.cancelled() => break,
                    change = changes.recv() => change,
                };
                match change {
                    Ok(change) => {
                        if let Some(envelope) = translate::health_changed(&change) {
                            events.publish(envelope);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        events.inner.feed_lagged.fetch_add(n, Ordering::Relaxed);
                        metrics::counter!(EVENTS_DROPPED_TOTAL, "sink" => "feed").increment(n);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    /// Starts the dispatcher and the sinks; `None` if they were started already.
    pub fn spawn(&self) -> Option<EventTasks> {
        let pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let stop = CancellationToken::new();
        let mut sinks = Vec::new();
        if let (Some(settings), Some(state)) = (&self.inner.settings.kafka, &self.inner.kafka) {
            // Subscribed before the dispatcher runs: the sink sees every event.
            let reader = self.subscribe(stop.clone());
            sinks.push(tokio::spawn(kafka_sink::run(
                reader,
                settings.clone(),
                state.clone(),
            )));
        }
        if let Some(sink) = &self.inner.socketio {
            let reader = self.subscribe(stop.clone());
            let sink = sink.clone();
            sinks.push(tokio::spawn(async move { sink.run(reader).await }));
        }
        let dispatcher = tokio::spawn(dispatch(
            self.clone(),
            pending,
            self.inner.bus.writer(TOPIC),
            stop.clone(),
        ));
        Some(EventTasks {
            stop,
            dispatcher,
            sinks,
        })
    }

    /// `events` of `/api/v1/health`: mode, counters, and each sink's state.
    pub fn health(&self) -> Value {
        let stats = self.inner.bus.stats(TOPIC);
        let mut sinks = serde_json::Map::new();
        if let Some(kafka) = &self.inner.kafka {
            sinks.insert("kafka".into(), kafka.report());
        }
        if let Some(socketio) = &self.inner.socketio {
            sinks.insert("socketio".into(), socketio.report());
        }
        json!({
            "mode": self.inner.settings.mode.as_str(),
            "published": self.inner.published.load(Ordering::Relaxed),
            "dropped": self.inner.publish_dropped.load(Ordering::Relaxed)
                + self.inner.feed_lagged.load(Ordering::Relaxed),
            "subscribers": stats.subscribers,
            "sinks": sinks,
        })
    }

    /// Whether every configured sink is connected (a sink not yet known counts as not).
    pub fn healthy(&self) -> bool {
        self.inner.kafka.as_ref().is_none_or(|k| k.connected())
    }
}

/// Translates operation changes and forwards published envelopes into the topic.
async fn dispatch(
    events: Events,
    mut pending: Pending,
    mut writer: MemoryWriter<String, Arc<Envelope>>,
    stop: CancellationToken,
) {
    let mut translator = Translator::new(events.inner.settings.progress_interval);
    loop {
        let batch = tokio::select! {
            biased;
            changed = pending.feed.recv() => match changed {
                Ok(event) => translator.translate(&event, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    events.inner.feed_lagged.fetch_add(n, Ordering::Relaxed);
                    metrics::counter!(EVENTS_DROPPED_TOTAL, "sink" => "feed").increment(n);
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(envelope) = pending.publish_rx.recv() => vec![envelope],
            () = stop.cancelled() => break,
        };
        for envelope in batch {
            send(&events, &mut writer, envelope).await;
        }
    }
    // What changed before the stop (the shutdown's cancellations) still goes out.
    while let Ok(event) = pending.feed.try_recv() {
        for envelope in translator.translate(&event, Instant::now()) {
            send(&events, &mut writer, envelope).await;
        }
    }
    while let Ok(envelope) = pending.publish_rx.try_recv() {
        send(&events, &mut writer, envelope).await;
    }
}

async fn send(
    events: &Events,
    writer: &mut MemoryWriter<String, Arc<Envelope>>,
    envelope: Envelope,
) {
    metrics::counter!(EVENTS_PUBLISHED_TOTAL, "type" => envelope.event_type.clone()).increment(1);
    events.inner.published.fetch_add(1, Ordering::Relaxed);
    let mut message = Message::new(Arc::new(envelope));
    message.key = message.value.subject.clone();
    // A DropOldest topic never waits and never fails while the bus lives.
    let _ = writer.write(message).await;
}

#[cfg(test)]
mod tests;
