//! A stream service's producer: writes envelopes to one topic, stamping the correlation
//! id of the handling it runs in on every envelope that has none.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Mutex;

use super::correlation;
use super::transport::{BoxWriter, Transport};
use crate::Envelope;
use crate::error::StreamError;
use crate::message::RawMessage;

/// Writes envelopes (JSON, keyed by subject, with the `type`/`id`/`correlation_id`
/// headers) to one topic. Cheap to clone; the service that registered it flushes and
/// closes it when it stops.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    topic: String,
    writer: Mutex<BoxWriter>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topic", &self.inner.topic)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer to `topic` on `transport`.
    pub fn new(transport: &dyn Transport, topic: &str) -> Result<Self, StreamError> {
        Ok(Self::from_writer(topic, transport.writer(topic)?))
    }

    /// A producer over a writer opened elsewhere.
    pub fn from_writer(topic: &str, writer: BoxWriter) -> Self {
        Self {
            inner: Arc::new(Inner {
                topic: topic.to_owned(),
                writer: Mutex::new(writer),
            }),
        }
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Queues `envelope`; inside a handling without a correlation id of its own, it
    /// gets the handling's.
    pub async fn send(&self, mut envelope: Envelope) -> Result<(), StreamError> {
        if envelope.correlation_id.is_none() {
            envelope.correlation_id = correlation::current();
        }
        self.write(encode(envelope)).await
    }

    /// Queues a message as it is.
    pub async fn write(&self, message: RawMessage) -> Result<(), StreamError> {
        self.inner.writer.lock().await.write(message).await
    }

    /// Waits until everything queued is delivered.
    pub async fn flush(&self) -> Result<(), StreamError> {
        self.inner.writer.lock().await.flush().await
    }

    /// Flushes and releases the writer.
    pub async fn close(&self) -> Result<(), StreamError> {
        self.inner.writer.lock().await.close().await
    }
}

/// The wire form of an envelope: JSON value, subject key, the three headers.
pub fn encode(envelope: Envelope) -> RawMessage {
    let message = envelope.into_message();
    RawMessage {
        key: message.key.map(Bytes::from),
        value: Bytes::from(message.value.to_json()),
        headers: message.headers,
        position: None,
        timestamp_ms: None,
    }
}
