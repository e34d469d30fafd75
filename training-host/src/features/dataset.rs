//! What the pipeline hands to a trainer and a predictor: row-major f32 matrices with
//! their labels, times and symbols, plus the scaler that produced them.

use data_host::{Symbol, Timeframe};
use serde::Serialize;

use super::scaling::Scaler;
use crate::labels::Label;

/// A dataset ready for training.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Feature names, the column order of every `x`.
    pub feature_names: Vec<String>,
    /// The timeframe whose bars are the rows.
    pub base_timeframe: Timeframe,
    /// Oldest rows of each symbol.
    pub train: Split,
    /// Middle rows of each symbol.
    pub validation: Split,
    /// Newest rows of each symbol.
    pub test: Split,
    /// Fitted on `train` (identity when `scale_features` is false); already applied.
    pub scaler: Scaler,
    /// Row counts per symbol, in strategy order.
    pub per_symbol: Vec<SymbolCounts>,
}

impl Dataset {
    /// Number of features (columns of `x`).
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Rows over all three splits.
    pub fn total_rows(&self) -> usize {
        self.train.len() + self.validation.len() + self.test.len()
    }
}

/// One part of the split: `x` is row-major `len() × n_features`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Scaled features, row-major.
    pub x: Vec<f32>,
    /// Class per row: 0 BUY, 1 HOLD, 2 SELL.
    pub y: Vec<u32>,
    /// Base bar open time per row, Unix milliseconds.
    pub timestamps: Vec<i64>,
    /// Columns per row.
    pub n_features: usize,
    /// Which rows belong to which symbol (contiguous, in strategy order).
    pub segments: Vec<SymbolSegment>,
}

impl Split {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Row `i` of `x`.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let start = i.checked_mul(self.n_features)?;
        self.x.get(start..start.checked_add(self.n_features)?)
    }

    /// Rows per class, indexed by class (BUY, HOLD, SELL); for class weights.
    pub fn class_counts(&self) -> [usize; Label::COUNT] {
        let mut counts = [0; Label::COUNT];
        for &y in &self.y {
            if let Some(c) = counts.get_mut(y as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The symbol of row `i`.
    pub fn symbol_of(&self, i: usize) -> Option<&Symbol> {
        self.segments
            .iter()
            .find(|s| (s.start..s.start + s.len).contains(&i))
            .map(|s| &s.symbol)
    }
}

/// Rows `start .. start + len` of a split belong to `symbol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolSegment {
    /// The symbol.
    pub symbol: Symbol,
    /// First row.
    pub start: usize,
    /// Number of rows.
    pub len: usize,
}

/// How one symbol's bars became rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolCounts {
    /// The symbol.
    pub symbol: Symbol,
    /// Base bars inside the date range.
    pub bars: usize,
    /// Complete, labelled rows (bars minus warm-up, gaps and the label lookahead).
    pub rows: usize,
    /// Rows in train.
    pub train: usize,
    /// Rows in validation.
    pub validation: usize,
    /// Rows in test.
    pub test: usize,
    /// First row's time, Unix milliseconds.
    pub first_timestamp: Option<i64>,
    /// Last row's time, Unix milliseconds.
    pub last_timestamp: Option<i64>,
}

/// Scaled features of new bars, for a predictor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferenceFeatures {
    /// Feature names (equal to the scaler's).
    pub feature_names: Vec<String>,
    /// Scaled features, row-major `timestamps.len() × feature_names.len()`.
    pub x: Vec<f32>,
    /// Base bar open time per row; only complete rows (after warm-up) are present.
    pub timestamps: Vec<i64>,
}

impl InferenceFeatures {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The newest row (the one a live prediction uses) and its time.
    pub fn last_row(&self) -> Option<(i64, &[f32])> {
        let n = self.feature_names.len();
        let t = *self.timestamps.last()?;
        let start = (self.timestamps.len() - 1) * n;
        Some((t, self.x.get(start..start + n)?))
    }
}
