//! What the data-host benchmarks share: bars that look real, in any number.

use chrono::{DateTime, TimeDelta, Utc};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe, bars};

/// `rows` minute bars replaying the sample series' bar-to-bar changes.
pub(crate) fn synthesise(
    rows: usize,
) -> Result<polars::prelude::DataFrame, Box<dyn std::error::Error>> {
    let sample_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let sample = Store::new(sample_dir, StoreFormat::Csv)
        .load(&Symbol::parse("AAPL")?, Timeframe::M1)?
        .ok_or("sample data/AAPL_1m.csv missing")?;
    let src = bars::frame_to_bars(&sample)?;
    let start: DateTime<Utc> = "2000-01-03T14:30:00Z".parse()?;
    let mut ts = Vec::with_capacity(rows);
    let mut cols: [Vec<f64>; 5] = Default::default();
    let mut level = 100.0;
    for i in 0..rows {
        let s = &src[i % src.len()];
        let scale = level / s.open;
        ts.push((start + TimeDelta::minutes(i as i64)).timestamp_millis());
        for (c, v) in cols.iter_mut().zip([
            s.open * scale,
            s.high * scale,
            s.low * scale,
            s.close * scale,
            s.volume,
        ]) {
            c.push(v);
        }
        level = s.close * scale;
    }
    Ok(bars::frame_from_columns(ts, cols)?)
}

/// A fresh store holding `rows` synthetic one-minute bars as SYNTH 1m, and the command
/// that starts the data-host binary `bin` serving that store (local source, port 0).
#[allow(dead_code)] // Not every bench that shares this file serves a store.
pub(crate) fn synthetic_host(
    rows: usize,
    bin: &str,
) -> Result<(tempfile::TempDir, std::process::Command), Box<dyn std::error::Error>> {
    let frame = synthesise(rows)?;
    let dir = tempfile::tempdir()?;
    Store::new(dir.path(), StoreFormat::Csv).save(
        &Symbol::parse("SYNTH")?,
        Timeframe::M1,
        &frame,
    )?;
    let mut command = std::process::Command::new(bin);
    command
        .args([
            "serve",
            "--source",
            "local",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path());
    Ok((dir, command))
}
