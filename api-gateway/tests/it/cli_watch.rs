//! `hostbridge ops watch`: the real binary follows an operation through the gateway's
//! SSE stream to its end — on a real gateway, and on a fake one whose stream drops, to
//! see the re-read and reconnect.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::cli_events::{BIN, SimGateway, ib_load, sim_gateway, start};
use crate::support::{http, wait_for};

/// `hostbridge --json ops watch ID` run to its end (off the async workers, which serve
/// the gateway); it must succeed, and its stdout is the final record.
async fn watch_json(base: &str, id: &str) -> Value {
    let args: Vec<String> = ["--url", base, "--json", "ops", "watch", id]
        .map(str::to_owned)
        .to_vec();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .output()
            .expect("hostbridge runs")
    })
    .await
    .expect("joined");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout).expect("the final record as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_watch_follows_a_running_load_to_completed() {
    let SimGateway { gw, .. } = &sim_gateway(Duration::from_secs(1), 22).await;
    let id = start(&gw.base, ib_load()).await;
    wait_for(&http(), &gw.base, &id, |op| op["status"] == "running").await;

    let op = watch_json(&gw.base, &id).await;
    assert_eq!(op["operation_id"], id.as_str());
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["progress"]["percentage"], 100.0, "{op}");

    // An operation that has already ended is answered from the first read.
    let out = Command::new(BIN)
        .args(["--url", &gw.base, "ops", "watch", &id])
        .output()
        .expect("hostbridge runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed"));
}

/// How often the fake gateway was asked for what.
#[derive(Default)]
struct Calls {
    fetches: AtomicUsize,
    streams: AtomicUsize,
}

fn record(id: &str, status: &str, percentage: f64) -> Value {
    json!({
        "operation_id": id, "operation_type": "data_load", "status": status,
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:01Z",
        "progress": {"percentage": percentage},
    })
}

/// Running on the first two reads, completed from the third.
async fn operation(State(calls): State<Arc<Calls>>, Path(id): Path<String>) -> impl IntoResponse {
    let n = calls.fetches.fetch_add(1, Ordering::SeqCst);
    let data = if n < 2 {
        record(&id, "running", 10.0)
    } else {
        record(&id, "completed", 100.0)
    };
    axum::Json(json!({"success": true, "data": data}))
}

/// The first stream ends at once (a dropped connection); the second carries progress
/// and the end, split across chunks and with a heartbeat between.
async fn events(State(calls): State<Arc<Calls>>) -> impl IntoResponse {
    let n = calls.streams.fetch_add(1, Ordering::SeqCst);
    let body = if n == 0 {
        ": hello\n\n".to_owned()
    } else {
        let progress = json!({"type": "operation.progress", "subject": "op-x",
                              "data": {"progress": {"percentage": 60.0}}});
        let done = json!({"type": "operation.completed", "subject": "op-x",
                          "data": {"progress": {"percentage": 100.0}}});
        let other = json!({"type": "operation.completed", "subject": "op-other", "data": {}});
        format!(
            "event: operation.completed\r\ndata: {other}\r\n\r\n: keep-alive\r\n\r\nevent: operation.progress\r\ndata: {progress}\r\n\r\nevent: operation.completed\r\ndata: {done}\r\n\r\n"
        )
    };
    ([(header::CONTENT_TYPE, "text/event-stream")], body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_watch_reads_again_and_reconnects_when_the_stream_drops() {
    let calls = Arc::new(Calls::default());
    let app = Router::new()
        .route("/api/v1/operations/{id}", get(operation))
        .route("/api/v1/events", get(events))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let op = watch_json(&base, "op-x").await;
    assert_eq!(op["status"], "completed");
    // Read at the start, again after the drop, and once at the end.
    assert_eq!(calls.fetches.load(Ordering::SeqCst), 3);
    assert_eq!(calls.streams.load(Ordering::SeqCst), 2);
}
