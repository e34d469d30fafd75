//! Where a stream service reads and writes: a [`Transport`] opens consumer-group readers
//! and topic writers, so the service and its handlers never name Kafka.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{SelectAll, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::error::StreamError;
use crate::memory::{MemoryBus, MemoryReader};
use crate::message::{Position, RawMessage};
use crate::reader::AsyncReader;
use crate::writer::AsyncWriter;

/// A reader a transport opened.
pub type BoxReader = Box<dyn AsyncReader<Bytes, Bytes>>;
/// A writer a transport opened.
pub type BoxWriter = Box<dyn AsyncWriter<Bytes, Bytes>>;

/// Opens readers and writers of one broker (or in-process bus).
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// A member of consumer group `group` reading `topics`, whose stream ends (after
    /// committing what was acknowledged) when `cancel` fires.
    fn reader(
        &self,
        group: &str,
        topics: &[String],
        cancel: CancellationToken,
    ) -> Result<BoxReader, StreamError>;

    /// A writer to `topic`.
    fn writer(&self, topic: &str) -> Result<BoxWriter, StreamError>;
}

/// In-process topics ([`MemoryBus`]): every reader gets every message written after it
/// subscribed; nothing is durable, so groups and commits mean nothing. For tests and the
/// embedded default.
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    bus: MemoryBus<Bytes, Bytes>,
}

impl MemoryTransport {
    /// Reads and writes `bus`.
    pub fn new(bus: MemoryBus<Bytes, Bytes>) -> Self {
        Self { bus }
    }

    /// The bus.
    pub fn bus(&self) -> &MemoryBus<Bytes, Bytes> {
        &self.bus
    }
}

impl Transport for MemoryTransport {
    fn reader(
        &self,
        _group: &str,
        topics: &[String],
        cancel: CancellationToken,
    ) -> Result<BoxReader, StreamError> {
        if topics.is_empty() {
            return Err(StreamError::config(
                "topics",
                "subscribe to at least one topic",
            ));
        }
        let readers = topics.iter().map(|t| self.bus.subscribe(t, cancel.clone()));
        Ok(Box::new(Merged(futures::stream::select_all(readers))))
    }

    fn writer(&self, topic: &str) -> Result<BoxWriter, StreamError> {
        Ok(Box::new(self.bus.writer(topic)))
    }
}

/// Several memory topics read as one.
struct Merged(SelectAll<MemoryReader<Bytes, Bytes>>);

impl Stream for Merged {
    type Item = Result<RawMessage, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_next_unpin(cx)
    }
}

#[async_trait]
impl AsyncReader<Bytes, Bytes> for Merged {
    fn ack(&mut self, _position: &Position) -> Result<(), StreamError> {
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

#[cfg(feature = "kafka")]
pub use kafka::KafkaTransport;

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use crate::kafka::{ConsumerSettings, KafkaConfig, KafkaReader, KafkaWriter, ProducerSettings};

    /// A Kafka cluster: consumer-group readers with manual commits, idempotent writers.
    #[derive(Debug, Clone)]
    pub struct KafkaTransport {
        config: KafkaConfig,
        producer: ProducerSettings,
        session_timeout_ms: Option<u32>,
    }

    impl KafkaTransport {
        /// The cluster of `config`, writing with `producer`.
        pub fn new(config: KafkaConfig, producer: ProducerSettings) -> Self {
            Self {
                config,
                producer,
                session_timeout_ms: None,
            }
        }

        /// Sets the readers' `session.timeout.ms` (the tansu test broker wants 6000).
        pub fn with_session_timeout_ms(mut self, ms: u32) -> Self {
            self.session_timeout_ms = Some(ms);
            self
        }
    }

    impl Transport for KafkaTransport {
        fn reader(
            &self,
            group: &str,
            topics: &[String],
            cancel: CancellationToken,
        ) -> Result<BoxReader, StreamError> {
            let mut settings = ConsumerSettings::new(group);
            if let Some(ms) = self.session_timeout_ms {
                settings = settings.with_session_timeout_ms(ms);
            }
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            Ok(Box::new(KafkaReader::new(
                &self.config,
                settings,
                &topics,
                cancel,
            )?))
        }

        fn writer(&self, topic: &str) -> Result<BoxWriter, StreamError> {
            Ok(Box::new(KafkaWriter::new(
                &self.config,
                self.producer.clone(),
                topic,
            )?))
        }
    }
}
