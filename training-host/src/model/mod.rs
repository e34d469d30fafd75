//! The model side of training: the MLP, the training loop, test metrics and the model
//! store.
//!
//! - [`MlpSpec`] / [`Mlp`]: the strategy's network on candle-nn, weights in a `VarMap`.
//! - [`train()`]: the seeded, cancellable training loop with early stopping and
//!   best-epoch keeping; synchronous, for `tokio::task::spawn_blocking`.
//! - [`evaluate`] / [`TestMetrics`]: accuracy, loss, macro precision/recall/F1 and the
//!   confusion matrix on the test split.
//! - [`ModelStore`] / [`LoadedModel`]: `models/{strategy}/{timeframes}_v{N}/` with
//!   atomic writes and a `latest_{timeframes}` pointer, and loading for prediction.
//!
//! [`crate::pipeline::run_training`] ties these to the feature pipeline.

mod artifacts;
mod config;
mod error;
mod history;
mod loss;
mod metrics;
mod mlp;
mod shown;
mod spec;
mod store;
mod train;

pub use artifacts::{
    CONFIG_FILE, DataSummary, FEATURES_FILE, FeaturesFile, LoadedModel, METADATA_FILE,
    METRICS_FILE, MetadataFile, MetricsFile, ModelArtifacts, ModelConfigFile, WEIGHTS_FILE,
};
pub use config::TrainConfig;
pub use error::TrainError;
pub use history::{EpochMetrics, Progress, TrainingSummary};
pub use loss::class_weights;
pub use metrics::{ClassMetrics, ConfusionMatrix, TestMetrics, evaluate};
pub use mlp::{Mlp, Weights, device_name, select_device};
pub use shown::{PathStyle, resolve_shown, shown_path};
pub use spec::MlpSpec;
pub use store::{ModelStore, SavedModel, timeframe_label, validate_name};
pub use train::{TrainRun, TrainedModel, train};

#[cfg(test)]
mod tests;
