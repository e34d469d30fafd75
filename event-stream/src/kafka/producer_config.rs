//! Producer settings ([`ProducerSettings`], [`Compression`]): batching, compression and
//! deadlines, read from the `KAFKA_PRODUCER_*` variables, and always an idempotent
//! producer with `acks=all`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rdkafka::ClientConfig;

use super::config::{KafkaConfig, non_empty, parse_bounded};
use crate::error::StreamError;

/// Producer compression: `none`, `gzip`, `snappy` (default) or `lz4`.
pub const ENV_COMPRESSION: &str = "KAFKA_PRODUCER_COMPRESSION";
/// Producer `linger.ms` (default 10).
pub const ENV_LINGER_MS: &str = "KAFKA_PRODUCER_LINGER_MS";
/// Producer `batch.size` in bytes (default 16384).
pub const ENV_BATCH_SIZE: &str = "KAFKA_PRODUCER_BATCH_SIZE";

/// Producer compression codecs built into this librdkafka (zstd is not: the crate is
/// built without the `zstd` feature, so it is rejected here rather than at connect time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (zlib).
    Gzip,
    /// Snappy: cheap on CPU, the default.
    #[default]
    Snappy,
    /// LZ4.
    Lz4,
}

impl Compression {
    /// The librdkafka name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            other => Err(format!(
                "{other:?} is not one of none, gzip, snappy, lz4 (zstd is not built in)"
            )),
        }
    }
}

/// How a producer batches, compresses and gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSettings {
    /// `compression.type` (default snappy).
    pub compression: Compression,
    /// `linger.ms`: how long a batch waits to fill (default 10).
    pub linger_ms: u32,
    /// `batch.size` in bytes (default 16384).
    pub batch_size: u32,
    /// The longest a `flush` waits before reporting what is still queued (default 30 s);
    /// also the longest a `write` waits for room while librdkafka's queue is full.
    pub flush_timeout: Duration,
    /// `message.timeout.ms`: after this long librdkafka stops retrying a message and
    /// reports it failed (default 30000, equal to the flush deadline, so a default flush
    /// sees a final outcome for every message instead of "still queued").
    pub message_timeout_ms: u32,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            compression: Compression::Snappy,
            linger_ms: 10,
            batch_size: 16_384,
            flush_timeout: Duration::from_secs(30),
            message_timeout_ms: 30_000,
        }
    }
}

/// librdkafka's upper bounds, checked here so the error names the variable.
const MAX_LINGER_MS: u32 = 900_000;
const MAX_BATCH_SIZE: u32 = i32::MAX as u32;

impl ProducerSettings {
    /// Reads [`ENV_COMPRESSION`], [`ENV_LINGER_MS`] and [`ENV_BATCH_SIZE`] over the
    /// defaults; unset or empty variables keep the default.
    pub fn from_env() -> Result<Self, StreamError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ProducerSettings::from_env`], with `lookup` standing in for the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StreamError> {
        let mut settings = ProducerSettings::default();
        if let Some(v) = non_empty(lookup(ENV_COMPRESSION)) {
            settings.compression = v
                .parse()
                .map_err(|m| StreamError::config(ENV_COMPRESSION, m))?;
        }
        if let Some(v) = non_empty(lookup(ENV_LINGER_MS)) {
            settings.linger_ms = parse_bounded(&v, 0, MAX_LINGER_MS)
                .map_err(|m| StreamError::config(ENV_LINGER_MS, m))?;
        }
        if let Some(v) = non_empty(lookup(ENV_BATCH_SIZE)) {
            settings.batch_size = parse_bounded(&v, 1, MAX_BATCH_SIZE)
                .map_err(|m| StreamError::config(ENV_BATCH_SIZE, m))?;
        }
        Ok(settings)
    }

    /// The producer's librdkafka configuration: `base` plus these settings, then
    /// idempotence and `acks=all`, set last so no extra property can weaken them.
    pub(crate) fn apply(&self, base: &KafkaConfig) -> Result<ClientConfig, StreamError> {
        if self.linger_ms > MAX_LINGER_MS {
            return Err(StreamError::config("linger.ms", "at most 900000"));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(StreamError::config(
                "batch.size",
                "between 1 and 2147483647",
            ));
        }
        // 0 would mean "retry forever", and a flush could then never see an outcome.
        if self.message_timeout_ms == 0 {
            return Err(StreamError::config("message.timeout.ms", "must be > 0"));
        }
        let mut config = base.client_config();
        config
            .set("compression.type", self.compression.as_str())
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.size", self.batch_size.to_string())
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("enable.idempotence", "true")
            .set("acks", "all");
        Ok(config)
    }
}
