//! Benchmark: 1,000,000 one-minute bars from data-host to a client DataFrame, JSON
//! contract versus Arrow, end to end over loopback; and loading the same bars from the
//! store as CSV versus Parquet.
//!
//! Run: `cargo bench -p data-host --bench bars_transfer [-- ROWS]`
//! The bars are synthesised from the sample minute bars (their returns replayed
//! forward in time), so prices and volumes look real.

use std::sync::Arc;
use std::time::{Duration, Instant};

use data_host::client::{DataHostClient, Format};
use data_host::local::LocalProvider;
use data_host::provider::{BarsRequest, DataProvider};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use host_service_base::CancellationToken;
use support::synthesise;

mod support;

const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let frame = synthesise(rows)?;
    let dir = tempfile::tempdir()?;
    let symbol = Symbol::parse("SYNTH")?;
    let csv = Store::new(dir.path(), StoreFormat::Csv);
    csv.save(&symbol, Timeframe::M1, &frame)?;
    let parquet_dir = tempfile::tempdir()?;
    let parquet = Store::new(parquet_dir.path(), StoreFormat::Parquet);
    parquet.save(&symbol, Timeframe::M1, &frame)?;

    let mut load_csv = Vec::new();
    let mut load_parquet = Vec::new();
    for _ in 0..RUNS {
        // A fresh Store per load: a Store's parsed-file cache would answer from memory.
        let cold_csv = Store::new(dir.path(), StoreFormat::Csv);
        let cold_parquet = Store::new(parquet_dir.path(), StoreFormat::Parquet);
        let t = Instant::now();
        let loaded = cold_csv
            .load(&symbol, Timeframe::M1)?
            .ok_or("csv vanished")?;
        load_csv.push(t.elapsed());
        assert_eq!(loaded.height(), rows);
        let t = Instant::now();
        let loaded = cold_parquet
            .load(&symbol, Timeframe::M1)?
            .ok_or("parquet vanished")?;
        load_parquet.push(t.elapsed());
        assert_eq!(loaded.height(), rows);
    }

    let (json, arrow) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let provider: Arc<dyn DataProvider> = Arc::new(LocalProvider::new(csv.clone()));
        let shutdown = CancellationToken::new();
        tokio::spawn(data_host::service::serve(
            listener,
            provider,
            Duration::from_secs(600),
            shutdown.clone(),
        ));
        let request = BarsRequest::new(
            symbol.clone(),
            Timeframe::M1,
            "2000-01-01T00:00:00Z".parse()?,
            "2100-01-01T00:00:00Z".parse()?,
            None,
        )?;
        let cancel = CancellationToken::new();
        let mut results = Vec::new();
        for format in [Format::Json, Format::Arrow] {
            let client = DataHostClient::new(&base)?.format(format);
            let mut samples = Vec::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                let got = client.bars(&request, &cancel).await?;
                samples.push(t.elapsed());
                assert_eq!(got.height(), rows);
            }
            results.push(samples);
        }
        shutdown.cancel();
        let arrow = results.pop().unwrap_or_default();
        let json = results.pop().unwrap_or_default();
        Ok::<_, Box<dyn std::error::Error>>((json, arrow))
    })?;

    let (json, arrow, load_csv, load_parquet) = (
        median(json),
        median(arrow),
        median(load_csv),
        median(load_parquet),
    );
    println!("{rows} one-minute bars, median of {RUNS} runs (release build)\n");
    println!("| path | median |");
    println!("|---|---:|");
    println!(
        "| data-host -> client DataFrame, JSON contract | {:.1} ms |",
        json.as_secs_f64() * 1e3
    );
    println!(
        "| data-host -> client DataFrame, Arrow stream | {:.1} ms |",
        arrow.as_secs_f64() * 1e3
    );
    println!(
        "| store load, CSV | {:.1} ms |",
        load_csv.as_secs_f64() * 1e3
    );
    println!(
        "| store load, Parquet | {:.1} ms |",
        load_parquet.as_secs_f64() * 1e3
    );
    println!(
        "\nJSON/Arrow end to end: {:.1}x; CSV/Parquet load: {:.1}x",
        json.as_secs_f64() / arrow.as_secs_f64(),
        load_csv.as_secs_f64() / load_parquet.as_secs_f64()
    );
    Ok(())
}
