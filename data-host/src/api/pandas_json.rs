//! The KTRDR JSON contract's bars text, byte for byte as pandas writes it, streamed.
//!
//! KTRDR's host answers `/data/historical` with `data` = `df.to_json(orient="index",
//! date_format="iso")`: an object keyed by ISO timestamp whose floats pandas' ujson
//! writes with `double_precision=10` (ten decimals at most, trailing zeros dropped,
//! `1.0` not `1`, `%.10g` beyond 1e16 or under 1e-15). Writing the same digits makes the
//! answer no larger than pandas' and lets a client parsing either get identical floats.
//!
//! The text is written once, already escaped as the inside of the JSON string it
//! travels in (no JSON-in-JSON second pass), in chunks sent as they are made: the first
//! byte leaves before the last bar is encoded and memory stays flat however many bars
//! there are.

use axum::body::Body;
use chrono::DateTime;
use host_service_base::server::{CHUNK_BYTES, blocking_body};
use polars::prelude::DataFrame;

use crate::bars::{ColumnSlices, DayText, FrameError, Millis, VALUE_COLUMNS, push_clock};

/// Whether the text is written as is or as the inside of a JSON string literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// The JSON text itself.
    Raw,
    /// Escaped to sit between the quotes of a JSON string: `"` becomes `\"` (the text
    /// holds no other character JSON escapes).
    InString,
}

impl Quoting {
    fn quote(self) -> &'static [u8] {
        match self {
            Self::Raw => b"\"",
            Self::InString => b"\\\"",
        }
    }
}

/// Writes a bars frame's `orient="index"` text a piece at a time.
#[derive(Debug)]
pub struct IndexJsonWriter {
    columns: ColumnSlices,
    quote: &'static [u8],
    next_row: usize,
    started: bool,
    finished: bool,
    /// `YYYY-MM-DD` of the last day written.
    dates: DayText,
}

impl IndexJsonWriter {
    /// Checks the frame's layout and every timestamp up front, so writing cannot fail
    /// half-way through a response that has already begun.
    pub fn new(frame: &DataFrame, quoting: Quoting) -> Result<Self, FrameError> {
        let columns = ColumnSlices::new(frame)?;
        let ts = columns.timestamps();
        if let (Some(&first), Some(&last)) = (ts.iter().min(), ts.iter().max()) {
            for ms in [first, last] {
                DateTime::from_timestamp_millis(ms).ok_or(FrameError::TimestampRange(ms))?;
            }
        }
        Ok(Self {
            columns,
            quote: quoting.quote(),
            next_row: 0,
            started: false,
            finished: false,
            dates: DayText::new(|day| day.format("%Y-%m-%d").to_string()),
        })
    }

    /// Rows in the frame.
    pub fn rows(&self) -> usize {
        self.columns.len()
    }

    /// Appends to `out` until it holds at least `target` bytes or the text is complete;
    /// returns whether more remains.
    pub fn write_some(&mut self, out: &mut Vec<u8>, target: usize) -> bool {
        if self.finished {
            return false;
        }
        if !self.started {
            out.push(b'{');
            self.started = true;
        }
        let ts = self.columns.timestamps();
        let values = self.columns.values();
        while self.next_row < ts.len() && out.len() < target {
            let row = self.next_row;
            if row > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.quote);
            push_time(out, self.dates.of(ts[row]), ts[row]);
            out.extend_from_slice(self.quote);
            out.extend_from_slice(b":{");
            for (c, name) in VALUE_COLUMNS.iter().enumerate() {
                if c > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(self.quote);
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(self.quote);
                out.push(b':');
                push_pandas_float(out, values[c][row]);
            }
            out.push(b'}');
            self.next_row += 1;
        }
        if self.next_row < ts.len() {
            return true;
        }
        out.push(b'}');
        self.finished = true;
        false
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: `date`, then the time of day of `ms`.
fn push_time(out: &mut Vec<u8>, date: &str, ms: i64) {
    out.extend_from_slice(date.as_bytes());
    push_clock(out, ms, Millis::Always);
    out.push(b'Z');
}

/// The whole `orient="index"` text of a frame (for clients and tests; the service
/// streams it with [`historical_body`]).
pub fn index_json(frame: &DataFrame, quoting: Quoting) -> Result<String, FrameError> {
    let mut writer = IndexJsonWriter::new(frame, quoting)?;
    let mut out = Vec::with_capacity(2 + writer.rows() * 120);
    while writer.write_some(&mut out, usize::MAX) {}
    // Only ASCII was written.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The body of a successful `/data/historical` answer, `{"success":true,"data":"…",
/// "error":null,"rows":N}` as FastAPI writes KTRDR's response model, encoded on the
/// blocking pool and streamed in chunks as they are made. The encoder stops when the
/// client goes away.
pub fn historical_body(frame: &DataFrame) -> Result<Body, FrameError> {
    let mut writer = IndexJsonWriter::new(frame, Quoting::InString)?;
    let suffix = format!("\",\"error\":null,\"rows\":{}}}", writer.rows());
    let mut started = false;
    Ok(blocking_body(move |chunk| {
        if !started {
            chunk.extend_from_slice(b"{\"success\":true,\"data\":\"");
            started = true;
        }
        let more = writer.write_some(chunk, CHUNK_BYTES);
        if !more {
            chunk.extend_from_slice(suffix.as_bytes());
        }
        more
    }))
}

/// Appends `value` as pandas' `to_json` writes a float (`double_precision=10`): NaN and
/// infinities as `null`; beyond 1e16 or under 1e-15 in magnitude as C's `%.10g`;
/// otherwise the whole part, a point and the fraction rounded to ten decimals with its
/// trailing zeros dropped (`0` when nothing is left). The rounding is ujson's own, not
/// correctly rounded decimal: the fraction scaled by 1e10 in double arithmetic, ties to
/// odd (and up from zero), so the digits match pandas' for every input.
pub fn push_pandas_float(out: &mut Vec<u8>, value: f64) {
    const DECIMALS: usize = 10;
    const SCALE: f64 = 1e10;
    const SCALE_INT: u64 = 10_000_000_000;
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let negative = value < 0.0;
    let magnitude = value.abs();
    if magnitude > 1e16 - 1.0 || (magnitude != 0.0 && magnitude < 1e-15) {
        push_c_general(out, value);
        return;
    }
    // Truncating casts, as ujson's: the magnitude is below 1e16, so it fits a u64.
    let mut whole = magnitude as u64;
    let scaled = (magnitude - whole as f64) * SCALE;
    let mut frac = scaled as u64;
    let diff = scaled - frac as f64;
    if diff > 0.5 || (diff == 0.5 && (frac == 0 || frac & 1 == 1)) {
        frac += 1;
    }
    if frac >= SCALE_INT {
        frac = 0;
        whole += 1;
    }
    if negative {
        out.push(b'-');
    }
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(whole).as_bytes());
    out.push(b'.');
    if frac == 0 {
        out.push(b'0');
        return;
    }
    let mut width = DECIMALS;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    let text = digits.format(frac);
    out.extend(std::iter::repeat_n(b'0', width - text.len()));
    out.extend_from_slice(text.as_bytes());
}

/// C's `%.10g` for the magnitudes where it is always exponential (≥ 1e16 or < 1e-15):
/// ten significant digits, trailing zeros and a bare point dropped, `e`, a sign and at
/// least two exponent digits (`1e+17`, `9e-16`, `1.23456789e-20`).
fn push_c_general(out: &mut Vec<u8>, value: f64) {
    let text = format!("{value:.9e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    out.extend_from_slice(mantissa.as_bytes());
    out.push(b'e');
    out.push(if exponent < 0 { b'-' } else { b'+' });
    let magnitude = exponent.unsigned_abs();
    if magnitude < 10 {
        out.push(b'0');
    }
    out.extend_from_slice(itoa::Buffer::new().format(magnitude).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars;

    fn pandas(value: f64) -> String {
        let mut out = Vec::new();
        push_pandas_float(&mut out, value);
        String::from_utf8(out).expect("ascii")
    }

    /// Each expectation is what pandas 3.1.1 printed for the value
    /// (`pd.Series(values).to_json(orient="values")`).
    #[test]
    // The literals are the ones given to pandas, digits beyond f64's included.
    #[allow(clippy::excessive_precision)]
    fn floats_are_written_digit_for_digit_as_pandas_writes_them() {
        let cases: [(f64, &str); 28] = [
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.5, "0.5"),
            (0.05, "0.05"),
            (0.00000000005, "0.0000000001"),
            (0.00000000015, "0.0000000002"),
            (0.000000000049, "0.0"),
            (123456789.123456789, "123456789.123456791"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "10000000000000000.0"),
            (1e-15, "0.0"),
            (9e-16, "9e-16"),
            (1.23456789e-20, "1.23456789e-20"),
            (-2.5e18, "-2.5e+18"),
            (185.63999999999999, "185.64"),
            (100.23456789012345, "100.2345678901"),
            (0.99999999999, "1.0"),
            (0.999999999995, "1.0"),
            (1234567.0, "1234567.0"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (4503599627370497.5, "4503599627370498.0"),
            (1e300, "1e+300"),
            (0.30000000000000004, "0.3"),
            (12.00000000005, "12.0"),
            (12.00000000015, "12.0000000001"),
        ];
        for (value, expected) in cases {
            assert_eq!(pandas(value), expected, "{value:e}");
        }
        // A negative that rounds to zero keeps its sign, as ujson's does.
        assert_eq!(pandas(-0.000000000012345), "-0.0");
    }

    fn sample() -> DataFrame {
        bars::frame_from_columns(
            vec![1_704_153_600_000, 1_704_240_000_123, -86_400_001],
            [
                vec![1.5, 2.0, 3.0],
                vec![2.25, 185.64, 3.0],
                vec![1.0, 1e17, 3.0],
                vec![f64::NAN, 2.5, 3.0],
                vec![1000.0, 0.1 + 0.2, 3.0],
            ],
        )
        .expect("frame")
    }

    #[test]
    fn the_index_text_is_pandas_text_and_escapes_only_quotes_in_a_string() {
        // pandas: {"2024-01-02T00:00:00.000Z":{"open":1.5,"high":2.25,"low":1.0,
        // "close":null,"volume":1000.0},...}
        let raw = index_json(&sample(), Quoting::Raw).expect("json");
        assert_eq!(
            raw,
            concat!(
                r#"{"2024-01-02T00:00:00.000Z":{"open":1.5,"high":2.25,"low":1.0,"close":null,"volume":1000.0},"#,
                r#""2024-01-03T00:00:00.123Z":{"open":2.0,"high":185.64,"low":1e+17,"close":2.5,"volume":0.3},"#,
                r#""1969-12-30T23:59:59.999Z":{"open":3.0,"high":3.0,"low":3.0,"close":3.0,"volume":3.0}}"#,
            )
        );
        let escaped = index_json(&sample(), Quoting::InString).expect("json");
        let as_string: String =
            serde_json::from_str(&format!("\"{escaped}\"")).expect("a JSON string");
        assert_eq!(as_string, raw);
        assert_eq!(
            index_json(&bars::empty_frame(), Quoting::Raw).expect("json"),
            "{}"
        );
    }

    #[test]
    fn written_in_pieces_the_text_is_the_same() {
        let whole = index_json(&sample(), Quoting::InString).expect("json");
        let mut writer = IndexJsonWriter::new(&sample(), Quoting::InString).expect("writer");
        let mut pieces = Vec::new();
        let mut out = Vec::new();
        while writer.write_some(&mut out, 1) {
            pieces.push(std::mem::take(&mut out));
        }
        pieces.push(out);
        assert!(pieces.len() >= 3, "one row per piece");
        assert_eq!(pieces.concat(), whole.as_bytes());
        // Finished: nothing more is written.
        let mut after = Vec::new();
        assert!(!writer.write_some(&mut after, 10));
        assert!(after.is_empty());
    }

    #[tokio::test]
    async fn the_streamed_answer_is_the_contract_response() {
        let body = historical_body(&sample()).expect("body");
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(answer["success"], true);
        assert_eq!(answer["rows"], 3);
        assert!(answer["error"].is_null());
        assert_eq!(
            answer["data"].as_str(),
            Some(index_json(&sample(), Quoting::Raw).expect("json").as_str())
        );
        // FastAPI's field order, compact separators.
        assert!(bytes.starts_with(br#"{"success":true,"data":"{\"2024-01-02T"#));
        assert!(bytes.ends_with(br#"}","error":null,"rows":3}"#));
    }
}
