//! The one error type of training, evaluation, the model store and prediction.

use std::path::PathBuf;

use crate::features::FeatureError;

/// Why training, saving, loading or predicting failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The dataset could not be built from the strategy and bars.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// A tensor operation failed (shape bug, device error, corrupt weights file).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A file or directory of the model store could not be read or written.
    #[error("{}: {source}", path.display())]
    Store {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model directory holds a file that is not what this crate writes.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The configuration cannot be trained (e.g. zero features, bad name).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Input given to a model does not fit it (e.g. wrong number of columns).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The loss became NaN or infinite: the learning rate is too high for the data.
    #[error(
        "training diverged: the loss is not finite at epoch {epoch}, batch {batch} (try a lower learning rate)"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch.
        batch: usize,
    },
    /// The run was cancelled and no checkpoint was asked for.
    #[error("training was cancelled")]
    Cancelled,
}

impl TrainError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Store {
            path: path.into(),
            source,
        }
    }
}
