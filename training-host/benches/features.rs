//! Benchmark: the feature pipeline on 1,000,000 one-minute bars (issue 16: under 1 s).
//!
//! Bars replay the bar-to-bar moves of `data/AAPL_1m.csv` forward in time. Every stage
//! of the pipeline runs on them twice, with the textbook code it had before issue 16
//! (`training_host::features::reference`) and with today's, and the table prints both
//! medians of 5 runs and their ratio; indicators that were already O(n) run once. The
//! strategy is the shipped `rsi_macd_mlp` on 1m bars, widened with the indicators the
//! issue lists (ema, bbands, atr, sma, stochastic) so each stage has real work; the
//! public entries (`features_from_ohlc`, `build_dataset`) are then timed end to end.
//!
//! Run: `cargo bench -p training-host --bench features`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use data_host::{Symbol, Timeframe};
use training_host::features::{
    FeatureFrame, Ohlc, Scaler, build_dataset, features_from_ohlc, fuzzy, indicators, lags,
    reference,
};
use training_host::labels::zigzag_labels;
use training_host::strategy::{FuzzyInput, Strategy, parse_strategy};

use support::synthesise;

// The same synthetic bars as data-host's and the gateway's benches.
#[path = "../../data-host/benches/support/mod.rs"]
mod support;

/// `fuzzy::fuzzify` or its reference.
type Fuzzify = fn(&FuzzyInput, &[f64], &str) -> Vec<(String, Vec<f64>)>;

const BARS: usize = 1_000_000;
const RUNS: usize = 5;

/// The shipped strategy on 1m bars; `wide` adds ema, bbands, atr, sma and stochastic
/// inputs beside its rsi and macd ones.
fn strategy(wide: bool) -> Result<Strategy, Box<dyn std::error::Error>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut yaml = std::fs::read_to_string(repo.join("strategies/rsi_macd_mlp.yaml"))?
        .replace("list: [1d]", "list: [1m]")
        .replace("base_timeframe: 1d", "base_timeframe: 1m");
    if wide {
        let indicators = "  - { name: ema, feature_id: ema_20, period: 20, source: close }
  - { name: bbands, feature_id: bbands_20_2, period: 20, multiplier: 2.0, source: close }
  - { name: atr, feature_id: atr_14, period: 14 }
  - { name: sma, feature_id: sma_200, period: 200, source: close }
  - { name: stochastic, feature_id: stochastic_14_3, k_period: 14, d_period: 3 }
";
        let sets = "  ema_20:
    low: { type: triangular, parameters: [0, 50, 100] }
    high: { type: trapezoidal, parameters: [50, 100, 1000, 1000] }
  bbands_20_2.upper:
    near: { type: gaussian, parameters: [100, 20] }
    far: { type: trapezoidal, parameters: [100, 150, 1000, 1000] }
  atr_14:
    calm: { type: triangular, parameters: [0, 0, 0.1] }
    wild: { type: trapezoidal, parameters: [0.05, 0.2, 100, 100] }
  sma_200:
    low: { type: triangular, parameters: [0, 50, 100] }
    high: { type: trapezoidal, parameters: [50, 100, 1000, 1000] }
  stochastic_14_3.k:
    oversold: { type: triangular, parameters: [0, 0, 20] }
    middle: { type: gaussian, parameters: [50, 15] }
    overbought: { type: triangular, parameters: [80, 100, 100] }
";
        yaml = yaml
            .replace(
                "\n# === FUZZY SETS ===",
                &format!("{indicators}\n# === FUZZY SETS ==="),
            )
            .replace("\n# === MODEL ===", &format!("{sets}\n# === MODEL ==="));
    }
    Ok(parse_strategy(&yaml)?)
}

/// Median wall time of `RUNS` runs in milliseconds, and the last run's output.
fn time<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut out = None;
    for _ in 0..RUNS {
        drop(out.take());
        let start = Instant::now();
        let value = black_box(f());
        times.push(start.elapsed().as_secs_f64() * 1e3);
        out = Some(value);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], out.expect("RUNS > 0"))
}

/// Largest difference between two column sets, relative to max(|value|, 1).
fn max_diff(a: &[&[f64]], b: &[&[f64]]) -> f64 {
    let mut worst: f64 = 0.0;
    for (x, y) in a.iter().zip(b) {
        for (&u, &v) in x.iter().zip(y.iter()) {
            if u.is_nan() != v.is_nan() {
                return f64::INFINITY;
            }
            if u.is_finite() && v.is_finite() {
                worst = worst.max((u - v).abs() / v.abs().max(1.0));
            }
        }
    }
    worst
}

/// One table row: stage, before (None when the code did not change), after, difference.
struct Row {
    stage: String,
    before: Option<f64>,
    after: f64,
    diff: Option<f64>,
}

impl Row {
    fn both(stage: &str, before: f64, after: f64, diff: f64) -> Self {
        let stage = stage.to_owned();
        Self {
            stage,
            before: Some(before),
            after,
            diff: Some(diff),
        }
    }

    fn same(stage: &str, after: f64) -> Self {
        let stage = stage.to_owned();
        Self {
            stage,
            before: None,
            after,
            diff: None,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frame = synthesise(BARS)?;
    let shipped = strategy(false)?;
    let wide = strategy(true)?;
    let mut rows = Vec::new();

    let (t, bars) = time(|| Ohlc::from_frame(&frame, Timeframe::M1));
    let bars = bars?;
    rows.push(Row::same("read bars (polars frame → slices)", t));
    let (close, high, low) = (&bars.close[..], &bars.high[..], &bars.low[..]);

    // Indicators: the O(n·period) ones against their textbook loops.
    let (t, _) = time(|| indicators::rsi(close, 14));
    rows.push(Row::same("rsi 14", t));
    let (t, _) = time(|| indicators::ema(close, 20));
    rows.push(Row::same("ema 20", t));
    let (t, _) = time(|| indicators::macd(close, 12, 26, 9));
    rows.push(Row::same("macd 12/26/9", t));
    let (t, _) = time(|| indicators::atr(high, low, close, 14));
    rows.push(Row::same("atr 14", t));
    let (before, want) = time(|| reference::bbands(close, 20, 2.0));
    let (after, got) = time(|| indicators::bbands(close, 20, 2.0));
    let diff = max_diff(&[&got.upper, &got.lower], &[&want.upper, &want.lower]);
    rows.push(Row::both("bbands 20/2", before, after, diff));
    let (before, want) = time(|| reference::sma(close, 200));
    let (after, got) = time(|| indicators::sma(close, 200));
    rows.push(Row::both(
        "sma 200",
        before,
        after,
        max_diff(&[&got], &[&want]),
    ));
    let (before, want) = time(|| reference::stochastic(high, low, close, 14, 3));
    let (after, got) = time(|| indicators::stochastic(high, low, close, 14, 3));
    let diff = max_diff(&[&got.k, &got.d], &[&want.k, &want.d]);
    rows.push(Row::both("stochastic 14/3", before, after, diff));

    // Fuzzy memberships of every input of the wide strategy.
    let mut outputs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for spec in &wide.indicators {
        for (name, values) in indicators::compute(&spec.indicator, &bars) {
            outputs.insert(spec.column(name), values);
        }
    }
    let fuzzify_all = |f: Fuzzify| {
        let mut frame = FeatureFrame {
            timestamps: bars.timestamps.clone(),
            ..FeatureFrame::default()
        };
        for input in &wide.fuzzy_sets {
            for (name, column) in f(input, &outputs[&input.column], "") {
                frame.names.push(name);
                frame.columns.push(column);
            }
        }
        frame
    };
    let (before, want) = time(|| fuzzify_all(reference::fuzzify));
    let (after, got) = time(|| fuzzify_all(fuzzy::fuzzify));
    let diff = max_diff(&slices(&got), &slices(&want));
    let stage = format!("fuzzy memberships ({} sets)", got.columns.len());
    rows.push(Row::both(&stage, before, after, diff));

    // Lags: each run starts from the fuzzy columns (the clone is timed on both sides).
    let lookback = wide.model.features.lookback_periods;
    let lagged = |f: fn(&mut FeatureFrame, usize)| {
        let mut frame = got.clone();
        f(&mut frame, lookback);
        frame
    };
    let (before, want) = time(|| lagged(reference::add_lags));
    let (after, features) = time(|| lagged(lags::add_lags));
    let diff = max_diff(&slices(&features), &slices(&want));
    let stage = format!("lookback lags ({lookback}, clone included)");
    rows.push(Row::both(&stage, before, after, diff));

    // Labels, complete rows, the scaler and the row-major matrix.
    let config = wide.training.labels;
    let (t, labels) =
        time(|| zigzag_labels(close, config.zigzag_threshold, config.label_lookahead));
    rows.push(Row::same("zigzag labels", t));
    let (before, want) = time(|| reference::complete_rows(&features));
    let (after, mask) = time(|| features.complete_rows());
    let complete: Vec<usize> = (0..mask.len())
        .filter(|&i| mask[i] && labels[i].is_some())
        .collect();
    let same = want
        .iter()
        .filter(|&&i| labels[i].is_some())
        .eq(complete.iter());
    rows.push(Row::both(
        "complete rows",
        before,
        after,
        if same { 0.0 } else { 1.0 },
    ));
    let gathered: Vec<Vec<f64>> = features
        .columns
        .iter()
        .map(|c| complete.iter().map(|&i| c[i]).collect())
        .collect();
    let train = 0..complete.len() * 7 / 10;
    let parts = vec![
        gathered
            .iter()
            .map(|c| &c[train.clone()])
            .collect::<Vec<_>>(),
    ];
    let n = gathered.len();
    let (before, (mean, std)) = time(|| reference::fit_scaler(n, &parts));
    let (after, scaler) = time(|| Scaler::fit(features.names.clone(), &parts));
    let diff = max_diff(&[&scaler.mean, &scaler.std], &[&mean, &std]);
    rows.push(Row::both("scaler fit (train rows)", before, after, diff));
    let all = 0..complete.len();
    let (before, want) = time(|| {
        let mut x = Vec::with_capacity(all.len() * n);
        for i in all.clone() {
            reference::append_row(&mean, &std, &gathered, i, &mut x);
        }
        x
    });
    let (after, got) = time(|| {
        let mut x = Vec::with_capacity(all.len() * n);
        scaler.append_rows(&gathered, all.clone(), &mut x);
        x
    });
    let same = got == want;
    let stage = format!("scale into f32 rows ({} × {n})", all.len());
    rows.push(Row::both(
        &stage,
        before,
        after,
        if same { 0.0 } else { 1.0 },
    ));
    print_table(&rows);

    // The public entries end to end.
    let timeframes = BTreeMap::from([(Timeframe::M1, bars.clone())]);
    let symbol = Symbol::parse("AAPL")?;
    let frames = BTreeMap::from([((symbol, Timeframe::M1), frame)]);
    println!();
    println!("| public entry, {BARS} bars | features | rows | median of {RUNS} |");
    println!("|---|---:|---:|---:|");
    for (name, strategy) in [("shipped rsi_macd_mlp", &shipped), ("widened", &wide)] {
        let (t, out) = time(|| features_from_ohlc(strategy, &timeframes));
        let out = out?;
        let (cols, len) = (out.columns.len(), out.len());
        println!("| `features_from_ohlc`, {name} | {cols} | {len} | {t:.0} ms |");
        let (t, dataset) = time(|| build_dataset(strategy, &frames));
        let dataset = dataset?;
        let (cols, len) = (dataset.n_features(), dataset.total_rows());
        println!("| `build_dataset`, {name} | {cols} | {len} | {t:.0} ms |");
    }
    Ok(())
}

fn slices(frame: &FeatureFrame) -> Vec<&[f64]> {
    frame.columns.iter().map(Vec::as_slice).collect()
}

fn print_table(rows: &[Row]) {
    println!("Features on {BARS} one-minute bars, median of {RUNS} runs");
    println!();
    println!("| stage | before | after | ratio | max diff |");
    println!("|---|---:|---:|---:|---:|");
    let (mut before_total, mut after_total) = (0.0, 0.0);
    for row in rows {
        // An unchanged stage costs the same before: it counts on both sides.
        let before = row.before.unwrap_or(row.after);
        before_total += before;
        after_total += row.after;
        match (row.before, row.diff) {
            (Some(b), Some(d)) => println!(
                "| {} | {b:.1} ms | {:.1} ms | {:.1}x | {d:.0e} |",
                row.stage,
                row.after,
                b / row.after
            ),
            _ => println!("| {} | (same code) | {:.1} ms | | |", row.stage, row.after),
        }
    }
    println!(
        "| **total** | **{before_total:.0} ms** | **{after_total:.0} ms** | **{:.1}x** | |",
        before_total / after_total
    );
}
