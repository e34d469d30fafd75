//! Benchmark: what the gateway adds to a small data request in host mode.
//!
//! The same request — where AAPL daily data begins — sent 10,000 times (a) straight to
//! data-host (`GET /data/head-timestamp`) and (b) through the gateway in host mode
//! (`GET /api/v1/data/AAPL/1d/head-timestamp`, which asks data-host through its pool
//! client), at concurrency 1 and 64. data-host serves the bundled sample store. Servers
//! run on their own runtime, the load generator on another, all on loopback.
//!
//! Run: `cargo bench -p api-gateway --bench gateway_overhead`

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use api_gateway::{Gateway, GatewayConfig, GatewaySettings, ServiceMode};
use data_host::local::LocalProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::CancellationToken;

const REQUESTS: usize = 10_000;

mod common;

use common::{run, us};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shutdown = CancellationToken::new();
    let store_dir = tempfile::tempdir()?;
    let models_dir = tempfile::tempdir()?;

    let (data_url, gateway_url) = servers.block_on(async {
        let provider = Arc::new(LocalProvider::new(Store::new(
            repo.join("data"),
            StoreFormat::Csv,
        )));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let data_url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(data_host::service::serve(
            listener,
            provider,
            Duration::from_secs(60),
            shutdown.clone(),
        ));
        let config = GatewayConfig {
            data: ServiceMode::Host(vec![data_url.parse()?]),
            ..GatewayConfig::default()
        };
        let settings = GatewaySettings::new(
            config,
            store_dir.path().to_path_buf(),
            models_dir.path().to_path_buf(),
        );
        let gateway = Gateway::build(settings)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let gateway_url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(gateway.serve(listener, shutdown.clone()));
        Ok::<_, Box<dyn std::error::Error>>((data_url, gateway_url))
    })?;

    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let direct = format!("{data_url}/data/head-timestamp?symbol=AAPL&timeframe=1d");
    let through = format!("{gateway_url}/api/v1/data/AAPL/1d/head-timestamp");
    let results = load.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .map_err(|e| e.to_string())?;
        // Warm up connections and caches on both paths.
        run(&client, &direct, REQUESTS, 8).await?;
        run(&client, &through, REQUESTS, 8).await?;
        let mut out = Vec::new();
        for concurrency in [1usize, 64] {
            let a = run(&client, &direct, REQUESTS, concurrency).await?;
            let b = run(&client, &through, REQUESTS, concurrency).await?;
            out.push((concurrency, a, b));
        }
        Ok::<_, String>(out)
    })?;
    shutdown.cancel();

    println!(
        "gateway overhead, host mode, {REQUESTS} small requests per row (release build, loopback)\n"
    );
    println!("| concurrency | path | req/s | p50 µs | p99 µs |");
    println!("|---:|---|---:|---:|---:|");
    for (c, a, b) in &results {
        println!(
            "| {c} | straight to data-host | {:.0} | {:.0} | {:.0} |",
            a.rps(),
            us(a.pct(50.0)),
            us(a.pct(99.0))
        );
        println!(
            "| {c} | through the gateway | {:.0} | {:.0} | {:.0} |",
            b.rps(),
            us(b.pct(50.0)),
            us(b.pct(99.0))
        );
    }
    println!();
    for (c, a, b) in &results {
        println!(
            "concurrency {c}: added p50 {:.0} µs, added p99 {:.0} µs, throughput ratio gateway/direct {:.2}",
            us(b.pct(50.0)) - us(a.pct(50.0)),
            us(b.pct(99.0)) - us(a.pct(99.0)),
            b.rps() / a.rps()
        );
    }
    Ok(())
}
