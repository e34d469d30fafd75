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

/// The shortest retention a service accepts: a finished operation must outlive the
/// client polling for its result.
pub const MIN_RETENTION: Duration = Duration::from_secs(1);

impl OperationsConfig {
    /// The defaults, persisted to the redb file at `path`.
    pub fn persistent(path: impl Into<PathBuf>) -> Self {
        Self {
            store_path: Some(path.into()),
            ..Self::default()
        }
    }

    /// The same configuration keeping finished operations for `retention`.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often a running service prunes: a 24th of the retention, so an operation
    /// outlives its retention by at most ~4 %, between 100 ms and 10 minutes.
    pub fn prune_interval(&self) -> Duration {
        (self.retention / 24).clamp(Duration::from_millis(100), Duration::from_secs(600))
    }
}

/// Reads a retention as the services' `--operations-retention` flag takes it
/// (`OPERATIONS_RETENTION`): a humantime duration (`24h`, `7days`, `90m`), at least
/// [`MIN_RETENTION`].
pub fn parse_retention(text: &str) -> Result<Duration, String> {
    let retention = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like 24h or 90m: {e}"))?;
    if retention < MIN_RETENTION {
        return Err(format!(
            "a retention of {text} would forget an operation before its client reads the \
             result; use at least {}",
            humantime::format_duration(MIN_RETENTION)
        ));
    }
    Ok(retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_read_as_durations_of_a_second_or_more() {
        assert_eq!(parse_retention("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_retention(" 90m "), Ok(Duration::from_secs(5_400)));
        assert!(parse_retention("500ms").is_err_and(|e| e.contains("at least 1s")));
        assert!(parse_retention("forever").is_err_and(|e| e.contains("forever")));
    }

    #[test]
    fn pruning_follows_the_retention_within_bounds() {
        let day = OperationsConfig::default();
        assert_eq!(day.prune_interval(), Duration::from_secs(600));
        let hour = day.clone().with_retention(Duration::from_secs(3600));
        assert_eq!(hour.prune_interval(), Duration::from_secs(150));
        let second = day.with_retention(MIN_RETENTION);
        assert_eq!(second.prune_interval(), Duration::from_millis(100));
    }
}
