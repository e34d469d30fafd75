//! The O(n) kernels against the textbook loops they replaced, on random series with
//! NaN runs, infinities, flat stretches and jumps (seeded SplitMix64, so a failure
//! replays). Windowed sums may differ from a window summed afresh by rounding, so they
//! are compared to 1e-9 of the series' magnitude; extremes, memberships, lags and the
//! scaler do the same operations in the same order and must match bit for bit.

use host_service_base::SplitMix64;

use super::super::FeatureFrame;
use super::super::fuzzy::fuzzify;
use super::super::indicators::{bbands, sma, stochastic};
use super::super::lags::add_lags;
use super::super::scaling::Scaler;
use crate::strategy::{FuzzyInput, FuzzySet, Membership};

const REL: f64 = 1e-9;

/// A random walk around `level` with NaN runs (about 1 % of rows), flat stretches and
/// jumps; `specials` also scatters ±inf.
fn series(rng: &mut SplitMix64, n: usize, level: f64, specials: bool) -> Vec<f64> {
    let mut price = level;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let roll = rng.next_f64();
        if roll < 0.003 {
            let run = 1 + rng.index(30);
            out.extend(std::iter::repeat_n(f64::NAN, run));
        } else if roll < 0.006 {
            let run = 1 + rng.index(300);
            out.extend(std::iter::repeat_n(price, run));
        } else if roll < 0.008 {
            price += level * (rng.next_f64() - 0.5);
            out.push(price);
        } else if specials && roll < 0.009 {
            let sign = if rng.next_f64() < 0.5 { -1.0 } else { 1.0 };
            out.push(sign * f64::INFINITY);
        } else {
            price += level * 1e-3 * (rng.next_f64() - 0.5);
            out.push(price);
        }
    }
    out.truncate(n);
    out
}

/// Same NaN-ness and infinities; finite values within `REL * scale`.
fn assert_near(got: &[f64], want: &[f64], scale: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let same = if w.is_finite() {
            (g - w).abs() <= REL * scale.max(w.abs())
        } else {
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
        };
        assert!(same, "{what}, row {i}: got {g}, want {w}");
    }
}

fn assert_bits(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
        assert!(same, "{what}, row {i}: got {g}, want {w}");
    }
}

#[test]
fn sma_matches_the_textbook_sum_on_random_data_with_nans_and_infinities() {
    let mut rng = SplitMix64::new(16);
    for (level, specials) in [(100.0, false), (100.0, true), (1e-3, false), (5e4, true)] {
        let x = series(&mut rng, 30_000, level, specials);
        for period in [1, 2, 3, 14, 20, 200, 1_000] {
            let what = format!("sma({period}) at {level}, specials {specials}");
            assert_near(&sma(&x, period), &super::sma(&x, period), level, &what);
        }
        assert!(sma(&x, 0).iter().all(|v| v.is_nan()));
        assert!(sma(&x[..5], 6).iter().all(|v| v.is_nan()));
    }
    // Zero-mean data (a MACD line, returns): the sum cancels, so compare to the size
    // of the values rather than of the sum.
    let zero_mean: Vec<f64> = (0..20_000).map(|_| rng.next_f64() - 0.5).collect();
    for period in [9, 26, 500] {
        assert_near(
            &sma(&zero_mean, period),
            &super::sma(&zero_mean, period),
            1.0,
            "zero mean",
        );
    }
}

#[test]
fn a_long_series_does_not_drift() {
    // 200 000 rows at a price of 10 000 moving by cents: with a plain running sum the
    // error would grow with the row count; re-summation keeps it at the window's size.
    let mut rng = SplitMix64::new(7);
    let mut price = 10_000.0;
    let x: Vec<f64> = (0..200_000)
        .map(|_| {
            price += rng.next_f64() - 0.5;
            price
        })
        .collect();
    let (got, want) = (sma(&x, 50), super::sma(&x, 50));
    assert_near(&got, &want, 10_000.0, "sma 50");
    let worst = got[49..]
        .iter()
        .zip(&want[49..])
        .map(|(g, w)| ((g - w) / w).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-13, "relative error {worst}");
    let (b, r) = (bbands(&x, 50, 2.0), super::bbands(&x, 50, 2.0));
    assert_near(&b.upper, &r.upper, 10_000.0, "upper");
    assert_near(&b.lower, &r.lower, 10_000.0, "lower");
}

#[test]
fn a_nan_poisons_only_the_windows_that_hold_it() {
    let mut x: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i)).collect();
    x[10] = f64::NAN;
    x[25] = f64::INFINITY;
    let got = sma(&x, 5);
    for (i, v) in got.iter().enumerate().skip(4) {
        let window = &x[i - 4..=i];
        if window.iter().any(|v| v.is_nan()) {
            assert!(v.is_nan(), "row {i}");
        } else if window.contains(&f64::INFINITY) {
            assert_eq!(*v, f64::INFINITY, "row {i}");
        } else {
            let want = window.iter().sum::<f64>() / 5.0;
            assert!((v - want).abs() < 1e-12, "row {i}: {v} vs {want}");
        }
    }
    let b = bbands(&x, 5, 2.0);
    assert!(b.upper[14].is_nan() && b.upper[15].is_finite());
    assert!(b.upper[29].is_nan() && b.middle[29] == f64::INFINITY);
    assert!(b.upper[30].is_finite() && b.lower[39].is_finite());
}

#[test]
fn bbands_match_the_two_pass_variance_on_random_data_with_nans() {
    let mut rng = SplitMix64::new(20);
    for level in [1.0, 100.0, 700.0] {
        let x = series(&mut rng, 30_000, level, false);
        for (period, k) in [(1, 2.0), (2, 1.5), (20, 2.0), (21, 2.5), (500, 3.0)] {
            let (got, want) = (bbands(&x, period, k), super::bbands(&x, period, k));
            let what = format!("bbands({period}, {k}) at {level}");
            assert_near(&got.middle, &want.middle, level, &what);
            assert_near(&got.upper, &want.upper, level, &what);
            assert_near(&got.lower, &want.lower, level, &what);
        }
    }
    // Flat windows right after a jump: where the sliding variance would cancel, the
    // window is recomputed two-pass, so a flat window reads a band of width ~0.
    let mut x = vec![100.0; 30];
    x.extend(vec![250.25; 60]);
    let b = bbands(&x, 20, 2.0);
    for i in 50..x.len() {
        assert!(
            (b.upper[i] - 250.25).abs() < 1e-12,
            "row {i}: {}",
            b.upper[i]
        );
    }
}

#[test]
fn stochastic_matches_the_textbook_extremes_bit_for_bit() {
    let mut rng = SplitMix64::new(3);
    let close = series(&mut rng, 20_000, 100.0, false);
    let high: Vec<f64> = close.iter().map(|c| c + rng.next_f64()).collect();
    let mut low: Vec<f64> = close.iter().map(|c| c - rng.next_f64()).collect();
    // A NaN in high or low alone: the textbook fold skips it.
    for i in (0..low.len()).step_by(97) {
        low[i] = f64::NAN;
    }
    for (k, d) in [(1, 1), (3, 2), (14, 3), (400, 5)] {
        let (got, want) = (
            stochastic(&high, &low, &close, k, d),
            super::stochastic(&high, &low, &close, k, d),
        );
        assert_bits(&got.k, &want.k, &format!("%K {k}"));
        assert_near(&got.d, &want.d, 100.0, &format!("%D {k} {d}"));
    }
    // Ragged inputs and a zero period.
    let got = stochastic(&high[..50], &low[..40], &close[..60], 5, 3);
    let want = super::stochastic(&high[..50], &low[..40], &close[..60], 5, 3);
    assert_bits(&got.k, &want.k, "ragged");
    assert!(
        stochastic(&high, &low, &close, 0, 3)
            .k
            .iter()
            .all(|v| v.is_nan())
    );
}

#[test]
fn fuzzify_lags_and_completeness_match_the_per_value_code() {
    let mut rng = SplitMix64::new(5);
    let values: Vec<f64> = series(&mut rng, 5_000, 50.0, true)
        .into_iter()
        .map(|v| v - 50.0 + 50.0 * (rng.next_f64() - 0.5))
        .collect();
    let set = |name: &str, membership| FuzzySet {
        name: name.into(),
        membership,
    };
    let input = FuzzyInput {
        key: "x".into(),
        column: "x".into(),
        sets: vec![
            set(
                "tri",
                Membership::Triangular {
                    a: -20.0,
                    b: 0.0,
                    c: 15.0,
                },
            ),
            set(
                "left",
                Membership::Triangular {
                    a: 0.0,
                    b: 0.0,
                    c: 10.0,
                },
            ),
            set(
                "trap",
                Membership::Trapezoidal {
                    a: 5.0,
                    b: 10.0,
                    c: 20.0,
                    d: 20.0,
                },
            ),
            set(
                "bell",
                Membership::Gaussian {
                    mu: 3.0,
                    sigma: 7.5,
                },
            ),
        ],
    };
    let (got, want) = (
        fuzzify(&input, &values, "1h_"),
        super::fuzzify(&input, &values, "1h_"),
    );
    assert_eq!(got.len(), want.len());
    for ((gn, gc), (wn, wc)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert_bits(gc, wc, gn);
    }

    let mut frame = FeatureFrame {
        timestamps: (0..values.len() as i64).collect(),
        ..FeatureFrame::default()
    };
    for (name, column) in got {
        frame.push(name, column);
    }
    let mut reference = frame.clone();
    add_lags(&mut frame, 3);
    super::add_lags(&mut reference, 3);
    assert_eq!(frame.names, reference.names);
    for (g, w) in frame.columns.iter().zip(&reference.columns) {
        assert_bits(g, w, "lag");
    }
    let mask = frame.complete_rows();
    let complete: Vec<usize> = (0..frame.len()).filter(|&i| mask[i]).collect();
    assert_eq!(complete, super::complete_rows(&frame));
    assert!(!complete.is_empty() && complete.len() < frame.len());
}

#[test]
fn the_scaler_matches_the_iterator_code_bit_for_bit() {
    let mut rng = SplitMix64::new(11);
    let columns: Vec<Vec<f64>> = (0..7)
        .map(|j| {
            (0..3_000)
                .map(|_| f64::from(j) * 10.0 + rng.next_f64())
                .collect()
        })
        .collect();
    let mut flat = columns.clone();
    flat.push(vec![4.2; 3_000]);
    let names: Vec<String> = (0..flat.len()).map(|j| format!("f{j}")).collect();
    // Two "symbols": rows 0..1200 and 1500..2900 of the same columns.
    let parts: Vec<Vec<&[f64]>> = [0..1_200, 1_500..2_900]
        .into_iter()
        .map(|r| flat.iter().map(|c| &c[r.clone()]).collect())
        .collect();
    let scaler = Scaler::fit(names, &parts);
    let (mean, std) = super::fit_scaler(flat.len(), &parts);
    assert_bits(&scaler.mean, &mean, "mean");
    assert_bits(&scaler.std, &std, "std");
    assert_eq!(scaler.std[7], 1.0);

    for rows in [0..0, 0..1, 17..1_000, 100..3_000] {
        let mut got = vec![9.0];
        scaler.append_rows(&flat, rows.clone(), &mut got);
        let mut want = vec![9.0];
        for row in rows {
            super::append_row(&mean, &std, &flat, row, &mut want);
        }
        assert_eq!(got, want);
    }
}
