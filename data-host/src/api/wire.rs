//! The two wire forms of a bars frame.
//!
//! - JSON, the KTRDR contract: `data` is a JSON *string* holding an object keyed by ISO
//!   timestamp, each value `{open, high, low, close, volume}` — what pandas writes with
//!   `to_json(orient="index", date_format="iso")` (keys like `2024-01-02T00:00:00.000Z`).
//! - Arrow IPC stream (`application/vnd.apache.arrow.stream`), the same frame as
//!   columns: no text formatting or parsing at either end.

use std::io::Cursor;

use axum::http::HeaderValue;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use host_service_base::server::{CountingWriter, blocking_writer_body};

use polars::prelude::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::pandas_json::{Quoting, index_json};
use crate::bars::{self, FrameError, VALUE_COLUMNS};
use crate::store::csv::parse_timestamp;

/// Media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Whether the request asks for an Arrow IPC stream: any `Accept` header (there may be
/// several) listing the Arrow media type, with or without parameters. The one rule for
/// data-host and the gateway, so a client gets Arrow from both or from neither.
pub fn wants_arrow(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut params = part.split(';');
            let media = params.next().unwrap_or_default().trim();
            // `q=0` means "not acceptable" (RFC 9110 §12.4.2).
            let refused = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case(ARROW_STREAM) && !refused
        })
}

/// Wire encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The frame is not in the bars layout.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Arrow IPC encoding or decoding failed.
    #[error("arrow: {0}")]
    Arrow(String),
    /// The JSON `data` string is malformed.
    #[error("bars JSON: {0}")]
    Json(String),
}

/// Encodes a bars frame as the pandas `orient="index"` JSON text, digit for digit as
/// pandas writes it (see [`pandas_json`](super::pandas_json)).
pub fn to_pandas_json(frame: &DataFrame) -> Result<String, WireError> {
    Ok(index_json(frame, Quoting::Raw)?)
}

#[derive(Deserialize)]
struct Row {
    open: Option<f64>,
    high: Option<f64>,
    low: Option<f64>,
    close: Option<f64>,
    volume: Option<f64>,
}

/// Rows in document order, keys parsed to Unix milliseconds.
struct Rows(Vec<(i64, Row)>);

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowsVisitor;
        impl<'de> Visitor<'de> for RowsVisitor {
            type Value = Rows;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object keyed by ISO timestamp")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rows, A::Error> {
                let mut rows = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let ms = parse_timestamp(&key)
                        .or_else(|| key.parse::<i64>().ok()) // pandas' default epoch-ms keys
                        .ok_or_else(|| {
                            de::Error::custom(format!("key `{key}` is not a timestamp"))
                        })?;
                    rows.push((ms, map.next_value()?));
                }
                Ok(Rows(rows))
            }
        }
        deserializer.deserialize_map(RowsVisitor)
    }
}

/// Decodes the pandas `orient="index"` JSON text into a bars frame (sorted by time).
pub fn from_pandas_json(text: &str) -> Result<DataFrame, WireError> {
    let Rows(mut rows) = serde_json::from_str(text).map_err(|e| WireError::Json(e.to_string()))?;
    rows.sort_by_key(|(ms, _)| *ms);
    let mut ts = Vec::with_capacity(rows.len());
    let mut values: [Vec<f64>; 5] = std::array::from_fn(|_| Vec::with_capacity(rows.len()));
    for (ms, row) in rows {
        ts.push(ms);
        for (column, v) in values
            .iter_mut()
            .zip([row.open, row.high, row.low, row.close, row.volume])
        {
            column.push(v.unwrap_or(f64::NAN));
        }
    }
    Ok(bars::frame_from_columns(ts, values)?)
}

/// Encodes a frame as an Arrow IPC stream.
pub fn to_arrow(frame: &DataFrame) -> Result<Vec<u8>, WireError> {
    // Sized for the columns plus message headers up front: growing by doubling copied
    // the answer several times (and faulted in fresh pages for each copy).
    let mut out = Vec::with_capacity(frame.estimated_size() + 64 * 1024);
    write_arrow(frame, &mut out)?;
    Ok(out)
}

/// Writes a frame as an Arrow IPC stream into `out`.
pub fn write_arrow(frame: &DataFrame, out: &mut dyn std::io::Write) -> Result<(), WireError> {
    let mut frame = frame.clone();
    IpcStreamWriter::new(out)
        .finish(&mut frame)
        .map_err(|e| WireError::Arrow(e.to_string()))
}

/// The exact length [`write_arrow`] will give `frame`, found by encoding it into a
/// counter (no bytes are kept), so a streamed answer can carry a Content-Length.
pub fn arrow_length(frame: &DataFrame) -> Result<u64, WireError> {
    let mut counter = CountingWriter::default();
    write_arrow(frame, &mut counter)?;
    Ok(counter.bytes)
}

/// The Arrow IPC answer for `frame` (Content-Type, Content-Length, `x-rows`), streamed
/// with its exact length: a counting pass first (cheap: the columns are handed over,
/// not copied), then the encoding, sent 256 KiB at a time as it is written on the
/// blocking pool. No answer-sized buffer is filled before the first byte leaves, and a
/// client knows the length (a cut answer is an error to it; a chunked one also reads
/// slower in Python's http.client). Shared by data-host and the gateway.
pub async fn arrow_answer(frame: DataFrame) -> Result<Response, WireError> {
    let rows = frame.height();
    let counted = frame.clone();
    let length = tokio::task::spawn_blocking(move || arrow_length(&counted))
        .await
        .map_err(|e| WireError::Arrow(format!("encoding task failed: {e}")))??;
    let body =
        blocking_writer_body(move |out| write_arrow(&frame, out).map_err(std::io::Error::other));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert("x-rows", HeaderValue::from(rows));
    Ok(response)
}

/// Decodes an Arrow IPC stream into a bars frame (checking the layout).
pub fn from_arrow(bytes: &[u8]) -> Result<DataFrame, WireError> {
    let frame = IpcStreamReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|e| WireError::Arrow(e.to_string()))?;
    bars::timestamps_ms(&frame)?;
    for name in VALUE_COLUMNS {
        bars::value_column(&frame, name)?;
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_is_chosen_from_any_accept_header_unless_refused() {
        use axum::http::{HeaderMap, HeaderValue, header::ACCEPT};
        let accept = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(ACCEPT, HeaderValue::from_static(v));
            }
            wants_arrow(&headers)
        };
        assert!(accept(&[ARROW_STREAM]));
        assert!(accept(&[
            "application/json;q=0.5, application/vnd.apache.arrow.stream"
        ]));
        assert!(accept(&[
            "application/json",
            "application/vnd.apache.arrow.stream;q=0.9"
        ]));
        assert!(accept(&["Application/Vnd.Apache.Arrow.Stream"]));
        assert!(!accept(&[]));
        assert!(!accept(&["application/json"]));
        assert!(!accept(&["application/vnd.apache.arrow.stream;q=0"]));
        assert!(!accept(&["application/vnd.apache.arrow.streaming"]));
    }

    fn sample() -> DataFrame {
        let ts = vec![1_704_153_600_000, 1_704_240_000_000];
        bars::frame_from_columns(
            ts,
            [
                vec![1.5, 2.0],
                vec![2.25, 3.0],
                vec![1.0, 1.75],
                vec![2.0, 2.5],
                vec![1000.0, 0.0],
            ],
        )
        .expect("frame")
    }

    #[test]
    fn pandas_json_has_iso_keys_and_round_trips() {
        let text = to_pandas_json(&sample()).expect("json");
        assert!(text.starts_with(r#"{"2024-01-02T00:00:00.000Z":{"open":1.5,"high":2.25,"low":1.0,"close":2.0,"volume":1000.0}"#), "{text}");
        assert_eq!(from_pandas_json(&text).expect("decode"), sample());
        assert_eq!(to_pandas_json(&bars::empty_frame()).expect("json"), "{}");
        assert_eq!(from_pandas_json("{}").expect("decode").height(), 0);
    }

    #[test]
    fn arrow_round_trips() {
        let bytes = to_arrow(&sample()).expect("arrow");
        assert_eq!(from_arrow(&bytes).expect("decode"), sample());
        assert!(from_arrow(b"not arrow").is_err());
    }

    #[test]
    fn the_counted_length_is_the_written_length() {
        for frame in [sample(), bars::empty_frame()] {
            let bytes = to_arrow(&frame).expect("arrow");
            assert_eq!(arrow_length(&frame).expect("count"), bytes.len() as u64);
        }
    }

    #[test]
    fn bad_json_keys_are_named() {
        let err =
            from_pandas_json(r#"{"yesterday":{"open":1,"high":1,"low":1,"close":1,"volume":1}}"#)
                .expect_err("bad key");
        assert!(err.to_string().contains("yesterday"), "{err}");
    }
}
