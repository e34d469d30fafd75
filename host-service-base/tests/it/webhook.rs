//! WebhookWriter against a real axum receiver: batching, retries, failures reported on
//! flush, non-JSON refused.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use event_stream::{AsyncWriter, Message, StreamError};
use host_service_base::webhook::WebhookWriter;
use serde_json::Value;

use crate::support::{client, exact_retries, spawn_router};

/// Records each batch; answers `fail_first` 503s first, or always `always` if set.
#[derive(Clone, Default)]
struct Receiver {
    batches: Arc<Mutex<Vec<Vec<Value>>>>,
    calls: Arc<Mutex<usize>>,
    fail_first: usize,
    always: Option<StatusCode>,
}

fn router(receiver: Receiver) -> Router {
    Router::new()
        .route(
            "/hooks/events",
            post(|State(r): State<Receiver>, body: Bytes| async move {
                let call = {
                    let mut calls = r.calls.lock().expect("calls");
                    *calls += 1;
                    *calls
                };
                if let Some(code) = r.always {
                    return code.into_response();
                }
                if call <= r.fail_first {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                let batch: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
                r.batches.lock().expect("batches").push(batch);
                StatusCode::NO_CONTENT.into_response()
            }),
        )
        .with_state(receiver)
}

fn event(i: u32) -> Message<Bytes, Bytes> {
    Message::new(Bytes::from(format!(r#"{{"n":{i},"name":"grüße"}}"#)))
}

#[tokio::test]
async fn posts_batches_and_the_rest_on_flush() {
    let receiver = Receiver::default();
    let addr = spawn_router(router(receiver.clone())).await;
    let mut w = WebhookWriter::new(client(addr, exact_retries(0)), "/hooks/events", 3);
    for i in 0..7 {
        w.write(event(i)).await.expect("write");
    }
    assert_eq!(
        receiver.batches.lock().expect("b").len(),
        2,
        "two full batches sent on write"
    );
    w.close().await.expect("close delivers the last one");
    let batches = receiver.batches.lock().expect("b").clone();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(batches[2][0]["n"], 6);
    assert_eq!(batches[0][0]["name"], "grüße");
    assert_eq!(w.posts(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_through_the_host_client() {
    let receiver = Receiver {
        fail_first: 2,
        ..Default::default()
    };
    let addr = spawn_router(router(receiver.clone())).await;
    let mut w = WebhookWriter::new(client(addr, exact_retries(3)), "/hooks/events", 10);
    w.write(event(1)).await.expect("write");
    w.flush().await.expect("delivered after two retries");
    assert_eq!(*receiver.calls.lock().expect("calls"), 3);
    assert_eq!(receiver.batches.lock().expect("b").len(), 1);
}

#[tokio::test]
async fn a_failing_receiver_is_reported_on_flush_with_the_count() {
    let receiver = Receiver {
        always: Some(StatusCode::INTERNAL_SERVER_ERROR),
        ..Default::default()
    };
    let addr = spawn_router(router(receiver)).await;
    let mut w = WebhookWriter::new(client(addr, exact_retries(0)), "/hooks/events", 2);
    for i in 0..5 {
        w.write(event(i)).await.expect("write queues");
    }
    match w.flush().await {
        Err(StreamError::Undelivered {
            undelivered,
            first_error,
        }) => {
            assert_eq!(undelivered, 5);
            let error = first_error.expect("error");
            assert!(error.contains("500"), "{error}");
        }
        other => panic!("expected Undelivered, got {other:?}"),
    }
    // Reported once: the next flush starts clean.
    w.flush().await.expect("nothing left");
}

#[tokio::test]
async fn non_json_values_are_refused_at_write() {
    let receiver = Receiver::default();
    let addr = spawn_router(router(receiver)).await;
    let mut w = WebhookWriter::new(client(addr, exact_retries(0)), "/hooks/events", 2);
    let err = w
        .write(Message::new(Bytes::from_static(b"not json")))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not JSON"), "{err}");
    w.close().await.expect("close");
    assert!(matches!(
        w.write(event(1)).await,
        Err(StreamError::Closed(_))
    ));
}
