//! Benchmark: 1,000,000 one-minute bars from the gateway's JSON bars route
//! (`GET /api/v1/data/{symbol}/{timeframe}`), the real `hostbridge serve` binary beside
//! a FastAPI + pandas host answering the same route the way KTRDR's backend does
//! (`data-host/benches/python/pandas_host.py`), in one run.
//!
//! For each server: time to the first and the last byte, the answer's size and the
//! server's resident memory growth while serving (sampled every 2 ms); then whether the
//! two answers hold the same dates and the same floats.
//!
//! Run: `cargo bench -p api-gateway --bench bars_json [-- ROWS] [--runs N]`

use std::process::Command;

use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use http::{
    BenchResult, Measured, first_answer, measure, print_table, rows_and_runs, start_logged,
    start_pandas_host,
};
use support::synthesise;

// Shared with data-host's json_contract bench; not every helper is used here.
#[allow(dead_code)]
#[path = "../../data-host/benches/support/http.rs"]
mod http;
#[path = "../../data-host/benches/support/mod.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_hostbridge");

fn main() -> BenchResult<()> {
    let (rows, runs) = rows_and_runs();
    let frame = synthesise(rows)?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    Store::new(&data, StoreFormat::Csv).save(&Symbol::parse("SYNTH")?, Timeframe::M1, &frame)?;
    for sub in ["models", "strategies"] {
        std::fs::create_dir_all(dir.path().join(sub))?;
    }

    let mut command = Command::new(BIN);
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--models-dir")
        .arg(dir.path().join("models"))
        .arg("--strategies-dir")
        .arg(dir.path().join("strategies"))
        // No IB Gateway here: point the in-process provider at a closed port.
        .args(["--ib-address", "127.0.0.1:9"]);
    let mut servers = vec![start_logged("hostbridge gateway (Rust)", command)?];
    match start_pandas_host("FastAPI + pandas (Python)", &data.join("SYNTH_1m.csv")) {
        Ok(server) => servers.push(server),
        Err(why) => println!("FastAPI + pandas half skipped: {why}\n"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut table: Vec<(&str, Measured, serde_json::Value)> = Vec::new();
    for server in &servers {
        let request = || client.get(format!("{}/api/v1/data/SYNTH/1m", server.base));
        let pid = server.child.id();
        let (measured, answer) = runtime.block_on(async {
            let warm = first_answer(pid, request).await?;
            let answer: serde_json::Value = serde_json::from_slice(&warm.body)?;
            if answer["data"]["points"] != rows {
                return Err(format!("{}: points {}", server.name, answer["data"]["points"]).into());
            }
            Ok::<_, Box<dyn std::error::Error>>((measure(pid, runs, request).await?, answer))
        })?;
        table.push((server.name, measured, answer));
    }

    let rows_of: Vec<(&str, &Measured)> = table.iter().map(|(name, m, _)| (*name, m)).collect();
    print_table(
        &format!(
            "{rows} one-minute bars, GET /api/v1/data/SYNTH/1m as JSON, median of {runs} runs (release build)"
        ),
        &rows_of,
    );
    if let [(_, _, our_answer), (_, _, their_answer)] = &table[..] {
        let same = |key: &str| our_answer["data"][key] == their_answer["data"][key];
        println!(
            "same dates: {}; same floats in ohlcv: {}",
            same("dates"),
            same("ohlcv")
        );
    }
    Ok(())
}
