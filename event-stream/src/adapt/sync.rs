//! Sync over async: an async writer or reader used from a plain thread (or a
//! multi-thread runtime's worker), blocking on a runtime handle.

use std::time::Duration;

use futures::StreamExt;
use tokio::runtime::Handle;

use super::block_on;
use crate::error::StreamError;
use crate::message::Message;
use crate::reader::{AsyncReader, Handler, ReadEnd, ReadSummary, Reader, ShouldStop};
use crate::writer::{AsyncWriter, Writer};

/// How often a [`SyncReader`] waiting for a message asks its stop signal.
const STOP_POLL: Duration = Duration::from_millis(50);

/// A sync writer over an async one.
#[derive(Debug)]
pub struct SyncWriter<W> {
    inner: W,
    handle: Handle,
}

impl<W> SyncWriter<W> {
    /// Wraps `inner`, blocking on `handle`'s runtime.
    pub fn new(inner: W, handle: Handle) -> Self {
        SyncWriter { inner, handle }
    }

    /// The async writer back.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<K, V, W> Writer<K, V> for SyncWriter<W>
where
    K: Send + 'static,
    V: Send + 'static,
    W: AsyncWriter<K, V>,
{
    fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        block_on(&self.handle, self.inner.write(message))?
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        block_on(&self.handle, self.inner.flush())?
    }
    fn close(&mut self) -> Result<(), StreamError> {
        block_on(&self.handle, self.inner.close())?
    }
}

/// A sync, callback-driven reader over an async one: a message the handler returns
/// `Ok` for is acked; on stop, end or a handler error the acks are committed first.
#[derive(Debug)]
pub struct SyncReader<R> {
    inner: R,
    handle: Handle,
}

impl<R> SyncReader<R> {
    /// Wraps `inner`, blocking on `handle`'s runtime.
    pub fn new(inner: R, handle: Handle) -> Self {
        SyncReader { inner, handle }
    }

    /// The async reader back.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<K, V, R> Reader<K, V> for SyncReader<R>
where
    K: Send + 'static,
    V: Send + 'static,
    R: AsyncReader<K, V>,
{
    fn read(
        &mut self,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, K, V>,
    ) -> Result<ReadSummary, StreamError> {
        let mut handled = 0;
        let outcome = loop {
            if stop.should_stop() {
                break Ok(ReadEnd::Stopped);
            }
            let inner = &mut self.inner;
            // The timer is made inside the future: it needs the runtime's context.
            let next = block_on(&self.handle, async {
                tokio::time::timeout(STOP_POLL, inner.next()).await
            })?;
            let message = match next {
                Err(_elapsed) => continue,
                Ok(None) => break Ok(ReadEnd::EndOfInput),
                Ok(Some(Err(e))) => break Err(e),
                Ok(Some(Ok(message))) => message,
            };
            let position = message.position.clone();
            if let Err(e) = handler(message) {
                break Err(StreamError::Handler(e));
            }
            handled += 1;
            if let Some(position) = position {
                self.inner.ack(&position)?;
            }
        };
        block_on(&self.handle, self.inner.commit())??;
        outcome.map(|end| ReadSummary { end, handled })
    }

    fn close(&mut self) -> Result<(), StreamError> {
        block_on(&self.handle, self.inner.commit())?
    }
}
