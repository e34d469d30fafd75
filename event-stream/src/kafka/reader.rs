//! [`KafkaReader`]: a consumer-group member as an [`AsyncReader`] — a `Stream` of
//! [`RawMessage`]s that commits only what was acknowledged and ends when its
//! `CancellationToken` fires.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use tokio_util::sync::CancellationToken;

use super::config::{ConsumerSettings, KafkaConfig};
use super::context::{join_error, kafka_error};
use super::offsets::{GroupContext, SharedBook};
use crate::error::StreamError;
use crate::message::{Message, Position, RawMessage};
use crate::reader::AsyncReader;

type Inner = StreamConsumer<GroupContext>;

/// A consumer-group member reading [`RawMessage`]s from its assigned partitions.
///
/// Acknowledge with [`AsyncReader::ack`]; acknowledgements are committed by
/// [`AsyncReader::commit`], when the token is cancelled (the stream commits, then ends)
/// and before a rebalance revokes partitions. Nothing is committed automatically. Poll
/// the stream to its end after cancelling, or call [`KafkaReader::close`], so the final
/// commit happens. An acknowledgement for a partition this member no longer owns is
/// dropped with a warning: the partition's new owner reads that message again.
pub struct KafkaReader {
    /// `None` once closed (or dropped): the last reference is released off the async
    /// workers.
    consumer: Option<Arc<Inner>>,
    group_id: String,
    book: SharedBook,
    stream: BoxStream<'static, Result<RawMessage, StreamError>>,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader")
            .field("group", &self.group_id)
            .field("closed", &self.consumer.is_none())
            .finish_non_exhaustive()
    }
}

impl KafkaReader {
    /// Joins `settings.group_id` and subscribes to `topics`; the stream ends after
    /// `cancel` fires. Joining happens in the background while the stream is polled.
    pub fn new(
        config: &KafkaConfig,
        settings: ConsumerSettings,
        topics: &[&str],
        cancel: CancellationToken,
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
        let consumer = Arc::new(
            Inner::from_config_and_context(&settings.apply(config)?, context)
                .map_err(|e| kafka_error("creating the consumer", e))?,
        );
        consumer
            .subscribe(topics)
            .map_err(|e| kafka_error("subscribing", e))?;
        let state = Loop {
            consumer: consumer.clone(),
            book: book.clone(),
            cancel,
            finished: false,
        };
        let stream = futures::stream::unfold(state, Loop::next).fuse().boxed();
        Ok(KafkaReader {
            consumer: Some(consumer),
            group_id: settings.group_id,
            book,
            stream,
        })
    }

    /// Commits what was acknowledged, then leaves the group (off the async workers: a
    /// consumer's close blocks until the group has been left).
    pub async fn close(mut self) -> Result<(), StreamError> {
        let committed = self.commit().await;
        let parts = self.take_parts();
        tokio::task::spawn_blocking(move || drop(parts))
            .await
            .map_err(|e| join_error("close", e))?;
        committed
    }

    fn consumer(&self) -> Result<Arc<Inner>, StreamError> {
        self.consumer
            .clone()
            .ok_or(StreamError::Closed("kafka reader"))
    }

    /// The consumer and the stream (which holds the consumer too), leaving `self` closed.
    fn take_parts(
        &mut self,
    ) -> (
        Option<Arc<Inner>>,
        BoxStream<'static, Result<RawMessage, StreamError>>,
    ) {
        (
            self.consumer.take(),
            std::mem::replace(&mut self.stream, futures::stream::empty().boxed()),
        )
    }
}

/// The state of the message loop behind the stream.
struct Loop {
    consumer: Arc<Inner>,
    book: SharedBook,
    cancel: CancellationToken,
    finished: bool,
}

impl Loop {
    async fn next(mut self) -> Option<(Result<RawMessage, StreamError>, Self)> {
        if self.finished {
            return None;
        }
        loop {
            let received = tokio::select! {
                // Cancellation wins over a ready message: nothing is handed out after it.
                biased;
                () = self.cancel.cancelled() => None,
                received = self.consumer.recv() => Some(received.map(|m| to_raw(&m))),
            };
            match received {
                Some(Ok(message)) => return Some((Ok(message), self)),
                Some(Err(error)) if is_transient(&error) => {
                    tracing::warn!(%error, "kafka consumer: transient error, still reading");
                }
                Some(Err(error)) => return Some((Err(kafka_error("receiving", error)), self)),
                None => {
                    self.finished = true;
                    let consumer = self.consumer.clone();
                    let book = self.book.clone();
                    let committed = tokio::task::spawn_blocking(move || book.commit(&*consumer))
                        .await
                        .map_err(|e| join_error("commit", e))
                        .and_then(|r| r);
                    // A failed final commit is the stream's last item, then it ends.
                    return committed.err().map(|e| (Err(e), self));
                }
            }
        }
    }
}

/// A librdkafka message as a [`RawMessage`] with its position.
pub(super) fn to_raw(message: &BorrowedMessage<'_>) -> RawMessage {
    let headers = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let value = h.value.map(Bytes::copy_from_slice).unwrap_or_default();
                    (h.key.to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    Message {
        key: message.key().map(Bytes::copy_from_slice),
        value: message
            .payload()
            .map(Bytes::copy_from_slice)
            .unwrap_or_default(),
        headers,
        position: Some(Position {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        }),
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// Errors librdkafka recovers from by itself (reconnecting, waiting for a topic to
/// appear): reported in the log, not to the caller.
pub(super) fn is_transient(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::PartitionEOF
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
        ) | KafkaError::PartitionEOF(_)
    )
}

impl Stream for KafkaReader {
    type Item = Result<RawMessage, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().stream.poll_next_unpin(cx)
    }
}

#[async_trait]
impl AsyncReader<Bytes, Bytes> for KafkaReader {
    fn ack(&mut self, position: &Position) -> Result<(), StreamError> {
        self.book.ack(position);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StreamError> {
        let consumer = self.consumer()?;
        let book = self.book.clone();
        // A sync commit waits for the broker; keep it off the async workers.
        tokio::task::spawn_blocking(move || book.commit(&*consumer))
            .await
            .map_err(|e| join_error("commit", e))?
    }
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // Dropping the consumer leaves the group, which blocks (and commits on the
        // revocation); do that on the blocking pool when there is a runtime.
        if self.consumer.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let parts = self.take_parts();
            runtime.spawn_blocking(move || drop(parts));
        }
    }
}
