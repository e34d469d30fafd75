//! Validation of the `model` (network, features, optimiser) and `training` (labels,
//! data split) sections.

use super::error::{Errors, num};
use super::limits::{
    MAX_BATCH_SIZE, MAX_EPOCHS, MAX_HIDDEN_LAYERS, MAX_LABEL_LOOKAHEAD, MAX_LAYER_WIDTH,
    MAX_LOOKBACK, at_most,
};
use super::model::{DataSplit, LabelConfig, TrainingConfig};
use super::network::{
    Activation, Architecture, EarlyStopping, FeatureConfig, Hyperparameters, ModelConfig, Optimizer,
};
use super::parse::{RawDataSplit, RawModel, RawTraining};
use super::validate::{bounded, positive_at_most, positive_float, positive_int, required};
/// Tolerance of `train + validation + test == 1`.
const SPLIT_TOLERANCE: f64 = 1e-6;

/// `model`: type, architecture, feature options, optimiser settings.
pub(crate) fn model(errors: &mut Errors, raw: Option<RawModel>) -> Option<ModelConfig> {
    let raw = required(errors, "model", raw)?;
    if let Some(kind) = raw.kind.as_deref()
        && kind != "mlp"
    {
        errors.push(
            "model.type",
            format!("unknown model type {kind:?}; expected mlp"),
        );
    }
    let architecture = required(errors, "model.architecture", raw.architecture).and_then(|a| {
        let hidden = required(errors, "model.architecture.hidden_layers", a.hidden_layers)?;
        if hidden.is_empty() {
            errors.push("model.architecture.hidden_layers", "must not be empty");
        }
        let before = errors.len();
        let hidden_layers: Vec<usize> = if at_most(
            errors,
            "model.architecture.hidden_layers",
            hidden.len(),
            MAX_HIDDEN_LAYERS,
            "hidden layers",
        ) {
            hidden
                .iter()
                .enumerate()
                .filter_map(|(i, &w)| {
                    let path = format!("model.architecture.hidden_layers[{i}]");
                    positive_at_most(errors, &path, w, MAX_LAYER_WIDTH)
                })
                .collect()
        } else {
            Vec::new()
        };
        let activation = choice(
            errors,
            "model.architecture.activation",
            a.activation.as_deref().unwrap_or("relu"),
            "activation",
            &Activation::NAMES,
            Activation::parse,
        );
        let dropout = a.dropout.unwrap_or(0.0);
        if !(0.0..1.0).contains(&dropout) {
            errors.push(
                "model.architecture.dropout",
                format!("must be in [0, 1), got {}", num(dropout)),
            );
        }
        (errors.len() == before && !hidden.is_empty()).then_some(Architecture {
            hidden_layers,
            activation: activation?,
            dropout,
        })
    });
    let features = raw.features.map_or(
        Some(FeatureConfig {
            lookback_periods: 0,
            scale_features: true,
        }),
        |f| {
            let lookback = f.lookback_periods.unwrap_or(0);
            let path = "model.features.lookback_periods";
            let lookback_periods = match usize::try_from(lookback) {
                Ok(l) if l <= MAX_LOOKBACK => Some(l),
                Ok(l) => {
                    errors.push(path, format!("must be at most {MAX_LOOKBACK}, got {l}"));
                    None
                }
                Err(_) => {
                    errors.push(path, format!("must be an integer >= 0, got {lookback}"));
                    None
                }
            };
            Some(FeatureConfig {
                lookback_periods: lookback_periods?,
                scale_features: f.scale_features.unwrap_or(true),
            })
        },
    );
    let training = required(errors, "model.training", raw.training).and_then(|t| {
        let lr_path = "model.training.learning_rate";
        let learning_rate = required(errors, lr_path, t.learning_rate)
            .and_then(|lr| positive_float(errors, lr_path, lr));
        let batch_size = bounded(
            errors,
            "model.training.batch_size",
            t.batch_size,
            MAX_BATCH_SIZE,
        );
        let epochs = bounded(errors, "model.training.epochs", t.epochs, MAX_EPOCHS);
        let optimizer = choice(
            errors,
            "model.training.optimizer",
            t.optimizer.as_deref().unwrap_or("adam"),
            "optimizer",
            &Optimizer::NAMES,
            Optimizer::parse,
        );
        let early_stopping = match t.early_stopping {
            Some(es) if es.enabled.unwrap_or(true) => {
                let patience = es.patience.map_or(Some(10), |p| {
                    positive_int(errors, "model.training.early_stopping.patience", p)
                });
                let min_delta = es.min_delta.unwrap_or(0.0);
                if !(min_delta.is_finite() && min_delta >= 0.0) {
                    errors.push(
                        "model.training.early_stopping.min_delta",
                        format!("must be a number >= 0, got {}", num(min_delta)),
                    );
                }
                patience.map(|patience| {
                    Some(EarlyStopping {
                        patience,
                        min_delta,
                    })
                })
            }
            _ => Some(None),
        };
        Some(Hyperparameters {
            learning_rate: learning_rate?,
            batch_size: batch_size?,
            epochs: epochs?,
            optimizer: optimizer?,
            early_stopping: early_stopping?,
        })
    });
    Some(ModelConfig {
        architecture: architecture?,
        features: features?,
        training: training?,
    })
}

/// `training`: zigzag labels and the data split.
pub(crate) fn training(errors: &mut Errors, raw: Option<RawTraining>) -> Option<TrainingConfig> {
    let raw = required(errors, "training", raw)?;
    let labels = required(errors, "training.labels", raw.labels).and_then(|l| {
        if let Some(source) = l.source.as_deref()
            && source != "zigzag"
        {
            errors.push(
                "training.labels.source",
                format!("unknown label source {source:?}; expected zigzag"),
            );
        }
        let th_path = "training.labels.zigzag_threshold";
        let threshold = required(errors, th_path, l.zigzag_threshold)
            .and_then(|t| positive_float(errors, th_path, t));
        let lookahead = bounded(
            errors,
            "training.labels.label_lookahead",
            l.label_lookahead,
            MAX_LABEL_LOOKAHEAD,
        );
        Some(LabelConfig {
            zigzag_threshold: threshold?,
            label_lookahead: lookahead?,
        })
    });
    let split =
        required(errors, "training.data_split", raw.data_split).and_then(|s| data_split(errors, s));
    Some(TrainingConfig {
        labels: labels?,
        data_split: split?,
    })
}

/// `training.data_split`: each part in [0, 1], summing to 1, train > 0.
fn data_split(errors: &mut Errors, raw: RawDataSplit) -> Option<DataSplit> {
    let mut part = |key: &str, value: Option<f64>| {
        let path = format!("training.data_split.{key}");
        let v = required(errors, &path, value)?;
        if !(0.0..=1.0).contains(&v) {
            errors.push(path, format!("must be in [0, 1], got {}", num(v)));
            return None;
        }
        Some(v)
    };
    let (train, validation, test) = (
        part("train", raw.train),
        part("validation", raw.validation),
        part("test", raw.test),
    );
    let (train, validation, test) = (train?, validation?, test?);
    let sum = train + validation + test;
    if (sum - 1.0).abs() > SPLIT_TOLERANCE {
        errors.push(
            "training.data_split",
            format!("train + validation + test must be 1.0, got {}", num(sum)),
        );
        return None;
    }
    if train <= 0.0 {
        errors.push("training.data_split.train", "must be greater than 0");
        return None;
    }
    Some(DataSplit {
        train,
        validation,
        test,
    })
}

/// One of a fixed set of names.
fn choice<T>(
    errors: &mut Errors,
    path: &str,
    text: &str,
    what: &str,
    names: &[&str],
    parse: fn(&str) -> Option<T>,
) -> Option<T> {
    let found = parse(text);
    if found.is_none() {
        errors.push(
            path,
            format!(
                "unknown {what} {text:?}; expected one of {}",
                names.join(", ")
            ),
        );
    }
    found
}
