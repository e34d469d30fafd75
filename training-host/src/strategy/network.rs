//! Typed `model` section: the MLP's architecture, feature options and optimiser.

use serde::{Deserialize, Serialize};

/// `model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `model.architecture`.
    pub architecture: Architecture,
    /// `model.features`.
    pub features: FeatureConfig,
    /// `model.training`.
    pub training: Hyperparameters,
}

/// `model.architecture` of the MLP (the only model type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Hidden layer widths, each >= 1, at least one layer.
    pub hidden_layers: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Dropout probability in `[0, 1)`.
    pub dropout: f64,
}

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x) (the default).
    Relu,
    /// tanh.
    Tanh,
    /// Logistic.
    Sigmoid,
    /// Leaky ReLU.
    LeakyRelu,
    /// GELU.
    Gelu,
}

impl Activation {
    /// Accepted spellings.
    pub const NAMES: [&str; 5] = ["relu", "tanh", "sigmoid", "leaky_relu", "gelu"];

    /// Parses a name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "relu" => Some(Self::Relu),
            "tanh" => Some(Self::Tanh),
            "sigmoid" => Some(Self::Sigmoid),
            "leaky_relu" => Some(Self::LeakyRelu),
            "gelu" => Some(Self::Gelu),
            _ => None,
        }
    }
}

/// `model.features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Lagged copies added per feature (0 = none).
    pub lookback_periods: usize,
    /// Whether features are z-scored with train statistics (default true).
    pub scale_features: bool,
}

/// `model.training`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    /// > 0.
    pub learning_rate: f64,
    /// >= 1.
    pub batch_size: usize,
    /// >= 1.
    pub epochs: usize,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// `None` when absent or `enabled: false`.
    pub early_stopping: Option<EarlyStopping>,
}

/// Optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Adam (the default).
    Adam,
    /// AdamW.
    Adamw,
    /// Plain SGD.
    Sgd,
}

impl Optimizer {
    /// Accepted spellings.
    pub const NAMES: [&str; 3] = ["adam", "adamw", "sgd"];

    /// Parses a name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "adam" => Some(Self::Adam),
            "adamw" => Some(Self::Adamw),
            "sgd" => Some(Self::Sgd),
            _ => None,
        }
    }
}

/// Early stopping on validation loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping, >= 1 (default 10).
    pub patience: usize,
    /// Smallest improvement that counts, >= 0 (default 0).
    pub min_delta: f64,
}
