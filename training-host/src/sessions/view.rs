//! Operation records seen as training sessions. A session IS an operation of type
//! `training` (so it is persisted, survives restarts, and shows in the operations
//! API); this module maps one onto the training contract's shapes.

use host_service_base::HostError;
use host_service_base::operations::{OperationInfo, OperationStatus};
use serde_json::Value;

use super::wire::{
    Metrics, Progress, ResultResponse, SessionSummary, StatusResponse, TrainingResult,
};

/// Operation type of training sessions.
pub const OPERATION_TYPE: &str = "training";

/// The contract's session state for an operation status.
pub fn session_status(status: OperationStatus) -> &'static str {
    match status {
        OperationStatus::Pending => "initializing",
        OperationStatus::Running => "running",
        OperationStatus::Completed => "completed",
        OperationStatus::Failed => "failed",
        OperationStatus::Cancelled => "stopped",
    }
}

fn context<'a>(info: &'a OperationInfo, key: &str) -> Option<&'a Value> {
    info.progress.context.get(key)
}

fn number(info: &OperationInfo, key: &str) -> u64 {
    context(info, key).and_then(Value::as_u64).unwrap_or(0)
}

fn progress(info: &OperationInfo) -> Progress {
    Progress {
        epoch: number(info, "epoch"),
        total_epochs: number(info, "total_epochs"),
        batch: number(info, "batch"),
        total_batches: number(info, "total_batches"),
        progress_percent: info.progress.percentage,
        items_processed: info.progress.items_processed,
        items_total: info.progress.items_total.unwrap_or(0),
        message: info
            .progress
            .message
            .clone()
            .or_else(|| info.progress.current_step.clone()),
        current_item: info.progress.current_item.clone(),
        samples_per_second: figure(info, "samples_per_second"),
        estimated_duration_minutes: figure(info, "estimated_duration_minutes"),
        estimated_remaining_minutes: figure(info, "estimated_remaining_minutes"),
    }
}

/// A measured figure of the progress context, if there is one yet.
fn figure(info: &OperationInfo, key: &str) -> Option<f64> {
    context(info, key).and_then(Value::as_f64)
}

/// Only failures have an error; a stop's reason is not one.
fn error(info: &OperationInfo) -> Option<String> {
    (info.status == OperationStatus::Failed)
        .then(|| info.error_message.clone())
        .flatten()
}

fn start_time(info: &OperationInfo) -> String {
    info.started_at.unwrap_or(info.created_at).to_rfc3339()
}

fn gpu_allocated(info: &OperationInfo) -> bool {
    info.metadata
        .get("gpu_allocated")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// `GET /training/status/{id}`.
pub(crate) fn status(info: &OperationInfo) -> StatusResponse {
    let metric = |key| {
        context(info, "metrics")
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    StatusResponse {
        session_id: info.operation_id.clone(),
        status: session_status(info.status).to_owned(),
        progress: progress(info),
        metrics: Metrics {
            current: metric("current"),
            best: metric("best"),
        },
        gpu_usage: context(info, "gpu_usage").cloned().filter(|v| !v.is_null()),
        start_time: start_time(info),
        last_updated: info.updated_at.to_rfc3339(),
        error: error(info),
    }
}

/// One entry of `GET /training/sessions`.
pub(crate) fn summary(info: &OperationInfo) -> SessionSummary {
    SessionSummary {
        session_id: info.operation_id.clone(),
        status: session_status(info.status).to_owned(),
        start_time: start_time(info),
        last_updated: info.updated_at.to_rfc3339(),
        progress: progress(info),
        gpu_allocated: gpu_allocated(info),
        error: error(info),
    }
}

/// `GET /training/result/{id}`: completed sessions, and stopped ones that saved a
/// checkpoint (whose model is the checkpoint); 400 for the rest.
pub(crate) fn result(info: &OperationInfo) -> Result<ResultResponse, HostError> {
    let stored = match info.status {
        OperationStatus::Completed => info.result_summary.clone(),
        OperationStatus::Cancelled => context(info, "checkpoint")
            .cloned()
            .filter(|v| !v.is_null()),
        _ => None,
    };
    let Some(stored) = stored else {
        let state = session_status(info.status);
        let why = match info.status {
            OperationStatus::Failed => format!(
                "; it failed: {}",
                info.error_message.as_deref().unwrap_or("unknown error")
            ),
            OperationStatus::Cancelled => "; it was stopped without a checkpoint".to_owned(),
            _ => String::new(),
        };
        return Err(HostError::bad_field(
            "session_id",
            format!(
                "session {} is {state}, not finished{why}",
                info.operation_id
            ),
        ));
    };
    let result: TrainingResult = serde_json::from_value(stored)
        .map_err(|e| HostError::internal(format!("stored result unreadable: {e}")))?;
    Ok(ResultResponse {
        session_id: info.operation_id.clone(),
        status: session_status(info.status).to_owned(),
        result,
    })
}

#[cfg(test)]
mod tests {
    use host_service_base::operations::Operations;
    use serde_json::json;

    use super::*;

    /// A result as training-host stored it before figures were nullable: a missing
    /// figure was NaN, which JSON writes as `null`.
    fn stored_with_nulls() -> Value {
        json!({
            "model_path": "models/s/1d_v1",
            "training_metrics": {
                "epochs_trained": 0, "final_train_loss": null, "final_train_accuracy": 0.0,
                "best_train_accuracy": 0.0, "training_time": 0.5, "history": [],
                "final_val_loss": null, "final_val_accuracy": 0.0, "best_val_accuracy": 0.0,
            },
            "test_metrics": {
                "test_accuracy": 0.5, "test_loss": 0.9, "precision": 0.5, "recall": 0.5,
                "f1_score": 0.5,
            },
            "artifacts": {},
            "model_info": { "parameters_count": 10, "trainable_parameters": 10, "architecture": "2 -> 3" },
            "data_summary": {
                "symbols": ["AAPL"], "timeframes": ["1d"], "start_date": null, "end_date": null,
                "total_samples": 100, "feature_count": 2,
            },
        })
    }

    #[test]
    fn a_stored_result_with_null_figures_is_an_answer_not_a_500() {
        let ops = Operations::in_memory();
        let handle = ops
            .create_with_id("s1", OPERATION_TYPE, json!({}))
            .expect("created");
        handle.start();
        handle.complete(stored_with_nulls());
        let info = ops.get("s1").expect("stored");
        let answer = result(&info).expect("readable");
        let t = &answer.result.training_metrics;
        assert_eq!((t.final_train_loss, t.final_val_loss), (None, None));
        assert_eq!(answer.result.test_metrics.test_accuracy, Some(0.5));
        assert_eq!(answer.result.data_summary.test_samples, None);
        let body = serde_json::to_value(&answer).expect("serialises");
        assert_eq!(body["training_metrics"]["final_train_loss"], Value::Null);
        assert_eq!(body["status"], "completed");
    }
}
