//! event-stream: the small I/O layer hostbridge's services publish and consume events
//! through.
//!
//! Business code depends on the contracts only: [`Message`], [`Serde`](codec::Serde),
//! [`Writer`]/[`AsyncWriter`] and [`Reader`]/[`AsyncReader`]. Transports implement
//! them: [`memory`] (in-process topics, the embedded default), [`file`] (NDJSON append
//! and replay), and [`kafka`] (rdkafka, consumer groups with manual commits).
//! [`completion`] says which offsets a consumer with concurrent handlers may commit;
//! [`stream`] composes reliable consumers (dedup, retries, dead letters) from plain
//! handlers.
//! [`adapt`] moves a transport between the sync and async worlds, [`pipe`] connects any
//! reader to any writer, and [`Envelope`] is the one JSON shape of every event and
//! command. This crate depends on none of hostbridge's others.

pub mod adapt;
pub mod codec;
pub mod completion;
pub mod envelope;
pub mod error;
pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
pub mod message;
pub mod pipe;
pub mod reader;
pub mod replay;
pub mod stream;
pub mod typed;
pub mod writer;

pub use envelope::Envelope;
pub use error::{HandlerError, SerdeError, StreamError};
pub use message::{Headers, Message, Position, RawMessage};
pub use reader::{AsyncReader, ReadEnd, ReadSummary, Reader, ShouldStop};
pub use writer::{AsyncWriter, Writer};
