//! The pipeline's two tables: [`Ohlc`], price columns read once from a data-host bars
//! frame, and [`FeatureFrame`], named f64 feature columns on the base timeframe's rows.

use data_host::Timeframe;
use data_host::bars::{timestamps_ms, value_column};
use polars::prelude::DataFrame;

use super::error::FeatureError;
use crate::strategy::{DateRange, PriceSource};

/// Price columns of one symbol and timeframe, sorted by time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ohlc {
    /// Bar open times, Unix milliseconds, strictly increasing.
    pub timestamps: Vec<i64>,
    /// Opens.
    pub open: Vec<f64>,
    /// Highs.
    pub high: Vec<f64>,
    /// Lows.
    pub low: Vec<f64>,
    /// Closes.
    pub close: Vec<f64>,
}

impl Ohlc {
    /// Reads a data-host bars frame (`timestamp`, `open high low close volume`).
    pub fn from_frame(frame: &DataFrame, timeframe: Timeframe) -> Result<Self, FeatureError> {
        let wrap = |source| FeatureError::Frame { timeframe, source };
        let ohlc = Self {
            timestamps: timestamps_ms(frame).map_err(wrap)?,
            open: value_column(frame, "open").map_err(wrap)?,
            high: value_column(frame, "high").map_err(wrap)?,
            low: value_column(frame, "low").map_err(wrap)?,
            close: value_column(frame, "close").map_err(wrap)?,
        };
        // Every window and the alignment assume time order; unsorted input would give
        // silently wrong features, so refuse it.
        if let Some(row) = ohlc.timestamps.windows(2).position(|w| w[0] >= w[1]) {
            return Err(FeatureError::Unsorted {
                timeframe,
                row: row + 1,
            });
        }
        Ok(ohlc)
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no bars.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The price column an indicator reads.
    pub fn source(&self, source: PriceSource) -> &[f64] {
        match source {
            PriceSource::Open => &self.open,
            PriceSource::High => &self.high,
            PriceSource::Low => &self.low,
            PriceSource::Close => &self.close,
        }
    }

    /// The bars inside `range` (timestamps are sorted, so a contiguous slice).
    pub fn restrict(&self, range: &DateRange) -> Self {
        let lo = self
            .timestamps
            .partition_point(|&t| range.start.is_some_and(|s| t < s.timestamp_millis()));
        let hi = self
            .timestamps
            .partition_point(|&t| range.end.is_none_or(|e| t < e.timestamp_millis()));
        let hi = hi.max(lo);
        Self {
            timestamps: self.timestamps[lo..hi].to_vec(),
            open: self.open[lo..hi].to_vec(),
            high: self.high[lo..hi].to_vec(),
            low: self.low[lo..hi].to_vec(),
            close: self.close[lo..hi].to_vec(),
        }
    }
}

/// Named feature columns on the base timeframe's rows (warm-up rows hold NaN).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureFrame {
    /// Base bar open times, Unix milliseconds.
    pub timestamps: Vec<i64>,
    /// Feature names, one per column.
    pub names: Vec<String>,
    /// Columns, each `timestamps.len()` long.
    pub columns: Vec<Vec<f64>>,
}

impl FeatureFrame {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        let index = self.names.iter().position(|n| n == name)?;
        self.columns.get(index).map(Vec::as_slice)
    }

    /// Whether row `i` has a finite value in every column (warm-up, missing
    /// higher-timeframe bars and undefined values all show up as NaN).
    pub fn is_complete(&self, row: usize) -> bool {
        self.columns
            .iter()
            .all(|c| c.get(row).is_some_and(|v| v.is_finite()))
    }

    /// [`Self::is_complete`] for every row at once, column by column: one sequential
    /// pass per column instead of a hop across all columns per row.
    pub fn complete_rows(&self) -> Vec<bool> {
        let mut complete = vec![true; self.len()];
        for column in &self.columns {
            for (ok, v) in complete.iter_mut().zip(column) {
                *ok &= v.is_finite();
            }
            if column.len() < complete.len() {
                complete[column.len()..].fill(false);
            }
        }
        complete
    }

    /// Appends a column.
    pub(crate) fn push(&mut self, name: String, values: Vec<f64>) {
        self.names.push(name);
        self.columns.push(values);
    }
}
