//! Class weights and the (optionally class-weighted) cross-entropy.
//!
//! Class weights are "balanced" inverse frequencies computed on the TRAIN split:
//! `w_c = n / (k * n_c)` over the `k` classes present, so a balanced split gives all
//! ones. A class absent from train (AAPL daily with a 3 % zigzag has no HOLD at all)
//! gets weight 1 instead of `1/0`: it has no train rows to weight, and in validation
//! or test rows it then counts like an average row, so no loss is ever NaN or inf.
//!
//! The weighted loss is PyTorch's `CrossEntropyLoss(weight=w)`: the weighted sum of
//! per-row losses divided by the sum of the rows' weights. Train, validation and test
//! losses all use the same train weights, so the curves are comparable and early
//! stopping watches the quantity being minimised.

use candle_core::{D, Tensor};

use super::mlp::argmax;
use crate::labels::Label;

/// Balanced inverse-frequency weights from per-class counts (absent classes get 1).
pub fn class_weights(counts: [usize; Label::COUNT]) -> [f64; Label::COUNT] {
    let n: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count();
    counts.map(|c| {
        if c == 0 {
            1.0
        } else {
            n as f64 / (present as f64 * c as f64)
        }
    })
}

/// Mean cross-entropy of a batch, weighted by `weights[target]` when given. `targets`
/// is a u32 tensor of the batch's classes, `row_weights` their weights in the same
/// order (only read with `weights`).
pub(crate) fn batch_loss(
    logits: &Tensor,
    targets: &Tensor,
    row_weights: Option<&[f32]>,
) -> candle_core::Result<Tensor> {
    let Some(row_weights) = row_weights else {
        return candle_nn::loss::cross_entropy(logits, targets);
    };
    let total: f64 = row_weights.iter().map(|&w| f64::from(w)).sum();
    let w = Tensor::from_slice(row_weights, row_weights.len(), logits.device())?;
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_p.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    (picked * w)?.sum_all()?.affine(-1.0 / total, 0.0)
}

/// Weighted cross-entropy sum, weight sum and correct predictions over row-major
/// logits (`rows × 3`) and their classes; computed in f64.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LossTally {
    pub(crate) weighted_loss: f64,
    pub(crate) weight: f64,
    pub(crate) correct: usize,
    pub(crate) rows: usize,
}

impl LossTally {
    /// Tallies `logits` against `y` with per-class `weights`.
    pub(crate) fn of(logits: &[f32], y: &[u32], weights: &[f64; Label::COUNT]) -> Self {
        let mut tally = Self::default();
        for (row, &class) in logits.chunks_exact(Label::COUNT).zip(y) {
            let w = weights.get(class as usize).copied().unwrap_or(1.0);
            tally.weighted_loss += w * row_loss(row, class);
            tally.weight += w;
            tally.correct += usize::from(argmax(row) == class);
            tally.rows += 1;
        }
        tally
    }

    /// The weighted mean loss (`None` without rows).
    pub(crate) fn loss(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.weighted_loss / self.weight)
    }

    /// The share of correct predictions (`None` without rows).
    pub(crate) fn accuracy(&self) -> Option<f64> {
        (self.rows > 0).then(|| self.correct as f64 / self.rows as f64)
    }
}

/// `-log softmax(row)[class]` as `logsumexp(row) - row[class]`.
fn row_loss(row: &[f32], class: u32) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
    let lse = max
        + row
            .iter()
            .map(|&l| (f64::from(l) - max).exp())
            .sum::<f64>()
            .ln();
    let picked = row.get(class as usize).map_or(f64::NAN, |&l| f64::from(l));
    lse - picked
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn balanced_weights_and_absent_classes() {
        assert_eq!(class_weights([10, 10, 10]), [1.0, 1.0, 1.0]);
        // 30 rows over 2 present classes: 30 / (2 * 20), 30 / (2 * 10).
        assert_eq!(class_weights([20, 0, 10]), [0.75, 1.0, 1.5]);
        assert_eq!(class_weights([0, 0, 0]), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn weighted_loss_matches_the_tally_and_the_plain_loss() {
        let logits = [2.0f32, 0.5, -1.0, 0.1, 0.2, 0.3, -3.0, 1.0, 4.0];
        let y = [0u32, 1, 2];
        let device = Device::Cpu;
        let t = Tensor::from_slice(&logits, (3, 3), &device).expect("logits");
        let targets = Tensor::from_slice(&y, 3, &device).expect("targets");
        let plain = batch_loss(&t, &targets, None)
            .and_then(|l| l.to_scalar::<f32>())
            .expect("plain");
        let ones = LossTally::of(&logits, &y, &[1.0; 3]);
        assert!((f64::from(plain) - ones.loss().expect("rows")).abs() < 1e-6);
        assert_eq!(ones.accuracy(), Some(2.0 / 3.0));
        let weights = [0.5, 2.0, 1.0];
        let row_w: Vec<f32> = y.iter().map(|&c| weights[c as usize] as f32).collect();
        let weighted = batch_loss(&t, &targets, Some(&row_w))
            .and_then(|l| l.to_scalar::<f32>())
            .expect("weighted");
        let tally = LossTally::of(&logits, &y, &weights);
        assert!((f64::from(weighted) - tally.loss().expect("rows")).abs() < 1e-6);
        assert_eq!(LossTally::of(&[], &[], &weights).loss(), None);
    }
}
