//! Typed indicator entries: kinds with their validated parameters, and the outputs
//! (columns) each kind produces.

use serde::{Deserialize, Serialize};

/// One `indicators[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSpec {
    /// Column id, unique across indicators.
    pub feature_id: String,
    /// Kind and parameters.
    pub indicator: Indicator,
}

impl IndicatorSpec {
    /// The column holding `output` (`rsi_14`, or `macd_12_26_9.signal` for a
    /// multi-output indicator).
    pub fn column(&self, output: &str) -> String {
        if self.indicator.outputs().len() == 1 {
            self.feature_id.clone()
        } else {
            format!("{}.{output}", self.feature_id)
        }
    }
}

/// Price column an indicator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceSource {
    /// Open.
    Open,
    /// High.
    High,
    /// Low.
    Low,
    /// Close (the default).
    Close,
}

impl PriceSource {
    /// Accepted spellings.
    pub const NAMES: [&str; 4] = ["open", "high", "low", "close"];

    /// Parses a lower-case name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "high" => Some(Self::High),
            "low" => Some(Self::Low),
            "close" => Some(Self::Close),
            _ => None,
        }
    }
}

/// An indicator kind with its parameters (all periods >= 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Indicator {
    /// Relative Strength Index, Wilder smoothing.
    Rsi {
        /// Period (default 14).
        period: usize,
        /// Price read.
        source: PriceSource,
    },
    /// Simple moving average.
    Sma {
        /// Period (default 20).
        period: usize,
        /// Price read.
        source: PriceSource,
    },
    /// Exponential moving average seeded with the SMA of the first `period` values.
    Ema {
        /// Period (default 20).
        period: usize,
        /// Price read.
        source: PriceSource,
    },
    /// MACD: outputs `macd`, `signal`, `histogram`.
    Macd {
        /// Fast EMA period (default 12), < `slow_period`.
        fast_period: usize,
        /// Slow EMA period (default 26).
        slow_period: usize,
        /// Signal EMA period (default 9).
        signal_period: usize,
        /// Price read.
        source: PriceSource,
    },
    /// Bollinger bands (population std): outputs `upper`, `middle`, `lower`.
    Bbands {
        /// Period (default 20).
        period: usize,
        /// Band width in standard deviations (default 2.0), > 0.
        multiplier: f64,
        /// Price read.
        source: PriceSource,
    },
    /// Average True Range, Wilder smoothing (reads high, low, close).
    Atr {
        /// Period (default 14).
        period: usize,
    },
    /// Rate of change in percent.
    Roc {
        /// Period (default 10).
        period: usize,
        /// Price read.
        source: PriceSource,
    },
    /// Stochastic oscillator (reads high, low, close): outputs `k`, `d`.
    Stochastic {
        /// %K window (default 14).
        k_period: usize,
        /// %D SMA window (default 3).
        d_period: usize,
    },
}

impl Indicator {
    /// Kind names, as accepted in `indicators[].name`.
    pub const NAMES: [&str; 8] = [
        "rsi",
        "sma",
        "ema",
        "macd",
        "bbands",
        "atr",
        "roc",
        "stochastic",
    ];

    /// The kind name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rsi { .. } => "rsi",
            Self::Sma { .. } => "sma",
            Self::Ema { .. } => "ema",
            Self::Macd { .. } => "macd",
            Self::Bbands { .. } => "bbands",
            Self::Atr { .. } => "atr",
            Self::Roc { .. } => "roc",
            Self::Stochastic { .. } => "stochastic",
        }
    }

    /// Output names; single-output indicators have one, named after the kind.
    pub fn outputs(&self) -> &'static [&'static str] {
        outputs_of(self.name())
    }

    /// The output a fuzzy set keyed by the bare `feature_id` applies to.
    pub fn primary_output(&self) -> &'static str {
        primary_output_of(self.name())
    }
}

/// Outputs of an indicator kind by name; empty for an unknown kind.
pub(crate) fn outputs_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "macd" => &["macd", "signal", "histogram"],
        "bbands" => &["upper", "middle", "lower"],
        "stochastic" => &["k", "d"],
        "rsi" => &["rsi"],
        "sma" => &["sma"],
        "ema" => &["ema"],
        "atr" => &["atr"],
        "roc" => &["roc"],
        _ => &[],
    }
}

/// The output a bare `feature_id` fuzzy key means: the main line of MACD, the middle
/// band of Bollinger bands, %K of the stochastic, the only output otherwise.
pub(crate) fn primary_output_of(kind: &str) -> &'static str {
    match kind {
        "macd" => "macd",
        "bbands" => "middle",
        "stochastic" => "k",
        other => outputs_of(other).first().copied().unwrap_or(""),
    }
}
