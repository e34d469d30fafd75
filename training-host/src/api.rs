//! The HTTP API of training-host, wire-compatible with the KTRDR training host service
//! (:5002). Errors are the hostbridge envelope, whose `detail` field carries the
//! message as FastAPI clients expect.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use host_service_base::HostError;
use host_service_base::operations;
use host_service_base::server::Json as JsonBody;
use serde_json::{Value, json};

use crate::SERVICE_NAME;
use crate::sessions::SessionManager;
use crate::sessions::wire::{
    ResultResponse, SessionsResponse, StartRequest, StartResponse, StatusResponse, StopRequest,
    StopResponse,
};

/// What handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    sessions: SessionManager,
    max_sessions: usize,
    started: Instant,
}

/// The training-host routes plus the operations API for its sessions (the scaffold
/// adds `/health` liveness, `/ready`, limits).
pub fn router(sessions: SessionManager, max_sessions: usize) -> Router {
    let ops = sessions.operations().clone();
    let state = ApiState {
        sessions,
        max_sessions,
        started: Instant::now(),
    };
    Router::new()
        .route("/", get(root))
        .route("/health/", get(detailed))
        .route("/health/detailed", get(detailed))
        .route("/training/start", post(start))
        .route("/training/stop", post(stop))
        .route("/training/status/{session_id}", get(status))
        .route("/training/result/{session_id}", get(result))
        .route("/training/sessions", get(list))
        .route(
            "/training/sessions/{session_id}",
            axum::routing::delete(delete),
        )
        .with_state(state)
        .merge(operations::router(ops))
}

async fn root() -> Json<Value> {
    Json(json!({
        "service": SERVICE_NAME,
        "name": "hostbridge training-host",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": [
            "GET /health", "GET /health/detailed", "POST /training/start", "POST /training/stop",
            "GET /training/status/{id}", "GET /training/result/{id}", "GET /training/sessions",
            "DELETE /training/sessions/{id}", "GET /operations", "GET /operations/{id}/events",
        ],
    }))
}

/// Resident memory of this process in bytes (Linux `/proc`), when readable.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn detailed(State(state): State<ApiState>) -> Json<Value> {
    let device = state.sessions.device();
    Json(json!({
        "healthy": true,
        "service": SERVICE_NAME,
        "timestamp": Utc::now().to_rfc3339(),
        "status": "healthy",
        "device": device,
        "gpu_available": device != "cpu",
        "active_sessions": state.sessions.active(),
        "max_concurrent_sessions": state.max_sessions,
        "total_sessions": state.sessions.list().total_sessions,
        "memory": { "resident_bytes": resident_bytes() },
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
    }))
}

async fn start(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<Json<StartResponse>, HostError> {
    state.sessions.start(request).map(Json)
}

async fn stop(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<StopRequest>,
) -> Result<Json<StopResponse>, HostError> {
    state
        .sessions
        .stop(&request.session_id, request.save_checkpoint)
        .await
        .map(Json)
}

async fn status(
    State(state): State<ApiState>,
    Path(session_id): Path<String>,
) -> Result<Json<StatusResponse>, HostError> {
    state.sessions.status(&session_id).map(Json)
}

async fn result(
    State(state): State<ApiState>,
    Path(session_id): Path<String>,
) -> Result<Json<ResultResponse>, HostError> {
    state.sessions.result(&session_id).map(Json)
}

async fn list(State(state): State<ApiState>) -> Json<SessionsResponse> {
    Json(state.sessions.list())
}

async fn delete(
    State(state): State<ApiState>,
    Path(session_id): Path<String>,
) -> Result<Json<Value>, HostError> {
    state.sessions.delete(&session_id)?;
    Ok(Json(
        json!({ "success": true, "session_id": session_id, "message": "session removed" }),
    ))
}
