//! In-process topics: the embedded default transport.
//!
//! A [`MemoryBus`] holds named topics. Every message written to a topic goes to every
//! subscriber that exists at that moment (fan-out); a topic with no subscriber drops
//! what is written to it and counts it as unheard. Each topic is bounded, with an
//! explicit [`Overflow`] policy: `DropOldest` evicts the oldest queued message (the
//! writer never waits; evictions are counted on the topic and each subscriber learns
//! how many it missed) or `Wait` (the writer waits until the slowest subscriber has
//! made room: backpressure, nothing dropped).
//!
//! The queue is async-broadcast's, not hand-written. Offsets are assigned per topic in
//! write order, so a subscriber sees each writer's messages in the order written.
//! Nothing here is durable: `ack` and `commit` have nothing to record.

mod reader;
mod writer;

pub use reader::MemoryReader;
pub use writer::MemoryWriter;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_broadcast::{InactiveReceiver, Sender};
use tokio_util::sync::CancellationToken;

use crate::message::Message;

/// What a full topic does with the next write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Evict the oldest queued message; the writer never waits.
    DropOldest,
    /// Wait until every subscriber has room.
    Wait,
}

/// How topics are made.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfig {
    /// Messages a topic queues before the overflow policy applies (at least 1).
    pub capacity: usize,
    /// What happens when it is full.
    pub overflow: Overflow,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            capacity: 1024,
            overflow: Overflow::DropOldest,
        }
    }
}

/// Counters of one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicStats {
    /// Messages written while at least one subscriber existed.
    pub published: u64,
    /// Messages evicted by `DropOldest` before every subscriber read them.
    pub evicted: u64,
    /// Messages written while no subscriber existed.
    pub unheard: u64,
    /// Subscribers now.
    pub subscribers: usize,
}

/// A set of in-process topics. Cheap to clone; clones share the topics.
pub struct MemoryBus<K, V> {
    inner: Arc<BusInner<K, V>>,
}

struct BusInner<K, V> {
    topics: Mutex<HashMap<String, Arc<Topic<K, V>>>>,
    config: TopicConfig,
}

impl<K, V> Clone for MemoryBus<K, V> {
    fn clone(&self) -> Self {
        MemoryBus {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for MemoryBus<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Topic<K, V> {
    pub(crate) name: String,
    pub(crate) overflow: Overflow,
    pub(crate) sender: Sender<Message<K, V>>,
    // Keeps the channel open while nobody subscribes.
    inactive: InactiveReceiver<Message<K, V>>,
    // Serialises offset assignment and the enqueue, so offsets follow queue order.
    pub(crate) next_offset: tokio::sync::Mutex<i64>,
    pub(crate) published: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) unheard: AtomicU64,
}

impl<K: Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> MemoryBus<K, V> {
    /// A bus whose topics are made with `config`.
    pub fn new(config: TopicConfig) -> Self {
        MemoryBus {
            inner: Arc::new(BusInner {
                topics: Mutex::new(HashMap::new()),
                config: TopicConfig {
                    capacity: config.capacity.max(1),
                    ..config
                },
            }),
        }
    }

    fn topic(&self, name: &str) -> Arc<Topic<K, V>> {
        let mut topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        topics
            .entry(name.to_owned())
            .or_insert_with(|| {
                let (mut sender, receiver) = async_broadcast::broadcast(self.inner.config.capacity);
                sender.set_overflow(self.inner.config.overflow == Overflow::DropOldest);
                // With no subscriber a write is dropped at once, never parked.
                sender.set_await_active(false);
                Arc::new(Topic {
                    name: name.to_owned(),
                    overflow: self.inner.config.overflow,
                    sender,
                    inactive: receiver.deactivate(),
                    next_offset: tokio::sync::Mutex::new(0),
                    published: AtomicU64::new(0),
                    evicted: AtomicU64::new(0),
                    unheard: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// A writer to `topic` (created if new).
    pub fn writer(&self, topic: &str) -> MemoryWriter<K, V> {
        MemoryWriter::new(self.topic(topic))
    }

    /// A subscriber of `topic` that receives what is written from now on, until `cancel`
    /// fires or the bus is dropped.
    pub fn subscribe(&self, topic: &str, cancel: CancellationToken) -> MemoryReader<K, V> {
        let topic = self.topic(topic);
        let receiver = topic.inactive.activate_cloned();
        MemoryReader::new(topic.name.clone(), receiver, cancel)
    }

    /// The counters of `topic` (zeros for a topic never used).
    pub fn stats(&self, topic: &str) -> TopicStats {
        let topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        topics
            .get(topic)
            .map_or_else(TopicStats::default, |t| TopicStats {
                published: t.published.load(Ordering::Relaxed),
                evicted: t.evicted.load(Ordering::Relaxed),
                unheard: t.unheard.load(Ordering::Relaxed),
                subscribers: t.sender.receiver_count(),
            })
    }

    /// Topic names.
    pub fn topics(&self) -> Vec<String> {
        let topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut names: Vec<_> = topics.keys().cloned().collect();
        names.sort();
        names
    }
}

impl<K: Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> Default
    for MemoryBus<K, V>
{
    fn default() -> Self {
        Self::new(TopicConfig::default())
    }
}

#[cfg(test)]
mod tests;
