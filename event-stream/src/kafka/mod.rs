//! The Kafka transport: [`KafkaWriter`], [`KafkaReader`] / [`KafkaSyncReader`] and
//! [`KafkaAdmin`], over `rdkafka` with librdkafka built from the crate's bundled source.
//!
//! - The writer is an idempotent producer with `acks=all`: `write` only enqueues (it
//!   never flushes per message), `flush` waits up to the configured deadline and reports
//!   every message written since the previous flush that failed or is still queued.
//! - The readers are consumer-group members with auto-commit off. Only what the caller
//!   acknowledged is committed — on `commit`, when stopping, and before a rebalance takes
//!   partitions away — so a new member of the group resumes right after the last
//!   acknowledged message.
//! - The admin helpers create and describe topics and report a group's lag; the
//!   [`catalogue`] is the design's set of topics and the setup that applies it.
//!
//! Settings come from [`KafkaConfig`] (shared by every client), [`ProducerSettings`] and
//! [`ConsumerSettings`]; the `KAFKA_*` environment variables of the design are read by
//! their `from_env` constructors.

mod admin;
pub mod catalogue;
mod config;
mod context;
mod delivery;
mod offsets;
mod producer_config;
mod reader;
mod sync_reader;
mod writer;

pub use admin::{KafkaAdmin, PartitionLag, TopicCreation, TopicInfo};
pub use catalogue::{Catalogue, MARKET_DATA_TOPIC, SetupReport, TopicSpec, TopicStatus};
pub use config::{ConsumerSettings, ENV_BOOTSTRAP_SERVERS, KafkaConfig, OffsetReset};
pub use producer_config::{
    Compression, ENV_BATCH_SIZE, ENV_COMPRESSION, ENV_LINGER_MS, ProducerSettings,
};
pub use reader::KafkaReader;
pub use sync_reader::KafkaSyncReader;
pub use writer::{KafkaWriter, KafkaWriterStats};
