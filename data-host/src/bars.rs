//! Bars: the [`Bar`] every provider, the store and the simulator agree on, and its one
//! DataFrame layout (`timestamp` UTC datetime in ms, then f64 `open high low close
//! volume`), with the conversions between the two.

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Name of the time column.
pub const TIMESTAMP: &str = "timestamp";
/// Names of the value columns, in order.
pub const VALUE_COLUMNS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// An OHLCV bar opening at `timestamp` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Bar open time, UTC.
    pub timestamp: DateTime<Utc>,
    /// First trade price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last trade price.
    pub close: f64,
    /// Traded volume.
    pub volume: f64,
}

/// A frame is not in the bars layout.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A column is missing or has the wrong type.
    #[error("bars frame: {0}")]
    Layout(String),
    /// A timestamp is outside what chrono can represent.
    #[error("bars frame: timestamp {0} ms is out of range")]
    TimestampRange(i64),
    /// polars failed.
    #[error("bars frame: {0}")]
    Polars(#[from] PolarsError),
}

/// The dtype of the time column.
pub fn timestamp_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}

/// Builds the bars frame from columns (timestamps in Unix milliseconds).
pub fn frame_from_columns(
    timestamps_ms: Vec<i64>,
    values: [Vec<f64>; 5],
) -> Result<DataFrame, FrameError> {
    let height = timestamps_ms.len();
    if values.iter().any(|v| v.len() != height) {
        return Err(FrameError::Layout("columns of different lengths".into()));
    }
    let time = Series::new(TIMESTAMP.into(), timestamps_ms).cast(&timestamp_dtype())?;
    let mut columns: Vec<Column> = Vec::with_capacity(6);
    columns.push(time.into());
    for (name, data) in VALUE_COLUMNS.into_iter().zip(values) {
        columns.push(Series::new(name.into(), data).into());
    }
    Ok(DataFrame::new(height, columns)?)
}

/// An empty bars frame with the right schema.
pub fn empty_frame() -> DataFrame {
    frame_from_columns(Vec::new(), Default::default()).unwrap_or_default()
}

/// Bars to a frame.
pub fn bars_to_frame(bars: &[Bar]) -> Result<DataFrame, FrameError> {
    let mut ts = Vec::with_capacity(bars.len());
    let mut values: [Vec<f64>; 5] = std::array::from_fn(|_| Vec::with_capacity(bars.len()));
    for bar in bars {
        ts.push(bar.timestamp.timestamp_millis());
        for (column, v) in values
            .iter_mut()
            .zip([bar.open, bar.high, bar.low, bar.close, bar.volume])
        {
            column.push(v);
        }
    }
    frame_from_columns(ts, values)
}

/// The time column as Unix milliseconds (checks the layout).
pub fn timestamps_ms(frame: &DataFrame) -> Result<Vec<i64>, FrameError> {
    Ok(timestamp_array(frame)?.into_no_null_iter().collect())
}

/// One value column as f64 (checks the layout).
pub fn value_column(frame: &DataFrame, name: &str) -> Result<Vec<f64>, FrameError> {
    Ok(value_array(frame, name)?.into_no_null_iter().collect())
}

fn timestamp_array(frame: &DataFrame) -> Result<Int64Chunked, FrameError> {
    let column = frame
        .column(TIMESTAMP)
        .map_err(|_| FrameError::Layout(format!("no `{TIMESTAMP}` column")))?;
    if !matches!(column.dtype(), DataType::Datetime(_, _)) {
        return Err(FrameError::Layout(format!(
            "`{TIMESTAMP}` is {}, not a datetime",
            column.dtype()
        )));
    }
    let ms = column.cast(&timestamp_dtype())?.cast(&DataType::Int64)?;
    let ms = ms.i64()?;
    if ms.null_count() > 0 {
        return Err(FrameError::Layout(format!(
            "`{TIMESTAMP}` has missing values"
        )));
    }
    Ok(ms.rechunk().into_owned())
}

fn value_array(frame: &DataFrame, name: &str) -> Result<Float64Chunked, FrameError> {
    let column = frame
        .column(name)
        .map_err(|_| FrameError::Layout(format!("no `{name}` column")))?;
    let values = column.cast(&DataType::Float64)?;
    let values = values.f64()?;
    if values.null_count() > 0 {
        return Err(FrameError::Layout(format!("`{name}` has missing values")));
    }
    Ok(values.rechunk().into_owned())
}

/// A bars frame's columns as contiguous slices, borrowed from the frame's own buffers
/// where they already hold milliseconds and f64 (no copy of a million rows to read
/// them once).
#[derive(Debug)]
pub struct ColumnSlices {
    timestamps: Int64Chunked,
    values: [Float64Chunked; 5],
}

impl ColumnSlices {
    /// Checks the layout (every column present, of its type, without missing values).
    pub fn new(frame: &DataFrame) -> Result<Self, FrameError> {
        let timestamps = timestamp_array(frame)?;
        let [open, high, low, close, volume] = VALUE_COLUMNS.map(|name| value_array(frame, name));
        let slices = Self {
            timestamps,
            values: [open?, high?, low?, close?, volume?],
        };
        // Rechunked and null-free above, so each is one contiguous buffer (an empty
        // column may have no buffer at all; its slice is empty either way).
        if !slices.is_empty() {
            slices.timestamps.cont_slice()?;
            for column in &slices.values {
                column.cont_slice()?;
            }
        }
        Ok(slices)
    }

    /// Rows in the frame.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the frame has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bar open times, Unix milliseconds.
    pub fn timestamps(&self) -> &[i64] {
        // `new` checked that this succeeds.
        self.timestamps.cont_slice().unwrap_or_default()
    }

    /// `open high low close volume`, in [`VALUE_COLUMNS`] order.
    pub fn values(&self) -> [&[f64]; 5] {
        std::array::from_fn(|c| self.values[c].cont_slice().unwrap_or_default())
    }
}

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// The text of one day's date, made once and reused while consecutive bars share the
/// day (writers of a million timestamps format a few hundred dates, not a million).
#[derive(Debug)]
pub struct DayText {
    format: fn(DateTime<Utc>) -> String,
    day: Option<(i64, String)>,
}

impl DayText {
    /// Dates written by `format`, given the day's first instant.
    pub fn new(format: fn(DateTime<Utc>) -> String) -> Self {
        Self { format, day: None }
    }

    /// The date of the day holding `ms` (Unix milliseconds); empty when chrono cannot
    /// represent it (writers check their range first).
    pub fn of(&mut self, ms: i64) -> &str {
        let day = ms.div_euclid(MS_PER_DAY);
        match self.day {
            Some((d, ref text)) if d == day => {}
            _ => {
                let text = DateTime::from_timestamp_millis(day * MS_PER_DAY)
                    .map(self.format)
                    .unwrap_or_default();
                self.day = Some((day, text));
            }
        }
        self.day.as_ref().map_or("", |(_, text)| text)
    }
}

/// When [`push_clock`] writes milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Millis {
    /// Always `.mmm` (pandas' ISO form).
    Always,
    /// Only when not zero (chrono's RFC 3339 form for millisecond times).
    WhenNotZero,
}

/// Appends `Thh:mm:ss[.mmm]`, the time of day of `ms` (Unix milliseconds, UTC): the
/// part after the date of every bar time a JSON writer emits.
pub fn push_clock(out: &mut Vec<u8>, ms: i64, millis: Millis) {
    let two = |out: &mut Vec<u8>, n: i64| {
        out.push(b'0' + (n / 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    };
    let of_day = ms.rem_euclid(MS_PER_DAY);
    out.push(b'T');
    two(out, of_day / 3_600_000);
    out.push(b':');
    two(out, of_day / 60_000 % 60);
    out.push(b':');
    two(out, of_day / 1000 % 60);
    let milli = of_day % 1000;
    if millis == Millis::Always || milli != 0 {
        out.push(b'.');
        out.push(b'0' + (milli / 100) as u8);
        two(out, milli % 100);
    }
}

/// A frame to bars.
pub fn frame_to_bars(frame: &DataFrame) -> Result<Vec<Bar>, FrameError> {
    let ts = timestamps_ms(frame)?;
    let [open, high, low, close, volume] = VALUE_COLUMNS.map(|name| value_column(frame, name));
    let (open, high, low, close, volume) = (open?, high?, low?, close?, volume?);
    ts.iter()
        .enumerate()
        .map(|(i, &ms)| {
            Ok(Bar {
                timestamp: DateTime::from_timestamp_millis(ms)
                    .ok_or(FrameError::TimestampRange(ms))?,
                open: open[i],
                high: high[i],
                low: low[i],
                close: close[i],
                volume: volume[i],
            })
        })
        .collect()
}

/// Rows of `frame` whose timestamp is in `[start, end)`.
pub fn slice_range(
    frame: &DataFrame,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<DataFrame, FrameError> {
    let ts = timestamps_ms(frame)?;
    // Frames are sorted: two binary searches instead of a full filter.
    let lo = ts.partition_point(|&t| t < start.timestamp_millis());
    let hi = ts.partition_point(|&t| t < end.timestamp_millis());
    Ok(frame.slice(lo as i64, hi.saturating_sub(lo)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn bar(day: u32, close: f64) -> Bar {
        Bar {
            timestamp: Utc
                .with_ymd_and_hms(2024, 1, day, 0, 0, 0)
                .single()
                .expect("valid date"),
            open: close - 1.0,
            high: close + 1.0,
            low: close - 2.0,
            close,
            volume: 1000.0 * f64::from(day),
        }
    }

    #[test]
    fn bars_round_trip_through_a_frame() {
        let bars: Vec<Bar> = (1..=5)
            .map(|d| bar(d, 100.0 + f64::from(d) / 3.0))
            .collect();
        let frame = bars_to_frame(&bars).expect("frame");
        assert_eq!(frame.schema().get(TIMESTAMP), Some(&timestamp_dtype()));
        assert_eq!(frame_to_bars(&frame).expect("bars"), bars);
        assert_eq!(empty_frame().height(), 0);
        assert_eq!(empty_frame().schema(), frame.schema());
    }

    #[test]
    fn slices_half_open_ranges() {
        let bars: Vec<Bar> = (1..=5).map(|d| bar(d, 100.0)).collect();
        let frame = bars_to_frame(&bars).expect("frame");
        let sliced = slice_range(&frame, bars[1].timestamp, bars[3].timestamp).expect("slice");
        assert_eq!(frame_to_bars(&sliced).expect("bars"), bars[1..3].to_vec());
    }
}
