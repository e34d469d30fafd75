//! Training routes: start a training run, list the strategies.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use host_service_base::HostError;
use host_service_base::server::Json;

use super::correlation_id;
use super::schemas::{
    ErrorResponse, Strategies, Success, TrainingStarted, TrainingStartedResponse, meta_text,
    meta_texts,
};
use crate::gateway::Gateway;
use crate::training::TrainRequest;

/// `POST /api/v1/trainings/start` → 202 `{success, task_id, data: {task_id, ...}}`.
#[utoipa::path(post, path = "/api/v1/trainings/start", tag = "training",
    request_body(content = TrainRequest, examples(
        ("by name" = (summary = "a strategy of the strategies directory, on other symbols and timeframes", value = json!({"strategy_name": "rsi_macd_mlp", "symbols": ["AAPL"], "timeframes": ["1d"]}))),
    )),
    params(("X-Correlation-ID" = Option<String>, Header, description = "the chain this training belongs to: 1 to 128 visible ASCII characters")),
    responses(
        (status = 202, description = "started; follow it at /api/v1/operations/{task_id}", body = TrainingStartedResponse),
        (status = 400, description = "a bad field or strategy key, named in `error.details.field` (e.g. model.training.epochs)", body = ErrorResponse),
        (status = 404, description = "no strategy of that name", body = ErrorResponse),
        (status = 409, description = "an operation with that id exists (a redelivered command)", body = ErrorResponse),
        (status = 502, description = "training-host answered with an error", body = ErrorResponse),
        (status = 503, description = "no training host can take the session (down or at its limit)", body = ErrorResponse),
        (status = 504, description = "training-host did not answer in time", body = ErrorResponse),
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
    let body = TrainingStartedResponse {
        success: true,
        task_id: task_id.clone(),
        data: TrainingStarted {
            operation_id: task_id.clone(),
            task_id,
            status: "started".to_owned(),
            mode: meta_text(&metadata, "mode"),
            instance: meta_text(&metadata, "instance"),
            strategy: meta_text(&metadata, "strategy"),
            symbols: meta_texts(&metadata, "symbols"),
            timeframes: meta_texts(&metadata, "timeframes"),
            correlation_id: meta_text(&metadata, "correlation_id"),
        },
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `GET /api/v1/strategies`: the strategies `strategy_name` can name.
#[utoipa::path(get, path = "/api/v1/strategies", tag = "training",
    responses(
        (status = 200, description = "the strategies directory and the names in it", body = Success<Strategies>),
    ))]
pub(super) async fn strategies(State(gateway): State<Gateway>) -> Response {
    let training = gateway.training();
    axum::Json(Success::new(Strategies {
        directory: training.strategies_dir().to_path_buf(),
        strategies: training.strategies().await,
    }))
    .into_response()
}
