//! `Reader` (sync, callback) and `AsyncReader` (a `Stream`): the contract every source
//! implements.
//!
//! Semantics:
//! - A reader stops promptly when asked (a [`ShouldStop`] for the sync one, the
//!   `CancellationToken` it was built with for the async one), and before it returns it
//!   commits what was acknowledged.
//! - Sync: a message is acknowledged when the handler returns `Ok`. A handler error
//!   stops reading; that message stays unacknowledged and is delivered again to the next
//!   reader of a durable transport.
//! - Async: a message is acknowledged by [`AsyncReader::ack`] with its position, which
//!   also acknowledges every earlier message of the same partition. `commit` makes the
//!   acknowledgements durable now; stopping does it too.
//! - Nothing acknowledged is lost: a new reader of the same group (Kafka) or position
//!   (file) resumes after the last acknowledged message, never before it and never
//!   after an unacknowledged one.

use async_trait::async_trait;
use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::error::{HandlerError, StreamError};
use crate::message::{Message, Position};

/// Asked between messages (and while waiting for one) whether a sync reader should stop.
pub trait ShouldStop: Sync {
    /// True once the reader should stop.
    fn should_stop(&self) -> bool;
}

impl ShouldStop for CancellationToken {
    fn should_stop(&self) -> bool {
        self.is_cancelled()
    }
}

impl<F: Fn() -> bool + Sync> ShouldStop for F {
    fn should_stop(&self) -> bool {
        self()
    }
}

/// Why a read loop returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The stop signal fired.
    Stopped,
    /// The source has nothing more and never will (a replayed file, a closed topic).
    EndOfInput,
}

/// What a read loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    /// Why it returned.
    pub end: ReadEnd,
    /// Messages the handler acknowledged.
    pub handled: u64,
}

/// The callback of a sync reader.
pub type Handler<'a, K, V> = dyn FnMut(Message<K, V>) -> Result<(), HandlerError> + 'a;

/// A blocking, callback-driven reader.
pub trait Reader<K, V>: Send {
    /// Calls `handler` for each message until `stop` says so, the source ends, or the
    /// handler fails (then `Err(StreamError::Handler)`, that message unacknowledged).
    fn read(
        &mut self,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, K, V>,
    ) -> Result<ReadSummary, StreamError>;
    /// Commits what was acknowledged and releases the source.
    fn close(&mut self) -> Result<(), StreamError>;
}

/// An async reader: a `Stream` of messages that ends when its token is cancelled (after
/// committing) or when the source ends.
#[async_trait]
pub trait AsyncReader<K, V>:
    Stream<Item = Result<Message<K, V>, StreamError>> + Send + Unpin
{
    /// Acknowledges the message at `position` and every earlier one of its partition.
    fn ack(&mut self, position: &Position) -> Result<(), StreamError>;
    /// Makes acknowledgements durable now.
    async fn commit(&mut self) -> Result<(), StreamError>;
}
