//! A small host service built only from host-service-base: what every hostbridge
//! service looks like until the real ones land. It serves `/health`, `/ready`,
//! `/metrics`, the operations API, and `POST /demo/count` which starts a cancellable
//! long-running operation you can watch.
//!
//! ```text
//! cargo run -p host-service-base --example demo_service
//! curl -s -XPOST localhost:5050/demo/count -H 'content-type: application/json' -d '{"steps":20}'
//! curl -N localhost:5050/operations/<id>/events
//! curl -s -XDELETE localhost:5050/operations/<id>
//! ```
//! Settings: `DEMO_BIND` (default 127.0.0.1:5050), `DEMO_STATE` (operations store file,
//! default `./demo-operations.redb`), `HOSTBRIDGE_LOG_FORMAT`, `RUST_LOG`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use host_service_base::HostError;
use host_service_base::config::{Env, parse_socket_addr};
use host_service_base::operations::{self, Operations, OperationsConfig};
use host_service_base::server::{Json, Server, ServerConfig, shutdown_token};
use host_service_base::telemetry::{self, LogFormat, Metrics};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct CountRequest {
    /// How many one-second steps to count.
    steps: u32,
}

async fn start_count(
    State(ops): State<Operations>,
    Json(req): Json<CountRequest>,
) -> Result<axum::Json<Value>, HostError> {
    if req.steps == 0 || req.steps > 3600 {
        return Err(HostError::bad_field("steps", "must be between 1 and 3600"));
    }
    let steps = req.steps;
    let handle = ops.spawn(
        "dummy",
        json!({ "parameters": { "steps": steps } }),
        move |op| async move {
            let cancel = op.token();
            for step in 1..=steps {
                tokio::select! {
                    () = cancel.cancelled() => return Err("cancelled".to_owned()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                op.progress(|p| {
                    p.steps_completed = u64::from(step);
                    p.steps_total = u64::from(steps);
                    p.percentage = f64::from(step) * 100.0 / f64::from(steps);
                    p.current_step = Some(format!("step {step}/{steps}"));
                });
            }
            Ok(json!({ "counted": steps }))
        },
    );
    Ok(axum::Json(
        json!({ "success": true, "data": { "operation_id": handle.id(), "status": "started" } }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every setting is read and checked before anything binds a port.
    let env = Env::process();
    let format = LogFormat::from_env(&env)?;
    let bind = env.or(
        "DEMO_BIND",
        SocketAddr::from(([127, 0, 0, 1], 5050)),
        parse_socket_addr,
    )?;
    let state = env
        .raw("DEMO_STATE")?
        .unwrap_or_else(|| "demo-operations.redb".to_owned());
    telemetry::init_tracing(format)?;
    let metrics = Metrics::install()?;

    let ops = Operations::open(OperationsConfig::persistent(state))?;
    let shutdown = shutdown_token();
    ops.spawn_pruner(Duration::from_secs(300), shutdown.clone());

    let router = Router::new()
        .route("/demo/count", post(start_count))
        .with_state(ops.clone())
        .merge(operations::router(ops.clone()))
        .merge(telemetry::metrics_router(metrics));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let report = Server::new(ServerConfig::new("demo-service"), router)
        .operations(ops)
        .serve(listener, shutdown)
        .await?;
    if !report.drained {
        tracing::warn!("some work was abandoned at shutdown");
    }
    Ok(())
}
