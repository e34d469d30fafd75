//! The request span as services log it, in a test binary of its own: the subscriber is
//! the process-wide default here, so no other test's thread can make a callsite cache
//! "nobody listens" before this one listens.

use axum::Router;
use axum::routing::get;
use host_service_base::CancellationToken;
use host_service_base::server::{Server, ServerConfig};
use host_service_base::telemetry::LogCapture;
use tracing_subscriber::layer::SubscriberExt;

/// What a handler logs carries the method and the route pattern (never the raw path),
/// and the `answered` line the status.
#[tokio::test]
async fn a_handlers_log_lines_carry_the_request_span() {
    let log = LogCapture::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("debug"))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(log.clone()),
        );
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");
    let router = Router::new().route(
        "/logged/{id}",
        get(|| async {
            tracing::info!("inside the handler");
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let server = Server::new(ServerConfig::new("logged"), router);
    tokio::spawn(server.serve(listener, shutdown.clone()));
    let response = reqwest::get(format!("{base}/logged/42"))
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    shutdown.cancel();

    let text = log.text();
    let line = |message: &str| {
        text.lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no `{message}` line in:\n{text}"))
            .to_owned()
    };
    let inside = line("inside the handler");
    for want in [r#""method":"GET""#, r#""route":"/logged/{id}""#] {
        assert!(inside.contains(want), "{want} missing: {inside}");
    }
    assert!(
        !inside.contains("/logged/42"),
        "raw paths must not be logged: {inside}"
    );
    let answered = line("answered");
    assert!(answered.contains(r#""status":200"#), "{answered}");
}
