//! Zigzag labels: what the model learns to predict.
//!
//! Definition: for bar `i` with close `c_i`, walk the closes of bars `i+1 ..= i+L`
//! (`L = label_lookahead`) in order. The first bar `j` whose relative move
//! `(c_j - c_i) / |c_i|` reaches `+threshold` or more gives BUY; the first reaching
//! `-threshold` or less gives SELL; whichever happens first wins. If neither happens
//! within the window the label is HOLD. The last `L` bars (incomplete window) and bars
//! whose own close is zero or not finite have no label (`None`) and are dropped.
//!
//! Labels read the future by design: that is what is predicted. Features never do.

use serde::{Deserialize, Serialize};

/// A class: 0 BUY, 1 HOLD, 2 SELL (the KTRDR encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum Label {
    /// The price rises by the threshold first.
    Buy = 0,
    /// No move of the threshold within the lookahead.
    Hold = 1,
    /// The price falls by the threshold first.
    Sell = 2,
}

impl Label {
    /// Number of classes.
    pub const COUNT: usize = 3;

    /// The class index used as the training target.
    pub fn index(self) -> u32 {
        self as u32
    }

    /// The label of a class index.
    pub fn from_index(index: u32) -> Option<Self> {
        match index {
            0 => Some(Self::Buy),
            1 => Some(Self::Hold),
            2 => Some(Self::Sell),
            _ => None,
        }
    }

    /// `BUY`, `HOLD` or `SELL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Hold => "HOLD",
            Self::Sell => "SELL",
        }
    }
}

/// Zigzag labels for every bar (`None` where the window is incomplete).
pub fn zigzag_labels(close: &[f64], threshold: f64, lookahead: usize) -> Vec<Option<Label>> {
    (0..close.len())
        .map(|i| {
            let last = i.checked_add(lookahead)?;
            let base = close[i];
            if lookahead == 0 || last >= close.len() || !base.is_finite() || base == 0.0 {
                return None;
            }
            for &c in &close[i + 1..=last] {
                let change = (c - base) / base.abs();
                if change >= threshold {
                    return Some(Label::Buy);
                }
                if change <= -threshold {
                    return Some(Label::Sell);
                }
            }
            Some(Label::Hold)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::{Buy, Hold, Sell};

    #[test]
    fn first_threshold_crossing_wins() {
        // threshold 5 %, lookahead 3.
        let close = [
            100.0, // +2 %, then +6 % → BUY at bar 2, before the fall at bar 3
            102.0, // 106 is +3.9 %, then 94 is -7.8 % → SELL
            106.0, // 94 → -11 % → SELL
            94.0,  // 95, 96, 99 → +5.3 % at bar 6 → BUY
            95.0,  // 96, 99, 99.5 → +4.7 % max → HOLD
            96.0,  // incomplete window from here on (last 3 bars)
            99.0, 99.5,
        ];
        let labels = zigzag_labels(&close, 0.05, 3);
        assert_eq!(
            labels,
            [
                Some(Buy),
                Some(Sell),
                Some(Sell),
                Some(Buy),
                Some(Hold),
                None,
                None,
                None
            ]
        );
        assert_eq!(Buy.index(), 0);
        assert_eq!(Hold.index(), 1);
        assert_eq!(Sell.index(), 2);
        assert_eq!(Label::from_index(2), Some(Sell));
    }

    #[test]
    fn exact_threshold_counts_and_zero_price_has_no_label() {
        let labels = zigzag_labels(&[100.0, 103.0, 100.0, 97.0], 0.03, 1);
        assert_eq!(labels, [Some(Buy), Some(Hold), Some(Sell), None]);
        let labels = zigzag_labels(&[0.0, 1.0, 2.0], 0.03, 1);
        assert_eq!(labels, [None, Some(Buy), None]);
        assert!(
            zigzag_labels(&[1.0, 2.0], 0.03, 5)
                .iter()
                .all(Option::is_none)
        );
    }
}
