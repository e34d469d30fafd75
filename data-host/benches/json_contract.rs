//! Benchmark: 1,000,000 one-minute bars over the KTRDR JSON contract
//! (`POST /data/historical`), the real `data-host` binary beside the Python stack it
//! replaces (FastAPI + pandas, `benches/python/pandas_host.py`), in one run.
//!
//! For each server: time to the first byte and to the last byte of the answer, the
//! answer's size, and how much the server's resident memory grew while serving it
//! (sampled from /proc every 2 ms). The two answers' `data` texts are then compared
//! byte for byte: identical text means a client parsing either gets identical floats.
//!
//! Run: `cargo bench -p data-host --bench json_contract [-- ROWS] [--runs N]`
//! The Python half runs when `python3` imports fastapi, uvicorn and pandas; otherwise
//! the table has data-host alone and says why.

use http::{
    BenchResult, Measured, first_answer, first_difference, measure, print_table, rows_and_runs,
    start_logged, start_pandas_host,
};
use support::synthetic_host;

#[path = "support/http.rs"]
mod http;
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_data-host");

/// The `data` string of an answer, checking the envelope.
fn data_text(body: &[u8], rows: usize) -> BenchResult<String> {
    let answer: serde_json::Value = serde_json::from_slice(body)?;
    if answer["success"] != true || answer["rows"] != rows {
        return Err(format!(
            "unexpected answer envelope: success {} rows {}",
            answer["success"], answer["rows"]
        )
        .into());
    }
    Ok(answer["data"].as_str().ok_or("no data string")?.to_owned())
}

fn main() -> BenchResult<()> {
    let (rows, runs) = rows_and_runs();
    let (dir, command) = synthetic_host(rows, BIN)?;
    let mut servers = vec![start_logged("data-host (Rust)", command)?];
    match start_pandas_host(
        "FastAPI + pandas (Python)",
        &dir.path().join("SYNTH_1m.csv"),
    ) {
        Ok(server) => servers.push(server),
        Err(why) => println!("FastAPI + pandas half skipped: {why}\n"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut table: Vec<(&str, Measured, String)> = Vec::new();
    for server in &servers {
        let request = || {
            client
                .post(format!("{}/data/historical", server.base))
                .json(&serde_json::json!({
                    "symbol": "SYNTH", "timeframe": "1m",
                    "start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z",
                }))
        };
        let pid = server.child.id();
        let (measured, data) = runtime.block_on(async {
            // The first answer warms data-host's parsed-file cache (Python loads the
            // frame at start) and is the one compared.
            let warm = first_answer(pid, request).await?;
            let data = data_text(&warm.body, rows)?;
            Ok::<_, Box<dyn std::error::Error>>((measure(pid, runs, request).await?, data))
        })?;
        table.push((server.name, measured, data));
    }

    let rows_of: Vec<(&str, &Measured)> = table.iter().map(|(name, m, _)| (*name, m)).collect();
    print_table(
        &format!(
            "{rows} one-minute bars, POST /data/historical, median of {runs} runs (release build)"
        ),
        &rows_of,
    );
    if let [(_, _, our_data), (_, _, their_data)] = &table[..] {
        match first_difference(our_data, their_data) {
            None => println!(
                "data text byte-identical to pandas' ({} bytes): a client parsing either gets identical floats",
                our_data.len()
            ),
            Some(diff) => println!("data text DIFFERS from pandas' {diff}"),
        }
    }
    Ok(())
}
