//! Wire types of the operations registry, field for field compatible with KTRDR's
//! gateway operations models (`ktrdr/api/models/operations.py`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Lifecycle state of an operation. `pending` and `running` are active; the other three
/// are terminal and never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    /// Created, not started yet.
    Pending,
    /// Work is under way.
    Running,
    /// Finished successfully; `result_summary` holds the outcome.
    Completed,
    /// Finished with an error; `error_message` says why.
    Failed,
    /// Stopped on request; `error_message` holds the reason.
    Cancelled,
}

impl OperationStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// Whether the operation has finished (completed, failed or cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The lowercase wire name (`"running"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`; expected one of pending, running, completed, failed, cancelled")]
pub struct ParseStatusError(pub String);

impl FromStr for OperationStatus {
    type Err = ParseStatusError;

    /// Parses a wire name, ignoring ASCII case and surrounding blanks.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParseStatusError(s.to_owned()))
    }
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// How far an operation has got. Every field is optional on the wire except that
/// `percentage` always lies in 0..=100 once it passed through the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationProgress {
    /// Percent done, clamped to 0..=100 (NaN counts as 0).
    #[serde(default)]
    pub percentage: f64,
    /// Human description of the current step.
    #[serde(default)]
    pub current_step: Option<String>,
    /// Steps finished so far.
    #[serde(default)]
    pub steps_completed: u64,
    /// Steps in total (0 when unknown).
    #[serde(default)]
    pub steps_total: u64,
    /// Items (bars, batches, ...) processed so far.
    #[serde(default)]
    pub items_processed: u64,
    /// Items in total, when known.
    #[serde(default)]
    pub items_total: Option<u64>,
    /// The item being processed now.
    #[serde(default)]
    pub current_item: Option<String>,
    /// Free text for the user.
    #[serde(default)]
    pub message: Option<String>,
    /// Domain-specific context (epoch/batch for training, segment for data loads).
    #[serde(default = "empty_object")]
    pub context: Value,
}

impl Default for OperationProgress {
    fn default() -> Self {
        Self {
            percentage: 0.0,
            current_step: None,
            steps_completed: 0,
            steps_total: 0,
            items_processed: 0,
            items_total: None,
            current_item: None,
            message: None,
            context: empty_object(),
        }
    }
}

impl OperationProgress {
    /// Brings the fields back into their domain: percentage into 0..=100 and a
    /// non-object `context` to `{}`. The registry applies it to every update.
    pub fn normalize(&mut self) {
        self.percentage = if self.percentage.is_nan() {
            0.0
        } else {
            self.percentage.clamp(0.0, 100.0)
        };
        if !self.context.is_object() {
            self.context = empty_object();
        }
    }
}

/// Everything known about one operation (`GET /operations/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationInfo {
    /// Unique id, `op_{type}_{YYYYmmdd_HHMMSS}_{8 hex}`.
    pub operation_id: String,
    /// Kind of work (`data_load`, `training`, ...).
    pub operation_type: String,
    /// Lifecycle state.
    pub status: OperationStatus,
    /// When the operation was created.
    pub created_at: DateTime<Utc>,
    /// When it started running.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// When anything about it last changed.
    pub updated_at: DateTime<Utc>,
    /// Current progress.
    #[serde(default)]
    pub progress: OperationProgress,
    /// Free-form object describing the work: `{symbol, timeframe, mode, start_date,
    /// end_date, parameters}` by convention.
    #[serde(default = "empty_object")]
    pub metadata: Value,
    /// Why it failed or was cancelled.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Outcome of a completed operation.
    #[serde(default)]
    pub result_summary: Option<Value>,
    /// Non-fatal warnings, oldest first.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl OperationInfo {
    /// Seconds from start to completion (or to now while running); `None` before start.
    pub fn duration_seconds(&self) -> Option<f64> {
        let started = self.started_at?;
        let end = self.completed_at.unwrap_or_else(Utc::now);
        let micros = (end - started).num_microseconds().unwrap_or(i64::MAX);
        Some(micros as f64 / 1_000_000.0)
    }

    /// `metadata.symbol`, when it is a string.
    pub fn symbol(&self) -> Option<&str> {
        self.metadata.get("symbol").and_then(Value::as_str)
    }

    /// The list form of this operation.
    pub fn summary(&self) -> OperationSummary {
        OperationSummary {
            operation_id: self.operation_id.clone(),
            operation_type: self.operation_type.clone(),
            status: self.status,
            created_at: self.created_at,
            progress_percentage: self.progress.percentage,
            current_step: self.progress.current_step.clone(),
            symbol: self.symbol().map(str::to_owned),
            duration_seconds: self.duration_seconds(),
        }
    }
}

/// One row of `GET /operations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationSummary {
    /// Unique id.
    pub operation_id: String,
    /// Kind of work.
    pub operation_type: String,
    /// Lifecycle state.
    pub status: OperationStatus,
    /// When the operation was created.
    pub created_at: DateTime<Utc>,
    /// `progress.percentage`.
    pub progress_percentage: f64,
    /// `progress.current_step`.
    pub current_step: Option<String>,
    /// `metadata.symbol`.
    pub symbol: Option<String>,
    /// See [`OperationInfo::duration_seconds`].
    pub duration_seconds: Option<f64>,
}

/// Which operations [`Operations::list`](super::Operations::list) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationFilter {
    /// Only this status.
    pub status: Option<OperationStatus>,
    /// Only this operation type (exact match).
    pub operation_type: Option<String>,
    /// Only pending or running operations.
    pub active_only: bool,
    /// At most this many (after `offset`); `None` = all.
    pub limit: Option<usize>,
    /// Skip this many matching operations (newest first) before returning.
    pub offset: usize,
}

impl OperationFilter {
    /// Whether `info` passes the status, type and active filters (not limit/offset).
    pub fn matches(&self, info: &OperationInfo) -> bool {
        self.status.is_none_or(|s| s == info.status)
            && self
                .operation_type
                .as_deref()
                .is_none_or(|t| t == info.operation_type)
            && (!self.active_only || !info.status.is_terminal())
    }
}

/// What an [`OperationEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationEventKind {
    /// The full current state: the first event of every subscription, and what a
    /// subscriber that fell behind gets instead of the events it missed.
    Snapshot,
    /// Progress (or warnings) changed.
    Progress,
    /// The status changed to a non-terminal state (`pending` → `running`).
    Status,
    /// The operation finished; the last event of every subscription.
    Terminal,
}

impl OperationEventKind {
    /// The lowercase wire name, used as the SSE `event:` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Progress => "progress",
            Self::Status => "status",
            Self::Terminal => "terminal",
        }
    }
}

/// One change of one operation, as streamed by
/// [`Operations::subscribe`](super::Operations::subscribe).
///
/// `seq` counts the changes of this operation since the process started (0 =
/// creation or load); it strictly increases within a subscription. It restarts after a
/// restart, so it is not a resumable cursor across processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationEvent {
    /// What happened.
    pub kind: OperationEventKind,
    /// Change counter of this operation.
    pub seq: u64,
    /// The whole operation after the change.
    pub operation: OperationInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parses_wire_names_and_rejects_others() {
        assert_eq!(
            "Running".parse::<OperationStatus>(),
            Ok(OperationStatus::Running)
        );
        assert!("bogus".parse::<OperationStatus>().is_err());
        assert_eq!(serde_json::json!(OperationStatus::Cancelled), "cancelled");
    }

    #[test]
    fn progress_normalize_clamps() {
        let mut p = OperationProgress {
            percentage: 150.0,
            context: Value::Null,
            ..OperationProgress::default()
        };
        p.normalize();
        assert_eq!(p.percentage, 100.0);
        assert_eq!(p.context, serde_json::json!({}));
        p.percentage = f64::NAN;
        p.normalize();
        assert_eq!(p.percentage, 0.0);
    }

    #[test]
    fn ktrdr_progress_without_message_deserializes() {
        let p: OperationProgress =
            serde_json::from_str(r#"{"percentage":45.5,"current_step":"x","steps_completed":5}"#)
                .expect("KTRDR progress parses");
        assert_eq!(p.percentage, 45.5);
        assert_eq!(p.steps_completed, 5);
        assert_eq!(p.context, serde_json::json!({}));
    }
}
