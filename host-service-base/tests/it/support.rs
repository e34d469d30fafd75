//! Shared helpers: start an axum router on 127.0.0.1 port 0.

use std::net::SocketAddr;

use axum::Router;
use host_service_base::HostClient;
use host_service_base::client::RetryPolicy;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves `router` on an ephemeral loopback port for the rest of the test.
pub(crate) async fn spawn_router(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("test server");
    });
    addr
}

/// A retry policy without jitter, so waits are exact.
pub(crate) fn exact_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        jitter: false,
        max_retry_after: Duration::from_secs(30),
    }
}

/// A client of `addr` with `policy`.
pub(crate) fn client(addr: SocketAddr, policy: RetryPolicy) -> HostClient {
    HostClient::builder("test-service", &format!("http://{addr}"))
        .expect("base url")
        .retry(policy)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}
