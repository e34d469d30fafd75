//! `pipe`: any reader into any writer, through a map/filter step.
//!
//! "IB stream → Kafka" or "Kafka → REST" is a reader, a writer and a step; no bespoke
//! class. Delivery is at-least-once: a message read is acknowledged on its reader only
//! after the writer's `flush` confirmed that what the step made of it was delivered
//! (rust-rdkafka's `at_least_once` example, done once for every pair of transports). A
//! failed write or flush stops the pipe with nothing further acknowledged, so a durable
//! reader resumes at the first message not delivered.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::error::StreamError;
use crate::message::{Message, Position};
use crate::reader::AsyncReader;
use crate::writer::AsyncWriter;

/// When a pipe flushes its writer and acknowledges on its reader.
#[derive(Debug, Clone, Copy)]
pub struct PipeOptions {
    /// Flush after this many messages read since the last flush.
    pub batch: usize,
    /// Flush when this much time passed since the last flush and a message arrives.
    pub interval: Duration,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions {
            batch: 1000,
            interval: Duration::from_secs(1),
        }
    }
}

/// What a pipe did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipeStats {
    /// Messages read.
    pub read: u64,
    /// Messages the step turned into writes.
    pub written: u64,
    /// Messages the step dropped (acknowledged all the same).
    pub filtered: u64,
    /// Flushes (each followed by acknowledgements).
    pub flushes: u64,
}

/// Copies `reader` into `writer` through `step` until the reader ends (its token fired
/// or its source ended). `step` returns `Ok(None)` to drop a message, `Err` to stop the
/// pipe (the message is not acknowledged). The writer is flushed, the reader's
/// acknowledgements committed, and the writer closed at the end.
pub async fn pipe<K, V, K2, V2, R, W, F>(
    mut reader: R,
    mut writer: W,
    options: PipeOptions,
    mut step: F,
) -> Result<PipeStats, StreamError>
where
    R: AsyncReader<K, V>,
    W: AsyncWriter<K2, V2>,
    F: FnMut(Message<K, V>) -> Result<Option<Message<K2, V2>>, StreamError> + Send,
    K: Send + 'static,
    V: Send + 'static,
    K2: Send + 'static,
    V2: Send + 'static,
{
    let mut stats = PipeStats::default();
    // Highest position read per (topic, partition) since the last flush.
    let mut unacked: HashMap<(String, i32), i64> = HashMap::new();
    let mut since_flush = 0usize;
    let mut last_flush = Instant::now();
    let batch = options.batch.max(1);

    while let Some(item) = reader.next().await {
        let message = item?;
        stats.read += 1;
        let position = message.position.clone();
        match step(message)? {
            Some(out) => {
                writer.write(out).await?;
                stats.written += 1;
            }
            None => stats.filtered += 1,
        }
        if let Some(Position {
            topic,
            partition,
            offset,
        }) = position
        {
            let slot = unacked.entry((topic, partition)).or_insert(offset);
            *slot = (*slot).max(offset);
        }
        since_flush += 1;
        if since_flush >= batch || last_flush.elapsed() >= options.interval {
            flush_and_ack(&mut reader, &mut writer, &mut unacked, &mut stats).await?;
            since_flush = 0;
            last_flush = Instant::now();
        }
    }
    flush_and_ack(&mut reader, &mut writer, &mut unacked, &mut stats).await?;
    reader.commit().await?;
    writer.close().await?;
    Ok(stats)
}

async fn flush_and_ack<K, V, K2, V2, R, W>(
    reader: &mut R,
    writer: &mut W,
    unacked: &mut HashMap<(String, i32), i64>,
    stats: &mut PipeStats,
) -> Result<(), StreamError>
where
    R: AsyncReader<K, V>,
    W: AsyncWriter<K2, V2>,
{
    writer.flush().await?;
    stats.flushes += 1;
    for ((topic, partition), offset) in unacked.drain() {
        reader.ack(&Position {
            topic,
            partition,
            offset,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
