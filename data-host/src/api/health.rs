//! `/`, `/health/` and `/health/detailed`: real figures from the provider and counters.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde_json::{Value, json};

use super::ApiState;
use crate::SERVICE_NAME;

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

pub(super) async fn basic(State(state): State<ApiState>) -> Json<Value> {
    let now = Utc::now().to_rfc3339();
    let status = state.provider.status();
    Json(json!({
        "healthy": true,
        "service": SERVICE_NAME,
        "timestamp": now,
        "ib_status": { "connected": status.connected, "connection_count": status.connections },
        "connection_info": { "service_running": true, "last_check": now, "source": status.source },
        "error": status.last_error,
    }))
}

pub(super) async fn detailed(State(state): State<ApiState>) -> Json<Value> {
    let status = state.provider.status();
    let stats = &state.stats;
    Json(json!({
        "healthy": true,
        "service": SERVICE_NAME,
        "timestamp": Utc::now().to_rfc3339(),
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
