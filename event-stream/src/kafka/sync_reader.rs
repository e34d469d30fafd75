//! [`KafkaSyncReader`]: a consumer-group member as a blocking, callback-driven
//! [`Reader`]. A handler's `Ok` acknowledges the message; an `Err` stops the loop with
//! that message unacknowledged, so the next member of the group gets it again.

use bytes::Bytes;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

use super::config::{ConsumerSettings, KafkaConfig};
use super::context::kafka_error;
use super::offsets::{GroupContext, SharedBook};
use super::reader::{is_transient, to_raw};
use crate::error::StreamError;
use crate::reader::{Handler, ReadEnd, ReadSummary, Reader, ShouldStop};

/// How long one poll waits for a message; the stop signal is checked between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A blocking consumer-group member. Do not run it on an async worker thread.
pub struct KafkaSyncReader {
    /// `None` once closed.
    consumer: Option<BaseConsumer<GroupContext>>,
    group_id: String,
    book: SharedBook,
}

impl std::fmt::Debug for KafkaSyncReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSyncReader")
            .field("group", &self.group_id)
            .field("closed", &self.consumer.is_none())
            .finish_non_exhaustive()
    }
}

impl KafkaSyncReader {
    /// Joins `settings.group_id` and subscribes to `topics` (joining completes while
    /// [`Reader::read`] polls).
    pub fn new(
        config: &KafkaConfig,
        settings: ConsumerSettings,
        topics: &[&str],
    ) -> Result<Self, StreamError> {
        if topics.is_empty() {
            return Err(StreamError::config(
                "topics",
                "subscribe to at least one topic",
            ));
        }
        let book = SharedBook::default();
        let context = GroupContext {
            book: book.clone(),
            group_id: settings.group_id.clone(),
        };
        let consumer = BaseConsumer::from_config_and_context(&settings.apply(config)?, context)
            .map_err(|e| kafka_error("creating the consumer", e))?;
        consumer
            .subscribe(topics)
            .map_err(|e| kafka_error("subscribing", e))?;
        Ok(KafkaSyncReader {
            consumer: Some(consumer),
            group_id: settings.group_id,
            book,
        })
    }

    fn poll_loop(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, Bytes, Bytes>,
    ) -> Result<ReadSummary, StreamError> {
        let mut handled = 0;
        while !stop.should_stop() {
            let message = match consumer.poll(POLL_INTERVAL) {
                None => continue,
                Some(Err(error)) if is_transient(&error) => {
                    tracing::warn!(%error, "kafka consumer: transient error, still reading");
                    continue;
                }
                Some(Err(error)) => return Err(kafka_error("receiving", error)),
                Some(Ok(message)) => to_raw(&message),
            };
            let position = message.position.clone();
            handler(message).map_err(StreamError::Handler)?;
            if let Some(position) = position {
                self.book.ack(&position);
            }
            handled += 1;
        }
        Ok(ReadSummary {
            end: ReadEnd::Stopped,
            handled,
        })
    }
}

impl Reader<Bytes, Bytes> for KafkaSyncReader {
    fn read(
        &mut self,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, Bytes, Bytes>,
    ) -> Result<ReadSummary, StreamError> {
        let consumer = self
            .consumer
            .as_ref()
            .ok_or(StreamError::Closed("kafka reader"))?;
        let outcome = self.poll_loop(consumer, stop, handler);
        // Whatever ended the loop, what the handler accepted is made durable; a loop
        // error is the more important one to report.
        let committed = self.book.commit(consumer);
        let summary = outcome?;
        committed.map(|()| summary)
    }

    fn close(&mut self) -> Result<(), StreamError> {
        let Some(consumer) = self.consumer.take() else {
            return Ok(());
        };
        let committed = self.book.commit(&consumer);
        // Dropping leaves the group now instead of after the session timeout.
        drop(consumer);
        committed
    }
}
