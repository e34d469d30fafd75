//! What the shared server costs per request: `GET /health` on a bare hyper server
//! answering the same bytes (the floor), on axum with the route alone, and on the full
//! host-service-base `Server` as services run it (a tracing span per request with a
//! subscriber at `info`, request metrics into the installed Prometheus recorder, the
//! timeout, the body limit, TCP_NODELAY), at 1 and 64 connections, side by side; and
//! the scaffold's router with each optional layer alone, to price each.
//!
//! `cargo bench -p host-service-base --bench request_path` (`-- --secs N` per row,
//! `--rounds N` interleaved rounds, median reported).
//! The load generator shares the two cores with the server: every row pays that alike.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use host_service_base::CancellationToken;
use host_service_base::server::{LayerSet, Server, ServerConfig};
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// axum with the one route and no middleware.
async fn axum_alone(body: Bytes) -> SocketAddr {
    let router = Router::new().route(
        "/health",
        get(move || {
            let body = body.clone();
            async move { ([(hyper::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    serve_router(router).await
}

/// Serves `router` with axum on a loopback port, TCP_NODELAY as the Server sets it.
async fn serve_router(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

use axum::serve::ListenerExt;

/// The scaffold's router with only `layers`, served like `axum_alone`: prices each
/// layer against the rows beside it.
async fn server_with(layers: LayerSet) -> SocketAddr {
    serve_router(Server::new(ServerConfig::new("bench"), Router::new()).router_with_layers(layers))
        .await
}

/// The full server as services run it.
async fn full_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new(ServerConfig::new("bench"), Router::new());
    tokio::spawn(server.serve(listener, CancellationToken::new()));
    addr
}

struct Row {
    name: &'static str,
    connections: usize,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    }
}

/// `connections` keep-alive connections, each sending `GET /health` back to back for
/// `secs` (after a short warm-up).
async fn load(name: &'static str, addr: SocketAddr, connections: usize, secs: f64) -> Row {
    let run_for = Duration::from_secs_f64(secs);
    let warmup = Duration::from_millis(300);
    let mut tasks = Vec::new();
    let start = Instant::now() + warmup;
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let _ = stream.set_nodelay(true);
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            loop {
                let now = Instant::now();
                if now >= start + run_for {
                    break;
                }
                let request = Request::get("/health")
                    .header(hyper::header::HOST, "127.0.0.1")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .expect("request");
                let response = sender.send_request(request).await.expect("response");
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.into_body().collect().await.expect("body");
                if now >= start {
                    latencies.push(now.elapsed());
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    latencies.sort_unstable();
    Row {
        name,
        connections,
        requests: latencies.len(),
        elapsed: run_for,
        latencies,
    }
}

fn main() {
    let secs = support::secs_arg(3.0);
    let runtime = support::two_worker_runtime();
    runtime.block_on(async move {
        // As services run: a subscriber at info (spans on), the Prometheus recorder.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_writer(std::io::sink)
            .try_init();
        host_service_base::telemetry::Metrics::install().expect("metrics recorder");

        let full = full_server().await;
        // The floor answers exactly the bytes the real route does.
        let probe = load_body(full).await;
        let floor = support::bare_hyper(probe.clone()).await;
        let alone = axum_alone(probe.clone()).await;
        let only = |span, metrics, timeout| {
            server_with(LayerSet {
                span,
                metrics,
                timeout,
            })
        };
        let (shell, span, metrics, timeout) = (
            only(false, false, false).await,
            only(true, false, false).await,
            only(false, true, false).await,
            only(false, false, true).await,
        );

        // Rounds of every row, interleaved, so a burst of other load on the box
        // touches all rows alike; each row reports its median round and the range.
        let rounds = support::count_arg("--rounds", 3);
        let servers = [
            ("bare hyper (floor)", floor),
            ("axum, route alone", alone),
            ("Server router, no optional layer", shell),
            ("  + span only", span),
            ("  + metrics only", metrics),
            ("  + timeout only", timeout),
            ("host-service-base Server (all)", full),
        ];
        println!("# GET /health: the request path against its floor ({rounds} interleaved rounds of {secs} s per row, 2 tokio workers; the load generator shares them)");
        println!("| server | connections | req/s (median) | vs floor (median) | vs floor (range) | p50 µs | p99 µs |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for connections in [1, 64] {
            // runs[row][round]
            let mut runs: Vec<Vec<Row>> = servers.iter().map(|_| Vec::new()).collect();
            for _ in 0..rounds {
                for (i, (name, addr)) in servers.iter().enumerate() {
                    runs[i].push(load(name, *addr, connections, secs).await);
                }
            }
            // Each round's ratio to that round's floor.
            let ratios: Vec<Vec<f64>> = runs
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&runs[0])
                        .map(|(r, floor)| r.rps() / floor.rps())
                        .collect()
                })
                .collect();
            for (row, ratios) in runs.iter_mut().zip(ratios) {
                row.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
                let median = &row[row.len() / 2];
                let mut sorted = ratios.clone();
                sorted.sort_by(f64::total_cmp);
                println!(
                    "| {} | {} | {:.0} | {:.2}x | {:.2}–{:.2}x | {:.0} | {:.0} |",
                    median.name,
                    median.connections,
                    median.rps(),
                    sorted[sorted.len() / 2],
                    sorted[0],
                    sorted[sorted.len() - 1],
                    median.pct(0.5),
                    median.pct(0.99)
                );
            }
        }
    });
}

/// One answer of the real `/health`, to serve the same bytes elsewhere.
async fn load_body(addr: SocketAddr) -> Bytes {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::get("/health")
        .header(hyper::header::HOST, "127.0.0.1")
        .body(http_body_util::Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}
