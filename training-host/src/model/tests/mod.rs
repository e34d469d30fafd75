//! Model tests: shared fixtures (a planted-signal dataset built from the sample bars,
//! a small training configuration), then the network (`network.rs`), the training
//! loop (`training.rs`) and the store (`store.rs`).

use std::path::PathBuf;

use data_host::bars::{timestamps_ms, value_column};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};

use super::{MlpSpec, TrainConfig};
use crate::features::Split;
use crate::strategy::{Activation, Optimizer};

mod network;
mod store;
mod training;

pub(super) fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Planted signal on AAPL daily bars: 4 bar-derived features (1-day return, range,
/// body, log volume), z-scored; the label is a fixed linear score of the first three
/// cut at its tertiles (low → SELL, middle → HOLD, high → BUY). The volume feature is
/// a distractor. Splits are chronological 70/15/15.
pub(super) fn planted() -> (Split, Split, Split) {
    let frame = Store::new(repo("data"), StoreFormat::Csv)
        .load(&Symbol::parse("AAPL").expect("symbol"), Timeframe::D1)
        .expect("store readable")
        .expect("sample file");
    let ts = timestamps_ms(&frame).expect("timestamps");
    let [o, h, l, c, v] =
        ["open", "high", "low", "close", "volume"].map(|n| value_column(&frame, n).expect(n));
    let mut cols: [Vec<f64>; 4] = Default::default();
    for i in 1..c.len() {
        cols[0].push(c[i] / c[i - 1] - 1.0);
        cols[1].push((h[i] - l[i]) / c[i]);
        cols[2].push((c[i] - o[i]) / o[i]);
        cols[3].push(v[i].max(1.0).ln());
    }
    for col in &mut cols {
        let n = col.len() as f64;
        let mean = col.iter().sum::<f64>() / n;
        let sd = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        col.iter_mut().for_each(|x| *x = (*x - mean) / sd);
    }
    let rows = cols[0].len();
    let score: Vec<f64> = (0..rows)
        .map(|i| cols[0][i] - 0.5 * cols[1][i] + 0.8 * cols[2][i])
        .collect();
    let mut sorted = score.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (sorted[rows / 3], sorted[2 * rows / 3]);
    let label = |s: f64| {
        if s >= hi {
            0
        } else if s < lo {
            2
        } else {
            1
        }
    };
    let part = |range: std::ops::Range<usize>| Split {
        x: range
            .clone()
            .flat_map(|i| cols.iter().map(move |col| col[i] as f32))
            .collect(),
        y: range.clone().map(|i| label(score[i])).collect(),
        timestamps: range.map(|i| ts[i + 1]).collect(),
        n_features: 4,
        segments: Vec::new(),
    };
    let (a, b) = (rows * 70 / 100, rows * 85 / 100);
    (part(0..a), part(a..b), part(b..rows))
}

pub(super) fn spec(n_features: usize, activation: Activation, dropout: f64) -> MlpSpec {
    MlpSpec {
        n_features,
        hidden_layers: vec![16],
        activation,
        dropout,
        n_classes: 3,
    }
}

pub(super) fn config(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        learning_rate: 0.01,
        batch_size: 64,
        epochs,
        optimizer: Optimizer::Adam,
        early_stopping: None,
        class_weights: true,
        seed,
    }
}
