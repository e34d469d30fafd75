//! The files of a model directory and the loaded model.
//!
//! ```text
//! models/{strategy}/{timeframes}_v{N}/
//!   model.safetensors  weights, named layer{i}.weight / layer{i}.bias
//!   config.json        ModelConfigFile: architecture + the full strategy
//!   metrics.json       MetricsFile: per-epoch history, summary, test metrics
//!   features.json      FeaturesFile: feature names + the train-fitted scaler
//!   metadata.json      MetadataFile: when, where, how long, on what data, checkpoint?
//! ```
//!
//! The strategy is stored whole in `config.json`, so a predictor can rebuild the exact
//! features (with [`LoadedModel::features_for`]) without the original YAML.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::Device;
use chrono::{DateTime, Utc};
use data_host::Timeframe;
use polars::prelude::DataFrame;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::history::{EpochMetrics, TrainingSummary};
use super::metrics::TestMetrics;
use super::mlp::{Mlp, Weights, select_device};
use super::spec::MlpSpec;
use crate::features::{InferenceFeatures, Scaler, features_for_inference};
use crate::labels::Label;
use crate::strategy::Strategy;

/// File names inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// See [`ModelConfigFile`].
pub const CONFIG_FILE: &str = "config.json";
/// See [`MetricsFile`].
pub const METRICS_FILE: &str = "metrics.json";
/// See [`FeaturesFile`].
pub const FEATURES_FILE: &str = "features.json";
/// See [`MetadataFile`].
pub const METADATA_FILE: &str = "metadata.json";

/// `config.json`: what the network is and which strategy it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfigFile {
    /// Always `mlp`.
    pub model_type: String,
    /// Strategy name.
    pub strategy_name: String,
    /// Symbols trained on.
    pub symbols: Vec<String>,
    /// Timeframes of the features.
    pub timeframes: Vec<Timeframe>,
    /// The timeframe of the rows.
    pub base_timeframe: Timeframe,
    /// Layers, activation and dropout (`n_features`, `hidden_layers`, ...).
    #[serde(flatten)]
    pub spec: MlpSpec,
    /// Human-readable layer description.
    pub architecture: String,
    /// Trainable parameters.
    pub parameters_count: usize,
    /// The strategy exactly as trained (after runtime overrides).
    pub strategy: Strategy,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsFile {
    /// Final and best figures.
    pub training: TrainingSummary,
    /// One entry per epoch run.
    pub history: Vec<EpochMetrics>,
    /// Metrics on the test split with the kept weights (`None` without test rows).
    pub test_metrics: Option<TestMetrics>,
    /// Loss weight per class used in training and in the reported losses.
    pub class_weights: [f64; Label::COUNT],
}

/// `features.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturesFile {
    /// Column order of the network's input.
    pub feature_names: Vec<String>,
    /// The train-fitted scaler to apply to new rows.
    pub scaler: Scaler,
}

/// What the model was trained on (the contract's `data_summary`, plus split sizes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Symbols.
    pub symbols: Vec<String>,
    /// Timeframes.
    pub timeframes: Vec<Timeframe>,
    /// Time of the first row used (any symbol).
    pub start_date: Option<DateTime<Utc>>,
    /// Time of the last row used (any symbol).
    pub end_date: Option<DateTime<Utc>>,
    /// Rows over all splits.
    pub total_samples: usize,
    /// Input features.
    pub feature_count: usize,
    /// Rows in train.
    pub train_samples: usize,
    /// Rows in validation.
    pub validation_samples: usize,
    /// Rows in test.
    pub test_samples: usize,
    /// Train rows per class (BUY, HOLD, SELL).
    pub train_class_counts: [usize; Label::COUNT],
}

/// `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataFile {
    /// When the model was saved.
    pub created_at: DateTime<Utc>,
    /// Version of hostbridge that trained it.
    pub hostbridge_version: String,
    /// Device it was trained on (`cpu`, `cuda:0`).
    pub device: String,
    /// Seconds spent training.
    pub training_time_secs: f64,
    /// Seed of the run.
    pub seed: u64,
    /// Epoch whose weights these are (`None`: a checkpoint taken before any epoch ended).
    pub best_epoch: Option<usize>,
    /// Whether this is the checkpoint of a stopped session rather than a finished run.
    pub checkpoint: bool,
    /// The data.
    pub data_summary: DataSummary,
}

/// Everything a model directory holds, ready to save.
#[derive(Debug, Clone)]
pub struct ModelArtifacts {
    /// `model.safetensors`.
    pub weights: Weights,
    /// `config.json`.
    pub config: ModelConfigFile,
    /// `metrics.json`.
    pub metrics: MetricsFile,
    /// `features.json`.
    pub features: FeaturesFile,
    /// `metadata.json`.
    pub metadata: MetadataFile,
}

/// A model read back from its directory, ready to predict.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The directory it was loaded from.
    pub path: PathBuf,
    /// `config.json`.
    pub config: ModelConfigFile,
    /// `metrics.json`.
    pub metrics: MetricsFile,
    /// `features.json`.
    pub features: FeaturesFile,
    /// `metadata.json`.
    pub metadata: MetadataFile,
    network: Mlp,
}

impl LoadedModel {
    /// Loads the model in `dir` onto [`select_device`].
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        Self::load_on(dir, &select_device())
    }

    /// Loads the model in `dir` onto `device`.
    pub fn load_on(dir: &Path, device: &Device) -> Result<Self, TrainError> {
        let config: ModelConfigFile = read_json(&dir.join(CONFIG_FILE))?;
        let features: FeaturesFile = read_json(&dir.join(FEATURES_FILE))?;
        let metrics = read_json(&dir.join(METRICS_FILE))?;
        let metadata = read_json(&dir.join(METADATA_FILE))?;
        if features.feature_names.len() != config.spec.n_features {
            return Err(TrainError::Corrupt {
                path: dir.join(FEATURES_FILE),
                message: format!(
                    "{} feature names for a network of {} inputs",
                    features.feature_names.len(),
                    config.spec.n_features
                ),
            });
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(|e| TrainError::io(&weights_path, e))?;
        let corrupt = |message: String| TrainError::Corrupt {
            path: weights_path.clone(),
            message,
        };
        let tensors: HashMap<String, _> = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| corrupt(e.to_string()))?;
        let weights = Weights {
            tensors: tensors.into_iter().collect(),
        };
        let network = Mlp::from_weights(&config.spec, &weights, device)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Self {
            path: dir.to_path_buf(),
            config,
            metrics,
            features,
            metadata,
            network,
        })
    }

    /// Input width.
    pub fn n_features(&self) -> usize {
        self.config.spec.n_features
    }

    /// The network.
    pub fn network(&self) -> &Mlp {
        &self.network
    }

    /// Most likely class per row of row-major, already scaled `x`.
    pub fn predict(&self, x: &[f32]) -> Result<Vec<u32>, TrainError> {
        self.network.predict(x)
    }

    /// Class probabilities (BUY, HOLD, SELL) per row of row-major, already scaled `x`.
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<[f32; 3]>, TrainError> {
        self.network.predict_proba(x)
    }

    /// Scaled features of new bars of one symbol (one frame per timeframe), exactly
    /// as in training, ready for [`Self::predict`].
    pub fn features_for(
        &self,
        bars: &BTreeMap<Timeframe, DataFrame>,
    ) -> Result<InferenceFeatures, TrainError> {
        Ok(features_for_inference(
            &self.config.strategy,
            &self.features.scaler,
            bars,
        )?)
    }
}

/// Reads and parses one JSON file of a model directory.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
