//! Replaying stored market data as messages, and printing any reader's messages.
//!
//! [`replay`] turns bars (from any source: the data-host store, a test) into
//! `market.bar` envelopes keyed by symbol and writes them to any writer, as fast as the
//! writer takes them or paced at N× the bars' own clock. [`tail`] prints what any reader
//! yields, one line per message. The `hostbridge stream` CLI puts both on the command
//! line; they live here so any program can compose them.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::envelope::Envelope;
use crate::error::StreamError;
use crate::message::{Message, RawMessage};
use crate::reader::AsyncReader;
use crate::writer::AsyncWriter;

/// The envelope type of one bar.
pub const MARKET_BAR: &str = "market.bar";

/// One OHLCV bar as published on the market-data topic (the envelope's `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketBar {
    /// Symbol, e.g. `AAPL` (also the envelope's subject and the message key).
    pub symbol: String,
    /// Bar size, e.g. `1m`.
    pub timeframe: String,
    /// Bar open time, UTC.
    pub timestamp: DateTime<Utc>,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: f64,
}

impl MarketBar {
    /// The bar as a `market.bar` envelope from `source`, subject = symbol.
    pub fn into_envelope(self, source: &str) -> Result<Envelope, StreamError> {
        let subject = self.symbol.clone();
        let data = serde_json::to_value(&self).map_err(|e| crate::SerdeError::Encode {
            format: "json",
            message: e.to_string(),
        })?;
        Ok(Envelope::new(MARKET_BAR, source, data)?.with_subject(subject))
    }
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// `None`: as fast as the writer takes them. `Some(n)`: n× the bars' own clock (a
    /// one-minute gap between bars waits 60/n seconds).
    pub speed: Option<f64>,
    /// The `source` of the envelopes.
    pub source: String,
    /// Stops the replay between bars.
    pub cancel: CancellationToken,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Bars written (and delivered: the writer was flushed).
    pub written: u64,
    /// True when the token stopped it before the last bar.
    pub cancelled: bool,
}

/// Writes `bars` (in order) as envelopes to `writer`, then flushes and closes it.
pub async fn replay<I, W>(
    bars: I,
    mut writer: W,
    options: ReplayOptions,
) -> Result<ReplayStats, StreamError>
where
    I: IntoIterator<Item = MarketBar>,
    W: AsyncWriter<String, Envelope>,
{
    if let Some(speed) = options.speed
        && !(speed.is_finite() && speed > 0.0)
    {
        return Err(StreamError::config("speed", "must be a number above 0"));
    }
    let started = tokio::time::Instant::now();
    let mut first: Option<DateTime<Utc>> = None;
    let mut stats = ReplayStats::default();
    for bar in bars {
        if options.cancel.is_cancelled() {
            stats.cancelled = true;
            break;
        }
        if let Some(speed) = options.speed {
            let first = *first.get_or_insert(bar.timestamp);
            let gap = (bar.timestamp - first).to_std().unwrap_or(Duration::ZERO);
            let due = started + gap.div_f64(speed);
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = options.cancel.cancelled() => {
                    stats.cancelled = true;
                    break;
                }
            }
        }
        writer
            .write(bar.into_envelope(&options.source)?.into_message())
            .await?;
        stats.written += 1;
    }
    writer.close().await?;
    Ok(stats)
}

/// A writer that prints each value (its bytes as UTF-8, lossy) as one line on stdout.
#[derive(Debug, Default)]
pub struct StdoutWriter {
    closed: bool,
}

#[async_trait::async_trait]
impl AsyncWriter<Bytes, Bytes> for StdoutWriter {
    async fn write(&mut self, message: RawMessage) -> Result<(), StreamError> {
        if self.closed {
            return Err(StreamError::Closed("stdout writer"));
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&message.value)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| StreamError::io("writing stdout", e))
    }
    async fn flush(&mut self) -> Result<(), StreamError> {
        std::io::stdout()
            .flush()
            .map_err(|e| StreamError::io("flushing stdout", e))
    }
    async fn close(&mut self) -> Result<(), StreamError> {
        self.closed = true;
        self.flush().await
    }
}

/// Formats one message of a tail: `partition/offset key value`.
pub fn tail_line(message: &RawMessage) -> String {
    let position = message
        .position
        .as_ref()
        .map(|p| format!("{}/{}", p.partition, p.offset))
        .unwrap_or_else(|| "-".into());
    let key = message
        .key
        .as_ref()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_else(|| "-".into());
    format!(
        "{position} {key} {}",
        String::from_utf8_lossy(&message.value)
    )
}

/// Prints every message `reader` yields with `print` (acking each after it was printed)
/// until the reader ends or `limit` messages were printed. Returns how many.
pub async fn tail<R, P>(mut reader: R, limit: Option<u64>, mut print: P) -> Result<u64, StreamError>
where
    R: AsyncReader<Bytes, Bytes>,
    P: FnMut(&Message<Bytes, Bytes>) -> Result<(), StreamError> + Send,
{
    let mut printed = 0;
    while limit.is_none_or(|n| printed < n) {
        let Some(item) = reader.next().await else {
            break;
        };
        let message = item?;
        print(&message)?;
        printed += 1;
        if let Some(position) = &message.position {
            reader.ack(position)?;
        }
    }
    reader.commit().await?;
    Ok(printed)
}

#[cfg(test)]
mod tests;
