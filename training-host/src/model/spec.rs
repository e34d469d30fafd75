//! The network's shape ([`MlpSpec`]): what `config.json` stores to rebuild it.

use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::labels::Label;
use crate::strategy::{Activation, Architecture};

/// The shape of the network: everything needed to rebuild it (saved as `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// Input width (feature columns).
    pub n_features: usize,
    /// Hidden layer widths.
    pub hidden_layers: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Dropout probability after each hidden activation, in `[0, 1)`.
    pub dropout: f64,
    /// Output classes (always 3: BUY, HOLD, SELL).
    pub n_classes: usize,
}

impl MlpSpec {
    /// The strategy's architecture on `n_features` inputs.
    pub fn new(architecture: &Architecture, n_features: usize) -> Self {
        Self {
            n_features,
            hidden_layers: architecture.hidden_layers.clone(),
            activation: architecture.activation,
            dropout: architecture.dropout,
            n_classes: Label::COUNT,
        }
    }

    /// Checks what a hand-built or deserialised spec could get wrong.
    pub fn validate(&self) -> Result<(), TrainError> {
        let problem = if self.n_features == 0 {
            Some("the network has no input features".to_owned())
        } else if self.hidden_layers.contains(&0) {
            Some(format!(
                "hidden layer widths must be >= 1, got {:?}",
                self.hidden_layers
            ))
        } else if !(0.0..1.0).contains(&self.dropout) {
            Some(format!("dropout must be in [0, 1), got {}", self.dropout))
        } else if self.n_classes != Label::COUNT {
            Some(format!(
                "the network must have {} outputs, got {}",
                Label::COUNT,
                self.n_classes
            ))
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(TrainError::InvalidConfig(p)))
    }

    /// `(inputs, outputs)` of every linear layer, the output layer last.
    pub(crate) fn layer_dims(&self) -> Vec<(usize, usize)> {
        let mut widths = vec![self.n_features];
        widths.extend(&self.hidden_layers);
        widths.push(self.n_classes);
        widths.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// Trainable parameters (weights and biases); all parameters are trainable.
    pub fn parameters_count(&self) -> usize {
        self.layer_dims().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Human-readable description, e.g. `24 -> 50 -> 25 -> 3 (relu, dropout 0.2)`.
    pub fn architecture(&self) -> String {
        let widths: Vec<String> = std::iter::once(self.n_features)
            .chain(self.hidden_layers.iter().copied())
            .chain(std::iter::once(self.n_classes))
            .map(|w| w.to_string())
            .collect();
        let activation = serde_json::to_value(self.activation)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!(
            "{} ({activation}, dropout {})",
            widths.join(" -> "),
            self.dropout
        )
    }
}
