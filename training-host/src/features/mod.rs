//! The feature pipeline: from data-host bars frames to the matrices an MLP trains on.
//!
//! - [`indicators`]: sma, ema, rsi, macd, bbands, atr, roc, stochastic on f64 slices.
//! - [`fuzzy`]: triangular, trapezoidal and gaussian memberships.
//! - `lags`: lookback lags.
//! - [`align`]: multi-timeframe alignment (closed higher bars only, no look-ahead).
//! - [`scaling`]: the train-fitted, serialisable z-score [`Scaler`].
//! - `pipeline`: [`build_dataset`] for training, [`features_for_inference`] for a
//!   predictor, [`compute_features`] for inspection.
//!
//! polars is used for I/O only (the bars frame); the math runs on plain slices so each
//! value is exactly its textbook definition.

pub mod align;
mod dataset;
mod error;
mod frame;
pub mod fuzzy;
pub mod indicators;
mod lags;
mod pipeline;
pub mod scaling;

pub use dataset::{Dataset, InferenceFeatures, Split, SymbolCounts, SymbolSegment};
pub use error::FeatureError;
pub use frame::{FeatureFrame, Ohlc};
pub use pipeline::{
    build_dataset, compute_features, feature_names, features_for_inference, features_from_ohlc,
};
pub use scaling::Scaler;
