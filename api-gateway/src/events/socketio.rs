//! The Socket.IO sink: Socket.IO v5 on the gateway's own port at `/socket.io/`
//! (socketioxide's tower service on that route), event name = envelope `type`, payload = envelope.
//!
//! A client connected to the default namespace gets every event. A client that emits
//! `subscribe` with an operation id (`"ID"`, `{"operation_id": "ID"}` or
//! `{"subject": "SYMBOL"}`) gets only the events of the subjects it subscribed to, until
//! it `unsubscribe`s from the last one (or sends `unsubscribe` with no payload, which
//! leaves them all). Both events answer an acknowledgement, `{ok, subscribed}` or
//! `{ok: false, error: {field, message}}`.
//!
//! With an API key configured, a connection must present it (`X-API-Key` or
//! `Authorization: Bearer` on the handshake, or the auth payload `{"api_key": KEY}` or
//! `{"token": KEY}`); without it the namespace connection is refused with a
//! `connect_error` and no event reaches it.
//!
//! Rooms carry the routing: a socket is in [`EVERYTHING`] or in one `subject:…` room
//! per subscription, and each event goes to both rooms at once, so one serialisation
//! serves every client. A client whose send buffer is full loses that event (counted
//! under `dropped`), never the connection.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use event_stream::Envelope;
use event_stream::memory::MemoryReader;
use futures::StreamExt;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::service::SocketIoService;
use socketioxide::{BroadcastError, SocketIo};

use super::EVENTS_DROPPED_TOTAL;
use crate::api::auth;

/// The room of clients that subscribed to nothing: they get every event.
pub const EVERYTHING: &str = "everything";
/// Subscriptions one client may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 256;
/// The longest subject a client may subscribe to.
const MAX_SUBJECT: usize = 256;
/// Packets one client may have waiting before it loses events.
const CLIENT_BUFFER: usize = 1024;

/// The layer, the server handle, and what `/api/v1/health` reports.
pub struct SocketIoSink {
    service: SocketIoService<axum::Router>,
    io: SocketIo,
    state: Arc<SocketIoState>,
    /// The namespace is registered once, by the first router built.
    registered: AtomicBool,
}

impl std::fmt::Debug for SocketIoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoSink")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Counters of the sink.
#[derive(Debug, Default)]
pub struct SocketIoState {
    running: AtomicBool,
    clients: AtomicU64,
    refused: AtomicU64,
    emitted: AtomicU64,
    dropped: AtomicU64,
    /// The buffer's evictions already counted in `dropped` (the reader keeps a total).
    missed_seen: AtomicU64,
}

impl SocketIoState {
    fn drop_events(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(EVENTS_DROPPED_TOTAL, "sink" => "socketio").increment(n);
        }
    }
}

impl SocketIoSink {
    pub(super) fn new() -> Self {
        let (service, io) = SocketIo::builder()
            .max_buffer_size(CLIENT_BUFFER)
            // Subscriptions are short messages; nothing a client sends needs more.
            .max_payload(64 * 1024)
            .build_with_inner_svc(axum::Router::new());
        Self {
            service,
            io,
            state: Arc::new(SocketIoState::default()),
            registered: AtomicBool::new(false),
        }
    }

    /// The service answering `/socket.io/`, with the default namespace checking
    /// `api_key` when one is set.
    pub fn service(&self, api_key: Option<String>) -> SocketIoService<axum::Router> {
        if !self.registered.swap(true, Ordering::AcqRel) {
            register(&self.io, self.state.clone(), api_key.map(Arc::from));
        }
        self.service.clone()
    }

    /// Disconnects every client (the gateway is shutting down).
    pub async fn close(&self) {
        self.io.close().await;
    }

    /// The `events.sinks.socketio` object of the health route.
    pub fn report(&self) -> Value {
        let s = &self.state;
        json!({
            "path": "/socket.io/",
            "running": s.running.load(Ordering::Relaxed),
            // Nothing outside the process can be down: the sink is up while it runs.
            "connected": s.running.load(Ordering::Relaxed),
            "clients": s.clients.load(Ordering::Relaxed),
            "refused": s.refused.load(Ordering::Relaxed),
            "emitted": s.emitted.load(Ordering::Relaxed),
            "dropped": s.dropped.load(Ordering::Relaxed),
        })
    }

    /// Emits every envelope `reader` yields until its token fires, then what it still
    /// holds.
    pub(super) async fn run(&self, mut reader: MemoryReader<String, Arc<Envelope>>) {
        self.state.running.store(true, Ordering::Relaxed);
        // `running` turns false however the loop ends, a panic included, so health
        // never reports a dead sink as up.
        let _running = RunningFlag(&self.state.running);
        while let Some(item) = reader.next().await {
            match item {
                Ok(message) => self.emit(&message.value).await,
                Err(_) => break,
            }
            self.count_missed(&reader);
        }
        while let Some(message) = reader.try_next() {
            self.emit(&message.value).await;
        }
        self.count_missed(&reader);
    }

    fn count_missed(&self, reader: &MemoryReader<String, Arc<Envelope>>) {
        let missed = reader.missed();
        let seen = self.state.missed_seen.swap(missed, Ordering::Relaxed);
        self.state.drop_events(missed.saturating_sub(seen));
    }

    async fn emit(&self, envelope: &Envelope) {
        let mut rooms: Vec<Cow<'static, str>> = vec![Cow::Borrowed(EVERYTHING)];
        if let Some(subject) = &envelope.subject {
            rooms.push(Cow::Owned(subject_room(subject)));
        }
        // `io.to` panics while the namespace is not registered yet (no router built):
        // then nobody can be connected, and the event reaches nobody.
        let Some(namespace) = self.io.of("/") else {
            self.state.emitted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match namespace
            .to(rooms)
            .emit(&envelope.event_type, envelope)
            .await
        {
            Ok(()) => {
                self.state.emitted.fetch_add(1, Ordering::Relaxed);
            }
            // Some clients were full or gone: they lose this event, the others got it.
            Err(BroadcastError::Socket(failed)) => {
                self.state.emitted.fetch_add(1, Ordering::Relaxed);
                self.state.drop_events(failed.len() as u64);
            }
            Err(e) => {
                tracing::warn!(error = %e, event_type = %envelope.event_type, "socket.io emit failed");
                self.state.drop_events(1);
            }
        }
    }
}

/// Clears the flag when dropped.
struct RunningFlag<'a>(&'a AtomicBool);

impl Drop for RunningFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

fn subject_room(subject: &str) -> String {
    format!("subject:{subject}")
}

/// Why a connection was refused; the client sees the message in its `connect_error`.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(
        "this gateway requires an API key: send X-API-Key, Authorization: Bearer, or auth {{\"api_key\": KEY}}"
    )]
    Missing,
    #[error("the API key is wrong")]
    Wrong,
}

fn register(io: &SocketIo, state: Arc<SocketIoState>, key: Option<Arc<str>>) {
    let check_state = state.clone();
    let check = move |socket: SocketRef, TryData(auth): TryData<Value>| {
        let key = key.clone();
        let state = check_state.clone();
        async move {
            let Some(key) = key else { return Ok(()) };
            let from_auth = auth.as_ref().ok().and_then(|auth| {
                ["api_key", "token"]
                    .iter()
                    .find_map(|field| auth.get(field).and_then(Value::as_str))
                    .map(str::to_owned)
            });
            let presented = auth::presented(&socket.req_parts().headers)
                .map(str::to_owned)
                .or(from_auth);
            let outcome = match presented {
                Some(given) if auth::equal(given.as_bytes(), key.as_bytes()) => Ok(()),
                Some(_) => Err(Refused::Wrong),
                None => Err(Refused::Missing),
            };
            if outcome.is_err() {
                state.refused.fetch_add(1, Ordering::Relaxed);
            }
            outcome
        }
    };
    let connected = move |socket: SocketRef| {
        let state = state.clone();
        async move {
            socket.join(EVERYTHING);
            state.clients.fetch_add(1, Ordering::Relaxed);
            let gone = state.clone();
            socket.on_disconnect(async move || {
                gone.clients.fetch_sub(1, Ordering::Relaxed);
            });
            socket.on(
                "subscribe",
                async |socket: SocketRef, TryData(data): TryData<Value>, ack: AckSender| {
                    let answer = match data.ok().as_ref().map(subject_of) {
                        Some(Ok(subject)) => subscribe(&socket, &subject),
                        Some(Err(e)) => Err(e),
                        None => Err(bad("operation_id", "send the operation id to subscribe to")),
                    };
                    let _ = ack.send(&answer.unwrap_or_else(|e| e));
                },
            );
            socket.on(
                "unsubscribe",
                async |socket: SocketRef, TryData(data): TryData<Value>, ack: AckSender| {
                    let answer = match data.ok().filter(|v| !v.is_null()) {
                        None => Ok(unsubscribe_all(&socket)),
                        Some(value) => subject_of(&value).map(|s| unsubscribe(&socket, &s)),
                    };
                    let _ = ack.send(&answer.unwrap_or_else(|e| e));
                },
            );
        }
    };
    io.ns("/", connected.with(check));
}

/// The subject a `subscribe`/`unsubscribe` payload names.
fn subject_of(payload: &Value) -> Result<String, Value> {
    let (field, value) = match payload {
        Value::String(s) => ("operation_id", Some(s.as_str())),
        Value::Object(map) => match (map.get("operation_id"), map.get("subject")) {
            (Some(v), _) => ("operation_id", v.as_str()),
            (None, Some(v)) => ("subject", v.as_str()),
            (None, None) => {
                return Err(bad(
                    "operation_id",
                    "send {\"operation_id\": ID} or {\"subject\": SYMBOL}",
                ));
            }
        },
        _ => {
            return Err(bad(
                "operation_id",
                "send the operation id as a string or {\"operation_id\": ID}",
            ));
        }
    };
    match value {
        Some(s) if !s.is_empty() && s.len() <= MAX_SUBJECT && !s.chars().any(char::is_control) => {
            Ok(s.to_owned())
        }
        Some(_) => Err(bad(
            field,
            "must be 1 to 256 characters without control characters",
        )),
        None => Err(bad(field, "must be a string")),
    }
}

fn bad(field: &str, message: &str) -> Value {
    json!({"ok": false, "error": {"field": field, "message": message}})
}

fn subscriptions(socket: &SocketRef) -> Vec<String> {
    let mut subjects: Vec<String> = socket
        .rooms()
        .iter()
        .filter_map(|room| room.strip_prefix("subject:").map(str::to_owned))
        .collect();
    subjects.sort();
    subjects
}

fn subscribe(socket: &SocketRef, subject: &str) -> Result<Value, Value> {
    let held = subscriptions(socket);
    if held.len() >= MAX_SUBSCRIPTIONS && !held.iter().any(|s| s == subject) {
        return Err(bad(
            "operation_id",
            "at most 256 subscriptions per connection: unsubscribe from one first",
        ));
    }
    socket.leave(EVERYTHING);
    socket.join(subject_room(subject));
    Ok(json!({"ok": true, "subscribed": subscriptions(socket)}))
}

fn unsubscribe(socket: &SocketRef, subject: &str) -> Value {
    socket.leave(subject_room(subject));
    let left = subscriptions(socket);
    if left.is_empty() {
        socket.join(EVERYTHING);
    }
    json!({"ok": true, "subscribed": left})
}

fn unsubscribe_all(socket: &SocketRef) -> Value {
    for subject in subscriptions(socket) {
        socket.leave(subject_room(&subject));
    }
    socket.join(EVERYTHING);
    json!({"ok": true, "subscribed": []})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event published before any router asked for the service (a host's health
    /// change found by the first probe, in host mode) must not end the sink: it once
    /// did (socketioxide's `io.to` panics without the namespace), and every client that
    /// connected afterwards got nothing.
    #[tokio::test]
    async fn an_event_before_the_service_exists_does_not_stop_the_sink() {
        let bus = event_stream::memory::MemoryBus::<String, Arc<Envelope>>::new(
            event_stream::memory::TopicConfig::default(),
        );
        let reader = bus.subscribe("events", tokio_util::sync::CancellationToken::new());
        let sink = Arc::new(SocketIoSink::new());
        let running = sink.clone();
        let task = tokio::spawn(async move { running.run(reader).await });
        let mut writer = bus.writer("events");
        for _ in 0..2 {
            let envelope =
                Envelope::new("host.health_changed", "api-gateway", json!({})).expect("envelope");
            event_stream::AsyncWriter::write(
                &mut writer,
                event_stream::Message::new(Arc::new(envelope)),
            )
            .await
            .expect("write");
        }
        for _ in 0..500 {
            if sink.state.emitted.load(Ordering::Relaxed) == 2 || task.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert!(!task.is_finished(), "the sink task ended: {:?}", task.await);
        assert_eq!(sink.state.emitted.load(Ordering::Relaxed), 2);
        task.abort();
    }

    #[test]
    fn subjects_are_read_from_a_string_or_an_object() {
        assert_eq!(subject_of(&json!("op-1")), Ok("op-1".to_owned()));
        assert_eq!(
            subject_of(&json!({"operation_id": "op-2"})),
            Ok("op-2".to_owned())
        );
        assert_eq!(
            subject_of(&json!({"subject": "AAPL"})),
            Ok("AAPL".to_owned())
        );
    }

    #[test]
    fn bad_subscriptions_name_the_field() {
        for (payload, field) in [
            (json!(42), "operation_id"),
            (json!({}), "operation_id"),
            (json!({"operation_id": 7}), "operation_id"),
            (json!({"subject": ""}), "subject"),
            (json!("a\nb"), "operation_id"),
            (json!("x".repeat(257)), "operation_id"),
        ] {
            let error = subject_of(&payload).expect_err("refused");
            assert_eq!(error["ok"], false);
            assert_eq!(error["error"]["field"], field, "{payload}");
        }
    }
}
