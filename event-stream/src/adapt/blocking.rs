//! Async over sync: a sync writer or reader driven from async code without blocking
//! the runtime's workers.

use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::{HandlerError, StreamError};
use crate::message::{Message, Position};
use crate::reader::{AsyncReader, ReadSummary, Reader};
use crate::writer::{AsyncWriter, Writer};

/// An async writer over a sync one: every call runs on tokio's blocking pool, so a slow
/// disk or a blocking client never stalls an async worker.
#[derive(Debug)]
pub struct BlockingWriter<W> {
    // Moved into each blocking call and back; `None` only if a call panicked.
    inner: Option<W>,
}

impl<W> BlockingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        BlockingWriter { inner: Some(inner) }
    }

    /// The writer back, if no call panicked.
    pub fn into_inner(self) -> Option<W> {
        self.inner
    }

    async fn call<T, F>(&mut self, f: F) -> Result<T, StreamError>
    where
        W: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut W) -> Result<T, StreamError> + Send + 'static,
    {
        let mut inner = self.inner.take().ok_or(StreamError::Closed(
            "blocking writer (an earlier call panicked)",
        ))?;
        let (inner, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut inner);
            (inner, result)
        })
        .await
        .map_err(|e| StreamError::Task(e.to_string()))?;
        self.inner = Some(inner);
        result
    }
}

#[async_trait]
impl<K, V, W> AsyncWriter<K, V> for BlockingWriter<W>
where
    K: Send + 'static,
    V: Send + 'static,
    W: Writer<K, V> + 'static,
{
    async fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        self.call(move |w| w.write(message)).await
    }
    async fn flush(&mut self) -> Result<(), StreamError> {
        self.call(|w| w.flush()).await
    }
    async fn close(&mut self) -> Result<(), StreamError> {
        self.call(|w| w.close()).await
    }
}

type Delivery<K, V> = (Message<K, V>, std_mpsc::Sender<()>);

/// An async reader over a sync one. The sync read loop runs on a blocking thread and
/// hands each message over; the sync reader counts a message as acknowledged when this
/// side [`ack`](AsyncReader::ack)s it, so the sync reader's commit never runs ahead of
/// what was processed here. That is one message in flight at a time: call `ack` before
/// asking for the next message, or build it with [`BlockingReader::auto_ack`] to count
/// each message acknowledged as soon as it is handed over (at-most-once).
pub struct BlockingReader<K, V> {
    rx: mpsc::Receiver<Result<Delivery<K, V>, StreamError>>,
    pending: Option<(Position, std_mpsc::Sender<()>)>,
    task: Option<JoinHandle<()>>,
    auto_ack: bool,
    // Dropping the reader stops the sync loop even if the caller's token never fires.
    _stop_on_drop: DropGuard,
}

impl<K, V> std::fmt::Debug for BlockingReader<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingReader")
            .field("pending", &self.pending.as_ref().map(|(p, _)| p))
            .field("auto_ack", &self.auto_ack)
            .finish_non_exhaustive()
    }
}

impl<K: Send + 'static, V: Send + 'static> BlockingReader<K, V> {
    /// Starts `reader`'s loop on the blocking pool; it stops when `cancel` fires.
    pub fn new<R: Reader<K, V> + 'static>(reader: R, cancel: CancellationToken) -> Self {
        Self::start(reader, cancel, false)
    }

    /// Like [`BlockingReader::new`], but a message counts as acknowledged once handed
    /// over: faster, and a message being processed when the process dies is lost.
    pub fn auto_ack<R: Reader<K, V> + 'static>(reader: R, cancel: CancellationToken) -> Self {
        Self::start(reader, cancel, true)
    }

    fn start<R: Reader<K, V> + 'static>(
        mut reader: R,
        cancel: CancellationToken,
        auto_ack: bool,
    ) -> Self {
        let (tx, rx) = mpsc::channel(if auto_ack { 64 } else { 1 });
        let cancel = cancel.child_token();
        let stop_on_drop = cancel.clone().drop_guard();
        let task = tokio::task::spawn_blocking(move || {
            let stop = cancel.clone();
            let result = reader.read(&stop, &mut |message: Message<K, V>| {
                let (ack_tx, ack_rx) = std_mpsc::channel();
                tx.blocking_send(Ok((message, ack_tx)))
                    .map_err(|_| handover_error("the async side is gone"))?;
                if auto_ack {
                    return Ok(());
                }
                // Wait for this side's ack, checking the stop signal: a stopped reader
                // returns without counting the message acknowledged.
                loop {
                    match ack_rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(()) => return Ok(()),
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                            return Err(handover_error("message dropped without ack"));
                        }
                        Err(std_mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                            return Err(handover_error("stopped before ack"));
                        }
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    }
                }
            });
            let close = reader.close();
            let outcome = match (result, close) {
                // Stopping while a message waited for its ack is a normal stop.
                (Ok(_), Ok(())) => None,
                (Err(StreamError::Handler(_)), Ok(())) if cancel.is_cancelled() => None,
                (Err(e), _) | (Ok(ReadSummary { .. }), Err(e)) => Some(e),
            };
            if let Some(e) = outcome {
                let _ = tx.blocking_send(Err(e));
            }
        });
        BlockingReader {
            rx,
            pending: None,
            task: Some(task),
            auto_ack,
            _stop_on_drop: stop_on_drop,
        }
    }
}

fn handover_error(what: &'static str) -> HandlerError {
    Box::new(StreamError::Closed(what))
}

impl<K, V> Stream for BlockingReader<K, V> {
    type Item = Result<Message<K, V>, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match std::task::ready!(this.rx.poll_recv(cx)) {
            Some(Ok((message, ack))) => {
                if let Some(position) = message.position.clone() {
                    this.pending = Some((position, ack));
                } else {
                    // A position-less message cannot be acked later: count it now.
                    let _ = ack.send(());
                }
                Poll::Ready(Some(Ok(message)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => {
                this.task.take();
                Poll::Ready(None)
            }
        }
    }
}

#[async_trait]
impl<K: Send + 'static, V: Send + 'static> AsyncReader<K, V> for BlockingReader<K, V> {
    fn ack(&mut self, position: &Position) -> Result<(), StreamError> {
        if let Some((pending, _)) = &self.pending {
            let covers = pending.topic == position.topic
                && pending.partition == position.partition
                && pending.offset <= position.offset;
            if covers && let Some((_, ack)) = self.pending.take() {
                // The sync side may have stopped meanwhile; then nothing waits for it.
                let _ = ack.send(());
            }
        }
        Ok(())
    }

    /// The sync reader commits as it goes and when it stops.
    async fn commit(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}
