//! Benchmark: what publishing events costs a request.
//!
//! Two gateways in one process, fallback mode on the bundled sample store: one with
//! `EVENT_MODE=off`, one with `both` (Socket.IO, and Kafka when a broker is given by
//! `HOSTBRIDGE_BENCH_KAFKA` or `HOSTBRIDGE_TEST_KAFKA`; without one the row says so).
//! On each, four operations change their progress every millisecond with the throttle
//! at its maximum (1,000 events a second per operation, so ~4,000 envelopes a second
//! go to every sink, an SSE client reading all of them), while a load generator sends
//! 10,000 cheap requests at concurrency 16: the liveness route and one operation's
//! record (`GET /api/v1/operations/{id}`, which shares the registry with the
//! publisher). Rounds alternate off/both three times; the table shows the medians.
//!
//! Run: `cargo bench -p api-gateway --bench events_overhead`

use std::path::Path;
use std::time::Duration;

use api_gateway::events::config::KafkaSinkSettings;
use api_gateway::events::{EventMode, EventSettings};
use api_gateway::{Gateway, GatewayConfig, GatewaySettings};
use event_stream::kafka::{KafkaConfig, ProducerSettings};
use host_service_base::CancellationToken;
use serde_json::json;

mod common;

use common::{Run, run};

const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 16;
const ROUNDS: usize = 3;
const PUBLISHING_OPERATIONS: usize = 4;

/// A gateway serving on loopback, with operations publishing progress.
struct Served {
    base: String,
    operation: String,
    /// What its sinks did (printed under the table).
    gateway: Gateway,
}

fn settings(mode: EventMode, kafka: Option<&str>, store: &Path, models: &Path) -> GatewaySettings {
    let events = EventSettings {
        mode,
        kafka: kafka
            .filter(|_| mode.kafka())
            .map(|brokers| KafkaSinkSettings {
                config: KafkaConfig::new(brokers),
                producer: ProducerSettings {
                    flush_timeout: Duration::from_secs(5),
                    message_timeout_ms: 10_000,
                    ..ProducerSettings::default()
                },
                topic: format!("bench-events-{}", std::process::id()),
            }),
        progress_interval: Duration::from_millis(1),
        ..EventSettings::default()
    };
    GatewaySettings {
        events,
        ..GatewaySettings::new(
            GatewayConfig::default(),
            store.to_path_buf(),
            models.to_path_buf(),
        )
    }
}

async fn serve(settings: GatewaySettings, stop: &CancellationToken) -> Result<Served, String> {
    let gateway = Gateway::build(settings).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(gateway.clone().serve(listener, stop.clone()));
    let mut operation = String::new();
    for i in 0..PUBLISHING_OPERATIONS {
        let op = gateway
            .operations()
            .create("bench", json!({"publisher": i}));
        op.start();
        operation = op.id().to_owned();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {
                        n += 1;
                        op.progress(|p| {
                            p.items_processed = n;
                            p.percentage = (n % 100) as f64;
                        });
                    }
                }
            }
        });
    }
    Ok(Served {
        base,
        operation,
        gateway,
    })
}

/// Reads the SSE stream of `base` until the process ends; counts envelopes.
async fn sse_reader(base: String) -> Result<(), String> {
    let mut response = reqwest::get(format!("{base}/api/v1/events"))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(_chunk) = response.chunk().await.map_err(|e| e.to_string())? {}
    Ok(())
}

fn median(runs: &mut [f64]) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kafka = std::env::var("HOSTBRIDGE_BENCH_KAFKA")
        .or_else(|_| std::env::var("HOSTBRIDGE_TEST_KAFKA"))
        .ok()
        .filter(|b| !b.trim().is_empty());
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let models = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let (off, both) = servers.block_on(async {
        let off = serve(
            settings(EventMode::Off, None, &repo.join("data"), models.path()),
            &stop,
        )
        .await?;
        let both = serve(
            settings(
                EventMode::Both,
                kafka.as_deref(),
                &repo.join("data"),
                models.path(),
            ),
            &stop,
        )
        .await?;
        Ok::<_, String>((off, both))
    })?;

    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let results = load.block_on(async {
        for served in [&off, &both] {
            tokio::spawn(sse_reader(served.base.clone()));
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        let routes = |s: &Served| {
            [
                ("GET /health", format!("{}/health", s.base)),
                (
                    "GET /api/v1/operations/{id}",
                    format!("{}/api/v1/operations/{}", s.base, s.operation),
                ),
            ]
        };
        let mut rows = Vec::new();
        for (i, (route, _)) in routes(&off).iter().enumerate() {
            let (a, b) = (&routes(&off)[i].1, &routes(&both)[i].1);
            run(&client, a, REQUESTS / 4, CONCURRENCY).await?;
            run(&client, b, REQUESTS / 4, CONCURRENCY).await?;
            let (mut off_rps, mut both_rps, mut off_p50, mut both_p50) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let x: Run = run(&client, a, REQUESTS, CONCURRENCY).await?;
                let y: Run = run(&client, b, REQUESTS, CONCURRENCY).await?;
                off_rps.push(x.rps());
                both_rps.push(y.rps());
                off_p50.push(common::us(x.pct(50.0)));
                both_p50.push(common::us(y.pct(50.0)));
            }
            rows.push((
                *route,
                median(&mut off_rps),
                median(&mut both_rps),
                median(&mut off_p50),
                median(&mut both_p50),
            ));
        }
        Ok::<_, String>(rows)
    })?;

    println!(
        "events on the request path: {REQUESTS} requests per round at concurrency {CONCURRENCY}, \
         median of {ROUNDS} alternating rounds, {PUBLISHING_OPERATIONS} operations publishing \
         progress every ms (throttle 1,000/s each), one SSE client per gateway\n"
    );
    println!("| route | off req/s | both req/s | both/off | off p50 µs | both p50 µs |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (route, off_rps, both_rps, off_p50, both_p50) in &results {
        println!(
            "| {route} | {off_rps:.0} | {both_rps:.0} | {:.3} | {off_p50:.0} | {both_p50:.0} |",
            both_rps / off_rps
        );
    }
    let health = both.gateway.events().health();
    println!(
        "\n`both` published {} envelopes during the run; sinks: {}",
        health["published"], health["sinks"]
    );
    if kafka.is_none() {
        println!(
            "(no Kafka broker given: set HOSTBRIDGE_BENCH_KAFKA=host:port for the Kafka sink; \
             `both` ran Socket.IO and SSE only)"
        );
    }
    stop.cancel();
    Ok(())
}
