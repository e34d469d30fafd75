//! The gateway's HTTP API under `/api/v1` (DESIGN.md): health, data loads and bars,
//! training starts, strategies, and the operations API of host-service-base. Successes
//! use the `{success: true, data}` envelope; errors are `HostError` answers
//! (`{success: false, error: {code, message, details}}`).

pub(crate) mod auth;
mod bars_json;
mod data;
pub mod openapi;
pub mod schemas;
mod training;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use host_service_base::HostError;
use host_service_base::telemetry::{Metrics, metrics_router};
use serde_json::Value;

use crate::gateway::{Gateway, GatewayError};
use schemas::{HealthResponse, HealthStatus, ServicesHealth};

/// The API version prefix.
pub const PREFIX: &str = "/api/v1";

/// The request header that names the chain a load or training belongs to.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The `X-Correlation-ID` of a start request: at most 128 visible ASCII characters
/// (a UUID, a ULID, a tracing id); anything else is refused naming the header.
pub(crate) fn correlation_id(headers: &HeaderMap) -> Result<Option<String>, HostError> {
    let Some(value) = headers.get(CORRELATION_HEADER) else {
        return Ok(None);
    };
    let id =
        value.to_str().ok().map(str::trim).filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
        });
    match id {
        Some(id) => Ok(Some(id.to_owned())),
        None => Err(HostError::bad_field(
            "X-Correlation-ID",
            "a correlation id is 1 to 128 visible ASCII characters without spaces",
        )),
    }
}

/// Every gateway route, with the API key check when a key is configured.
pub fn router(gateway: Gateway) -> Result<Router, GatewayError> {
    let api = Router::new()
        .route("/health", get(health))
        .route("/data/load", post(data::load))
        .route("/data", get(data::inventory))
        .route("/data/{symbol}/{timeframe}", get(data::bars))
        .route(
            "/data/{symbol}/{timeframe}/head-timestamp",
            get(data::head_timestamp),
        )
        .route("/trainings/start", post(training::start))
        .route("/strategies", get(training::strategies))
        .route("/events", get(crate::events::sse::events))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs_root))
        .route("/docs/", get(openapi::docs_index))
        .route("/docs/{*file}", get(openapi::docs_file))
        .with_state(gateway.clone())
        .merge(host_service_base::operations::router(
            gateway.operations().clone(),
        ));
    let api = match gateway.config().api_key.clone() {
        Some(key) => auth::require_key(api, key),
        None => api,
    };
    let metrics = Metrics::install()?;
    let router = Router::new()
        .nest(PREFIX, api)
        .merge(metrics_router(metrics))
        // The operations page: outside `/api/v1`, so its assets need no key.
        .merge(crate::ui::router());
    // Socket.IO (polling and the WebSocket upgrade) on its own route; it checks the API
    // key on its namespace connections itself.
    Ok(
        match gateway
            .events()
            .socketio_service(gateway.config().api_key.clone())
        {
            Some(service) => router
                .route_service("/socket.io/", service.clone())
                .route_service("/socket.io", service),
            None => router,
        },
    )
}

/// `GET /api/v1/health`: `{status, version, services: {data, training}}`, from cached
/// probes. Always 200 while the gateway runs; `status` is `degraded` and the service
/// says why when a host service is down.
#[utoipa::path(get, path = "/api/v1/health", tag = "health", security(()),
    responses((status = 200, description = "the gateway, the services behind it and the event layer; needs no API key", body = HealthResponse)))]
async fn health(State(gateway): State<Gateway>) -> axum::Json<HealthResponse> {
    let (data, training) = gateway.health().await;
    let commands = gateway.commands();
    let healthy = data.healthy
        && training.healthy
        && gateway.events().healthy()
        && commands.is_none_or(|c| c.healthy());
    let mut events = gateway.events().health();
    events["commands"] = commands.map_or(Value::Null, |c| c.health());
    axum::Json(HealthResponse {
        success: true,
        status: if healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Degraded
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: gateway.uptime_seconds(),
        services: ServicesHealth { data, training },
        events,
    })
}
