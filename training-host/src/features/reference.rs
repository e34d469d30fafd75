//! The textbook implementations the optimised pipeline replaced (issue 16), kept for two
//! readers only: the equivalence tests, which compare the O(n) kernels against them on
//! random data with NaNs, and `benches/features.rs`, which prints before | after |
//! ratio side by side in one run. Nothing in the service calls this module.
//!
//! Each function is the code as it was, unchanged: windows summed afresh for every row
//! (`period` additions per row), one `membership` match per value, lags built value by
//! value, the scaler walking chained iterators, completeness checked row by row.

use super::frame::FeatureFrame;
use super::fuzzy::membership;
use super::indicators::{Bbands, Stochastic};
use crate::strategy::FuzzyInput;

/// Simple moving average, every window summed afresh.
pub fn sma(x: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if period == 0 {
        return out;
    }
    for i in period.saturating_sub(1)..x.len() {
        let window = &x[i + 1 - period..=i];
        out[i] = window.iter().sum::<f64>() / period as f64;
    }
    out
}

/// Bollinger bands, every window's variance computed two-pass afresh.
pub fn bbands(x: &[f64], period: usize, multiplier: f64) -> Bbands {
    let middle = sma(x, period);
    let mut upper = vec![f64::NAN; x.len()];
    let mut lower = vec![f64::NAN; x.len()];
    for i in period.saturating_sub(1)..x.len() {
        if period == 0 {
            break;
        }
        let mean = middle[i];
        let window = &x[i + 1 - period..=i];
        let var = window.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / period as f64;
        let sd = var.sqrt();
        upper[i] = mean + multiplier * sd;
        lower[i] = mean - multiplier * sd;
    }
    Bbands {
        upper,
        middle,
        lower,
    }
}

/// Stochastic oscillator, every window's extremes folded afresh.
pub fn stochastic(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    k_period: usize,
    d_period: usize,
) -> Stochastic {
    let len = high.len().min(low.len()).min(close.len());
    let mut k = vec![f64::NAN; close.len()];
    if k_period > 0 {
        for i in k_period - 1..len {
            let from = i + 1 - k_period;
            let hh = high[from..=i]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            let ll = low[from..=i].iter().copied().fold(f64::INFINITY, f64::min);
            k[i] = if hh > ll {
                100.0 * (close[i] - ll) / (hh - ll)
            } else {
                50.0
            };
        }
    }
    let d = sma(&k, d_period);
    Stochastic { k, d }
}

/// The feature columns of one fuzzy input, one `membership` match per value.
pub fn fuzzify(input: &FuzzyInput, values: &[f64], prefix: &str) -> Vec<(String, Vec<f64>)> {
    input
        .sets
        .iter()
        .map(|set| {
            let name = format!("{prefix}{}_{}", input.key, set.name);
            let column = values
                .iter()
                .map(|&x| membership(&set.membership, x))
                .collect();
            (name, column)
        })
        .collect()
}

/// Lookback lags built value by value.
pub fn add_lags(frame: &mut FeatureFrame, k: usize) {
    let base = frame.columns.len();
    for lag in 1..=k {
        for j in 0..base {
            let column = &frame.columns[j];
            let shifted: Vec<f64> = (0..column.len())
                .map(|i| i.checked_sub(lag).map_or(f64::NAN, |from| column[from]))
                .collect();
            let name = format!("{}_lag{lag}", frame.names[j]);
            frame.push(name, shifted);
        }
    }
}

/// Rows of `frame` with a finite value in every column, checked row by row.
pub fn complete_rows(frame: &FeatureFrame) -> Vec<usize> {
    (0..frame.len()).filter(|&i| frame.is_complete(i)).collect()
}

/// Per-feature train mean and population std (1 where it is 0), through chained
/// iterators over the per-symbol parts.
pub fn fit_scaler(n_features: usize, parts: &[Vec<&[f64]>]) -> (Vec<f64>, Vec<f64>) {
    let column = |j: usize| {
        parts
            .iter()
            .filter_map(move |p| p.get(j))
            .flat_map(|c| c.iter())
    };
    let mut mean = vec![0.0; n_features];
    let mut std = vec![1.0; n_features];
    for j in 0..n_features {
        let count = column(j).count();
        if count == 0 {
            continue;
        }
        let m = column(j).sum::<f64>() / count as f64;
        let var = column(j).map(|v| (v - m).powi(2)).sum::<f64>() / count as f64;
        let sd = var.sqrt();
        mean[j] = m;
        std[j] = if sd.is_finite() && sd > 1e-12 * m.abs().max(1.0) {
            sd
        } else {
            1.0
        };
    }
    (mean, std)
}

/// Scales row `row` of `columns` and appends it as f32, one bounds-checked lookup of
/// the value, mean and std per cell.
pub fn append_row(mean: &[f64], std: &[f64], columns: &[Vec<f64>], row: usize, out: &mut Vec<f32>) {
    for (j, column) in columns.iter().enumerate() {
        let v = column.get(row).copied().unwrap_or(f64::NAN);
        let scaled = match (mean.get(j), std.get(j)) {
            (Some(m), Some(s)) => (v - m) / s,
            _ => v,
        };
        out.push(scaled as f32);
    }
}

#[cfg(test)]
mod tests;
