//! Training routes: start a training run, list the strategies.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use host_service_base::HostError;
use host_service_base::server::Json;
use serde_json::json;

use super::{correlation_id, envelope};
use crate::gateway::Gateway;
use crate::training::TrainRequest;

/// `POST /api/v1/trainings/start` → 202 `{success, task_id, data: {task_id, ...}}`.
#[utoipa::path(post, path = "/api/v1/trainings/start", tag = "training", request_body = TrainRequest,
    responses(
        (status = 202, description = "`{success, task_id, data: {task_id, operation_id, status: started, mode, instance, strategy, symbols, timeframes}}`"),
        (status = 400, description = "a bad field or strategy key, named (e.g. model.training.epochs)"),
        (status = 404, description = "no strategy of that name"),
        (status = 503, description = "no training-host can take the session (down or at its limit)"),
    ))]
pub(super) async fn start(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Json(request): Json<TrainRequest>,
) -> Result<Response, HostError> {
    let correlation = correlation_id(&headers)?;
    let task_id = gateway
        .training()
        .start(&request, crate::Origin::correlated(correlation))
        .await?;
    let info = gateway.operations().get(&task_id);
    let metadata = info.map(|i| i.metadata).unwrap_or_default();
    let body = json!({
        "success": true,
        "task_id": task_id,
        "data": {
            "task_id": task_id,
            "operation_id": task_id,
            "status": "started",
            "mode": metadata["mode"],
            "instance": metadata["instance"],
            "strategy": metadata["strategy"],
            "symbols": metadata["symbols"],
            "timeframes": metadata["timeframes"],
            "correlation_id": metadata["correlation_id"],
        },
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `GET /api/v1/strategies`: the strategies `strategy_name` can name.
#[utoipa::path(get, path = "/api/v1/strategies", tag = "training",
    responses((status = 200, description = "`{success, data: {directory, strategies: [name]}}`")))]
pub(super) async fn strategies(State(gateway): State<Gateway>) -> Response {
    let training = gateway.training();
    envelope(json!({
        "directory": training.strategies_dir(),
        "strategies": training.strategies(),
    }))
    .into_response()
}
