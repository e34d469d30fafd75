//! The routes every service gets from the scaffold: `/health` (liveness: the process
//! answers; never touches a dependency) and `/ready` (readiness: a hook the service
//! supplies, e.g. "connected to IB Gateway").

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::health::Liveness;

/// A service's readiness check: `Ok(details)` when it can serve, `Err(reason)` when not.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// Checks readiness now; keep it cheap (it is polled by orchestrators).
    async fn check(&self) -> Result<Value, String>;
}

#[derive(Clone)]
struct ProbeState {
    service: Arc<str>,
    readiness: Option<Arc<dyn Readiness>>,
}

pub(crate) fn router(
    service: &str,
    liveness: bool,
    readiness: Option<Arc<dyn Readiness>>,
) -> Router {
    let state = ProbeState {
        service: Arc::from(service),
        readiness,
    };
    let mut router = Router::new().route("/ready", get(ready));
    if liveness {
        router = router.route("/health", get(live));
    }
    router.with_state(state)
}

async fn live(State(state): State<ProbeState>) -> Json<Liveness> {
    Json(Liveness::now(&state.service))
}

async fn ready(State(state): State<ProbeState>) -> Response {
    let outcome = match &state.readiness {
        Some(check) => check.check().await,
        None => Ok(Value::Null),
    };
    match outcome {
        Ok(details) => {
            Json(json!({ "ready": true, "service": &*state.service, "details": details }))
                .into_response()
        }
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "service": &*state.service, "reason": reason })),
        )
            .into_response(),
    }
}
