//! Test metrics: accuracy, loss, macro precision/recall/F1 and the confusion matrix.
//!
//! Per class, `precision = tp / predicted` and `recall = tp / support`, each 0 when
//! its denominator is 0 (scikit-learn's `zero_division=0`), `F1 = 2pr / (p + r)` (0
//! when both are 0). The macro average is the plain mean over the classes that occur
//! at all, i.e. that have support or were predicted at least once. A class with
//! neither (HOLD on AAPL daily: never a label, never predicted) says nothing about the
//! model and would only drag the average towards 0, so it is left out; a class that
//! is predicted but never occurs, or occurs but is never predicted, counts with its
//! zeros because those are real mistakes.

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::loss::LossTally;
use super::mlp::{Mlp, argmax};
use crate::features::Split;
use crate::labels::Label;

/// Counts `[actual][predicted]` over the classes 0 BUY, 1 HOLD, 2 SELL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// `counts[actual][predicted]`.
    pub counts: [[u64; Label::COUNT]; Label::COUNT],
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class index.
    pub class: u32,
    /// `BUY`, `HOLD` or `SELL`.
    pub label: String,
    /// Rows of this class.
    pub support: u64,
    /// Rows predicted as this class.
    pub predicted: u64,
    /// `tp / predicted` (0 without predictions).
    pub precision: f64,
    /// `tp / support` (0 without support).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1_score: f64,
}

impl ConfusionMatrix {
    /// Tallies pairs of actual and predicted classes (pairs outside 0..3 are ignored).
    pub fn new(actual: &[u32], predicted: &[u32]) -> Self {
        let mut m = Self::default();
        for (&a, &p) in actual.iter().zip(predicted) {
            if let Some(cell) = m
                .counts
                .get_mut(a as usize)
                .and_then(|row| row.get_mut(p as usize))
            {
                *cell += 1;
            }
        }
        m
    }

    /// All rows counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Share of rows on the diagonal (`None` without rows).
    pub fn accuracy(&self) -> Option<f64> {
        let correct: u64 = (0..Label::COUNT).map(|c| self.counts[c][c]).sum();
        let total = self.total();
        (total > 0).then(|| correct as f64 / total as f64)
    }

    /// Metrics of every class, in class order.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        (0..Label::COUNT)
            .map(|c| {
                let tp = self.counts[c][c];
                let support: u64 = self.counts[c].iter().sum();
                let predicted: u64 = self.counts.iter().map(|row| row[c]).sum();
                let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
                let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
                let f1_score = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: c as u32,
                    label: label_name(c as u32).to_owned(),
                    support,
                    predicted,
                    precision,
                    recall,
                    f1_score,
                }
            })
            .collect()
    }

    /// Macro `(precision, recall, f1)` over the classes that occur (see the module
    /// docs); zeros when no class occurs.
    pub fn macro_scores(&self) -> (f64, f64, f64) {
        let used: Vec<ClassMetrics> = self
            .per_class()
            .into_iter()
            .filter(|m| m.support > 0 || m.predicted > 0)
            .collect();
        if used.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let mean =
            |f: fn(&ClassMetrics) -> f64| used.iter().map(f).sum::<f64>() / used.len() as f64;
        (
            mean(|m| m.precision),
            mean(|m| m.recall),
            mean(|m| m.f1_score),
        )
    }
}

fn label_name(class: u32) -> &'static str {
    match Label::from_index(class) {
        Some(Label::Buy) => "BUY",
        Some(Label::Hold) => "HOLD",
        Some(Label::Sell) => "SELL",
        None => "?",
    }
}

/// The `test_metrics` of a result (field names follow the KTRDR contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Share of correct predictions.
    pub test_accuracy: f64,
    /// Mean cross-entropy, weighted with the train class weights like training.
    pub test_loss: f64,
    /// Macro precision.
    pub precision: f64,
    /// Macro recall.
    pub recall: f64,
    /// Macro F1.
    pub f1_score: f64,
    /// Rows evaluated.
    pub samples: usize,
    /// Per-class figures.
    pub per_class: Vec<ClassMetrics>,
    /// `[actual][predicted]` counts.
    pub confusion_matrix: ConfusionMatrix,
}

impl TestMetrics {
    /// Metrics of row-major `logits` (`rows × 3`) against `y`; `None` without rows.
    pub fn from_logits(
        logits: &[f32],
        y: &[u32],
        class_weights: &[f64; Label::COUNT],
    ) -> Option<Self> {
        let tally = LossTally::of(logits, y, class_weights);
        let predicted: Vec<u32> = logits.chunks_exact(Label::COUNT).map(argmax).collect();
        let matrix = ConfusionMatrix::new(y, &predicted);
        let (precision, recall, f1_score) = matrix.macro_scores();
        Some(Self {
            test_accuracy: matrix.accuracy()?,
            test_loss: tally.loss()?,
            precision,
            recall,
            f1_score,
            samples: tally.rows,
            per_class: matrix.per_class(),
            confusion_matrix: matrix,
        })
    }
}

/// Evaluates `model` on `split` (evaluation mode); `None` when the split is empty.
pub fn evaluate(
    model: &Mlp,
    split: &Split,
    class_weights: &[f64; Label::COUNT],
) -> Result<Option<TestMetrics>, TrainError> {
    if split.is_empty() {
        return Ok(None);
    }
    Ok(TestMetrics::from_logits(
        &model.logits(&split.x)?,
        &split.y,
        class_weights,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_made_matrix() {
        // actual BUY: 5 rows, 3 predicted BUY, 1 HOLD, 1 SELL
        // actual HOLD: 2 rows, both predicted SELL
        // actual SELL: 3 rows, 1 predicted BUY, 2 SELL
        let m = ConfusionMatrix {
            counts: [[3, 1, 1], [0, 0, 2], [1, 0, 2]],
        };
        assert_eq!(m.total(), 10);
        assert!(close(m.accuracy().expect("rows"), 0.5));
        let c = m.per_class();
        // BUY: tp 3, predicted 4, support 5
        assert!(close(c[0].precision, 0.75) && close(c[0].recall, 0.6));
        assert!(close(c[0].f1_score, 2.0 * 0.75 * 0.6 / 1.35));
        // HOLD: predicted once (wrongly), support 2: all zero, still in the macro mean
        assert_eq!(
            (c[1].precision, c[1].recall, c[1].f1_score),
            (0.0, 0.0, 0.0)
        );
        // SELL: tp 2, predicted 5, support 3
        assert!(close(c[2].precision, 0.4) && close(c[2].recall, 2.0 / 3.0));
        assert!(close(c[2].f1_score, 0.5));
        let (p, r, f) = m.macro_scores();
        assert!(close(p, (0.75 + 0.0 + 0.4) / 3.0));
        assert!(close(r, (0.6 + 0.0 + 2.0 / 3.0) / 3.0));
        assert!(close(f, (c[0].f1_score + 0.0 + 0.5) / 3.0));
    }

    #[test]
    fn a_class_that_never_occurs_is_left_out_of_the_macro_mean() {
        let actual = [0, 0, 2, 2, 2];
        let predicted = [0, 2, 2, 2, 0];
        let m = ConfusionMatrix::new(&actual, &predicted);
        assert_eq!(m.counts, [[1, 0, 1], [0, 0, 0], [1, 0, 2]]);
        let (p, r, f) = m.macro_scores();
        // BUY p 1/2 r 1/2 f 1/2; SELL p 2/3 r 2/3 f 2/3; HOLD excluded.
        assert!(close(p, (0.5 + 2.0 / 3.0) / 2.0));
        assert!(close(r, p) && close(f, p));
        assert_eq!(ConfusionMatrix::default().macro_scores(), (0.0, 0.0, 0.0));
        assert_eq!(ConfusionMatrix::default().accuracy(), None);
    }

    #[test]
    fn metrics_from_logits() {
        let logits = [3.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 3.0, 0.0];
        let t = TestMetrics::from_logits(&logits, &[0, 2, 2], &[1.0; 3]).expect("rows");
        assert_eq!(t.samples, 3);
        assert!(close(t.test_accuracy, 2.0 / 3.0));
        assert_eq!(t.confusion_matrix.counts, [[1, 0, 0], [0, 0, 0], [0, 1, 1]]);
        assert!(t.test_loss > 0.0 && t.test_loss.is_finite());
        assert!(TestMetrics::from_logits(&[], &[], &[1.0; 3]).is_none());
    }
}
