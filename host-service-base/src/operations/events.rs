//! Change streams of single operations, and their Server-Sent Events form.
//!
//! Each operation owns an [`EventHub`]: a change counter and, only while someone is
//! subscribed, a `tokio::sync::broadcast` channel. Publishing happens under the
//! operation's lock, so events leave in the order of their `seq`. A subscriber that
//! falls more than [`EVENT_BUFFER`] events behind gets a fresh snapshot instead of an
//! error, so a slow SSE client sees fewer events, never a broken stream.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::model::{OperationEvent, OperationEventKind, OperationInfo};

/// Events kept per operation for a subscriber that is behind.
pub const EVENT_BUFFER: usize = 64;

/// Interval of the SSE keep-alive comments (proxies drop idle connections).
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Change counter and (lazily created) broadcast sender of one operation.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    seq: u64,
    sender: Option<broadcast::Sender<OperationEvent>>,
}

impl EventHub {
    /// The `seq` of the latest change.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Counts a change and sends it to current subscribers; returns its `seq`. The
    /// sender is dropped after a terminal event (subscribers still drain what was sent)
    /// and when nobody listens, so idle operations hold no event buffer.
    pub(crate) fn publish(&mut self, kind: OperationEventKind, info: &OperationInfo) -> u64 {
        self.seq += 1;
        if let Some(sender) = &self.sender {
            if sender.receiver_count() == 0 {
                self.sender = None;
            } else {
                let event = OperationEvent {
                    kind,
                    seq: self.seq,
                    operation: info.clone(),
                };
                // An error only means every receiver went away meanwhile.
                let _ = sender.send(event);
            }
        }
        if kind == OperationEventKind::Terminal {
            self.sender = None;
        }
        self.seq
    }

    /// A receiver of every change published from now on.
    pub(crate) fn receiver(&mut self) -> broadcast::Receiver<OperationEvent> {
        match &self.sender {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(EVENT_BUFFER);
                self.sender = Some(sender);
                receiver
            }
        }
    }
}

/// Produces the current state of the operation as an event, or `None` once the
/// operation is gone. Called when a subscriber lagged or the channel closed.
pub(crate) type Refresh = Box<dyn Fn() -> Option<OperationEvent> + Send + Sync>;

struct State {
    first: Option<OperationEvent>,
    receiver: Option<broadcast::Receiver<OperationEvent>>,
    last_seq: u64,
    refresh: Refresh,
}

impl State {
    /// Records `event` as delivered; a terminal event ends the stream after it.
    fn deliver(mut self, event: OperationEvent) -> Option<(OperationEvent, Self)> {
        self.last_seq = event.seq;
        if event.kind == OperationEventKind::Terminal {
            self.receiver = None;
        }
        Some((event, self))
    }

    async fn next(mut self) -> Option<(OperationEvent, Self)> {
        if let Some(first) = self.first.take() {
            return self.deliver(first);
        }
        loop {
            let received = self.receiver.as_mut()?.recv().await;
            match received {
                Ok(event) if event.seq <= self.last_seq => continue,
                Ok(event) => return self.deliver(event),
                Err(RecvError::Lagged(_)) => {
                    let snapshot = (self.refresh)()?;
                    if snapshot.seq > self.last_seq {
                        return self.deliver(snapshot);
                    }
                }
                Err(RecvError::Closed) => {
                    // The operation went away; report its last state if we missed it.
                    self.receiver = None;
                    let snapshot = (self.refresh)().filter(|s| s.seq > self.last_seq)?;
                    return self.deliver(snapshot);
                }
            }
        }
    }
}

/// The changes of one operation: first a snapshot of its current state, then every
/// change in order, ending after the terminal event. Returned by
/// [`Operations::subscribe`](super::Operations::subscribe).
pub struct EventStream {
    inner: BoxStream<'static, OperationEvent>,
}

impl EventStream {
    /// `first` is delivered first; a terminal `first` (or no receiver) ends the stream
    /// right after it.
    pub(crate) fn new(
        first: OperationEvent,
        receiver: Option<broadcast::Receiver<OperationEvent>>,
        refresh: Refresh,
    ) -> Self {
        let state = State {
            first: Some(first),
            receiver,
            last_seq: 0,
            refresh,
        };
        Self {
            inner: futures::stream::unfold(state, State::next).boxed(),
        }
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = OperationEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// One operation event in SSE form: `event:` the kind, `id:` the seq, `data:` the JSON
/// of the operation.
pub fn sse_event(event: &OperationEvent) -> Event {
    let id = Event::default().id(event.seq.to_string());
    match serde_json::to_string(&event.operation) {
        Ok(json) => id.event(event.kind.as_str()).data(json),
        Err(error) => {
            tracing::error!(%error, operation_id = %event.operation.operation_id, "unserializable operation");
            id.event("error").data("operation could not be serialized")
        }
    }
}

/// Serves a stream of operation events as Server-Sent Events, with a keep-alive
/// comment every [`KEEP_ALIVE_INTERVAL`]. The response ends when the stream ends.
pub fn sse_response<S>(
    stream: S,
) -> Sse<KeepAliveStream<impl Stream<Item = Result<Event, Infallible>> + Send + 'static>>
where
    S: Stream<Item = OperationEvent> + Send + 'static,
{
    let events = stream.map(|event| Ok::<_, Infallible>(sse_event(&event)));
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
}
