//! Z-score scaling fitted on the TRAIN split only and applied to every split and to
//! inference rows, so no statistic of validation or test data leaks into training.
//!
//! `scaled = (x - mean) / std` with the population std; a (numerically) constant
//! feature has std 0 and is divided by 1 instead. The [`Scaler`] carries the feature
//! names and serialises with serde, so a model store saves it next to the weights and
//! a predictor can refuse features that do not match.

use serde::{Deserialize, Serialize};

use super::error::FeatureError;

/// Per-feature mean and standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Feature names, in column order.
    pub feature_names: Vec<String>,
    /// Train mean per feature (0 for an identity scaler).
    pub mean: Vec<f64>,
    /// Train population std per feature, 1 where it was 0 (1 for an identity scaler).
    pub std: Vec<f64>,
}

impl Scaler {
    /// A scaler that changes nothing (`scale_features: false`).
    pub fn identity(feature_names: Vec<String>) -> Self {
        let n = feature_names.len();
        Self {
            feature_names,
            mean: vec![0.0; n],
            std: vec![1.0; n],
        }
    }

    /// Fits on the train rows. `parts` holds, per symbol, one slice per feature (in
    /// `feature_names` order) covering that symbol's train rows.
    pub fn fit(feature_names: Vec<String>, parts: &[Vec<&[f64]>]) -> Self {
        let n_features = feature_names.len();
        let mut mean = vec![0.0; n_features];
        let mut std = vec![1.0; n_features];
        for j in 0..n_features {
            // Symbol by symbol, value by value: one order for every pass, plain loops
            // over slices (issue 16: chained iterators cost 3x here).
            let slices = || parts.iter().filter_map(move |p| p.get(j).copied());
            let count: usize = slices().map(<[f64]>::len).sum();
            if count == 0 {
                continue;
            }
            // Two passes: the mean first, then squared deviations from it, which
            // avoids the cancellation of the one-pass sum-of-squares formula.
            let mut sum = 0.0;
            for c in slices() {
                for &v in c {
                    sum += v;
                }
            }
            let m = sum / count as f64;
            let mut squares = 0.0;
            for c in slices() {
                for &v in c {
                    squares += (v - m) * (v - m);
                }
            }
            let sd = (squares / count as f64).sqrt();
            mean[j] = m;
            // Rounding leaves a tiny std on constant columns; treat it as 0.
            std[j] = if sd.is_finite() && sd > 1e-12 * m.abs().max(1.0) {
                sd
            } else {
                1.0
            };
        }
        Self {
            feature_names,
            mean,
            std,
        }
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.feature_names.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.feature_names.is_empty()
    }

    /// Scales one value of feature `j` (unknown `j` passes through).
    pub fn scale(&self, j: usize, value: f64) -> f64 {
        match (self.mean.get(j), self.std.get(j)) {
            (Some(m), Some(s)) => (value - m) / s,
            _ => value,
        }
    }

    /// Scales row `row` of `columns` (in feature order) and appends it to `out` as f32.
    pub fn append_row(&self, columns: &[Vec<f64>], row: usize, out: &mut Vec<f32>) {
        let known = self.mean.len().min(self.std.len());
        for (j, column) in columns.iter().enumerate() {
            let v = column.get(row).copied().unwrap_or(f64::NAN);
            // f32 is what the network consumes; the statistics stay f64.
            let scaled = if j < known {
                (v - self.mean[j]) / self.std[j]
            } else {
                v
            };
            out.push(scaled as f32);
        }
    }

    /// Scales rows `rows` of `columns` and appends them row-major to `out`, the same
    /// values as [`Self::append_row`] row by row. The dataset's hot loop (issue 16): it
    /// transposes blocks of rows small enough to stay in cache, reading each column
    /// sequentially instead of hopping across all columns for every row.
    pub fn append_rows(
        &self,
        columns: &[Vec<f64>],
        rows: std::ops::Range<usize>,
        out: &mut Vec<f32>,
    ) {
        const BLOCK: usize = 256;
        let width = columns.len();
        let known = self.mean.len().min(self.std.len());
        if known < width || columns.iter().any(|c| c.len() < rows.end) {
            for row in rows {
                self.append_row(columns, row, out);
            }
            return;
        }
        out.reserve(rows.len() * width);
        // One cache-sized block at a time, transposed in `block` and then appended: the
        // big output is written once, in order, never zero-filled first.
        let mut block = vec![0.0f32; BLOCK * width];
        let mut from = rows.start;
        while from < rows.end {
            let to = (from + BLOCK).min(rows.end);
            let block = &mut block[..(to - from) * width];
            for (j, column) in columns.iter().enumerate() {
                let (m, s) = (self.mean[j], self.std[j]);
                let cells = block[j..].iter_mut().step_by(width);
                for (cell, &v) in cells.zip(&column[from..to]) {
                    *cell = ((v - m) / s) as f32;
                }
            }
            out.extend_from_slice(block);
            from = to;
        }
    }

    /// Checks that `names` are exactly the features this scaler was fitted on.
    pub fn check_features(&self, names: &[String]) -> Result<(), FeatureError> {
        if self.feature_names == names {
            return Ok(());
        }
        let first_difference = self
            .feature_names
            .iter()
            .zip(names)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("{a} != {b}"));
        Err(FeatureError::ScalerMismatch {
            expected: self.feature_names.len(),
            got: names.len(),
            first_difference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_population_statistics_over_all_parts() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0];
        let c = [5.0, 5.0, 5.0];
        let d = [5.0];
        let scaler = Scaler::fit(
            vec!["x".into(), "flat".into()],
            &[vec![&a[..], &c[..]], vec![&b[..], &d[..]]],
        );
        assert!((scaler.mean[0] - 2.5).abs() < 1e-15);
        // population variance of 1,2,3,4 = 1.25
        assert!((scaler.std[0] - 1.25f64.sqrt()).abs() < 1e-15);
        assert_eq!((scaler.mean[1], scaler.std[1]), (5.0, 1.0));
        assert!((scaler.scale(0, 2.5)).abs() < 1e-15);
        assert_eq!(scaler.scale(1, 6.0), 1.0);
        let mut out = Vec::new();
        scaler.append_row(&[vec![1.0, 4.0], vec![5.0, 5.0]], 1, &mut out);
        assert_eq!(out, [((4.0 - 2.5) / 1.25f64.sqrt()) as f32, 0.0]);
    }

    #[test]
    fn round_trips_through_json_and_checks_names() {
        let scaler = Scaler::fit(vec!["a".into()], &[vec![&[0.1, 0.7, 1.3][..]]]);
        let json = serde_json::to_string(&scaler).expect("serialise");
        let back: Scaler = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, scaler);
        assert!(scaler.check_features(&["a".into()]).is_ok());
        let err = scaler
            .check_features(&["b".into()])
            .expect_err("different names");
        assert!(err.to_string().contains("a != b"), "{err}");
        let identity = Scaler::identity(vec!["a".into()]);
        assert_eq!(identity.scale(0, 3.5), 3.5);
    }
}
