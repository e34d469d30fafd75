//! The feature pipeline: from data-host bars frames to the matrices an MLP trains on.
//!
//! - [`indicators`]: sma, ema, rsi, macd, bbands, atr, roc, stochastic on f64 slices.
//! - [`fuzzy`]: triangular, trapezoidal and gaussian memberships.
//! - [`lags`]: lookback lags.
//! - [`align`]: multi-timeframe alignment (closed higher bars only, no look-ahead).
//! - [`scaling`]: the train-fitted, serialisable z-score [`Scaler`].
//! - `pipeline`: [`build_dataset`] for training, [`features_for_inference`] for a
//!   predictor, [`compute_features`] for inspection.
//!
//! polars is used for I/O only (the bars frame); the math runs on plain slices, O(n) per
//! column whatever the periods (issue 16), each value its textbook definition to within
//! a few ulps (`reference` keeps the textbook loops the tests compare against).

pub mod align;
mod dataset;
mod error;
mod frame;
pub mod fuzzy;
pub mod indicators;
pub mod lags;
mod pipeline;
#[doc(hidden)]
pub mod reference;
pub mod scaling;

pub use dataset::{Dataset, InferenceFeatures, Split, SymbolCounts, SymbolSegment};
pub use error::FeatureError;
pub use frame::{FeatureFrame, Ohlc};
pub use pipeline::{
    build_dataset, compute_features, feature_names, features_for_inference, features_from_ohlc,
};
pub use scaling::Scaler;
