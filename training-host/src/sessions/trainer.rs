//! The seam between sessions and the model code: a [`Trainer`] runs one training
//! job synchronously (it is CPU work, run inside `spawn_blocking`), reports progress
//! after every batch and honours its cancellation token between batches.

use std::collections::BTreeMap;
use std::path::PathBuf;

use data_host::{Symbol, Timeframe};
use polars::prelude::DataFrame;
use serde_json::Value;

use super::wire::TrainingResult;
use crate::pipeline::StopHandle;
use crate::strategy::Strategy;

/// What one session trains.
#[derive(Debug)]
pub struct TrainJob {
    /// The strategy with overrides applied.
    pub strategy: Strategy,
    /// Bars per symbol and timeframe.
    pub bars: BTreeMap<(Symbol, Timeframe), DataFrame>,
    /// Root of the model store.
    pub models_dir: PathBuf,
}

/// Where a training run is, reported after every batch.
#[derive(Debug, Clone, Default)]
pub struct BatchProgress {
    /// 1-based epoch.
    pub epoch: u64,
    /// Epochs planned.
    pub total_epochs: u64,
    /// 1-based batch within the epoch.
    pub batch: u64,
    /// Batches per epoch.
    pub total_batches: u64,
    /// Samples processed so far (all epochs).
    pub items_processed: u64,
    /// Samples to process in all.
    pub items_total: u64,
    /// Latest figures (loss, accuracy).
    pub current: Value,
    /// Best figures so far.
    pub best: Value,
}

/// How a session steers a running job.
pub struct TrainControl {
    /// Cancelled when the session is stopped (checked between batches); says whether
    /// the stop asked for a checkpoint.
    pub stop: StopHandle,
    /// Called after every batch.
    pub progress: Box<dyn FnMut(&BatchProgress) + Send>,
}

impl std::fmt::Debug for TrainControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainControl")
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

/// How a job ended when it did not fail.
#[derive(Debug, Clone)]
pub enum TrainOutcome {
    /// All epochs (or early stopping) ran; the model is saved.
    Completed(TrainingResult),
    /// Stopped by its token; `checkpoint` is the best epoch so far when one was saved.
    Stopped {
        /// The saved checkpoint's result, if `save_checkpoint` was set.
        checkpoint: Option<TrainingResult>,
    },
}

/// Runs training jobs.
pub trait Trainer: Send + Sync + std::fmt::Debug {
    /// `cpu` or `cuda:N`.
    fn device(&self) -> String;

    /// Trains `job` to the end, a stop, or an error (the message is shown to clients).
    /// Blocking: call it from `spawn_blocking`.
    fn train(&self, job: TrainJob, control: TrainControl) -> Result<TrainOutcome, String>;
}
