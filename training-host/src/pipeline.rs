//! The whole training run in one call: [`run_training`] builds the dataset from the
//! strategy and bars, trains, evaluates on the test split and saves the model.
//!
//! Like [`crate::model::train()`] it is synchronous CPU work: run it inside
//! `tokio::task::spawn_blocking`. Stopping goes through a [`StopHandle`]: its
//! cancellation token is checked between batches, and whether the best epoch so far is
//! saved as a checkpoint is decided by the `save_checkpoint` flag given to
//! [`StopHandle::stop`] at stop time (as `POST /training/stop` carries it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use data_host::{Symbol, Timeframe};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::features::{Dataset, build_dataset};
use crate::model::{
    DataSummary, EpochMetrics, FeaturesFile, MetadataFile, MetricsFile, MlpSpec, ModelArtifacts,
    ModelConfigFile, ModelStore, Progress, TestMetrics, TrainConfig, TrainError, TrainRun,
    TrainedModel, TrainingSummary, evaluate, select_device, timeframe_label, train, validate_name,
};
use crate::strategy::Strategy;

/// Called after every training batch.
pub type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// Stops a run: cancels its token and says whether to keep a checkpoint. Clones share
/// the same state.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    token: CancellationToken,
    save_checkpoint: Arc<AtomicBool>,
}

impl StopHandle {
    /// A handle on an existing token (e.g. an operation's).
    pub fn new(token: CancellationToken) -> Self {
        Self {
            token,
            save_checkpoint: Arc::default(),
        }
    }

    /// Asks the run to stop at the next batch boundary, keeping the best epoch so far
    /// as a saved checkpoint when `save_checkpoint` is true.
    pub fn stop(&self, save_checkpoint: bool) {
        // Set before cancelling, so the run sees the flag once it sees the cancel.
        self.save_checkpoint
            .store(save_checkpoint, Ordering::SeqCst);
        self.token.cancel();
    }

    /// The token the run checks.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Whether the stop asked for a checkpoint.
    pub fn save_checkpoint(&self) -> bool {
        self.save_checkpoint.load(Ordering::SeqCst)
    }
}

/// Options of [`run_training`].
pub struct RunOptions {
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// How the run is stopped.
    pub stop: StopHandle,
    /// Balanced class weights in the loss (recommended; see `model::class_weights`).
    pub class_weights: bool,
    /// Called after every batch.
    pub progress: Option<ProgressFn>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            stop: StopHandle::default(),
            class_weights: true,
            progress: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("seed", &self.seed)
            .field("stop", &self.stop)
            .field("class_weights", &self.class_weights)
            .field(
                "progress",
                &self.progress.as_ref().map(|_| "FnMut(&Progress)"),
            )
            .finish()
    }
}

/// The contract's `model_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// All parameters.
    pub parameters_count: usize,
    /// Trainable parameters (all of them).
    pub trainable_parameters: usize,
    /// Layer description.
    pub architecture: String,
    /// Training device.
    pub device: String,
}

/// What a finished (or checkpointed) run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingOutcome {
    /// The saved model directory.
    pub model_path: PathBuf,
    /// Its version number.
    pub version: u32,
    /// One entry per epoch run.
    pub history: Vec<EpochMetrics>,
    /// The contract's `training_metrics`.
    pub training: TrainingSummary,
    /// The contract's `test_metrics` (`None` without test rows).
    pub test_metrics: Option<TestMetrics>,
    /// The contract's `model_info`.
    pub model_info: ModelInfo,
    /// The contract's `data_summary`.
    pub data_summary: DataSummary,
    /// Whether the run was stopped (the model is then a checkpoint).
    pub stopped: bool,
}

/// Builds the dataset, trains, evaluates on the test split and saves the model under
/// `models_dir`. A stop with `save_checkpoint` saves the best epoch so far as a
/// checkpoint version and returns it with `stopped: true`; a stop without it returns
/// [`TrainError::Cancelled`]. Synchronous: call it from `spawn_blocking`.
pub fn run_training(
    strategy: &Strategy,
    bars: &BTreeMap<(Symbol, Timeframe), DataFrame>,
    models_dir: &Path,
    options: RunOptions,
) -> Result<TrainingOutcome, TrainError> {
    // Fail on a name the store would refuse before spending time on training.
    validate_name("strategy name", &strategy.name)?;
    if options.stop.is_stopped() {
        return Err(TrainError::Cancelled);
    }
    let dataset = build_dataset(strategy, bars)?;
    let spec = MlpSpec::new(&strategy.model.architecture, dataset.n_features());
    let mut config = TrainConfig::from_hyperparameters(&strategy.model.training, options.seed);
    config.class_weights = options.class_weights;
    let device = select_device();
    let mut callback = options.progress;
    let mut on_progress = |p: &Progress| {
        if let Some(f) = callback.as_mut() {
            f(p);
        }
    };
    let run = train(
        &spec,
        &config,
        &dataset.train,
        &dataset.validation,
        &device,
        options.stop.token(),
        &mut on_progress,
    )?;
    let stopped = run.is_stopped();
    if stopped && !options.stop.save_checkpoint() {
        return Err(TrainError::Cancelled);
    }
    let model = match run {
        TrainRun::Completed(m) | TrainRun::Stopped { best_so_far: m } => m,
    };
    let test_metrics = evaluate(
        &model.network(&device)?,
        &dataset.test,
        &model.class_weights,
    )?;
    let artifacts = model_artifacts(strategy, &dataset, &model, test_metrics, stopped);
    let saved = ModelStore::new(models_dir).save(&artifacts)?;
    Ok(TrainingOutcome {
        model_path: saved.path,
        version: saved.version,
        history: artifacts.metrics.history,
        training: artifacts.metrics.training,
        test_metrics: artifacts.metrics.test_metrics,
        model_info: ModelInfo {
            parameters_count: spec.parameters_count(),
            trainable_parameters: spec.parameters_count(),
            architecture: spec.architecture(),
            device: model.device,
        },
        data_summary: artifacts.metadata.data_summary,
        stopped,
    })
}

/// What the data was: symbols, timeframes, first and last row, sizes.
pub fn data_summary(strategy: &Strategy, dataset: &Dataset) -> DataSummary {
    let time = |ms: Option<i64>| ms.and_then(DateTime::<Utc>::from_timestamp_millis);
    DataSummary {
        symbols: dataset
            .per_symbol
            .iter()
            .map(|s| s.symbol.to_string())
            .collect(),
        timeframes: strategy.training_data.timeframes.clone(),
        start_date: time(
            dataset
                .per_symbol
                .iter()
                .filter_map(|s| s.first_timestamp)
                .min(),
        ),
        end_date: time(
            dataset
                .per_symbol
                .iter()
                .filter_map(|s| s.last_timestamp)
                .max(),
        ),
        total_samples: dataset.total_rows(),
        feature_count: dataset.n_features(),
        train_samples: dataset.train.len(),
        validation_samples: dataset.validation.len(),
        test_samples: dataset.test.len(),
        train_class_counts: dataset.train.class_counts(),
    }
}

/// The files of a model directory for `model` trained on `dataset` (a checkpoint when
/// `checkpoint`), ready for [`ModelStore::save`].
pub fn model_artifacts(
    strategy: &Strategy,
    dataset: &Dataset,
    model: &TrainedModel,
    test_metrics: Option<TestMetrics>,
    checkpoint: bool,
) -> ModelArtifacts {
    let spec = &model.spec;
    ModelArtifacts {
        weights: model.weights.clone(),
        config: ModelConfigFile {
            model_type: "mlp".to_owned(),
            strategy_name: strategy.name.clone(),
            symbols: strategy
                .training_data
                .symbols
                .iter()
                .map(ToString::to_string)
                .collect(),
            timeframes: strategy.training_data.timeframes.clone(),
            base_timeframe: strategy.training_data.base_timeframe,
            spec: spec.clone(),
            architecture: spec.architecture(),
            parameters_count: spec.parameters_count(),
            strategy: strategy.clone(),
        },
        metrics: MetricsFile {
            training: model.summary(),
            history: model.history.clone(),
            test_metrics,
            class_weights: model.class_weights,
        },
        features: FeaturesFile {
            feature_names: dataset.feature_names.clone(),
            scaler: dataset.scaler.clone(),
        },
        metadata: MetadataFile {
            created_at: Utc::now(),
            hostbridge_version: env!("CARGO_PKG_VERSION").to_owned(),
            device: model.device.clone(),
            training_time_secs: model.training_time_secs,
            seed: model.seed,
            best_epoch: model.best_epoch,
            checkpoint,
            data_summary: data_summary(strategy, dataset),
        },
    }
}

/// The store directory label of a strategy's timeframes (`1d`, `1h-1d`), to find its
/// models with [`ModelStore::latest`].
pub fn model_label(strategy: &Strategy) -> String {
    timeframe_label(&strategy.training_data.timeframes)
}
