//! Benchmark: 1,000,000 one-minute bars into a pandas DataFrame over Arrow, end to end
//! through the real `data-host` binary, against the in-memory Arrow floor (the same
//! table written as an IPC stream and read back inside one Python process).
//!
//! The Python side (`benches/python/arrow_pandas.py`) does both, interleaved: a client
//! POSTs `/data/historical` asking for `application/vnd.apache.arrow.stream` on a fresh
//! connection, reads the body with http.client, decodes it with pyarrow and calls
//! `to_pandas()`; the floor does the same minus the server and the socket. Target:
//! end to end within 4x of the floor.
//!
//! Run: `cargo bench -p data-host --bench arrow_pandas [-- ROWS] [--runs N]`; the
//! interpreter is `$ARROW_PYTHON` (default `python3`) and needs pyarrow and pandas,
//! else the bench says it skipped.

use std::process::Command;

use http::{BenchResult, rows_and_runs, start_logged};
use support::synthetic_host;

// Shared with the other server benches; this one uses only its process helpers.
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_data-host");

/// Median and range of a list of milliseconds.
fn spread(values: &serde_json::Value) -> BenchResult<(f64, f64, f64)> {
    let mut list: Vec<f64> = values
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    if list.is_empty() {
        return Err("no figures".into());
    }
    list.sort_by(f64::total_cmp);
    Ok((list[list.len() / 2], list[0], list[list.len() - 1]))
}

fn main() -> BenchResult<()> {
    let (rows, runs) = rows_and_runs();
    let python = std::env::var("ARROW_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", "import pyarrow, pandas"])
        .output();
    if !probe.is_ok_and(|p| p.status.success()) {
        println!(
            "skipped: {python} cannot import pyarrow and pandas (pip install pyarrow pandas, or set ARROW_PYTHON)"
        );
        return Ok(());
    }
    // The store lives as long as `_store`.
    let (_store, command) = synthetic_host(rows, BIN)?;
    let server = start_logged("data-host", command)?;

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/arrow_pandas.py");
    let output = Command::new(&python)
        .arg(script)
        .args([server.base.as_str(), "SYNTH", "1m", &runs.to_string()])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the Python client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let (e2e, e2e_lo, e2e_hi) = spread(&report["end_to_end_ms"])?;
    let (floor, floor_lo, floor_hi) = spread(&report["floor_ms"])?;
    println!(
        "{} one-minute bars ({:.1} MB of Arrow IPC) into a pandas DataFrame, median of {runs} interleaved runs (release build; pyarrow {}, pandas {})\n",
        report["rows"],
        report["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        report["pyarrow"].as_str().unwrap_or("?"),
        report["pandas"].as_str().unwrap_or("?"),
    );
    println!("| path | median | range |");
    println!("|---|---:|---:|");
    println!(
        "| data-host → HTTP → pyarrow → pandas (end to end) | {e2e:.1} ms | {e2e_lo:.1}–{e2e_hi:.1} ms |"
    );
    println!(
        "| floor: IPC write + read + to_pandas in one process | {floor:.1} ms | {floor_lo:.1}–{floor_hi:.1} ms |"
    );
    println!(
        "\nend to end is {:.2}x the floor (target ≤ 4x)",
        e2e / floor
    );
    Ok(())
}
