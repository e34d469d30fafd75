//! Benchmark: training throughput (samples/s) of the shipped rsi_macd_mlp strategy on
//! AAPL daily bars at batch 32 and 256, and stop latency (POST /training/stop until the
//! session is stopped) over 50 stops of running sessions, through the real HTTP API.
//!
//! Run: `cargo bench -p training-host --bench training`

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use data_host::local::LocalProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::CancellationToken;
use host_service_base::operations::Operations;
use serde_json::{Value, json};
use training_host::model::PathStyle;
use training_host::sessions::{SessionConfig, SessionManager};
use training_host::strategy::parse_strategy;
use training_host::trainer::CandleTrainer;
use training_host::{RunOptions, run_training};

const STOPS: usize = 50;
const EPOCHS: u32 = 20;

fn strategy_yaml(epochs: u32, batch: u32) -> Result<String, std::io::Error> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = std::fs::read_to_string(repo.join("strategies/rsi_macd_mlp.yaml"))?;
    Ok(yaml
        .replace("    epochs: 100", &format!("    epochs: {epochs}"))
        .replace("    batch_size: 32", &format!("    batch_size: {batch}"))
        .replace("      enabled: true", "      enabled: false"))
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
    samples.get(rank).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let provider = Arc::new(LocalProvider::new(Store::new(
        repo.join("data"),
        StoreFormat::Csv,
    )));

    // Throughput: the same data and model at two batch sizes.
    let mut throughput = Vec::new();
    for batch in [32u32, 256] {
        let strategy = parse_strategy(&strategy_yaml(EPOCHS, batch)?)?;
        let bars = support::daily_bars(&strategy, &runtime)?;
        let models = tempfile::tempdir()?;
        let outcome = run_training(&strategy, &bars, models.path(), RunOptions::default())?;
        let samples = outcome.data_summary.train_samples * outcome.training.epochs_trained;
        throughput.push((
            batch,
            samples,
            outcome.training.training_time,
            samples as f64 / outcome.training.training_time,
        ));
    }

    // Stop latency through HTTP, one running session at a time.
    let latencies = runtime.block_on(async {
        let models = tempfile::tempdir()?;
        let config = SessionConfig {
            max_sessions: 2,
            models_dir: models.path().to_path_buf(),
            model_paths: PathStyle::Relative,
        };
        let sessions = SessionManager::new(
            Operations::in_memory(),
            provider.clone(),
            Arc::new(CandleTrainer::default()),
            config,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        tokio::spawn(training_host::service::serve(
            listener,
            sessions,
            2,
            shutdown.clone(),
        ));
        let http = reqwest::Client::new();
        let yaml = strategy_yaml(100_000, 32)?;
        let mut latencies = Vec::with_capacity(STOPS);
        for i in 0..STOPS {
            let id = format!("stop-{i}");
            http.post(format!("{base}/training/start"))
                .json(&json!({ "strategy_yaml": yaml, "session_id": id }))
                .send()
                .await?
                .error_for_status()?;
            loop {
                let status: Value = http
                    .get(format!("{base}/training/status/{id}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                if status["status"] == "running" && status["progress"]["batch"].as_u64() >= Some(1)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let t = Instant::now();
            let stopped: Value = http
                .post(format!("{base}/training/stop"))
                .json(&json!({ "session_id": id, "save_checkpoint": false }))
                .send()
                .await?
                .json()
                .await?;
            latencies.push(t.elapsed());
            if stopped["status"] != "stopped" {
                return Err(format!("stop {i} answered {stopped}").into());
            }
        }
        shutdown.cancel();
        Ok::<_, Box<dyn std::error::Error>>(latencies)
    })?;

    println!("rsi_macd_mlp on AAPL 1d (mlp [50, 25], {EPOCHS} epochs, CPU, release build)\n");
    println!("| batch | samples trained | seconds | samples/s |");
    println!("|---:|---:|---:|---:|");
    for (batch, samples, secs, rate) in &throughput {
        println!("| {batch} | {samples} | {secs:.2} | {rate:.0} |");
    }
    let mut l = latencies;
    println!(
        "\nstop latency over {STOPS} stops (HTTP request -> session stopped): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&mut l, 50.0).as_secs_f64() * 1e3,
        percentile(&mut l, 99.0).as_secs_f64() * 1e3,
        percentile(&mut l, 100.0).as_secs_f64() * 1e3,
    );
    Ok(())
}
