//! HostClient against real axum servers: retries, backoff, idempotency, cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use host_service_base::{CancellationToken, HostError};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::support::{client, exact_retries, spawn_router};

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Answers 503 to the first `fail` calls, then 200.
fn flaky_router(hits: Hits, fail: usize) -> Router {
    Router::new()
        .route(
            "/thing",
            get(move |State(hits): State<Hits>| async move {
                if hits.bump() <= fail {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    axum::Json(json!({ "ok": true })).into_response()
                }
            }),
        )
        .with_state(hits)
}

#[tokio::test(start_paused = true)]
async fn succeeds_after_n_retries() {
    let hits = Hits::default();
    let addr = spawn_router(flaky_router(hits.clone(), 3)).await;
    let client = client(addr, exact_retries(5));

    let answer: Value = client
        .get_json("/thing", None)
        .await
        .expect("eventually succeeds");
    assert_eq!(answer["ok"], true);
    assert_eq!(hits.count(), 4, "3 failures + 1 success");
}

#[tokio::test(start_paused = true)]
async fn always_503_gives_unavailable_after_the_bound_with_backoff_waited() {
    let hits = Hits::default();
    let addr = spawn_router(flaky_router(hits.clone(), usize::MAX)).await;
    let policy = exact_retries(3);
    let client = client(addr, policy.clone());

    let started = Instant::now();
    let err = client
        .get_json::<Value>("/thing", None)
        .await
        .expect_err("never succeeds");
    let waited = started.elapsed();

    assert!(
        matches!(err, HostError::Unavailable { ref service, .. } if service == "test-service"),
        "{err:?}"
    );
    assert_eq!(hits.count(), 4, "1 attempt + 3 retries, then stop");
    // 100 + 200 + 400 ms of backoff really passed (on tokio's paused clock).
    assert!(
        waited >= policy.min_total_backoff(3),
        "waited only {waited:?}"
    );
    assert!(
        waited < policy.min_total_backoff(3) + Duration::from_millis(50),
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_backoff_waits_at_least_the_base_schedule() {
    let hits = Hits::default();
    let addr = spawn_router(flaky_router(hits.clone(), usize::MAX)).await;
    let policy = host_service_base::RetryPolicy {
        jitter: true,
        ..exact_retries(3)
    };
    let client = client(addr, policy.clone());

    let started = Instant::now();
    let _ = client.get_json::<Value>("/thing", None).await;
    let waited = started.elapsed();
    assert_eq!(hits.count(), 4);
    assert!(waited >= policy.min_total_backoff(3));
    assert!(waited < policy.min_total_backoff(3) * 2 + Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/limited",
            get(|State(hits): State<Hits>| async move {
                if hits.bump() == 1 {
                    let mut headers = HeaderMap::new();
                    headers.insert(header::RETRY_AFTER, "3".parse().expect("header"));
                    (StatusCode::TOO_MANY_REQUESTS, headers, "slow down").into_response()
                } else {
                    "ok".into_response()
                }
            }),
        )
        .with_state(hits.clone());
    let addr = spawn_router(router).await;
    let client = client(addr, exact_retries(2));

    let started = Instant::now();
    let answer = client
        .get("/limited")
        .send_bytes()
        .await
        .expect("second try succeeds");
    assert_eq!(&answer.body[..], b"ok");
    assert_eq!(hits.count(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After: 3 replaced the 100 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/bad",
            get(|State(hits): State<Hits>| async move {
                hits.bump();
                host_service_base::HostError::bad_field("symbol", "`../x` is not a symbol")
            }),
        )
        .with_state(hits.clone());
    let addr = spawn_router(router).await;
    let client = client(addr, exact_retries(5));

    let err = client
        .get_json::<Value>("/bad", None)
        .await
        .expect_err("400");
    match err {
        HostError::BadRequest { field, .. } => assert_eq!(field.as_deref(), Some("symbol")),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    assert_eq!(hits.count(), 1);
}

fn slow_post_router(hits: Hits) -> Router {
    Router::new()
        .route(
            "/start",
            post(|State(hits): State<Hits>| async move {
                hits.bump();
                tokio::time::sleep(Duration::from_secs(60)).await;
                "started"
            }),
        )
        .with_state(hits)
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_post_is_not_replayed_after_a_read_timeout() {
    let hits = Hits::default();
    let addr = spawn_router(slow_post_router(hits.clone())).await;
    let client = client(addr, exact_retries(3));

    let err = client
        .post("/start")
        .json(&json!({ "job": 1 }))
        .expect("encode")
        .timeout(Duration::from_secs(1))
        .send_bytes()
        .await
        .expect_err("times out");
    assert!(
        matches!(err, HostError::Timeout { after, .. } if after == Duration::from_secs(1)),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        hits.count(),
        1,
        "the POST reached the server once and was not sent again"
    );
}

#[tokio::test(start_paused = true)]
async fn post_marked_idempotent_is_retried_after_a_timeout() {
    let hits = Hits::default();
    let addr = spawn_router(slow_post_router(hits.clone())).await;
    let client = client(addr, exact_retries(2));

    let err = client
        .post("/start")
        .idempotent(true)
        .timeout(Duration::from_secs(1))
        .send_bytes()
        .await
        .expect_err("times out every time");
    assert!(matches!(err, HostError::Timeout { .. }));
    assert_eq!(hits.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_bounds_the_whole_call_retries_included() {
    let hits = Hits::default();
    let addr = spawn_router(slow_post_router(hits.clone())).await;
    // 3 retries of a 1 s attempt would take 4 s and backoff; the caller has 2.5 s.
    let client = client(addr, exact_retries(3));
    let started = Instant::now();
    let err = client
        .post("/start")
        .idempotent(true)
        .timeout(Duration::from_secs(1))
        .deadline(Duration::from_millis(2500))
        .send_bytes()
        .await
        .expect_err("times out");
    assert!(
        matches!(err, HostError::Timeout { after, .. } if after == Duration::from_millis(2500)),
        "the error names the caller's deadline: {err:?}"
    );
    // Attempts at 0 s and 1.1 s, the third clipped to what is left (2.3 s to 2.5 s);
    // the fourth is never sent. Virtual time: the clock is exact.
    assert_eq!(started.elapsed(), Duration::from_millis(2500));
    assert_eq!(hits.count(), 3);

    // A retry whose backoff would end past the deadline is not started at all.
    let hits = Hits::default();
    let addr = spawn_router(flaky_router(hits.clone(), usize::MAX)).await;
    let client = client_with_deadline(addr, Duration::from_millis(250));
    let err = client
        .get("/thing")
        .send_bytes()
        .await
        .expect_err("always 503");
    assert!(matches!(err, HostError::Unavailable { .. }), "{err:?}");
    // 503 at 0, retry after 100 ms, 503, the next backoff (200 ms) would pass 250 ms.
    assert_eq!(hits.count(), 2);
}

fn client_with_deadline(
    addr: std::net::SocketAddr,
    deadline: Duration,
) -> host_service_base::HostClient {
    host_service_base::HostClient::builder("test-service", &format!("http://{addr}"))
        .expect("base url")
        .retry(exact_retries(5))
        .deadline(deadline)
        .build()
        .expect("client")
}

#[tokio::test]
async fn an_answer_over_the_buffer_cap_is_refused_not_read_whole() {
    let router = Router::new()
        .route("/sized", get(|| async { "x".repeat(4096) }))
        .route(
            "/chunked",
            get(|| async {
                // No Content-Length: the cap must hold while reading.
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 1024]));
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/small", get(|| async { "fits" }));
    let addr = spawn_router(router).await;
    let client = host_service_base::HostClient::builder("test-service", &format!("http://{addr}"))
        .expect("base url")
        .max_buffered(2048)
        .build()
        .expect("client");
    for path in ["/sized", "/chunked"] {
        let err = client.get(path).send_bytes().await.expect_err("too large");
        match err {
            HostError::Decode { message, .. } => {
                assert!(message.contains("2048 bytes"), "{path}: {message}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let small = client.get("/small").send_bytes().await.expect("fits");
    assert_eq!(&small.body[..], b"fits");
    // Streamed answers are the caller's to bound.
    let streamed = client.get("/chunked").send().await.expect("streams");
    assert_eq!(streamed.bytes().await.expect("body").len(), 64 * 1024);
}

#[tokio::test]
async fn errors_say_whether_the_call_may_have_taken_effect() {
    let no_retries = |addr: std::net::SocketAddr| {
        host_service_base::HostClient::builder("test-service", &format!("http://{addr}"))
            .expect("base url")
            .retry(host_service_base::client::RetryPolicy::none())
            .timeout(Duration::from_millis(300))
            .build()
            .expect("client")
    };
    // Nothing listens: the request never left.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let err = no_retries(addr)
        .post("/start")
        .send_bytes()
        .await
        .expect_err("refused");
    assert!(err.did_not_take_effect(), "refused: {err:?}");

    // The service read the request and hung up without answering: it may have acted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let err = no_retries(addr)
        .post("/start")
        .send_bytes()
        .await
        .expect_err("hung up");
    assert!(matches!(err, HostError::Unavailable { .. }), "{err:?}");
    assert!(!err.did_not_take_effect(), "hung up after sending: {err:?}");

    // It answered 503: it refused. It answered too late: it may have acted.
    let hits = Hits::default();
    let addr = spawn_router(flaky_router(hits, usize::MAX)).await;
    let err = no_retries(addr)
        .get("/thing")
        .send_bytes()
        .await
        .expect_err("503");
    assert!(err.did_not_take_effect(), "503: {err:?}");
    let addr = spawn_router(slow_post_router(Hits::default())).await;
    let err = no_retries(addr)
        .post("/start")
        .send_bytes()
        .await
        .expect_err("slow");
    assert!(matches!(err, HostError::Timeout { .. }), "{err:?}");
    assert!(!err.did_not_take_effect(), "timed out: {err:?}");
}

#[tokio::test]
async fn post_that_never_connected_is_retried() {
    // Reserve a port, free it, and only start listening there after the first attempt
    // has been refused: the retry reaches the server, exactly once.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/start",
            post(|State(hits): State<Hits>| async move {
                hits.bump();
                "started"
            }),
        )
        .with_state(hits.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("rebind the reserved port");
        axum::serve(listener, router).await.expect("serve");
    });
    let policy = host_service_base::RetryPolicy {
        max_retries: 8,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        jitter: false,
        ..Default::default()
    };
    let client = client(addr, policy);
    let answer = client
        .post("/start")
        .send_bytes()
        .await
        .expect("connect retries reach the server");
    assert_eq!(&answer.body[..], b"started");
    assert_eq!(hits.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancelling_returns_promptly_and_closes_the_connection() {
    let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
    let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));

    // Signals when the handler's future is dropped, which hyper does when it sees the
    // client close the connection.
    struct OnDrop(Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.lock().ok().and_then(|mut g| g.take()) {
                let _ = tx.send(());
            }
        }
    }
    let router = Router::new().route(
        "/slow",
        get(move || {
            let guard = OnDrop(dropped_tx.clone());
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "too late"
            }
        }),
    );
    let addr = spawn_router(router).await;
    let client = client(addr, exact_retries(3));
    let token = CancellationToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        canceller.cancel();
    });

    let started = Instant::now();
    let err = client
        .get_json::<Value>("/slow", Some(&token))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, HostError::Cancelled), "{err:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(10) && took < Duration::from_millis(20),
        "took {took:?}"
    );

    tokio::time::timeout(Duration::from_secs(30), dropped_rx)
        .await
        .expect("server saw the connection close")
        .expect("guard sent");
}

#[tokio::test(start_paused = true)]
async fn cancelling_during_backoff_returns_promptly() {
    let hits = Hits::default();
    let addr = spawn_router(flaky_router(hits.clone(), usize::MAX)).await;
    let client = client(
        addr,
        host_service_base::RetryPolicy {
            initial_backoff: Duration::from_secs(60),
            ..exact_retries(3)
        },
    );
    let token = CancellationToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let err = client
        .get_json::<Value>("/thing", Some(&token))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, HostError::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(hits.count(), 1);
}
