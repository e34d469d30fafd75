//! Feature pipeline errors.

use data_host::bars::FrameError;
use data_host::{Symbol, Timeframe};

/// Why features or a dataset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The bars of a timeframe the strategy needs were not given.
    #[error("no {timeframe} bars were given")]
    MissingBars {
        /// The missing timeframe.
        timeframe: Timeframe,
    },
    /// A bars frame is not in the data-host bars layout.
    #[error("{timeframe} bars: {source}")]
    Frame {
        /// Timeframe of the frame.
        timeframe: Timeframe,
        /// The layout problem.
        #[source]
        source: FrameError,
    },
    /// Bars must be sorted by time without duplicates (the store guarantees it).
    #[error("{timeframe} bars are not strictly increasing in time at row {row}")]
    Unsorted {
        /// Timeframe of the frame.
        timeframe: Timeframe,
        /// First offending row.
        row: usize,
    },
    /// A fuzzy input reads a column no indicator produces (only possible for a
    /// strategy built without validation).
    #[error("fuzzy input {key:?} reads column {column:?}, which no indicator produces")]
    UnknownColumn {
        /// The fuzzy_sets key.
        key: String,
        /// The column it reads.
        column: String,
    },
    /// Nothing is left once warm-up rows and the label lookahead are dropped.
    #[error(
        "no complete rows: {bars} {timeframe} bars leave none once indicator warm-up and the last {lookahead} bars (label lookahead) are dropped"
    )]
    NoRows {
        /// Base timeframe.
        timeframe: Timeframe,
        /// Base bars given (inside the date range).
        bars: usize,
        /// `label_lookahead`.
        lookahead: usize,
    },
    /// The train split has no rows (too little data for the split fractions).
    #[error("the train split is empty: {rows} complete rows in total")]
    EmptyTrain {
        /// Complete rows over all symbols.
        rows: usize,
    },
    /// The scaler was fitted for other features than the strategy produces.
    #[error(
        "the scaler was fitted on {expected} features but the strategy produces {got}{}",
        first_difference.as_ref().map(|d| format!(" (first difference: {d})")).unwrap_or_default()
    )]
    ScalerMismatch {
        /// Features in the scaler.
        expected: usize,
        /// Features the strategy produces.
        got: usize,
        /// `scaler name != strategy name` at the first differing position.
        first_difference: Option<String>,
    },
    /// An error for one symbol of a multi-symbol build.
    #[error("{symbol}: {source}")]
    Symbol {
        /// The symbol.
        symbol: Symbol,
        /// What went wrong.
        #[source]
        source: Box<FeatureError>,
    },
}

impl FeatureError {
    /// Wraps `self` with the symbol it concerns.
    pub(crate) fn for_symbol(self, symbol: &Symbol) -> Self {
        Self::Symbol {
            symbol: symbol.clone(),
            source: Box::new(self),
        }
    }
}
