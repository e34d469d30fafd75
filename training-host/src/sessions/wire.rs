//! The KTRDR training host service's request and response bodies (port 5002), field
//! for field: these names are product surface.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /training/start`. Absent options are left out of the JSON rather than sent as
/// `null`, so a KTRDR service sees exactly the keys the caller set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartRequest {
    /// Caller-chosen id; one is generated when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The strategy, as YAML text (KTRDR v2 layout).
    pub strategy_yaml: String,
    /// Overrides the strategy's symbols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
    /// Overrides the strategy's timeframes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeframes: Option<Vec<String>>,
    /// First bar used (ISO date or time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// End of the bars used (ISO date or time, exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

/// Answer to `POST /training/start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartResponse {
    /// The session's id.
    pub session_id: String,
    /// Always `started`.
    pub status: String,
    /// Human summary.
    pub message: String,
    /// Whether a GPU runs this session.
    pub gpu_allocated: bool,
    /// Null here: nothing has been measured when a session starts. The status answer
    /// carries the estimate measured from the session's own throughput once its first
    /// epoch is done (`progress.estimated_duration_minutes`).
    pub estimated_duration_minutes: Option<f64>,
}

/// `POST /training/stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopRequest {
    /// The session to stop.
    pub session_id: String,
    /// Save the best epoch so far as a loadable model.
    #[serde(default)]
    pub save_checkpoint: bool,
}

/// Answer to `POST /training/stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopResponse {
    /// The session.
    pub session_id: String,
    /// Always `stopped`.
    pub status: String,
    /// Human summary.
    pub message: String,
    /// Whether a checkpoint model was written.
    pub checkpoint_saved: bool,
}

/// `progress` of a status answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Current epoch (1-based; 0 before training starts).
    pub epoch: u64,
    /// Epochs planned.
    pub total_epochs: u64,
    /// Current batch within the epoch.
    pub batch: u64,
    /// Batches per epoch.
    pub total_batches: u64,
    /// Overall percentage.
    pub progress_percent: f64,
    /// Samples processed so far.
    pub items_processed: u64,
    /// Samples to process in all.
    pub items_total: u64,
    /// What is happening.
    pub message: Option<String>,
    /// What is being worked on.
    pub current_item: Option<String>,
    /// Samples per second measured in this session (null before its first epoch ends).
    #[serde(default)]
    pub samples_per_second: Option<f64>,
    /// The whole run's expected length from that throughput (null until measured).
    #[serde(default)]
    pub estimated_duration_minutes: Option<f64>,
    /// What is left of it (null until measured).
    #[serde(default)]
    pub estimated_remaining_minutes: Option<f64>,
}

/// `metrics` of a status answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Latest figures (loss, accuracy, ...).
    pub current: Value,
    /// Best figures so far.
    pub best: Value,
}

/// Answer to `GET /training/status/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    /// The session.
    pub session_id: String,
    /// initializing, running, completed, failed or stopped.
    pub status: String,
    /// Where it is.
    pub progress: Progress,
    /// How it is doing.
    pub metrics: Metrics,
    /// GPU figures when a GPU runs the session (`{device}`: candle reports no memory
    /// figures); absent on CPU rather than an invented zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_usage: Option<Value>,
    /// When the session started.
    pub start_time: String,
    /// Last change.
    pub last_updated: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// One entry of `GET /training/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session.
    pub session_id: String,
    /// Its state.
    pub status: String,
    /// When it started.
    pub start_time: String,
    /// Last change.
    pub last_updated: String,
    /// Its progress.
    pub progress: Progress,
    /// Whether a GPU runs it.
    pub gpu_allocated: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// Answer to `GET /training/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionsResponse {
    /// Number of sessions listed.
    pub total_sessions: usize,
    /// The sessions, newest first.
    pub sessions: Vec<SessionSummary>,
    /// When the list was made.
    pub timestamp: String,
}

/// `training_metrics` of a result. A figure that does not exist is `null`, never a
/// made-up number: the final and best figures are `null` when no epoch finished (a
/// stop during the first epoch), the validation ones when there is no validation split.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainingMetrics {
    /// Epochs run.
    pub epochs_trained: u64,
    /// Training loss of the last epoch.
    pub final_train_loss: Option<f64>,
    /// Training accuracy of the last epoch.
    pub final_train_accuracy: Option<f64>,
    /// Best training accuracy.
    pub best_train_accuracy: Option<f64>,
    /// Seconds spent training.
    pub training_time: f64,
    /// Per-epoch figures.
    pub history: Value,
    /// Validation loss of the last epoch.
    pub final_val_loss: Option<f64>,
    /// Validation accuracy of the last epoch.
    pub final_val_accuracy: Option<f64>,
    /// Best validation accuracy.
    pub best_val_accuracy: Option<f64>,
}

/// `test_metrics` of a result: every figure `null` when the test split has no rows,
/// with `message` saying so (addition to the contract, as is `samples`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TestMetrics {
    /// Accuracy on the test split.
    pub test_accuracy: Option<f64>,
    /// Loss on the test split.
    pub test_loss: Option<f64>,
    /// Macro precision.
    pub precision: Option<f64>,
    /// Macro recall.
    pub recall: Option<f64>,
    /// Macro F1.
    pub f1_score: Option<f64>,
    /// Rows evaluated (absent in results stored before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Why there are no figures, when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `model_info` of a result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelInfo {
    /// All parameters.
    pub parameters_count: u64,
    /// Trainable parameters.
    pub trainable_parameters: u64,
    /// Layer description.
    pub architecture: Value,
}

/// `data_summary` of a result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataSummary {
    /// Symbols trained on.
    pub symbols: Vec<String>,
    /// Timeframes used.
    pub timeframes: Vec<String>,
    /// First bar used.
    pub start_date: Option<String>,
    /// End of the bars used.
    pub end_date: Option<String>,
    /// Samples after feature engineering (all splits).
    pub total_samples: u64,
    /// Features per sample.
    pub feature_count: u64,
    /// Samples per split (additions; absent in results stored before they existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_samples: Option<u64>,
    /// Validation samples (0: no validation split, its figures are `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_samples: Option<u64>,
    /// Test samples (0: no test split, `test_metrics` figures are `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_samples: Option<u64>,
    /// Where the range of bars requested came from (addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_range: Option<RangeOrigin>,
}

/// Where each end of a session's range of bars came from (see [`DateSource`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RangeOrigin {
    /// Origin of the first instant asked for.
    pub start: DateSource,
    /// Origin of the end asked for.
    pub end: DateSource,
}

/// Who chose one end of the range of bars a session trains on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    /// `start_date` / `end_date` of the start request.
    Request,
    /// `training_data.start_date` / `end_date` of the strategy YAML.
    Strategy,
    /// Neither gave one: the first bar available (start) or now (end).
    Data,
}

/// What a finished training produced: the body of `GET /training/result/{id}` less
/// `session_id` and `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainingResult {
    /// Where the model was saved.
    pub model_path: Option<String>,
    /// Training figures.
    pub training_metrics: TrainingMetrics,
    /// Test-split figures.
    pub test_metrics: TestMetrics,
    /// Files written.
    pub artifacts: Value,
    /// The model.
    pub model_info: ModelInfo,
    /// The data.
    pub data_summary: DataSummary,
}

/// Answer to `GET /training/result/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultResponse {
    /// The session.
    pub session_id: String,
    /// completed (or stopped with a checkpoint).
    pub status: String,
    /// The result fields.
    #[serde(flatten)]
    pub result: TrainingResult,
}
