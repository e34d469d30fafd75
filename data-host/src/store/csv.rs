//! The store's CSV layout: first column the UTC bar time, then `open,high,low,close,
//! volume`. Written as `%Y-%m-%dT%H:%M:%SZ`; read also with `+00:00`-style offsets,
//! space separators, naive times (taken as UTC) and plain dates, under a header named
//! `timestamp`, `date`, `time` or `datetime`, or with no header at all.

use std::io::{Cursor, Write};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use polars::prelude::*;

use super::StoreError;
use crate::bars::{self, TIMESTAMP, VALUE_COLUMNS};

/// Header names accepted for the time column (case-insensitive; empty = pandas index).
const TIME_HEADERS: [&str; 5] = ["timestamp", "date", "time", "datetime", ""];

/// Parses one timestamp in any accepted form to Unix milliseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim().trim_matches('"');
    if let Some(ms) = parse_canonical(text.as_bytes()) {
        return Some(ms);
    }
    // RFC 3339 (`+00:00` offsets, fractions): what KTRDR's hosts answer with, so the hot
    // path of a client reading them. chrono's RFC 3339 parser reads it directly; the
    // format strings below would each be interpreted afresh on every call.
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc).timestamp_millis());
    }
    const WITH_OFFSET: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ];
    for format in WITH_OFFSET {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc).timestamp_millis());
        }
    }
    let naive = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("UTC"))
        .unwrap_or(text)
        .trim_end();
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(naive, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// The written form `YYYY-MM-DDTHH:MM:SSZ`, parsed without chrono's general machinery:
/// it is what the store writes, so it is the hot path of every load.
fn parse_canonical(b: &[u8]) -> Option<i64> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(time.and_utc().timestamp_millis())
}

/// Formats Unix milliseconds in the written form.
pub fn format_timestamp(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Parses a store CSV file's bytes into a bars frame (sorted, not yet de-duplicated).
pub fn parse(bytes: &[u8], file: &str) -> Result<DataFrame, StoreError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(bars::empty_frame());
    }
    let first_line = bytes.split(|&c| c == b'\n').next().unwrap_or_default();
    let first_line = String::from_utf8_lossy(first_line);
    let raw_first: Vec<&str> = first_line
        .trim_end_matches('\r')
        .split(',')
        .map(|f| f.trim().trim_matches('"'))
        .collect();
    let has_header = parse_timestamp(raw_first.first().copied().unwrap_or_default()).is_none();
    let first_fields: Vec<String> = raw_first.iter().map(|f| f.to_ascii_lowercase()).collect();
    let parse_error = |line: usize, message: String| StoreError::Parse {
        file: file.to_owned(),
        line,
        message,
    };

    // Column positions of timestamp, open, high, low, close, volume.
    let positions: Vec<usize> = if has_header {
        let time_header = first_fields.first().map_or("", String::as_str);
        if !TIME_HEADERS.contains(&time_header) {
            return Err(parse_error(
                1,
                format!(
                    "first column is `{time_header}`; expected a time column named timestamp, date, time or datetime"
                ),
            ));
        }
        let mut positions = vec![0];
        for name in VALUE_COLUMNS {
            let at = first_fields
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| parse_error(1, format!("no `{name}` column in the header")))?;
            positions.push(at);
        }
        positions
    } else {
        (0..6).collect()
    };

    let raw = CsvReadOptions::default()
        .with_has_header(has_header)
        .with_infer_schema_length(Some(0)) // every column as text; parsed below with errors that say where
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(|e| parse_error(0, e.to_string()))?;
    if raw.height() == 0 {
        return Ok(bars::empty_frame());
    }
    let header_lines = usize::from(has_header);
    let column_at = |i: usize| -> Result<&Column, StoreError> {
        raw.columns().get(positions[i]).ok_or_else(|| {
            parse_error(
                1 + header_lines,
                format!("expected at least {} columns", positions[i] + 1),
            )
        })
    };

    let times = column_at(0)?
        .str()
        .map_err(|e| parse_error(0, e.to_string()))?;
    let mut timestamps = Vec::with_capacity(times.len());
    for (row, value) in times.iter().enumerate() {
        let value = value.unwrap_or_default();
        let ms = parse_timestamp(value).ok_or_else(|| {
            parse_error(
                row + 1 + header_lines,
                format!("`{value}` is not a timestamp"),
            )
        })?;
        timestamps.push(ms);
    }
    let mut values: [Vec<f64>; 5] = Default::default();
    for (i, name) in VALUE_COLUMNS.into_iter().enumerate() {
        let text = column_at(i + 1)?
            .str()
            .map_err(|e| parse_error(0, e.to_string()))?;
        let out = &mut values[i];
        out.reserve(text.len());
        for (row, value) in text.iter().enumerate() {
            let value = value.unwrap_or_default().trim();
            let number: f64 = value.parse().map_err(|_| {
                parse_error(
                    row + 1 + header_lines,
                    format!("`{name}` value `{value}` is not a number"),
                )
            })?;
            out.push(number);
        }
    }
    Ok(bars::frame_from_columns(timestamps, values)?)
}

/// Writes a bars frame in the store layout.
pub fn write(frame: &DataFrame, out: &mut impl Write) -> Result<(), StoreError> {
    let ts = bars::timestamps_ms(frame)?;
    let columns = VALUE_COLUMNS.map(|name| bars::value_column(frame, name));
    let [open, high, low, close, volume] = columns;
    let (open, high, low, close, volume) = (open?, high?, low?, close?, volume?);
    let io = |e: std::io::Error| StoreError::Io {
        path: "(csv writer)".into(),
        source: e,
    };
    writeln!(out, "{TIMESTAMP},open,high,low,close,volume").map_err(io)?;
    for (i, &ms) in ts.iter().enumerate() {
        let time = format_timestamp(ms).ok_or(bars::FrameError::TimestampRange(ms))?;
        // `{}` on f64 prints the shortest text that parses back to the same value.
        writeln!(
            out,
            "{time},{},{},{},{},{}",
            open[i], high[i], low[i], close[i], volume[i]
        )
        .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_timestamp_form() {
        let expected = parse_timestamp("2024-08-06T13:30:00Z");
        assert!(expected.is_some());
        for form in [
            "2024-08-06T13:30:00+00:00",
            "2024-08-06 13:30:00+00:00",
            "2024-08-06 09:30:00-04:00",
            "2024-08-06T13:30:00",
            "2024-08-06 13:30:00",
            "2024-08-06T13:30:00.000Z",
            "\"2024-08-06T13:30:00Z\"",
        ] {
            assert_eq!(parse_timestamp(form), expected, "{form}");
        }
        assert_eq!(
            parse_timestamp("2024-08-06"),
            parse_timestamp("2024-08-06T00:00:00Z")
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-02-30",
            "open",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_answers_read_as_the_offset_formats_do() {
        // The RFC 3339 fast path must land where the format strings it stands in front
        // of would: same instant for offsets, fractions and a space separator.
        for text in [
            "2000-03-01T00:00:00+00:00",
            "2024-08-06T09:30:00.250-04:00",
            "2024-08-06 15:30:00.5+02:00",
            "1999-12-31T23:59:59.999999+05:30",
        ] {
            let by_format = ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"]
                .iter()
                .find_map(|f| DateTime::parse_from_str(text, f).ok())
                .map(|t| t.with_timezone(&Utc).timestamp_millis());
            assert!(by_format.is_some(), "{text}");
            assert_eq!(parse_timestamp(text), by_format, "{text}");
        }
    }

    #[test]
    fn reads_all_header_styles_and_writes_canonically() {
        let body = "2024-01-02T00:00:00Z,1,2,0.5,1.5,100\n2024-01-03T00:00:00Z,1.5,2.5,1,2,200\n";
        let mut frames = Vec::new();
        for header in [
            "",
            "timestamp,open,high,low,close,volume\n",
            "Date,Open,High,Low,Close,Volume\n",
            "time,open,high,low,close,volume\n",
        ] {
            frames.push(parse(format!("{header}{body}").as_bytes(), "t.csv").expect(header));
        }
        for f in &frames {
            assert_eq!(f, &frames[0]);
        }
        let mut out = Vec::new();
        write(&frames[0], &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            format!("timestamp,open,high,low,close,volume\n{body}")
        );
    }

    #[test]
    fn errors_say_where() {
        let err = parse(
            b"timestamp,open,high,low,close,volume\n2024-01-02T00:00:00Z,1,2,x,1,1\n",
            "a.csv",
        )
        .expect_err("bad number");
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("`low`"),
            "{err}"
        );
        let err = parse(b"symbol,open,high,low,close,volume\n", "a.csv").expect_err("bad header");
        assert!(err.to_string().contains("symbol"), "{err}");
        let err = parse(
            b"timestamp,open,high,low,close\n2024-01-02T00:00:00Z,1,2,1,1\n",
            "a.csv",
        )
        .expect_err("no volume");
        assert!(err.to_string().contains("volume"), "{err}");
    }

    #[test]
    fn a_header_only_file_is_empty() {
        let frame = parse(b"timestamp,open,high,low,close,volume\n", "e.csv").expect("empty");
        assert_eq!(frame.height(), 0);
    }
}
