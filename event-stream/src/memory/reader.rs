//! The memory topic subscriber: a `Stream` that ends when its token fires.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_broadcast::{Receiver, RecvError};
use async_trait::async_trait;
use futures::{FutureExt, Stream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::StreamError;
use crate::message::{Message, Position};
use crate::reader::AsyncReader;

/// One subscriber of a memory topic.
pub struct MemoryReader<K, V> {
    topic: String,
    receiver: Receiver<Message<K, V>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    missed: Arc<AtomicU64>,
    done: bool,
}

impl<K, V> std::fmt::Debug for MemoryReader<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReader")
            .field("topic", &self.topic)
            .field("missed", &self.missed())
            .finish_non_exhaustive()
    }
}

impl<K, V> MemoryReader<K, V> {
    pub(super) fn new(
        topic: String,
        receiver: Receiver<Message<K, V>>,
        cancel: CancellationToken,
    ) -> Self {
        MemoryReader {
            topic,
            receiver,
            cancelled: Box::pin(cancel.cancelled_owned()),
            missed: Arc::new(AtomicU64::new(0)),
            done: false,
        }
    }

    /// Messages this subscriber lost to `DropOldest` evictions.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// The next queued message without waiting, even after the token fired: how a sink
    /// drains what it still holds when asked to stop. `None` when nothing is queued.
    pub fn try_next(&mut self) -> Option<Message<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        loop {
            match self.receiver.try_recv() {
                Ok(message) => return Some(message),
                Err(async_broadcast::TryRecvError::Overflowed(n)) => {
                    self.missed.fetch_add(n, Ordering::Relaxed);
                }
                Err(_) => return None,
            }
        }
    }

    /// Messages queued for this subscriber.
    pub fn queued(&self) -> usize {
        self.receiver.len()
    }
}

impl<K: Clone, V: Clone> Stream for MemoryReader<K, V> {
    type Item = Result<Message<K, V>, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done || this.cancelled.poll_unpin(cx).is_ready() {
            this.done = true;
            return Poll::Ready(None);
        }
        loop {
            match std::task::ready!(Pin::new(&mut this.receiver).poll_recv(cx)) {
                Some(Ok(message)) => return Poll::Ready(Some(Ok(message))),
                Some(Err(RecvError::Overflowed(n))) => {
                    this.missed.fetch_add(n, Ordering::Relaxed);
                }
                Some(Err(RecvError::Closed)) | None => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[async_trait]
impl<K, V> AsyncReader<K, V> for MemoryReader<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Nothing to record: memory topics are not durable.
    fn ack(&mut self, _position: &Position) -> Result<(), StreamError> {
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}
