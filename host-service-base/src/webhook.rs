//! `WebhookWriter`: an event-stream [`AsyncWriter`] that POSTs batches of JSON messages
//! to a URL through the project's [`HostClient`] (pooled connections, bounded jittered
//! retries on connect errors, timeouts, 429/502/503/504).
//!
//! A batch is a JSON array of the messages' values, sent when `batch` messages are
//! queued and on `flush`. Every value must be JSON (an envelope, typically): a
//! non-JSON value is refused at `write`. A batch is retried as a whole, so a receiver
//! sees a batch at least once and should deduplicate by envelope `id`; a batch that
//! still fails is reported by `flush` as undelivered (and dropped from the writer: a
//! pipe does not acknowledge it, so its reader delivers it again).

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use event_stream::{AsyncWriter, RawMessage, SerdeError, StreamError};
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use crate::client::HostClient;

/// Default messages per POST.
pub const DEFAULT_BATCH: usize = 100;

/// POSTs batches of JSON values to `path` under a client's base URL.
#[derive(Debug)]
pub struct WebhookWriter {
    client: HostClient,
    path: String,
    batch: usize,
    queued: Vec<Bytes>,
    undelivered: u64,
    first_error: Option<String>,
    posts: u64,
    closed: bool,
}

impl WebhookWriter {
    /// A writer POSTing to `path` (e.g. `/hooks/events`) of `client`'s base URL,
    /// `batch` messages at a time (at least 1).
    pub fn new(client: HostClient, path: impl Into<String>, batch: usize) -> Self {
        WebhookWriter {
            client,
            path: path.into(),
            batch: batch.max(1),
            queued: Vec::new(),
            undelivered: 0,
            first_error: None,
            posts: 0,
            closed: false,
        }
    }

    /// POSTs sent so far (each a batch).
    pub fn posts(&self) -> u64 {
        self.posts
    }

    async fn send_queued(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.queued);
        let count = batch.len() as u64;
        let mut body =
            BytesMut::with_capacity(batch.iter().map(|v| v.len() + 1).sum::<usize>() + 2);
        body.put_u8(b'[');
        for (i, value) in batch.iter().enumerate() {
            if i > 0 {
                body.put_u8(b',');
            }
            body.put_slice(value);
        }
        body.put_u8(b']');
        self.posts += 1;
        let sent = self
            .client
            .post(&self.path)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body.freeze())
            // Receivers deduplicate by envelope id: resending a batch is safe.
            .idempotent(true)
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("{} answered {}", self.path, response.status())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = failure {
            tracing::warn!(path = %self.path, messages = count, %error, "webhook batch not delivered");
            self.undelivered += count;
            self.first_error.get_or_insert(error);
        }
    }

    fn check_open(&self) -> Result<(), StreamError> {
        if self.closed {
            Err(StreamError::Closed("webhook writer"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl AsyncWriter<Bytes, Bytes> for WebhookWriter {
    async fn write(&mut self, message: RawMessage) -> Result<(), StreamError> {
        self.check_open()?;
        if let Err(e) = serde_json::from_slice::<&serde_json::value::RawValue>(&message.value) {
            return Err(SerdeError::Encode {
                format: "webhook",
                message: format!("a webhook batch is a JSON array; this value is not JSON: {e}"),
            }
            .into());
        }
        self.queued.push(message.value);
        if self.queued.len() >= self.batch {
            self.send_queued().await;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StreamError> {
        self.check_open()?;
        self.send_queued().await;
        let undelivered = std::mem::take(&mut self.undelivered);
        let first_error = self.first_error.take();
        if undelivered > 0 {
            return Err(StreamError::Undelivered {
                undelivered,
                first_error,
            });
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), StreamError> {
        if self.closed {
            return Ok(());
        }
        let flushed = self.flush().await;
        self.closed = true;
        flushed
    }
}
