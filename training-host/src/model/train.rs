//! The training loop.
//!
//! [`train`] is synchronous, CPU-bound work: an async caller runs it inside
//! `tokio::task::spawn_blocking` (it never awaits and never touches a runtime). It
//! checks the [`CancellationToken`] before every batch, so a cancel is honoured within
//! one batch; the caller gets [`TrainRun::Stopped`] holding the best epoch so far,
//! which is a complete model it can save as a checkpoint.
//!
//! Determinism: one seed drives weight initialisation, the per-epoch shuffle of the
//! training rows and the dropout masks (three independent streams of
//! [`SplitMix64`]), so the same seed, data and configuration give bit-identical
//! weights and losses on the CPU.
//!
//! Best-epoch keeping: after every epoch the monitored loss (validation loss, or
//! training loss without a validation split) is compared with the best so far; on a
//! strict improvement the weights are copied aside. The model returned, and any
//! checkpoint, holds those weights, not the last epoch's.

use std::time::Instant;

use candle_core::{Device, Tensor};
use tokio_util::sync::CancellationToken;

use super::TrainError;
use super::config::{Stepper, TrainConfig};
use super::history::{EarlyStopper, EpochMetrics, Progress, TrainingSummary};
use super::loss::{LossTally, batch_loss, class_weights};
use super::mlp::{Mlp, Weights, device_name};
use super::spec::MlpSpec;
use crate::features::Split;
use crate::labels::Label;
use host_service_base::SplitMix64;

/// A trained network and how it got there.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// The architecture.
    pub spec: MlpSpec,
    /// The best epoch's weights (the current ones if no epoch finished).
    pub weights: Weights,
    /// One entry per finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Epoch whose weights are kept, `None` when no epoch finished.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended training.
    pub early_stopped: bool,
    /// Loss weight per class (all ones when class weighting is off).
    pub class_weights: [f64; Label::COUNT],
    /// Where it was trained (`cpu`, `cuda:0`).
    pub device: String,
    /// Seconds spent in [`train`].
    pub training_time_secs: f64,
    /// The seed used.
    pub seed: u64,
}

impl TrainedModel {
    /// The network with the kept weights, for prediction.
    pub fn network(&self, device: &Device) -> Result<Mlp, TrainError> {
        Mlp::from_weights(&self.spec, &self.weights, device)
    }

    /// Final and best figures of the history.
    pub fn summary(&self) -> TrainingSummary {
        TrainingSummary::new(
            &self.history,
            self.best_epoch,
            self.early_stopped,
            self.training_time_secs,
        )
    }
}

/// How training ended.
#[derive(Debug, Clone)]
pub enum TrainRun {
    /// All epochs ran, or early stopping ended training.
    Completed(TrainedModel),
    /// The token was cancelled; the best epoch so far (or, before the first epoch
    /// finished, the partly trained weights) is kept for a checkpoint.
    Stopped {
        /// The model to checkpoint.
        best_so_far: TrainedModel,
    },
}

impl TrainRun {
    /// The model, however training ended.
    pub fn model(&self) -> &TrainedModel {
        match self {
            Self::Completed(m) | Self::Stopped { best_so_far: m } => m,
        }
    }

    /// Whether training was cancelled.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped { .. })
    }
}

fn check_split(name: &str, split: &Split, n_features: usize) -> Result<(), TrainError> {
    if split.n_features != n_features || split.x.len() != split.len() * n_features {
        return Err(TrainError::InvalidInput(format!(
            "{name} split: {} values for {} rows of {} features, the network takes {n_features}",
            split.x.len(),
            split.len(),
            split.n_features
        )));
    }
    match split.y.iter().find(|&&y| y as usize >= Label::COUNT) {
        Some(y) => Err(TrainError::InvalidInput(format!(
            "{name} split: class {y} is not 0, 1 or 2"
        ))),
        None => Ok(()),
    }
}

/// Trains `spec` on `train`, validating on `validation` after every epoch. Runs
/// synchronously on the calling thread: call it from `spawn_blocking`. `progress` is
/// called after every batch.
pub fn train(
    spec: &MlpSpec,
    config: &TrainConfig,
    train: &Split,
    validation: &Split,
    device: &Device,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TrainRun, TrainError> {
    let started = Instant::now();
    config.validate()?;
    spec.validate()?;
    check_split("train", train, spec.n_features)?;
    check_split("validation", validation, spec.n_features)?;
    if train.is_empty() {
        return Err(TrainError::InvalidInput(
            "the train split has no rows".into(),
        ));
    }
    let mut root = SplitMix64::new(config.seed);
    let model = Mlp::new(spec, device, root.next_u64())?;
    let mut shuffle_rng = root.fork(1);
    let mut dropout_rng = root.fork(2);
    let loss_weights = if config.class_weights {
        class_weights(train.class_counts())
    } else {
        [1.0; Label::COUNT]
    };
    let mut stepper = Stepper::new(config, model.varmap().all_vars())?;
    let mut stopper = config
        .early_stopping
        .map(|e| EarlyStopper::new(e.patience, e.min_delta));

    let (n, nf) = (train.len(), spec.n_features);
    let total_batches = n.div_ceil(config.batch_size);
    let mut order: Vec<usize> = (0..n).collect();
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut best: Option<(EpochMetrics, Weights)> = None;
    let mut early_stopped = false;
    let finish = |weights: Weights, history, best_epoch, early_stopped| TrainedModel {
        spec: spec.clone(),
        weights,
        history,
        best_epoch,
        early_stopped,
        class_weights: loss_weights,
        device: device_name(device),
        training_time_secs: started.elapsed().as_secs_f64(),
        seed: config.seed,
    };

    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        shuffle_rng.shuffle(&mut order);
        let mut tally = LossTally::default();
        for (b, rows) in order.chunks(config.batch_size).enumerate() {
            if cancel.is_cancelled() {
                let (weights, best_epoch) = match best {
                    Some((m, w)) => (w, Some(m.epoch)),
                    None => (model.weights()?, None),
                };
                let best_so_far = finish(weights, history, best_epoch, false);
                tracing::info!(epoch, batch = b + 1, "training cancelled");
                return Ok(TrainRun::Stopped { best_so_far });
            }
            let mut xb = Vec::with_capacity(rows.len() * nf);
            let mut yb = Vec::with_capacity(rows.len());
            for &i in rows {
                xb.extend_from_slice(&train.x[i * nf..(i + 1) * nf]);
                yb.push(train.y[i]);
            }
            let x = Tensor::from_vec(xb, (rows.len(), nf), device)?;
            let y = Tensor::from_slice(&yb, rows.len(), device)?;
            let logits = model.forward(&x, Some(&mut dropout_rng))?;
            let row_weights: Option<Vec<f32>> = config.class_weights.then(|| {
                yb.iter()
                    .map(|&c| loss_weights[c as usize] as f32)
                    .collect()
            });
            let loss = batch_loss(&logits, &y, row_weights.as_deref())?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    epoch,
                    batch: b + 1,
                });
            }
            stepper.backward_step(&loss)?;
            // Loss and accuracy of the batch as it was seen (before this step).
            let seen = LossTally::of(&logits.flatten_all()?.to_vec1::<f32>()?, &yb, &loss_weights);
            tally.correct += seen.correct;
            tally.rows += seen.rows;
            tally.weighted_loss += value * seen.weight;
            tally.weight += seen.weight;
            progress(&Progress {
                epoch,
                total_epochs: config.epochs,
                batch: b + 1,
                total_batches,
                items_processed: (epoch - 1) * n + tally.rows,
                items_total: config.epochs * n,
                train_loss_so_far: tally.loss().unwrap_or(0.0),
                train_accuracy_so_far: tally.accuracy().unwrap_or(0.0),
                last_epoch: history.last().copied(),
                best_epoch: best.as_ref().map(|(m, _)| *m),
            });
        }
        let val = LossTally::of(&model.logits(&validation.x)?, &validation.y, &loss_weights);
        let metrics = EpochMetrics {
            epoch,
            train_loss: tally.loss().unwrap_or(0.0),
            train_accuracy: tally.accuracy().unwrap_or(0.0),
            val_loss: val.loss(),
            val_accuracy: val.accuracy(),
            duration_secs: epoch_started.elapsed().as_secs_f64(),
        };
        tracing::debug!(?metrics, "epoch finished");
        history.push(metrics);
        let monitored = metrics.monitored_loss();
        if best
            .as_ref()
            .is_none_or(|(b, _)| monitored < b.monitored_loss())
        {
            best = Some((metrics, model.weights()?));
        }
        if stopper.as_mut().is_some_and(|s| s.should_stop(monitored)) {
            early_stopped = true;
            break;
        }
    }
    let (weights, best_epoch) = match best {
        Some((m, w)) => (w, Some(m.epoch)),
        None => (model.weights()?, None),
    };
    Ok(TrainRun::Completed(finish(
        weights,
        history,
        best_epoch,
        early_stopped,
    )))
}
