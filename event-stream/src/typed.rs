//! Typed writers and readers over byte transports: a key `Serde` and a value `Serde` in
//! front of a transport that moves [`RawMessage`]s.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::codec::Serde;
use crate::error::{HandlerError, StreamError};
use crate::message::{Message, Position, RawMessage};
use crate::reader::{AsyncReader, Handler, ReadSummary, Reader, ShouldStop};
use crate::writer::{AsyncWriter, Writer};

/// The pair of codecs a typed writer or reader uses.
pub struct Codecs<K, V> {
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for Codecs<K, V> {
    fn clone(&self) -> Self {
        Codecs {
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for Codecs<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codecs")
            .field("key", &self.key.content_type())
            .field("value", &self.value.content_type())
            .finish()
    }
}

impl<K, V> Codecs<K, V> {
    /// Key and value codecs.
    pub fn new(key: impl Serde<K> + 'static, value: impl Serde<V> + 'static) -> Self {
        Codecs {
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }

    /// Encodes a typed message.
    pub fn encode(&self, message: Message<K, V>) -> Result<RawMessage, StreamError> {
        let key = message
            .key
            .as_ref()
            .map(|k| self.key.to_bytes(k))
            .transpose()?;
        let value = self.value.to_bytes(&message.value)?;
        Ok(Message {
            key,
            value,
            headers: message.headers,
            position: message.position,
            timestamp_ms: message.timestamp_ms,
        })
    }

    /// Decodes a raw message; the error says whether the key or the value failed.
    pub fn decode(&self, message: RawMessage) -> Result<Message<K, V>, StreamError> {
        message
            .try_map(
                |k: Bytes| self.key.from_bytes(&k),
                |v: Bytes| self.value.from_bytes(&v),
            )
            .map_err(StreamError::from)
    }
}

/// A typed writer over a byte writer.
#[derive(Debug)]
pub struct TypedWriter<W, K, V> {
    inner: W,
    codecs: Codecs<K, V>,
}

impl<W, K, V> TypedWriter<W, K, V> {
    /// Wraps `inner`.
    pub fn new(inner: W, codecs: Codecs<K, V>) -> Self {
        TypedWriter { inner, codecs }
    }

    /// The byte writer underneath.
    pub fn inner(&self) -> &W {
        &self.inner
    }
}

impl<W: Writer<Bytes, Bytes>, K: Send, V: Send> Writer<K, V> for TypedWriter<W, K, V> {
    fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        let raw = self.codecs.encode(message)?;
        self.inner.write(raw)
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        self.inner.flush()
    }
    fn close(&mut self) -> Result<(), StreamError> {
        self.inner.close()
    }
}

#[async_trait]
impl<W, K, V> AsyncWriter<K, V> for TypedWriter<W, K, V>
where
    W: AsyncWriter<Bytes, Bytes>,
    K: Send + 'static,
    V: Send + 'static,
{
    async fn write(&mut self, message: Message<K, V>) -> Result<(), StreamError> {
        let raw = self.codecs.encode(message)?;
        self.inner.write(raw).await
    }
    async fn flush(&mut self) -> Result<(), StreamError> {
        self.inner.flush().await
    }
    async fn close(&mut self) -> Result<(), StreamError> {
        self.inner.close().await
    }
}

/// A typed reader over a byte reader. A message that does not decode is an error item
/// (async) or stops the loop (sync); it is not acknowledged.
#[derive(Debug)]
pub struct TypedReader<R, K, V> {
    inner: R,
    codecs: Codecs<K, V>,
}

impl<R, K, V> TypedReader<R, K, V> {
    /// Wraps `inner`.
    pub fn new(inner: R, codecs: Codecs<K, V>) -> Self {
        TypedReader { inner, codecs }
    }

    /// The byte reader underneath.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Reader<Bytes, Bytes>, K: Send, V: Send> Reader<K, V> for TypedReader<R, K, V> {
    fn read(
        &mut self,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, K, V>,
    ) -> Result<ReadSummary, StreamError> {
        let codecs = self.codecs.clone();
        self.inner.read(stop, &mut |raw: RawMessage| {
            let typed = codecs
                .decode(raw)
                .map_err(|e| Box::new(e) as HandlerError)?;
            handler(typed)
        })
    }
    fn close(&mut self) -> Result<(), StreamError> {
        self.inner.close()
    }
}

impl<R, K, V> Stream for TypedReader<R, K, V>
where
    R: Stream<Item = Result<RawMessage, StreamError>> + Unpin,
    K: Unpin,
    V: Unpin,
{
    type Item = Result<Message<K, V>, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        Poll::Ready(
            match std::task::ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(raw)) => Some(this.codecs.decode(raw)),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            },
        )
    }
}

#[async_trait]
impl<R, K, V> AsyncReader<K, V> for TypedReader<R, K, V>
where
    R: AsyncReader<Bytes, Bytes>,
    K: Send + Unpin + 'static,
    V: Send + Unpin + 'static,
{
    fn ack(&mut self, position: &Position) -> Result<(), StreamError> {
        self.inner.ack(position)
    }
    async fn commit(&mut self) -> Result<(), StreamError> {
        self.inner.commit().await
    }
}
