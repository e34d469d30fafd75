//! The JSON answer of `GET /api/v1/data/{symbol}/{timeframe}`, written in one pass
//! straight from the frame's columns and streamed as it is written.
//!
//! The bytes are exactly what serialising [`Success<Bars>`](super::schemas::Bars) with
//! serde_json gives (a test holds them equal), without building the million `String`
//! dates and `[f64; 5]` rows first: the first byte leaves before the last bar is
//! encoded, and memory stays flat however long the range.

use axum::body::Body;
use chrono::DateTime;
use data_host::bars::{ColumnSlices, DayText, FrameError, Millis, push_clock};
use host_service_base::server::{CHUNK_BYTES, blocking_body};
use polars::prelude::DataFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Head,
    Dates,
    Ohlcv,
    Done,
}

/// Writes `{"success":true,"data":{symbol, timeframe, points, start, end, dates, ohlcv}}`
/// a piece at a time.
#[derive(Debug)]
pub(super) struct BarsJsonWriter {
    columns: ColumnSlices,
    head: Vec<u8>,
    part: Part,
    row: usize,
    /// The RFC 3339 date of the last day written.
    dates: DayText,
}

impl BarsJsonWriter {
    /// Checks the layout and the timestamps' range up front, so writing cannot fail
    /// once the answer has begun.
    pub(super) fn new(
        symbol: &str,
        timeframe: &str,
        frame: &DataFrame,
    ) -> Result<Self, FrameError> {
        let columns = ColumnSlices::new(frame)?;
        let ts = columns.timestamps();
        let time = |ms: Option<&i64>| {
            ms.map(|&ms| DateTime::from_timestamp_millis(ms).ok_or(FrameError::TimestampRange(ms)))
                .transpose()
        };
        let (start, end) = (time(ts.first())?, time(ts.last())?);
        for ms in [ts.iter().min(), ts.iter().max()].into_iter().flatten() {
            DateTime::from_timestamp_millis(*ms).ok_or(FrameError::TimestampRange(*ms))?;
        }
        let json = |value: serde_json::Value| value.to_string();
        let head = format!(
            r#"{{"success":true,"data":{{"symbol":{},"timeframe":{},"points":{},"start":{},"end":{},"dates":["#,
            json(symbol.into()),
            json(timeframe.into()),
            ts.len(),
            serde_json::to_string(&start).unwrap_or_else(|_| "null".into()),
            serde_json::to_string(&end).unwrap_or_else(|_| "null".into()),
        );
        Ok(Self {
            columns,
            head: head.into_bytes(),
            part: Part::Head,
            row: 0,
            // The date part of chrono's own RFC 3339 text, so every year reads as before.
            dates: DayText::new(|day| {
                let text = day.to_rfc3339();
                text.split_once('T')
                    .map_or(text.clone(), |(date, _)| date.to_owned())
            }),
        })
    }

    /// Appends to `out` until it holds at least `target` bytes or the answer is
    /// complete; returns whether more remains.
    pub(super) fn write_some(&mut self, out: &mut Vec<u8>, target: usize) -> bool {
        let ts = self.columns.timestamps();
        let values = self.columns.values();
        while out.len() < target || self.part == Part::Head {
            match self.part {
                Part::Head => {
                    out.extend_from_slice(&self.head);
                    self.part = Part::Dates;
                }
                Part::Dates if self.row < ts.len() => {
                    if self.row > 0 {
                        out.push(b',');
                    }
                    out.push(b'"');
                    let ms = ts[self.row];
                    push_rfc3339(out, self.dates.of(ms), ms);
                    out.push(b'"');
                    self.row += 1;
                }
                Part::Dates => {
                    out.extend_from_slice(br#"],"ohlcv":["#);
                    self.part = Part::Ohlcv;
                    self.row = 0;
                }
                Part::Ohlcv if self.row < ts.len() => {
                    if self.row > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    for (c, column) in values.iter().enumerate() {
                        if c > 0 {
                            out.push(b',');
                        }
                        push_serde_f64(out, column[self.row]);
                    }
                    out.push(b']');
                    self.row += 1;
                }
                Part::Ohlcv => {
                    out.extend_from_slice(b"]}}");
                    self.part = Part::Done;
                }
                Part::Done => return false,
            }
        }
        self.part != Part::Done
    }
}

/// What `DateTime<Utc>::to_rfc3339` writes for a millisecond time: `date`, the time of
/// day, `.mmm` only when the milliseconds are not zero, `+00:00`.
fn push_rfc3339(out: &mut Vec<u8>, date: &str, ms: i64) {
    out.extend_from_slice(date.as_bytes());
    push_clock(out, ms, Millis::WhenNotZero);
    out.extend_from_slice(b"+00:00");
}

/// An f64 exactly as serde_json writes it (`null` when not finite): its own
/// formatter, so the digits cannot drift from what `Json<Bars>` used to send.
fn push_serde_f64(out: &mut Vec<u8>, value: f64) {
    // Writing a number into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// The streamed JSON answer for a frame of bars.
pub(super) fn bars_body(
    symbol: &str,
    timeframe: &str,
    frame: &DataFrame,
) -> Result<Body, FrameError> {
    let mut writer = BarsJsonWriter::new(symbol, timeframe, frame)?;
    Ok(blocking_body(move |chunk| {
        writer.write_some(chunk, CHUNK_BYTES)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schemas::{Bars, Success};
    use data_host::bars::{self, frame_to_bars};

    /// The answer as the route built it before: every bar, then serde_json.
    fn serde_answer(symbol: &str, timeframe: &str, frame: &DataFrame) -> String {
        let bars = frame_to_bars(frame).expect("bars");
        let data = Bars {
            symbol: symbol.to_owned(),
            timeframe: timeframe.to_owned(),
            points: bars.len(),
            start: bars.first().map(|b| b.timestamp),
            end: bars.last().map(|b| b.timestamp),
            dates: bars.iter().map(|b| b.timestamp.to_rfc3339()).collect(),
            ohlcv: bars
                .iter()
                .map(|b| [b.open, b.high, b.low, b.close, b.volume])
                .collect(),
        };
        serde_json::to_string(&Success::new(data)).expect("json")
    }

    fn written(symbol: &str, timeframe: &str, frame: &DataFrame, target: usize) -> String {
        let mut writer = BarsJsonWriter::new(symbol, timeframe, frame).expect("writer");
        let mut out = Vec::new();
        let mut pieces = 0;
        loop {
            let mut piece = Vec::new();
            let more = writer.write_some(&mut piece, target);
            out.extend_from_slice(&piece);
            pieces += 1;
            if !more {
                break;
            }
        }
        assert!(pieces >= 1);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_answer_is_byte_for_byte_what_serde_wrote() {
        let mut rng = host_service_base::SplitMix64::new(7);
        let mut ts = Vec::new();
        let mut values: [Vec<f64>; 5] = Default::default();
        let mut t = -86_400_000 * 3 - 1; // before 1970, a millisecond off the second
        for i in 0..2_000 {
            t += 1 + (rng.next_u64() % 7_200_000) as i64;
            ts.push(if i % 3 == 0 {
                t - t.rem_euclid(1000)
            } else {
                t
            });
            for column in values.iter_mut() {
                column.push(match i % 50 {
                    7 => f64::NAN,
                    8 => f64::INFINITY,
                    9 => 1e300,
                    10 => -0.0,
                    _ => rng.next_f64() * 1000.0,
                });
            }
        }
        let frame = bars::frame_from_columns(ts, values).expect("frame");
        let expected = serde_answer("AAPL", "1m", &frame);
        for target in [1, 100, 64 * 1024, usize::MAX] {
            assert_eq!(
                written("AAPL", "1m", &frame, target),
                expected,
                "target {target}"
            );
        }
        let empty = bars::empty_frame();
        assert_eq!(
            written("A\"B", "1d", &empty, 10),
            serde_answer("A\"B", "1d", &empty)
        );
    }
}
