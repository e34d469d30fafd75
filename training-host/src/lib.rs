//! training-host: the model-training host service (KTRDR training host contract, port 5002).
//!
//! What exists today is the data side of training, as a library:
//!
//! - [`strategy`]: the KTRDR v2 strategy YAML parsed into typed, validated structs
//!   ([`strategy::parse_strategy`]); every error names its key path and all of them are
//!   reported at once. Runtime overrides (symbols, timeframes, dates) are applied by
//!   [`strategy::apply_overrides`].
//! - [`features`]: bars → indicators → fuzzy memberships → lookback lags, with
//!   multi-timeframe alignment that never looks ahead; [`features::build_dataset`] turns
//!   bars of several symbols into a chronologically split, train-fitted-scaled
//!   [`features::Dataset`] an MLP trainer consumes directly, and
//!   [`features::features_for_inference`] runs the same pipeline for a predictor.
//! - [`labels`]: zigzag labels (0 BUY, 1 HOLD, 2 SELL).
//! - [`split`]: the chronological train/validation/test split.
//!
//! The MLP training sessions, the model store and the HTTP service build on this API.

pub mod features;
pub mod labels;
pub mod split;
pub mod strategy;

/// Name this service reports in `/health`.
pub const SERVICE_NAME: &str = "training-host";
