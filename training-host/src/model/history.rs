//! What training reports: per-epoch metrics, per-batch progress, the summary the
//! `/training/result` contract needs, and the early-stopping rule.

use serde::{Deserialize, Serialize};

/// Metrics of one finished epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean (class-weighted) training loss over the epoch's batches, measured in
    /// training mode (with dropout) as each batch was seen.
    pub train_loss: f64,
    /// Accuracy on the training batches as they were seen (training mode).
    pub train_accuracy: f64,
    /// Validation loss after the epoch (evaluation mode); `None` without validation rows.
    pub val_loss: Option<f64>,
    /// Validation accuracy after the epoch; `None` without validation rows.
    pub val_accuracy: Option<f64>,
    /// Seconds the epoch took (informational).
    pub duration_secs: f64,
}

impl EpochMetrics {
    /// The loss early stopping and best-epoch keeping watch: validation loss, or the
    /// training loss when there is no validation split.
    pub fn monitored_loss(&self) -> f64 {
        self.val_loss.unwrap_or(self.train_loss)
    }
}

/// Reported after every training batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based epoch in progress.
    pub epoch: usize,
    /// Epochs configured (early stopping may end sooner).
    pub total_epochs: usize,
    /// 1-based batch just finished.
    pub batch: usize,
    /// Batches per epoch.
    pub total_batches: usize,
    /// Training rows processed since the start, over all epochs.
    pub items_processed: usize,
    /// `total_epochs × training rows`.
    pub items_total: usize,
    /// Mean training loss of this epoch's batches so far.
    pub train_loss_so_far: f64,
    /// Training accuracy of this epoch's batches so far.
    pub train_accuracy_so_far: f64,
    /// The last finished epoch, if any.
    pub last_epoch: Option<EpochMetrics>,
    /// The best finished epoch so far (lowest monitored loss), if any.
    pub best_epoch: Option<EpochMetrics>,
}

impl Progress {
    /// Percent of all configured work done, in `[0, 100]`.
    pub fn percent(&self) -> f64 {
        if self.items_total == 0 {
            return 0.0;
        }
        (100.0 * self.items_processed as f64 / self.items_total as f64).min(100.0)
    }
}

/// The `training_metrics` of a result: final and best figures of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs run.
    pub epochs_trained: usize,
    /// Epoch whose weights were kept (1-based), `None` when no epoch finished.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended training.
    pub early_stopped: bool,
    /// Training loss of the last epoch.
    pub final_train_loss: Option<f64>,
    /// Training accuracy of the last epoch.
    pub final_train_accuracy: Option<f64>,
    /// Best training accuracy of any epoch.
    pub best_train_accuracy: Option<f64>,
    /// Validation loss of the last epoch.
    pub final_val_loss: Option<f64>,
    /// Validation accuracy of the last epoch.
    pub final_val_accuracy: Option<f64>,
    /// Best validation accuracy of any epoch.
    pub best_val_accuracy: Option<f64>,
    /// Lowest validation loss of any epoch.
    pub best_val_loss: Option<f64>,
    /// Seconds spent training.
    pub training_time: f64,
}

impl TrainingSummary {
    /// Summarises `history`.
    pub fn new(
        history: &[EpochMetrics],
        best_epoch: Option<usize>,
        early_stopped: bool,
        training_time: f64,
    ) -> Self {
        let last = history.last();
        let max =
            |f: fn(&EpochMetrics) -> Option<f64>| history.iter().filter_map(f).reduce(f64::max);
        Self {
            epochs_trained: history.len(),
            best_epoch,
            early_stopped,
            final_train_loss: last.map(|e| e.train_loss),
            final_train_accuracy: last.map(|e| e.train_accuracy),
            best_train_accuracy: max(|e| Some(e.train_accuracy)),
            final_val_loss: last.and_then(|e| e.val_loss),
            final_val_accuracy: last.and_then(|e| e.val_accuracy),
            best_val_accuracy: max(|e| e.val_accuracy),
            best_val_loss: history.iter().filter_map(|e| e.val_loss).reduce(f64::min),
            training_time,
        }
    }
}

/// Keras-style early stopping: stop after `patience` epochs without the monitored loss
/// improving on its best by more than `min_delta`.
#[derive(Debug, Clone)]
pub(crate) struct EarlyStopper {
    patience: usize,
    min_delta: f64,
    best: f64,
    waited: usize,
}

impl EarlyStopper {
    pub(crate) fn new(patience: usize, min_delta: f64) -> Self {
        Self {
            patience,
            min_delta,
            best: f64::INFINITY,
            waited: 0,
        }
    }

    /// Records an epoch's loss; `true` when training should stop.
    pub(crate) fn should_stop(&mut self, loss: f64) -> bool {
        if loss < self.best - self.min_delta {
            self.best = loss;
            self.waited = 0;
            false
        } else {
            self.waited += 1;
            self.waited >= self.patience
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, train: f64, val: Option<f64>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: train,
            train_accuracy: 1.0 / train,
            val_loss: val,
            val_accuracy: val.map(|v| 1.0 / v),
            duration_secs: 0.0,
        }
    }

    #[test]
    fn early_stopping_counts_epochs_without_enough_improvement() {
        let mut s = EarlyStopper::new(2, 0.1);
        assert!(!s.should_stop(1.0));
        assert!(!s.should_stop(0.95)); // not better by more than 0.1: wait 1
        assert!(!s.should_stop(0.85)); // better than 1.0 - 0.1: reset
        assert!(!s.should_stop(0.80));
        assert!(s.should_stop(0.84));
    }

    #[test]
    fn summary_picks_final_and_best_values() {
        let h = [
            epoch(1, 2.0, Some(4.0)),
            epoch(2, 1.0, Some(2.0)),
            epoch(3, 1.25, Some(5.0)),
        ];
        let s = TrainingSummary::new(&h, Some(2), true, 3.5);
        assert_eq!(s.epochs_trained, 3);
        assert_eq!(s.final_train_loss, Some(1.25));
        assert_eq!(s.best_train_accuracy, Some(1.0));
        assert_eq!(s.final_val_accuracy, Some(0.2));
        assert_eq!(s.best_val_accuracy, Some(0.5));
        assert_eq!(s.best_val_loss, Some(2.0));
        assert_eq!(h[0].monitored_loss(), 4.0);
        assert_eq!(epoch(1, 2.0, None).monitored_loss(), 2.0);
        let empty = TrainingSummary::new(&[], None, false, 0.0);
        assert_eq!(
            (empty.final_train_loss, empty.best_val_accuracy),
            (None, None)
        );
    }
}
