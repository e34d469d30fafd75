//! [`OperationsConfig`] and the fixed messages of the registry.

use std::path::PathBuf;
use std::time::Duration;

/// `error_message` of operations found pending or running when the store is opened.
pub const INTERRUPTED_BY_RESTART: &str = "interrupted by restart";

/// `error_message` of a cancel without a reason.
pub const DEFAULT_CANCEL_REASON: &str = "cancelled by user";

/// How an [`Operations`](super::Operations) registry stores and keeps operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsConfig {
    /// The redb file to persist to; `None` keeps everything in memory only.
    pub store_path: Option<PathBuf>,
    /// Finished operations older than this are removed by
    /// [`Operations::prune`](super::Operations::prune).
    pub retention: Duration,
    /// Progress of one operation is written to the store at most this often (status
    /// changes are always written at once).
    pub progress_persist_interval: Duration,
}

impl Default for OperationsConfig {
    /// In memory, 24 h retention, progress persisted at most once a second.
    fn default() -> Self {
        Self {
            store_path: None,
            retention: Duration::from_secs(24 * 60 * 60),
            progress_persist_interval: Duration::from_secs(1),
        }
    }
}

impl OperationsConfig {
    /// The defaults, persisted to the redb file at `path`.
    pub fn persistent(path: impl Into<PathBuf>) -> Self {
        Self {
            store_path: Some(path.into()),
            ..Self::default()
        }
    }
}
