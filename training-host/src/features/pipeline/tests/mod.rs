//! Pipeline tests on the sample store and on synthetic bars: shared fixtures, feature
//! names, and the row-for-row join of features and labels. Multi-timeframe look-ahead
//! tests are in `alignment.rs`, split/scaling/inference tests in `dataset.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use data_host::bars::{frame_from_columns, timestamps_ms, value_column};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use polars::prelude::DataFrame;

use super::*;

mod alignment;
mod dataset;
use crate::labels::zigzag_labels;
use crate::strategy::{load_strategy, parse_strategy};

pub(super) const HOUR: i64 = 3_600_000;
pub(super) const DAY: i64 = 24 * HOUR;

pub(super) fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

pub(super) fn sym(s: &str) -> Symbol {
    Symbol::parse(s).expect("symbol")
}

pub(super) fn store_bars(symbol: &str, tf: Timeframe) -> DataFrame {
    Store::new(repo("data"), StoreFormat::Csv)
        .load(&sym(symbol), tf)
        .expect("store readable")
        .expect("sample file exists")
}

/// Columns of a bars frame: (timestamps, [open, high, low, close, volume]).
pub(super) fn columns(frame: &DataFrame) -> (Vec<i64>, [Vec<f64>; 5]) {
    let ts = timestamps_ms(frame).expect("timestamps");
    let values = ["open", "high", "low", "close", "volume"]
        .map(|name| value_column(frame, name).expect("column"));
    (ts, values)
}

/// Daily bars from hourly ones: one bar per UTC date, stamped at 00:00 (open time).
pub(super) fn resample_daily(hourly: &DataFrame) -> DataFrame {
    let (ts, [o, h, l, c, v]) = columns(hourly);
    let mut out_ts: Vec<i64> = Vec::new();
    let mut out: [Vec<f64>; 5] = Default::default();
    for i in 0..ts.len() {
        let day = ts[i].div_euclid(DAY) * DAY;
        if out_ts.last() != Some(&day) {
            out_ts.push(day);
            for (col, value) in out.iter_mut().zip([o[i], h[i], l[i], c[i], v[i]]) {
                col.push(value);
            }
        } else {
            let last = out_ts.len() - 1;
            out[1][last] = out[1][last].max(h[i]);
            out[2][last] = out[2][last].min(l[i]);
            out[3][last] = c[i];
            out[4][last] += v[i];
        }
    }
    frame_from_columns(out_ts, out).expect("frame")
}

/// `frame` with every price of bars opening after `t` scaled by `factor`.
pub(super) fn perturb_after(frame: &DataFrame, t: i64, factor: f64) -> DataFrame {
    let (ts, mut values) = columns(frame);
    for col in values.iter_mut().take(4) {
        for (v, &time) in col.iter_mut().zip(&ts) {
            if time > t {
                *v *= factor;
            }
        }
    }
    frame_from_columns(ts, values).expect("frame")
}

/// A synthetic bars frame: a noisy trend, `n` bars of `step` ms from `start`.
pub(super) fn synthetic(n: usize, start: i64, step: i64, seed: u64) -> DataFrame {
    let mut state = seed;
    let mut price = 50.0;
    let mut close = Vec::with_capacity(n);
    for i in 0..n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let noise = (state >> 33) as f64 / (1u64 << 31) as f64 - 0.5;
        price = (price * (1.0 + 0.02 * noise + 0.003 * ((i / 40) % 2) as f64 - 0.0015)).max(1.0);
        close.push(price);
    }
    let open: Vec<f64> = close.iter().map(|c| c * 0.998).collect();
    let high: Vec<f64> = close.iter().map(|c| c * 1.01).collect();
    let low: Vec<f64> = close.iter().map(|c| c * 0.99).collect();
    let ts = (0..n as i64).map(|i| start + i * step).collect();
    frame_from_columns(ts, [open, high, low, close, vec![1000.0; n]]).expect("frame")
}

pub(super) const SMALL: &str = r#"
name: small
training_data:
  symbols: { list: [AAA, BBB] }
  timeframes: { list: [1d] }
indicators:
  - { name: rsi, feature_id: rsi_5, period: 5 }
  - { name: macd, feature_id: macd, fast_period: 3, slow_period: 6, signal_period: 3 }
  - { name: atr, feature_id: atr_3, period: 3 }
fuzzy_sets:
  rsi_5:
    low: { type: triangular, parameters: [0, 30, 50] }
    high: { type: trapezoidal, parameters: [50, 70, 100, 100] }
  macd.histogram:
    pos: { type: gaussian, parameters: [0.5, 1] }
model:
  architecture: { hidden_layers: [8] }
  features: { lookback_periods: 1 }
  training: { learning_rate: 0.01, batch_size: 8, epochs: 1 }
training:
  labels: { zigzag_threshold: 0.02, label_lookahead: 5 }
  data_split: { train: 0.6, validation: 0.2, test: 0.2 }
"#;

pub(super) fn small_bars(n_a: usize, n_b: usize) -> BTreeMap<(Symbol, Timeframe), DataFrame> {
    BTreeMap::from([
        ((sym("AAA"), Timeframe::D1), synthetic(n_a, 0, DAY, 1)),
        ((sym("BBB"), Timeframe::D1), synthetic(n_b, 5 * DAY, DAY, 2)),
    ])
}

#[test]
fn names_follow_the_strategy() {
    let s = parse_strategy(SMALL).expect("valid");
    assert_eq!(
        feature_names(&s),
        [
            "rsi_5_low",
            "rsi_5_high",
            "macd.histogram_pos",
            "rsi_5_low_lag1",
            "rsi_5_high_lag1",
            "macd.histogram_pos_lag1"
        ]
    );
    let m = load_strategy(&repo("strategies/multi_tf_example.yaml")).expect("multi");
    let names = feature_names(&m);
    assert_eq!(names[0], "1h_rsi_14_oversold");
    assert!(names.contains(&"1d_stoch_14_3_high".to_owned()));
    assert!(names.contains(&"1d_macd_12_26_9.histogram_rising_lag1".to_owned()));
    let hourly = store_bars("AAPL", Timeframe::H1);
    let bars = BTreeMap::from([
        (Timeframe::H1, hourly.clone()),
        (Timeframe::D1, resample_daily(&hourly)),
    ]);
    assert_eq!(compute_features(&m, &bars).expect("features").names, names);
}

#[test]
fn labels_and_features_align_row_for_row() {
    let s = parse_strategy(SMALL).expect("valid");
    let frame = synthetic(120, 0, DAY, 4);
    let ohlc = BTreeMap::from([(
        Timeframe::D1,
        Ohlc::from_frame(&frame, Timeframe::D1).expect("ohlc"),
    )]);
    let rows = labelled_rows(&s, &ohlc).expect("rows");
    let full = features_from_ohlc(&s, &ohlc).expect("features");
    let close = &ohlc[&Timeframe::D1].close;
    let labels = zigzag_labels(close, 0.02, 5);
    // Warm-up: the MACD signal is first defined at bar 6 - 1 + 3 - 1 = 7, its lag at 8.
    assert_eq!(rows.timestamps.first(), Some(&(8 * DAY)));
    // The last 5 bars have no label.
    assert_eq!(rows.timestamps.last(), Some(&(114 * DAY)));
    assert_eq!(rows.labels.len(), 114 - 8 + 1);
    for (k, &t) in rows.timestamps.iter().enumerate() {
        let i = (t / DAY) as usize;
        assert_eq!(Some(rows.labels[k]), labels[i].map(|l| l.index()));
        for (j, col) in rows.columns.iter().enumerate() {
            assert_eq!(col[k].to_bits(), full.columns[j][i].to_bits());
        }
    }
}
