//! `TrainingHostClient` against the real training-host router on 127.0.0.1:0 (real
//! training on the sample bars), and against scripted stand-ins for what a live host
//! cannot be made to do on cue: a lost answer, a KTRDR service's bare `{"detail"}`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use host_service_base::{AsyncHostService, HostError};
use serde_json::{Value, json};
use training_host::client::TrainingHostClient;
use training_host::model::resolve_shown;
use training_host::sessions::wire::{StartRequest, StatusResponse};

mod common;

use common::strategy;

/// Status polls before a test gives up (50 ms apart: minutes, far above a normal run).
const MAX_POLLS: usize = 6_000;

/// training-host on 127.0.0.1:0 and a client of it.
async fn start_host(max_sessions: usize) -> (common::Host, TrainingHostClient) {
    let host = common::start_host(max_sessions).await;
    let client = TrainingHostClient::new(&host.base).expect("client");
    (host, client)
}

fn request(id: Option<&str>, epochs: u32, long: bool) -> StartRequest {
    StartRequest {
        session_id: id.map(str::to_owned),
        strategy_yaml: strategy(epochs, long),
        ..StartRequest::default()
    }
}

/// Polls the session's status until `done` holds (a bounded number of polls).
async fn wait_status(
    client: &TrainingHostClient,
    id: &str,
    done: impl Fn(&StatusResponse) -> bool,
) -> StatusResponse {
    for _ in 0..MAX_POLLS {
        let status = client.status(id, None).await.expect("status");
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} never reached the expected state");
}

fn finished(s: &StatusResponse) -> bool {
    matches!(s.status.as_str(), "completed" | "failed" | "stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_poll_result_list_and_delete() {
    let (host, client) = start_host(2).await;
    let client = &client;
    // No session_id: the service picks one (and the call is never replayed).
    let started = client
        .start(&request(None, 3, false), None)
        .await
        .expect("start");
    assert_eq!(started.status, "started");
    assert!(!started.gpu_allocated);
    let id = started.session_id;
    assert!(!id.is_empty());

    let status = wait_status(client, &id, finished).await;
    assert_eq!(status.status, "completed", "{status:?}");
    assert_eq!(status.progress.progress_percent, 100.0);
    assert!(status.progress.epoch >= 1);

    let result = client.result(&id, None).await.expect("result");
    assert_eq!(
        (result.session_id.as_str(), result.status.as_str()),
        (id.as_str(), "completed")
    );
    let tm = &result.result.test_metrics;
    for (name, value) in [
        ("test_accuracy", tm.test_accuracy),
        ("precision", tm.precision),
        ("recall", tm.recall),
        ("f1_score", tm.f1_score),
    ] {
        let value = value.unwrap_or_else(|| panic!("{name} is null: {tm:?}"));
        assert!((0.0..=1.0).contains(&value), "{name} = {value}");
    }
    assert!(
        tm.test_loss.is_some_and(|l| l.is_finite() && l > 0.0),
        "{tm:?}"
    );
    let shown = result.result.model_path.as_deref().expect("model_path");
    assert!(!Path::new(shown).is_absolute(), "no server path: {shown}");
    let model_path = resolve_shown(host.models.path(), shown);
    assert!(model_path.join("model.safetensors").is_file());
    assert!(result.result.training_metrics.epochs_trained >= 1);
    assert_eq!(result.result.data_summary.symbols, ["AAPL"]);

    let listed = client.sessions(None).await.expect("sessions");
    assert_eq!(listed.total_sessions, 1);
    assert_eq!(listed.sessions[0].session_id, id);
    assert_eq!(listed.sessions[0].status, "completed");

    client.delete(&id, None).await.expect("delete");
    assert!(matches!(
        client.status(&id, None).await,
        Err(HostError::NotFound { .. })
    ));
    assert!(matches!(
        client.delete(&id, None).await,
        Err(HostError::NotFound { .. })
    ));
    assert_eq!(
        client
            .sessions(None)
            .await
            .expect("sessions")
            .total_sessions,
        0
    );
    assert!(model_path.is_dir(), "deleting a session keeps its model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_running_session_as_stopped() {
    let (_host, client) = start_host(2).await;
    let client = &client;
    client
        .start(&request(Some("long"), 5000, true), None)
        .await
        .expect("start");
    let running = wait_status(client, "long", |s| s.progress.epoch >= 2 || finished(s)).await;
    assert_eq!(running.status, "running", "{running:?}");

    let stopped = client.stop("long", true, None).await.expect("stop");
    assert_eq!(stopped.session_id, "long");
    assert_eq!(stopped.status, "stopped");
    assert!(stopped.checkpoint_saved, "{stopped:?}");
    let status = client.status("long", None).await.expect("status");
    assert_eq!(status.status, "stopped");
    assert_eq!(status.error, None);
    let result = client
        .result("long", None)
        .await
        .expect("checkpoint result");
    assert!(result.result.model_path.is_some());

    match client.stop("long", false, None).await {
        Err(HostError::Conflict { message }) => assert!(message.contains("already"), "{message}"),
        other => panic!("second stop: {other:?}"),
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_ids_stay_one_path_segment() {
    let (_host, client) = start_host(2).await;
    let client = &client;
    for id in [
        "nope",
        "../health",
        "a/b?c=d#e",
        "..%2Fhealth",
        "sp ace",
        "é",
    ] {
        match client.status(id, None).await {
            Err(HostError::NotFound { .. }) => {}
            other => panic!("status({id:?}): {other:?}"),
        }
        assert!(
            matches!(
                client.result(id, None).await,
                Err(HostError::NotFound { .. })
            ),
            "result({id:?})"
        );
        assert!(
            matches!(
                client.delete(id, None).await,
                Err(HostError::NotFound { .. })
            ),
            "delete({id:?})"
        );
    }
    match client.stop("nope", false, None).await {
        Err(HostError::NotFound { message }) => assert!(message.contains("nope"), "{message}"),
        other => panic!("stop: {other:?}"),
    }
    for id in ["", ".", ".."] {
        match client.status(id, None).await {
            Err(HostError::BadRequest { field, .. }) => {
                assert_eq!(field.as_deref(), Some("session_id"))
            }
            other => panic!("status({id:?}): {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_session_id_is_a_conflict() {
    let (_host, client) = start_host(2).await;
    let client = &client;
    client
        .start(&request(Some("dup"), 5000, true), None)
        .await
        .expect("start");
    match client.start(&request(Some("dup"), 2, false), None).await {
        Err(HostError::Conflict { message }) => assert!(message.contains("dup"), "{message}"),
        other => panic!("duplicate start: {other:?}"),
    }
    // A full host still says "exists" for the duplicate, not "busy" (which a gateway
    // may read as "try another host").
    let (_full, full) = start_host(1).await;
    full.start(&request(Some("only"), 5000, true), None)
        .await
        .expect("start");
    match full.start(&request(Some("only"), 2, false), None).await {
        Err(HostError::Conflict { .. }) => {}
        other => panic!("duplicate on a full host: {other:?}"),
    }
    match client.result("dup", None).await {
        Err(HostError::BadRequest { field, message }) => {
            assert_eq!(field.as_deref(), Some("session_id"), "{message}");
            assert!(message.contains("not finished"), "{message}");
        }
        other => panic!("result of a running session: {other:?}"),
    }
    assert!(
        matches!(
            client.delete("dup", None).await,
            Err(HostError::Conflict { .. })
        ),
        "a running session cannot be deleted"
    );
    client.stop("dup", false, None).await.expect("stop");
}

#[tokio::test]
async fn bad_requests_name_the_offending_key() {
    let (_host, client) = start_host(2).await;
    let client = &client;
    let good = strategy(2, false);
    let cases = [
        (
            StartRequest {
                strategy_yaml: good.replace("    epochs: 2", "    epochs: 0"),
                ..StartRequest::default()
            },
            "model.training.epochs",
        ),
        (
            // With an id the call takes the replayable path; a 400 is final there too.
            StartRequest {
                session_id: Some("bad-epochs".into()),
                strategy_yaml: good.replace("    epochs: 2", "    epochs: 0"),
                ..StartRequest::default()
            },
            "model.training.epochs",
        ),
        (
            StartRequest {
                strategy_yaml: good.clone(),
                symbols: Some(vec!["AAPL".into(), "../x".into()]),
                ..StartRequest::default()
            },
            "symbols[1]",
        ),
        (
            StartRequest {
                strategy_yaml: good.clone(),
                session_id: Some("../../etc".into()),
                ..StartRequest::default()
            },
            "session_id",
        ),
    ];
    for (request, key) in cases {
        match client.start(&request, None).await {
            Err(HostError::BadRequest { field, message }) => {
                assert_eq!(field.as_deref(), Some(key), "{message}");
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(
        client
            .sessions(None)
            .await
            .expect("sessions")
            .total_sessions,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_session_limit_is_busy() {
    let (_host, client) = start_host(1).await;
    let client = &client;
    client
        .start(&request(Some("first"), 5000, true), None)
        .await
        .expect("start");
    for id in [Some("second"), None] {
        match client.start(&request(id, 2, false), None).await {
            Err(HostError::Busy {
                message,
                retry_after,
            }) => {
                assert!(message.contains("limit"), "{message}");
                assert_eq!(retry_after, Some(Duration::from_secs(30)));
            }
            other => panic!("start {id:?} over the limit: {other:?}"),
        }
    }
    assert!(matches!(
        client.status("second", None).await,
        Err(HostError::NotFound { .. })
    ));
    client.stop("first", false, None).await.expect("stop");
}

#[tokio::test]
async fn health_is_healthy_live_and_unhealthy_on_a_closed_port() {
    let (_host, client) = start_host(1).await;
    let report = client.health().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(
        report.details.as_ref().map(|d| d["service"].clone()),
        Some(json!("training-host"))
    );
    assert_eq!(client.name(), "training-host");

    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("addr")
    }; // dropped: nothing listens there any more
    let client = TrainingHostClient::new(&format!("http://{closed}")).expect("client");
    let report = client.health().await;
    assert!(!report.healthy);
    assert!(report.error.is_some());
    assert!(matches!(
        client.sessions(None).await,
        Err(HostError::Unavailable { .. })
    ));
}

// ---- scripted stand-ins -------------------------------------------------------------

/// One scripted answer: status, extra headers, JSON body.
type Answer = (StatusCode, Vec<(header::HeaderName, &'static str)>, Value);

/// Answers each request with the next scripted [`Answer`] and records `METHOD raw-path`
/// of every request it saw.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn then(self, status: u16, body: Value) -> Self {
        self.then_with(status, vec![], body)
    }

    fn then_with(
        self,
        status: u16,
        headers: Vec<(header::HeaderName, &'static str)>,
        body: Value,
    ) -> Self {
        let status = StatusCode::from_u16(status).expect("status");
        self.answers
            .lock()
            .expect("lock")
            .push_back((status, headers, body));
        self
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }

    async fn serve(&self) -> TrainingHostClient {
        let script = self.clone();
        let app = Router::new().fallback(move |method: axum::http::Method, uri: Uri| {
            let script = script.clone();
            async move {
                script
                    .seen
                    .lock()
                    .expect("lock")
                    .push(format!("{method} {}", uri.path()));
                let next = script.answers.lock().expect("lock").pop_front();
                let (status, headers, body) = next.unwrap_or((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![],
                    json!({ "detail": "script exhausted" }),
                ));
                let mut response: Response = (status, axum::Json(body)).into_response();
                let map: &mut HeaderMap = response.headers_mut();
                for (name, value) in headers {
                    map.insert(name, HeaderValue::from_static(value));
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        TrainingHostClient::new(&base).expect("client")
    }
}

fn started(id: &str) -> Value {
    json!({ "session_id": id, "status": "started", "message": "ok",
            "gpu_allocated": false, "estimated_duration_minutes": 1.0 })
}

#[tokio::test]
async fn start_is_replayed_only_with_a_caller_chosen_id() {
    let lost = json!({ "detail": "bad gateway" });

    // No id: a second arrival would start a second session, so a 502 is final.
    let script = Script::default()
        .then(502, lost.clone())
        .then(200, started("x"));
    let client = script.serve().await;
    match client.start(&request(None, 2, false), None).await {
        Err(HostError::Upstream { status: 502, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(script.seen(), ["POST /training/start"]);

    // With an id the replay is safe and succeeds.
    let script = Script::default()
        .then(502, lost.clone())
        .then(200, started("mine"));
    let client = script.serve().await;
    let answer = client
        .start(&request(Some("mine"), 2, false), None)
        .await
        .expect("replayed start");
    assert_eq!(answer.session_id, "mine");
    assert_eq!(script.seen().len(), 2);

    // The first attempt got through but its answer was lost: the replay's 409 says the
    // session exists, and when its status cannot be read either the start is reported
    // unconfirmed, an error that must not send the session to another host.
    let script = Script::default()
        .then(504, lost.clone())
        .then(409, json!({ "detail": "session mine already exists" }))
        .then(502, lost.clone());
    let client = script.serve().await;
    match client.start(&request(Some("mine"), 2, false), None).await {
        Err(e @ HostError::Unavailable { .. }) => {
            assert!(!e.did_not_take_effect(), "{e:?}");
            let source = std::error::Error::source(&e).expect("source");
            let unconfirmed = source
                .downcast_ref::<training_host::client::StartUnconfirmed>()
                .expect("StartUnconfirmed");
            assert_eq!(unconfirmed.session_id, "mine");
        }
        other => panic!("{other:?}"),
    }
    let seen = script.seen();
    assert_eq!(seen[..2], ["POST /training/start", "POST /training/start"]);
    assert!(
        seen[2..].iter().all(|s| s == "GET /training/status/mine") && seen.len() > 2,
        "{seen:?}"
    );

    // A full host is answered at once, not waited out (Retry-After: 30 on each try).
    let busy = json!({ "success": false, "detail": "limit",
        "error": { "code": "busy", "message": "limit", "details": {} } });
    let script = Script::default()
        .then_with(503, vec![(header::RETRY_AFTER, "30")], busy.clone())
        .then_with(503, vec![(header::RETRY_AFTER, "30")], busy);
    let client = script.serve().await;
    assert!(matches!(
        client.start(&request(Some("mine"), 2, false), None).await,
        Err(HostError::Busy { .. })
    ));
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn ktrdr_style_detail_errors_map_to_variants_and_fields() {
    let script = Script::default()
        .then(
            422,
            json!({ "detail": [
                { "loc": ["body", "strategy_yaml"], "msg": "field required", "type": "value_error.missing" },
                { "loc": ["body", "symbols", 1], "msg": "str type expected", "type": "type_error.str" },
            ] }),
        )
        .then(503, json!({ "detail": "Maximum concurrent sessions (1) reached" }))
        .then(404, json!({ "detail": "Session a/b not found" }))
        .then(400, json!({ "detail": "Training not completed" }));
    let client = script.serve().await;
    match client.start(&request(None, 2, false), None).await {
        Err(HostError::BadRequest { field, message }) => {
            assert_eq!(field.as_deref(), Some("strategy_yaml"));
            assert!(
                message.contains("symbols[1]: str type expected"),
                "{message}"
            );
        }
        other => panic!("422: {other:?}"),
    }
    // A KTRDR 503 carries no code: the table makes it Unavailable (a POST without an id
    // is not replayed, so one request).
    assert!(matches!(
        client.start(&request(None, 2, false), None).await,
        Err(HostError::Unavailable { .. })
    ));
    assert!(matches!(
        client.status("a/b", None).await,
        Err(HostError::NotFound { .. })
    ));
    match client.result("a b", None).await {
        Err(HostError::BadRequest { field, message }) => {
            assert_eq!(field, None);
            assert_eq!(message, "Training not completed");
        }
        other => panic!("400: {other:?}"),
    }
    assert_eq!(
        script.seen(),
        [
            "POST /training/start",
            "POST /training/start",
            "GET /training/status/a%2Fb",
            "GET /training/result/a%20b",
        ]
    );
}
