//! How to train: [`TrainConfig`] (the strategy's `model.training` plus run options)
//! and the optimiser it selects. Adam is candle's AdamW with weight decay 0 (the two
//! differ only in the decoupled decay term); AdamW uses PyTorch's default decay 0.01;
//! SGD is plain SGD without momentum (candle's).

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, SGD};

use super::TrainError;
use crate::strategy::{EarlyStopping, Hyperparameters, Optimizer};

/// How to train (the strategy's `model.training` plus run options).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Step size, > 0.
    pub learning_rate: f64,
    /// Rows per batch, >= 1 (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Maximum epochs, >= 1.
    pub epochs: usize,
    /// Adam (AdamW with weight decay 0), AdamW (weight decay 0.01) or plain SGD.
    pub optimizer: Optimizer,
    /// Stop when the monitored loss stalls.
    pub early_stopping: Option<EarlyStopping>,
    /// Weight the loss by balanced inverse class frequencies of the train split.
    pub class_weights: bool,
    /// Seed of every random choice.
    pub seed: u64,
}

impl TrainConfig {
    /// The strategy's hyperparameters, with class weights on.
    pub fn from_hyperparameters(h: &Hyperparameters, seed: u64) -> Self {
        Self {
            learning_rate: h.learning_rate,
            batch_size: h.batch_size,
            epochs: h.epochs,
            optimizer: h.optimizer,
            early_stopping: h.early_stopping,
            class_weights: true,
            seed,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be > 0, got {}",
                self.learning_rate
            ));
        }
        if self.batch_size == 0 || self.epochs == 0 {
            return bad("batch_size and epochs must be >= 1".into());
        }
        match self.early_stopping {
            Some(e) if e.patience == 0 || e.min_delta.is_nan() || e.min_delta < 0.0 => {
                bad("early_stopping needs patience >= 1 and min_delta >= 0".into())
            }
            _ => Ok(()),
        }
    }
}

/// The optimiser, stepped after every batch.
pub(crate) enum Stepper {
    AdamW(AdamW),
    Sgd(SGD),
}

impl Stepper {
    pub(crate) fn new(config: &TrainConfig, vars: Vec<Var>) -> candle_core::Result<Self> {
        let adam = |weight_decay| ParamsAdamW {
            lr: config.learning_rate,
            weight_decay,
            ..ParamsAdamW::default()
        };
        Ok(match config.optimizer {
            Optimizer::Adam => Self::AdamW(AdamW::new(vars, adam(0.0))?),
            Optimizer::Adamw => Self::AdamW(AdamW::new(vars, adam(0.01))?),
            Optimizer::Sgd => Self::Sgd(SGD::new(vars, config.learning_rate)?),
        })
    }

    pub(crate) fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        match self {
            Self::AdamW(o) => o.backward_step(loss),
            Self::Sgd(o) => o.backward_step(loss),
        }
    }
}
