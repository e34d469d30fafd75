//! training-host: the model-training host service (KTRDR training host contract, port 5002).
//!
//! Backend services start training sessions over HTTP (`/training/*`, the KTRDR
//! contract); each session trains the strategy's MLP on the host's CPU (or GPU with
//! the `cuda` feature, untested) and saves a versioned model. The pieces:
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
//! - [`model`]: the MLP on candle, the seeded and cancellable training loop, test
//!   metrics and the versioned model store with loading for prediction.
//! - [`pipeline`]: [`run_training`], dataset → train → evaluate → save in one call.
//! - [`sessions`]: sessions as persisted operations (start, status, stop with a
//!   checkpoint, result, list, delete, a concurrent-session limit); [`trainer`] runs
//!   them with [`run_training`].
//! - [`api`] and [`service`]: the :5002 routes on the shared server scaffold.
//! - [`client`]: [`client::TrainingHostClient`], the typed client of a training-host (or
//!   a KTRDR training host service) over those routes.

pub mod api;
pub mod client;
pub mod features;
pub mod labels;
pub mod model;
pub mod pipeline;
pub mod service;
pub mod sessions;
pub mod split;
pub mod strategy;
pub mod trainer;

pub use model::{LoadedModel, ModelStore, TrainError};
pub use pipeline::{RunOptions, StopHandle, TrainingOutcome, run_training};

/// Name this service reports in `/health`.
pub const SERVICE_NAME: &str = "training-host";
