//! `/`, `/health/` and `/health/detailed`: real figures from the provider and counters.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde_json::{Value, json};

use super::ApiState;
use crate::SERVICE_NAME;
use crate::provider::ProviderStatus;

pub(super) async fn root(State(state): State<ApiState>) -> Json<Value> {
    Json(json!({
        "service": SERVICE_NAME,
        "name": "hostbridge data-host",
        "version": env!("CARGO_PKG_VERSION"),
        "source": state.provider.name(),
        "endpoints": [
            "GET /health", "GET /health/", "GET /health/detailed", "GET /ready",
            "POST /data/historical", "POST /data/validate",
            "GET /data/symbol-info/{symbol}", "GET /data/head-timestamp",
        ],
    }))
}

/// `healthy` and `status` of `/health/` and `/health/detailed`: healthy while the
/// provider can serve (a store always; IB while the IB Gateway link is up), else
/// `status` is why not. (`/health` is liveness: true while the process answers.)
fn readiness(status: &ProviderStatus) -> (bool, String) {
    match status.ready() {
        Ok(()) => (true, "healthy".to_owned()),
        Err(reason) => (false, reason),
    }
}

pub(super) async fn basic(State(state): State<ApiState>) -> Json<Value> {
    let now = Utc::now().to_rfc3339();
    let status = state.provider.status();
    let (healthy, summary) = readiness(&status);
    let stats = &state.stats;
    Json(json!({
        "healthy": healthy,
        "service": SERVICE_NAME,
        "timestamp": now,
        "status": summary,
        "ib_status": { "connected": status.connected, "connection_count": status.connections },
        "connection_info": { "service_running": true, "last_check": now, "source": status.source },
        "total_requests": stats.requests(),
        "error_count": stats.errors(),
        "uptime_seconds": stats.uptime_seconds(),
        "error": status.last_error,
    }))
}

pub(super) async fn detailed(State(state): State<ApiState>) -> Json<Value> {
    let status = state.provider.status();
    let (healthy, summary) = readiness(&status);
    let stats = &state.stats;
    Json(json!({
        "healthy": healthy,
        "service": SERVICE_NAME,
        "timestamp": Utc::now().to_rfc3339(),
        "status": summary,
        "source": status.source,
        "ib_gateway_connected": status.connected,
        "active_connections": status.connections,
        "total_requests": stats.requests(),
        "error_count": stats.errors(),
        "last_error": stats.last_error().or(status.last_error),
        "uptime_seconds": stats.uptime_seconds(),
        "connection_pool_status": status.details,
    }))
}
