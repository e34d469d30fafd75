//! `Writer` (sync) and `AsyncWriter`: the one contract every sink implements.
//!
//! Semantics every implementation holds (and the tests check):
//! - `write` **queues**: it returns once the message is accepted, not delivered. It may
//!   wait for room when the transport's queue is full (backpressure), never for delivery.
//! - `flush` returns when every message written so far is delivered, or returns
//!   [`StreamError::Undelivered`] with how many were not (failed, or still queued at the
//!   flush deadline). It never hangs past the transport's configured deadline.
//! - `close` flushes, then releases the transport; later writes fail with
//!   [`StreamError::Closed`]. Closing twice is harmless.

use async_trait::async_trait;

use crate::error::StreamError;
use crate::message::Message;

/// A blocking writer. Do not call it on an async runtime's worker thread; wrap it with
/// [`crate::adapt::BlockingWriter`] to use it from async code.
pub trait Writer<K, V>: Send {
    /// Queues one message.
    fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError>;
    /// Waits until everything written so far is delivered, or says what was not.
    fn flush(&mut self) -> Result<(), StreamError>;
    /// Flushes, then releases the transport.
    fn close(&mut self) -> Result<(), StreamError>;
}

/// An async writer.
#[async_trait]
pub trait AsyncWriter<K, V>: Send {
    /// Queues one message.
    async fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError>;
    /// Waits until everything written so far is delivered, or says what was not.
    async fn flush(&mut self) -> Result<(), StreamError>;
    /// Flushes, then releases the transport.
    async fn close(&mut self) -> Result<(), StreamError>;
}

impl<K, V, W: Writer<K, V> + ?Sized> Writer<K, V> for Box<W> {
    fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        (**self).write(message)
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        (**self).flush()
    }
    fn close(&mut self) -> Result<(), StreamError> {
        (**self).close()
    }
}

#[async_trait]
impl<K: Send + 'static, V: Send + 'static, W: AsyncWriter<K, V> + ?Sized> AsyncWriter<K, V>
    for Box<W>
{
    async fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        (**self).write(message).await
    }
    async fn flush(&mut self) -> Result<(), StreamError> {
        (**self).flush().await
    }
    async fn close(&mut self) -> Result<(), StreamError> {
        (**self).close().await
    }
}

#[async_trait]
impl<K: Send + 'static, V: Send + 'static, W: AsyncWriter<K, V> + ?Sized> AsyncWriter<K, V>
    for &mut W
{
    async fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        (**self).write(message).await
    }
    async fn flush(&mut self) -> Result<(), StreamError> {
        (**self).flush().await
    }
    async fn close(&mut self) -> Result<(), StreamError> {
        (**self).close().await
    }
}
