//! The typed strategy: what [`super::parse_strategy`] returns once every check passed
//! (indicator kinds are in `indicator.rs`, the network's settings in `network.rs`).
//!
//! Values here are already valid (periods >= 1, fractions summing to 1, fuzzy parameters
//! ordered, ...), so the feature pipeline and the trainer never re-check them. The types
//! serialise with serde so a model store can keep the exact configuration a model was
//! trained with.

use chrono::{DateTime, Utc};
use data_host::{Symbol, Timeframe};
use serde::{Deserialize, Serialize};

use super::indicator::IndicatorSpec;
use super::network::ModelConfig;

/// A validated KTRDR v2 strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Strategy {
    /// Strategy name (used for the model store path).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Format version as written (`"2.0"`).
    pub version: Option<String>,
    /// Which bars to train on.
    pub training_data: TrainingData,
    /// Indicators, in YAML order.
    pub indicators: Vec<IndicatorSpec>,
    /// Fuzzy inputs, in YAML order; they define the feature columns.
    pub fuzzy_sets: Vec<FuzzyInput>,
    /// The network and its optimiser.
    pub model: ModelConfig,
    /// Labels and split.
    pub training: TrainingConfig,
    /// Range of bars: `training_data.start_date`/`end_date` of the YAML, replaced by the
    /// runtime overrides; an open end means "from the first bar available" / "up to now".
    #[serde(default)]
    pub date_range: DateRange,
}

impl Strategy {
    /// Whether features come from more than one timeframe (their columns are then
    /// prefixed `{timeframe}_`).
    pub fn is_multi_timeframe(&self) -> bool {
        self.training_data.timeframes.len() > 1
    }

    /// Member sets over all fuzzy inputs (feature columns per timeframe, before lags).
    pub fn fuzzy_set_count(&self) -> usize {
        self.fuzzy_sets.iter().map(|input| input.sets.len()).sum()
    }

    /// Feature columns the pipeline builds: timeframes × fuzzy sets × (1 + lookback),
    /// the length of `features::feature_names` (saturating, so a huge lookback cannot
    /// wrap around a ceiling).
    pub fn feature_count(&self) -> usize {
        self.training_data
            .timeframes
            .len()
            .saturating_mul(self.fuzzy_set_count())
            .saturating_mul(self.model.features.lookback_periods.saturating_add(1))
    }
}

/// `training_data`: symbols and timeframes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// `symbols.mode` as written (`single`, `multi_symbol`, ...); informational.
    pub symbols_mode: Option<String>,
    /// Symbols, non-empty, no duplicates.
    pub symbols: Vec<Symbol>,
    /// `timeframes.mode` as written; informational.
    pub timeframes_mode: Option<String>,
    /// Timeframes, non-empty, no duplicates, in YAML order.
    pub timeframes: Vec<Timeframe>,
    /// The timeframe whose bars are the rows; always one of `timeframes`.
    pub base_timeframe: Timeframe,
    /// `history_required` as written (bars of history the strategy expects); the
    /// pipeline drops warm-up rows itself and does not use it.
    pub history_required: Option<u32>,
}

/// A fuzzy input: the sets applied to one indicator output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzyInput {
    /// The `fuzzy_sets` key as written (`rsi_14`, `macd_12_26_9.signal`).
    pub key: String,
    /// The indicator column read (`rsi_14`, `macd_12_26_9.macd`).
    pub column: String,
    /// Member sets, in YAML order.
    pub sets: Vec<FuzzySet>,
}

/// One member set of a fuzzy input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzySet {
    /// Set name (`oversold`).
    pub name: String,
    /// Its membership function.
    pub membership: Membership,
}

/// A membership function with validated parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Membership {
    /// Triangle `a <= b <= c`, `a < c`.
    Triangular {
        /// Left foot.
        a: f64,
        /// Peak.
        b: f64,
        /// Right foot.
        c: f64,
    },
    /// Trapezoid `a <= b <= c <= d`, `a < d`.
    Trapezoidal {
        /// Left foot.
        a: f64,
        /// Left shoulder.
        b: f64,
        /// Right shoulder.
        c: f64,
        /// Right foot.
        d: f64,
    },
    /// Gaussian bell, `sigma > 0`.
    Gaussian {
        /// Centre.
        mu: f64,
        /// Width.
        sigma: f64,
    },
}

/// `training`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// `training.labels`.
    pub labels: LabelConfig,
    /// `training.data_split`.
    pub data_split: DataSplit,
}

/// `training.labels` (source `zigzag`, the only one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelConfig {
    /// Relative move that counts as a swing, > 0 (0.03 = 3 %).
    pub zigzag_threshold: f64,
    /// Bars looked ahead, >= 1.
    pub label_lookahead: usize,
}

/// `training.data_split`: fractions in `[0, 1]` summing to 1, `train > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DataSplit {
    /// Train fraction.
    pub train: f64,
    /// Validation fraction.
    pub validation: f64,
    /// Test fraction.
    pub test: f64,
}

/// Bars used for training: `[start, end)` in UTC; `None` = unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// First instant included.
    pub start: Option<DateTime<Utc>>,
    /// First instant excluded.
    pub end: Option<DateTime<Utc>>,
}

impl DateRange {
    /// Whether `ms` (Unix milliseconds) is inside the range.
    pub fn contains_ms(&self, ms: i64) -> bool {
        self.start.is_none_or(|s| ms >= s.timestamp_millis())
            && self.end.is_none_or(|e| ms < e.timestamp_millis())
    }
}
