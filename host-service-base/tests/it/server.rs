//! The server scaffold over real sockets: standard routes, envelope errors, request
//! timeout, and graceful shutdown with a deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use host_service_base::operations::{OperationStatus, Operations, OperationsConfig};
use host_service_base::server::{Json, Query, Readiness, Server, ServerConfig, ValidationStyle};
use host_service_base::{CancellationToken, HostError};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

struct Started {
    base: String,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<
        Result<host_service_base::server::ShutdownReport, host_service_base::server::ServeError>,
    >,
}

async fn start(server: Server) -> Started {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let done = tokio::spawn(server.serve(listener, shutdown.clone()));
    Started {
        base,
        shutdown,
        done,
    }
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Order {
    symbol: String,
    qty: u32,
}

struct NotReady;

#[async_trait::async_trait]
impl Readiness for NotReady {
    async fn check(&self) -> Result<Value, String> {
        Err("IB Gateway not connected".to_owned())
    }
}

#[tokio::test]
async fn standard_routes_limits_and_field_errors() {
    let mut config = ServerConfig::new("ib-connector");
    config.body_limit = 1024;
    config.request_timeout = Duration::from_millis(200);
    let router = Router::new()
        .route(
            "/orders",
            post(|Json(order): Json<Order>| async move {
                axum::Json(json!({ "symbol": order.symbol }))
            }),
        )
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let s = start(Server::new(config, router).readiness(Arc::new(NotReady))).await;
    let http = reqwest::Client::new();

    let live: Value = http
        .get(format!("{}/health", s.base))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(live["healthy"], true);
    assert_eq!(live["service"], "ib-connector");
    assert_eq!(live["status"], "healthy");
    assert!(
        live["timestamp"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );

    let ready = http
        .get(format!("{}/ready", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["reason"], "IB Gateway not connected");

    let ok: Value = http
        .post(format!("{}/orders", s.base))
        .json(&json!({ "symbol": "AAPL", "qty": 1 }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(ok["symbol"], "AAPL");

    let missing = http
        .post(format!("{}/orders", s.base))
        .json(&json!({ "qty": 1 }))
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["details"]["field"], "symbol", "{body}");

    let mistyped = http
        .post(format!("{}/orders", s.base))
        .json(&json!({ "symbol": "A", "qty": "x" }))
        .send()
        .await
        .expect("post");
    let body: Value = mistyped.json().await.expect("json");
    assert_eq!(body["error"]["details"]["field"], "qty", "{body}");

    let huge = http
        .post(format!("{}/orders", s.base))
        .header("content-type", "application/json")
        .body(format!("{{\"symbol\":\"{}\",\"qty\":1}}", "A".repeat(4096)))
        .send()
        .await
        .expect("post");
    assert_eq!(huge.status(), 413, "body over the limit is refused");

    let stuck = http
        .get(format!("{}/stuck", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(stuck.status(), 504);
    let body: Value = stuck.json().await.expect("json");
    assert_eq!(body["error"]["code"], "timeout");

    let unknown = http
        .get(format!("{}/nope", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), 404);

    s.shutdown.cancel();
    assert!(s.done.await.expect("join").expect("serve").drained);
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Basket {
    owner: String,
    orders: Vec<Order>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Page {
    limit: u32,
}

/// Posts `body` raw (JSON content type) and returns the status and the parsed answer.
async fn post_raw(http: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let answer = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("post");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("json"))
}

#[tokio::test]
async fn fastapi_style_answers_malformed_requests_with_422_and_a_detail_list() {
    let router = || {
        Router::new()
            .route(
                "/baskets",
                post(
                    |Json(b): Json<Basket>| async move { axum::Json(json!({ "owner": b.owner })) },
                ),
            )
            .route(
                "/page",
                get(|Query(p): Query<Page>| async move { axum::Json(json!({ "limit": p.limit })) }),
            )
    };
    let mut config = ServerConfig::new("training-host");
    config.validation = ValidationStyle::FastApi;
    let fastapi = start(Server::new(config, router())).await;
    let envelope = start(Server::new(ServerConfig::new("api-gateway"), router())).await;
    let http = reqwest::Client::new();
    let url = format!("{}/baskets", fastapi.base);

    // (body, expected loc, expected type, field named in the envelope)
    let cases = [
        (
            r#"{"orders": []}"#,
            json!(["body", "owner"]),
            "missing",
            "owner",
        ),
        (
            r#"{"owner": "x", "orders": [{"symbol": "A", "qty": 1}, {"symbol": "B", "qty": "two"}]}"#,
            json!(["body", "orders", 1, "qty"]),
            "int_type",
            "orders[1].qty",
        ),
        (
            r#"{"owner": 5, "orders": []}"#,
            json!(["body", "owner"]),
            "string_type",
            "owner",
        ),
        (
            r#"{"owner": "x", "orders": {}}"#,
            json!(["body", "orders"]),
            "list_type",
            "orders",
        ),
        (
            r#"{"owner": "x", "#,
            json!(["body"]),
            "json_invalid",
            "body",
        ),
    ];
    for (body, loc, kind, field) in cases {
        let (status, answer) = post_raw(&http, &url, body).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        let detail = answer["detail"].as_array().expect("detail is a list");
        assert_eq!(detail.len(), 1, "{answer}");
        assert_eq!(detail[0]["loc"], loc, "{body} -> {answer}");
        assert_eq!(detail[0]["type"], kind, "{body} -> {answer}");
        assert!(detail[0]["msg"].as_str().is_some_and(|m| !m.is_empty()));
        // The hostbridge envelope is there too, naming the same field.
        assert_eq!(answer["success"], false);
        assert_eq!(answer["error"]["code"], "bad_request");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");

        // A hostbridge client reads it back as the bad request it is.
        let error = HostError::from_upstream(
            "training-host",
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            &axum::http::HeaderMap::new(),
            answer.to_string().as_bytes(),
        );
        assert!(
            matches!(&error, HostError::BadRequest { field: Some(f), .. } if f == field),
            "{error:?}"
        );

        // The same request at an envelope-style server stays a 400 with a plain detail.
        let (status, answer) = post_raw(&http, &format!("{}/baskets", envelope.base), body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["detail"], answer["error"]["message"], "{answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }

    // No JSON content type: FastAPI names the header.
    let plain = http
        .post(&url)
        .body(r#"{"owner": "x", "orders": []}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(plain.status(), 422);
    let answer: Value = plain.json().await.expect("json");
    assert_eq!(
        answer["detail"][0]["loc"],
        json!(["header", "content-type"])
    );

    // A query string that does not deserialize.
    let page = http
        .get(format!("{}/page?limit=many", fastapi.base))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), 422);
    let answer: Value = page.json().await.expect("json");
    assert_eq!(
        answer["detail"][0]["loc"],
        json!(["query", "limit"]),
        "{answer}"
    );
    assert_eq!(answer["detail"][0]["type"], "int_parsing", "{answer}");

    // The server still serves, and a good request is unaffected.
    let (status, answer) = post_raw(&http, &url, r#"{"owner": "x", "orders": []}"#).await;
    assert_eq!((status, answer["owner"].as_str()), (200, Some("x")));

    // A FastAPI service's own 422 (no hostbridge envelope) reads the same way.
    let pydantic = json!({"detail": [{"type": "missing", "loc": ["body", "strategy_yaml"],
        "msg": "Field required", "input": {}}]});
    let error = HostError::from_upstream(
        "training-host",
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        &axum::http::HeaderMap::new(),
        pydantic.to_string().as_bytes(),
    );
    match error {
        HostError::BadRequest { field, message } => {
            assert_eq!(field.as_deref(), Some("strategy_yaml"));
            assert_eq!(message, "strategy_yaml: Field required");
        }
        other => panic!("{other:?}"),
    }

    for s in [fastapi, envelope] {
        s.shutdown.cancel();
        assert!(s.done.await.expect("join").expect("serve").drained);
    }
}

#[tokio::test]
async fn a_served_registry_forgets_finished_operations_after_their_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("ops.redb");
    let config = OperationsConfig::persistent(&store).with_retention(Duration::from_millis(300));
    let ops = Operations::open(config.clone()).expect("open");
    let s =
        start(Server::new(ServerConfig::new("svc"), Router::new()).operations(ops.clone())).await;

    let done = ops.create("load", json!({}));
    done.start();
    done.complete(json!({ "bars": 1 }));
    let running = ops.create("load", json!({}));
    running.start();
    let kept = running.id().to_owned();
    let finished = done.id().to_owned();

    // Nothing prunes unless the scaffold does: no test calls prune().
    let started = std::time::Instant::now();
    while ops.get(&finished).is_some() {
        assert!(started.elapsed() < Duration::from_secs(30), "never pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "kept for its retention first"
    );
    assert!(
        ops.get(&kept).is_some(),
        "a running operation is never pruned"
    );

    running.complete(json!({}));
    s.shutdown.cancel();
    assert!(s.done.await.expect("join").expect("serve").drained);
    drop((ops, done, running));
    // Gone from the store too: a restart does not bring it back.
    let reopened =
        Operations::open(config.with_retention(Duration::from_secs(3600))).expect("reopen");
    assert!(reopened.get(&finished).is_none());
    assert!(reopened.get(&kept).is_some());
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_cancels_operations_and_meets_the_deadline() {
    let ops = Operations::in_memory();
    let entered = Arc::new(Notify::new());
    let entered_in_handler = entered.clone();
    let router = Router::new().route(
        "/slow",
        get(move || {
            let entered = entered_in_handler.clone();
            async move {
                entered.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                "finished"
            }
        }),
    );
    let op = ops.spawn("training", json!({}), |handle| async move {
        // Long work that only stops when cancelled, checking between "batches".
        while !handle.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(json!({ "stopped": true }))
    });
    let mut config = ServerConfig::new("training-host");
    config.shutdown_grace = Duration::from_secs(5);
    let s = start(Server::new(config, router).operations(ops.clone())).await;

    let url = format!("{}/slow", s.base);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    entered.notified().await;
    let asked = tokio::time::Instant::now();
    s.shutdown.cancel();

    let answer = in_flight
        .await
        .expect("join")
        .expect("in-flight request completed");
    assert_eq!(answer, "finished");
    let report = s.done.await.expect("join").expect("serve");
    assert!(report.drained, "everything drained before the deadline");
    assert!(asked.elapsed() < Duration::from_secs(5));
    // Interrupted by the service, not cancelled by anyone: failed, with the reason.
    let info = ops.get(op.id()).expect("op");
    assert_eq!(info.status, OperationStatus::Failed);
    assert!(
        info.error_message
            .as_deref()
            .is_some_and(|m| m.contains("shut down")),
        "{info:?}"
    );

    let refused = reqwest::get(format!("{}/slow", s.base)).await;
    assert!(refused.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_still_interrupts_its_operations_at_shutdown() {
    // With no connection open the server's own graceful shutdown ends at once, in the
    // same poll as the token: the shutdown path must still run, every time (an unbiased
    // select skipped it about half the time).
    for round in 0..20 {
        let ops = Operations::in_memory();
        let op = ops.spawn("training", json!({}), |handle| async move {
            handle.token().cancelled().await;
            Ok(json!({}))
        });
        let s =
            start(Server::new(ServerConfig::new("gateway"), Router::new()).operations(ops.clone()))
                .await;
        s.shutdown.cancel();
        assert!(s.done.await.expect("join").expect("serve").drained);
        let info = ops.get(op.id()).expect("op");
        assert_eq!(
            info.status,
            OperationStatus::Failed,
            "round {round}: {info:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_work_at_the_deadline() {
    let entered = Arc::new(Notify::new());
    let entered_in_handler = entered.clone();
    let router = Router::new().route(
        "/forever",
        get(move || {
            let entered = entered_in_handler.clone();
            async move {
                entered.notify_one();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }
        }),
    );
    let mut config = ServerConfig::new("data-host");
    config.shutdown_grace = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(7200);
    let s = start(Server::new(config, router)).await;
    let url = format!("{}/forever", s.base);
    let _in_flight = tokio::spawn(async move { reqwest::get(url).await });
    entered.notified().await;

    let asked = tokio::time::Instant::now();
    s.shutdown.cancel();
    let report = s.done.await.expect("join").expect("serve");
    assert!(!report.drained);
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "took {took:?}"
    );
}

#[tokio::test]
async fn handler_errors_use_the_envelope() {
    let router = Router::new().route(
        "/missing",
        get(|| async { Err::<(), _>(HostError::not_found("no such session")) }),
    );
    let s = start(Server::new(ServerConfig::new("training-host"), router)).await;
    let response = reqwest::get(format!("{}/missing", s.base))
        .await
        .expect("get");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "success": false,
            "error": { "code": "not_found", "message": "no such session", "details": null },
            "detail": "no such session",
        })
    );
    s.shutdown.cancel();
}

#[tokio::test]
async fn every_request_is_counted_by_route_pattern_method_and_status() {
    let metrics = host_service_base::telemetry::Metrics::install().expect("recorder");
    let router = Router::new().route("/metered/{id}", get(|| async { "ok" }));
    let server = start(Server::new(ServerConfig::new("metered"), router)).await;
    let http = reqwest::Client::new();
    for id in 1..=3 {
        let response = http
            .get(format!("{}/metered/{id}", server.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 200);
    }
    // An invented method on a known route: 405, counted as OTHER (no new series per
    // method a client makes up).
    let purge = reqwest::Method::from_bytes(b"PURGE").expect("method");
    let response = http
        .request(purge, format!("{}/metered/9", server.base))
        .send()
        .await
        .expect("PURGE");
    assert_eq!(response.status().as_u16(), 405);

    let text = metrics.render();
    for line in [
        r#"hostbridge_http_requests_total{method="GET",route="/metered/{id}",status="200"} 3"#,
        r#"hostbridge_http_requests_total{method="OTHER",route="/metered/{id}",status="405"} 1"#,
        r#"hostbridge_http_request_duration_seconds_count{method="GET",route="/metered/{id}"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    assert!(!text.contains("/metered/1"), "raw paths must not be labels");
    server.shutdown.cancel();
}
