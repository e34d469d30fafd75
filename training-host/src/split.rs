//! Chronological train/validation/test split (no shuffling: the model is always
//! evaluated on data later than what it learned from).
//!
//! For `n` rows, train gets `floor(n * train)` rows, validation `floor(n * validation)`,
//! and test the rest, in that time order. A multi-symbol dataset splits each symbol
//! this way and concatenates the parts (see [`crate::features::build_dataset`]).
//!
//! [`purge`] then drops the last `label_lookahead` rows of train and of validation:
//! a row's zigzag label reads the next `label_lookahead` closes, so without the gap
//! the newest training labels would be computed from validation-period prices (and
//! validation labels from test-period prices) — a leak that flatters the metrics.

use std::ops::Range;

use crate::strategy::DataSplit;

/// Row ranges of the three parts of `n` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRanges {
    /// Oldest rows.
    pub train: Range<usize>,
    /// Middle rows.
    pub validation: Range<usize>,
    /// Newest rows.
    pub test: Range<usize>,
}

/// Splits `n` rows by `fractions`.
pub fn split_ranges(n: usize, fractions: &DataSplit) -> SplitRanges {
    // The epsilon keeps 0.29 * 100 = 28.999999999999996 from losing a row.
    let part = |f: f64| ((n as f64 * f + 1e-9).floor() as usize).min(n);
    let mut train = part(fractions.train);
    let mut validation = part(fractions.validation).min(n - train);
    // The rows rounding leaves over go to the newest part asked for: a part of
    // fraction 0 stays empty (a 1-row "test split" would report figures of one row).
    if fractions.test <= 0.0 {
        if fractions.validation > 0.0 {
            validation = n - train;
        } else {
            train = n;
        }
    }
    SplitRanges {
        train: 0..train,
        validation: train..train + validation,
        test: train + validation..n,
    }
}

/// Drops the last `gap` rows of train and of validation (see the module docs).
pub fn purge(ranges: SplitRanges, gap: usize) -> SplitRanges {
    let shorten = |r: Range<usize>| r.start..r.end.saturating_sub(gap).max(r.start);
    SplitRanges {
        train: shorten(ranges.train),
        validation: shorten(ranges.validation),
        test: ranges.test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fractions(train: f64, validation: f64, test: f64) -> DataSplit {
        DataSplit {
            train,
            validation,
            test,
        }
    }

    #[test]
    fn purging_leaves_a_label_window_between_parts() {
        let r = purge(split_ranges(100, &fractions(0.7, 0.15, 0.15)), 5);
        assert_eq!((r.train, r.validation, r.test), (0..65, 70..80, 85..100));
        // A part shorter than the gap becomes empty, never inverted.
        let r = purge(split_ranges(10, &fractions(0.7, 0.15, 0.15)), 5);
        assert_eq!((r.train, r.validation, r.test), (0..2, 7..7, 8..10));
    }

    #[test]
    fn splits_in_time_order_and_covers_every_row() {
        let cases = [
            (100, (0.7, 0.15, 0.15), (0..70, 70..85, 85..100)),
            (10, (0.7, 0.15, 0.15), (0..7, 7..8, 8..10)),
            (100, (0.29, 0.71, 0.0), (0..29, 29..100, 100..100)),
            (0, (0.7, 0.15, 0.15), (0..0, 0..0, 0..0)),
            // A part of fraction 0 gets no rounding remainder.
            (101, (0.85, 0.15, 0.0), (0..85, 85..101, 101..101)),
            (101, (0.85, 0.0, 0.15), (0..85, 85..85, 85..101)),
            (7, (1.0, 0.0, 0.0), (0..7, 7..7, 7..7)),
        ];
        for (n, (train, validation, test), expected) in cases {
            let r = split_ranges(n, &fractions(train, validation, test));
            assert_eq!((r.train, r.validation, r.test), expected, "{n} rows");
        }
        for n in 0..50 {
            let r = split_ranges(n, &fractions(0.6, 0.2, 0.2));
            assert_eq!(r.train.len() + r.validation.len() + r.test.len(), n);
            assert_eq!(r.train.end, r.validation.start);
            assert_eq!(r.validation.end, r.test.start);
        }
    }
}
