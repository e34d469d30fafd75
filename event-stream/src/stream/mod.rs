//! Reliable consumers by composition: a plain business [`Handler`] (`Envelope` in,
//! done or a transient/permanent [`HandleError`] out) wrapped by a reliability layer
//! (dedup by envelope id, retries with backoff and jitter, dead-letter topics with Kafka
//! Connect's headers, per-consumer metrics, the correlation id in a tracing span and on
//! everything produced: the envelope's own, or its id when it starts the chain), fed by a consumer that commits exactly what is finally handled,
//! and put together by [`StreamService::builder`]. Handlers know nothing of Kafka: a
//! [`Transport`] opens the readers and writers.

mod consume;
pub mod correlation;
pub mod dead_letter;
pub mod dedup;
pub mod handler;
pub mod producer;
mod reliable;
pub mod retry;
pub mod service;
pub mod stats;
pub mod transport;

pub use dead_letter::DeadLetter;
pub use dedup::{Dedup, RedisStore, StoreFailure};
pub use handler::{HandleError, Handler};
pub use producer::Producer;
pub use retry::RetryPolicy;
pub use service::{Consume, RunningService, ServiceReport, StreamService};
pub use stats::ConsumerReport;
#[cfg(feature = "kafka")]
pub use transport::KafkaTransport;
pub use transport::{MemoryTransport, Transport};

#[cfg(test)]
mod tests;
