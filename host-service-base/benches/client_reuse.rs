//! Benchmark: the same small GETs on loopback through (a) one shared `HostClient` and
//! (b) a new client per request (what the Python platform hostbridge replaces does).
//!
//! Run: `cargo bench -p host-service-base --bench client_reuse [-- REQUESTS]`
//! Prints a table with total time, throughput, p50/p99 latency and the ratio (b)/(a).

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use host_service_base::{HostClient, HostError};
use serde_json::{Value, json};

const DEFAULT_REQUESTS: usize = 10_000;

struct Run {
    name: &'static str,
    total: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
        sorted.get(rank).copied().unwrap_or_default()
    }

    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.total.as_secs_f64()
    }
}

async fn timed<F, Fut>(name: &'static str, n: usize, mut call: F) -> Result<Run, HostError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, HostError>>,
{
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let answer = call().await?;
        latencies.push(t.elapsed());
        std::hint::black_box(answer);
    }
    Ok(Run {
        name,
        total: started.elapsed(),
        latencies,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; the first numeric argument is the request count.
    let requests = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let router = Router::new().route(
            "/health",
            get(|| async { axum::Json(json!({ "healthy": true })) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });

        let shared = HostClient::new("bench", &base)?;
        // Warm both paths so neither pays one-off costs (first connection, lazy init).
        let _: Value = shared.get_json("/health", None).await?;
        let _: Value = HostClient::new("bench", &base)?
            .get_json("/health", None)
            .await?;

        let reuse = timed("(a) shared HostClient", requests, || {
            let client = shared.clone();
            async move { client.get_json::<Value>("/health", None).await }
        })
        .await?;
        let fresh = timed("(b) new client per request", requests, || {
            let base = base.clone();
            async move {
                HostClient::new("bench", &base)?
                    .get_json::<Value>("/health", None)
                    .await
            }
        })
        .await?;

        println!("{requests} GET /health on loopback, sequential\n");
        println!("| client | total | req/s | p50 | p99 |");
        println!("|---|---:|---:|---:|---:|");
        for run in [&reuse, &fresh] {
            println!(
                "| {} | {:.2} s | {:.0} | {:.1} µs | {:.1} µs |",
                run.name,
                run.total.as_secs_f64(),
                run.per_sec(),
                run.percentile(50.0).as_secs_f64() * 1e6,
                run.percentile(99.0).as_secs_f64() * 1e6,
            );
        }
        println!(
            "\nratio (b)/(a): total time {:.1}x, p50 {:.1}x, p99 {:.1}x",
            fresh.total.as_secs_f64() / reuse.total.as_secs_f64(),
            fresh.percentile(50.0).as_secs_f64() / reuse.percentile(50.0).as_secs_f64(),
            fresh.percentile(99.0).as_secs_f64() / reuse.percentile(99.0).as_secs_f64(),
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
