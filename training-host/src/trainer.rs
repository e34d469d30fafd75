//! The candle-backed [`Trainer`] that sessions run: [`run_training`] with progress
//! and stops wired to the session, and its outcome in the contract's result shape.

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::TrainError;
use crate::model::{device_name, select_device};
use crate::pipeline::{RunOptions, TrainingOutcome, run_training};
use crate::sessions::wire::{DataSummary, ModelInfo, TestMetrics, TrainingMetrics, TrainingResult};
use crate::sessions::{BatchProgress, TrainControl, TrainJob, TrainOutcome, Trainer};

/// Finished epochs the progress carries (`metrics.current.recent_epochs`), newest
/// last: a client sampling the status (the gateway polls every 200 ms) sees every
/// epoch in order as long as fewer than this many finish between two samples.
pub const RECENT_EPOCHS: usize = 32;

/// The last [`RECENT_EPOCHS`] finished epochs as the status shows them; rebuilt only
/// when an epoch finishes, not on every batch.
#[derive(Debug)]
struct RecentEpochs {
    epochs: VecDeque<Value>,
    last: Option<usize>,
    shown: Value,
}

impl Default for RecentEpochs {
    fn default() -> Self {
        Self {
            epochs: VecDeque::with_capacity(RECENT_EPOCHS),
            last: None,
            shown: Value::Array(Vec::new()),
        }
    }
}

impl RecentEpochs {
    fn note(&mut self, last: Option<&crate::model::EpochMetrics>) -> &Value {
        if let Some(e) = last
            && self.last != Some(e.epoch)
        {
            self.last = Some(e.epoch);
            if self.epochs.len() == RECENT_EPOCHS {
                self.epochs.pop_front();
            }
            self.epochs.push_back(figures(Some(e)));
            self.shown = Value::Array(self.epochs.iter().cloned().collect());
        }
        &self.shown
    }
}

/// Trains the strategy's MLP with candle (CPU; CUDA with the `cuda` feature).
#[derive(Debug, Clone)]
pub struct CandleTrainer {
    seed: u64,
}

impl CandleTrainer {
    /// A trainer whose runs are reproducible from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

impl Default for CandleTrainer {
    fn default() -> Self {
        Self::new(42)
    }
}

fn figures(epoch: Option<&crate::model::EpochMetrics>) -> Value {
    epoch.map_or(Value::Null, |e| {
        json!({
            "epoch": e.epoch,
            "train_loss": e.train_loss,
            "train_accuracy": e.train_accuracy,
            "val_loss": e.val_loss,
            "val_accuracy": e.val_accuracy,
        })
    })
}

/// The contract's `test_metrics`: the figures of the test split, or `null` figures and
/// a message saying why there are none.
fn test_metrics(test: Option<&crate::model::TestMetrics>, test_rows: usize) -> TestMetrics {
    match test {
        Some(m) => TestMetrics {
            test_accuracy: Some(m.test_accuracy),
            test_loss: Some(m.test_loss),
            precision: Some(m.precision),
            recall: Some(m.recall),
            f1_score: Some(m.f1_score),
            samples: Some(m.samples as u64),
            message: None,
        },
        None => TestMetrics {
            samples: Some(test_rows as u64),
            message: Some(
                "no test split: the test part of training.data_split has no rows, so there are no test figures"
                    .to_owned(),
            ),
            ..TestMetrics::default()
        },
    }
}

/// The contract's result fields from a run's outcome.
pub fn result_of(outcome: &TrainingOutcome) -> TrainingResult {
    let t = &outcome.training;
    let test = outcome.test_metrics.as_ref();
    TrainingResult {
        model_path: Some(outcome.model_path.display().to_string()),
        training_metrics: TrainingMetrics {
            epochs_trained: t.epochs_trained as u64,
            final_train_loss: t.final_train_loss,
            final_train_accuracy: t.final_train_accuracy,
            best_train_accuracy: t.best_train_accuracy,
            training_time: t.training_time,
            history: serde_json::to_value(&outcome.history).unwrap_or(Value::Null),
            final_val_loss: t.final_val_loss,
            final_val_accuracy: t.final_val_accuracy,
            best_val_accuracy: t.best_val_accuracy,
        },
        test_metrics: test_metrics(test, outcome.data_summary.test_samples),
        artifacts: json!({
            "model_dir": outcome.model_path.display().to_string(),
            "version": outcome.version,
            "files": ["model.safetensors", "config.json", "metrics.json", "features.json", "metadata.json"],
            "checkpoint": outcome.stopped,
            "best_epoch": t.best_epoch,
            "early_stopped": t.early_stopped,
        }),
        model_info: ModelInfo {
            parameters_count: outcome.model_info.parameters_count as u64,
            trainable_parameters: outcome.model_info.trainable_parameters as u64,
            architecture: json!(outcome.model_info.architecture),
        },
        data_summary: DataSummary {
            symbols: outcome.data_summary.symbols.clone(),
            timeframes: outcome
                .data_summary
                .timeframes
                .iter()
                .map(ToString::to_string)
                .collect(),
            start_date: outcome.data_summary.start_date.map(|t| t.to_rfc3339()),
            end_date: outcome.data_summary.end_date.map(|t| t.to_rfc3339()),
            total_samples: outcome.data_summary.total_samples as u64,
            feature_count: outcome.data_summary.feature_count as u64,
            train_samples: Some(outcome.data_summary.train_samples as u64),
            validation_samples: Some(outcome.data_summary.validation_samples as u64),
            test_samples: Some(outcome.data_summary.test_samples as u64),
            date_range: None,
        },
    }
}

impl Trainer for CandleTrainer {
    fn device(&self) -> String {
        device_name(&select_device())
    }

    fn train(&self, job: TrainJob, control: TrainControl) -> Result<TrainOutcome, String> {
        let mut report = control.progress;
        let mut recent = RecentEpochs::default();
        let options = RunOptions {
            seed: self.seed,
            stop: control.stop,
            class_weights: true,
            progress: Some(Box::new(move |p: &crate::model::Progress| {
                report(&BatchProgress {
                    epoch: p.epoch as u64,
                    total_epochs: p.total_epochs as u64,
                    batch: p.batch as u64,
                    total_batches: p.total_batches as u64,
                    items_processed: p.items_processed as u64,
                    items_total: p.items_total as u64,
                    current: json!({
                        "train_loss": p.train_loss_so_far,
                        "train_accuracy": p.train_accuracy_so_far,
                        "last_epoch": figures(p.last_epoch.as_ref()),
                        "recent_epochs": recent.note(p.last_epoch.as_ref()),
                    }),
                    best: figures(p.best_epoch.as_ref()),
                });
            })),
        };
        match run_training(&job.strategy, &job.bars, &job.models_dir, options) {
            Ok(outcome) if outcome.stopped => Ok(TrainOutcome::Stopped {
                checkpoint: Some(result_of(&outcome)),
            }),
            Ok(outcome) => Ok(TrainOutcome::Completed(result_of(&outcome))),
            Err(TrainError::Cancelled) => Ok(TrainOutcome::Stopped { checkpoint: None }),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EpochMetrics;

    fn epoch(n: usize) -> EpochMetrics {
        EpochMetrics {
            epoch: n,
            train_loss: 1.0 / n as f64,
            train_accuracy: 0.5,
            val_loss: Some(0.9),
            val_accuracy: None,
            duration_secs: 0.01,
        }
    }

    fn numbers(shown: &Value) -> Vec<u64> {
        shown
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|e| e["epoch"].as_u64())
            .collect()
    }

    /// What a run stopped before its first epoch finished, without test rows, produces.
    fn unfinished_outcome() -> TrainingOutcome {
        TrainingOutcome {
            model_path: "models/s/1d_v1".into(),
            version: 1,
            history: Vec::new(),
            training: crate::model::TrainingSummary::new(&[], None, false, 0.5),
            test_metrics: None,
            model_info: crate::pipeline::ModelInfo {
                parameters_count: 10,
                trainable_parameters: 10,
                architecture: "2 -> 3".to_owned(),
                device: "cpu".to_owned(),
            },
            data_summary: crate::model::DataSummary {
                symbols: vec!["AAPL".to_owned()],
                timeframes: vec![data_host::Timeframe::D1],
                start_date: None,
                end_date: None,
                total_samples: 100,
                feature_count: 2,
                train_samples: 100,
                validation_samples: 0,
                test_samples: 0,
                train_class_counts: [50, 0, 50],
            },
            stopped: true,
        }
    }

    #[test]
    fn missing_figures_are_null_and_read_back() {
        let result = result_of(&unfinished_outcome());
        let t = &result.training_metrics;
        assert_eq!(t.epochs_trained, 0);
        assert_eq!(
            (
                t.final_train_loss,
                t.final_train_accuracy,
                t.best_train_accuracy
            ),
            (None, None, None)
        );
        assert_eq!(
            (t.final_val_loss, t.final_val_accuracy, t.best_val_accuracy),
            (None, None, None)
        );
        let test = &result.test_metrics;
        assert_eq!(
            (test.test_accuracy, test.test_loss, test.f1_score),
            (None, None, None)
        );
        assert_eq!(test.samples, Some(0));
        assert!(
            test.message
                .as_deref()
                .is_some_and(|m| m.contains("no test split"))
        );
        assert_eq!(result.data_summary.validation_samples, Some(0));

        // Stored as JSON (`null`s) and read back as the result API does.
        let stored = serde_json::to_value(&result).expect("serialises");
        assert_eq!(stored["training_metrics"]["final_train_loss"], Value::Null);
        assert_eq!(stored["test_metrics"]["test_accuracy"], Value::Null);
        let back: TrainingResult = serde_json::from_value(stored).expect("reads back");
        assert_eq!(back, result);
    }

    #[test]
    fn recent_epochs_keep_the_newest_window_in_order_once_each() {
        let mut recent = RecentEpochs::default();
        assert_eq!(recent.note(None), &json!([]));
        for n in 1..=40 {
            // Every batch of an epoch reports the same last epoch: noted once.
            for _ in 0..3 {
                recent.note(Some(&epoch(n)));
            }
        }
        let shown = recent.note(None).clone();
        let expected: Vec<u64> = (9..=40).collect();
        assert_eq!(numbers(&shown), expected);
        assert_eq!(shown[31]["train_loss"], json!(1.0 / 40.0));
        assert_eq!(shown[31]["val_accuracy"], Value::Null);
    }
}
