//! The memory topic writer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_broadcast::TrySendError;
use async_trait::async_trait;

use super::{Overflow, Topic};
use crate::error::StreamError;
use crate::message::{Message, Position};
use crate::writer::{AsyncWriter, Writer};

/// Writes to one memory topic. A write is delivered when it returns (the subscribers'
/// queues hold it), so `flush` has nothing to wait for.
pub struct MemoryWriter<K, V> {
    topic: Arc<Topic<K, V>>,
    closed: bool,
}

impl<K, V> std::fmt::Debug for MemoryWriter<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryWriter")
            .field("topic", &self.topic.name)
            .field("closed", &self.closed)
            .finish()
    }
}

impl<K: Clone, V: Clone> MemoryWriter<K, V> {
    pub(super) fn new(topic: Arc<Topic<K, V>>) -> Self {
        MemoryWriter {
            topic,
            closed: false,
        }
    }

    fn stamp(&self, mut message: Message<K, V>, offset: i64) -> Message<K, V> {
        message.position = Some(Position {
            topic: self.topic.name.clone(),
            partition: 0,
            offset,
        });
        message
            .timestamp_ms
            .get_or_insert_with(|| chrono::Utc::now().timestamp_millis());
        message
    }

    /// Enqueues without waiting: the `DropOldest` path, and the first try of `Wait`.
    /// Returns the message back when `Wait` finds the topic full.
    fn try_send(&self, message: Message<K, V>) -> Result<Option<Message<K, V>>, StreamError> {
        match self.topic.sender.try_broadcast(message) {
            Ok(evicted) => {
                self.topic.published.fetch_add(1, Ordering::Relaxed);
                if evicted.is_some() {
                    self.topic.evicted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None)
            }
            Err(TrySendError::Inactive(_)) => {
                self.topic.unheard.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(TrySendError::Full(message)) => Ok(Some(message)),
            Err(TrySendError::Closed(_)) => Err(StreamError::Closed("memory topic")),
        }
    }

    fn check_open(&self) -> Result<(), StreamError> {
        if self.closed {
            Err(StreamError::Closed("memory writer"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl<K, V> AsyncWriter<K, V> for MemoryWriter<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    async fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        self.check_open()?;
        let mut next = self.topic.next_offset.lock().await;
        let message = self.stamp(message, *next);
        *next += 1;
        if let Some(message) = self.try_send(message)? {
            debug_assert_eq!(self.topic.overflow, Overflow::Wait);
            // Full under `Wait`: wait for the slowest subscriber, holding the offset lock
            // so later writers queue behind this one and order is kept.
            match self.topic.sender.broadcast_direct(message).await {
                Ok(_) => {
                    self.topic.published.fetch_add(1, Ordering::Relaxed);
                }
                // Every subscriber left while we waited.
                Err(_) => {
                    self.topic.unheard.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StreamError> {
        self.check_open()
    }

    async fn close(&mut self) -> Result<(), StreamError> {
        self.closed = true;
        Ok(())
    }
}

impl<K, V> Writer<K, V> for MemoryWriter<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Blocking form, for sync code: it parks the thread while a `Wait` topic is full.
    /// Called on a current-thread runtime's own thread it refuses
    /// ([`StreamError::WouldBlockRuntime`]); on a multi-thread runtime it steps out of
    /// the worker first.
    fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        self.check_open()?;
        crate::adapt::blocking(|| {
            let mut next = self.topic.next_offset.blocking_lock();
            let message = self.stamp(message, *next);
            *next += 1;
            if let Some(message) = self.try_send(message)? {
                match self.topic.sender.broadcast_blocking(message) {
                    Ok(_) => self.topic.published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => self.topic.unheard.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok(())
        })?
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.check_open()
    }

    fn close(&mut self) -> Result<(), StreamError> {
        self.closed = true;
        Ok(())
    }
}
