//! Fuzzy membership functions: each indicator value becomes a degree in `[0, 1]` per
//! set, and those degrees are the model's features (KTRDR's "pure fuzzy" inputs).
//!
//! - triangular `[a, b, c]`: 0 outside `[a, c]`, rising linearly to 1 at `b`, falling
//!   back to 0 at `c`;
//! - trapezoidal `[a, b, c, d]`: 0 outside `[a, d]`, 1 on `[b, c]`, linear between;
//! - gaussian `[mu, sigma]`: `exp(-(x - mu)² / (2 sigma²))`.
//!
//! A degenerate shoulder (`a == b`, or `b == c` / `c == d`) is a vertical edge: the
//! membership is 1 AT the edge and 0 beyond it, so `[65, 75, 100, 100]` is 1 at 100.
//! Validation guarantees `a < c` (triangle) and `a < d` (trapezoid), so no branch
//! divides by zero. NaN in gives NaN out (the row is then dropped as warm-up).

use crate::strategy::{FuzzyInput, Membership};

/// The membership degree of `x`.
pub fn membership(m: &Membership, x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    match *m {
        Membership::Triangular { a, b, c } => triangular(a, b, c, x),
        Membership::Trapezoidal { a, b, c, d } => trapezoidal(a, b, c, d, x),
        Membership::Gaussian { mu, sigma } => gaussian(mu, sigma, x),
    }
}

#[inline(always)]
fn triangular(a: f64, b: f64, c: f64, x: f64) -> f64 {
    if x < a || x > c {
        0.0
    } else if x < b {
        // a <= x < b, so b > a.
        (x - a) / (b - a)
    } else if x > b {
        // b < x <= c, so c > b.
        (c - x) / (c - b)
    } else {
        1.0
    }
}

#[inline(always)]
fn trapezoidal(a: f64, b: f64, c: f64, d: f64, x: f64) -> f64 {
    if x < a || x > d {
        0.0
    } else if x < b {
        (x - a) / (b - a)
    } else if x <= c {
        1.0
    } else {
        // c < x <= d, so d > c.
        (d - x) / (d - c)
    }
}

#[inline(always)]
fn gaussian(mu: f64, sigma: f64, x: f64) -> f64 {
    let z = (x - mu) / sigma;
    (-0.5 * z * z).exp()
}

/// `f` on every value, NaN passing through.
fn degrees(values: &[f64], f: impl Fn(f64) -> f64) -> Vec<f64> {
    values
        .iter()
        .map(|&x| if x.is_nan() { f64::NAN } else { f(x) })
        .collect()
}

/// The feature columns of one fuzzy input: `{prefix}{key}_{set}` for every set.
///
/// The same functions as [`membership`], with the shape matched once per set instead
/// of once per value, so each column is one tight loop (issue 16).
pub fn fuzzify(input: &FuzzyInput, values: &[f64], prefix: &str) -> Vec<(String, Vec<f64>)> {
    input
        .sets
        .iter()
        .map(|set| {
            let name = format!("{prefix}{}_{}", input.key, set.name);
            let column = match set.membership {
                Membership::Triangular { a, b, c } => degrees(values, |x| triangular(a, b, c, x)),
                Membership::Trapezoidal { a, b, c, d } => {
                    degrees(values, |x| trapezoidal(a, b, c, d, x))
                }
                Membership::Gaussian { mu, sigma } => degrees(values, |x| gaussian(mu, sigma, x)),
            };
            (name, column)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tri(a: f64, b: f64, c: f64) -> Membership {
        Membership::Triangular { a, b, c }
    }

    #[test]
    fn triangular_is_piecewise_linear() {
        let m = tri(0.0, 20.0, 35.0);
        for (x, want) in [
            (-1.0, 0.0),
            (0.0, 0.0),
            (10.0, 0.5),
            (20.0, 1.0),
            (27.5, 0.5),
            (35.0, 0.0),
            (40.0, 0.0),
        ] {
            assert!((membership(&m, x) - want).abs() < 1e-12, "x={x}");
        }
    }

    #[test]
    fn degenerate_shoulders_are_one_at_the_flat_edge() {
        let left = tri(10.0, 10.0, 20.0);
        assert_eq!(membership(&left, 10.0), 1.0);
        assert_eq!(membership(&left, 9.999), 0.0);
        assert!((membership(&left, 15.0) - 0.5).abs() < 1e-12);
        let right = tri(0.0, 10.0, 10.0);
        assert_eq!(membership(&right, 10.0), 1.0);
        assert_eq!(membership(&right, 10.001), 0.0);
        let trap = Membership::Trapezoidal {
            a: 65.0,
            b: 75.0,
            c: 100.0,
            d: 100.0,
        };
        assert_eq!(membership(&trap, 100.0), 1.0);
        assert_eq!(membership(&trap, 80.0), 1.0);
        assert!((membership(&trap, 70.0) - 0.5).abs() < 1e-12);
        assert_eq!(membership(&trap, 60.0), 0.0);
        let flat_left = Membership::Trapezoidal {
            a: 0.0,
            b: 0.0,
            c: 20.0,
            d: 30.0,
        };
        assert_eq!(membership(&flat_left, 0.0), 1.0);
        assert!((membership(&flat_left, 25.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn gaussian_and_nan() {
        let g = Membership::Gaussian {
            mu: 50.0,
            sigma: 10.0,
        };
        assert_eq!(membership(&g, 50.0), 1.0);
        assert!((membership(&g, 60.0) - (-0.5f64).exp()).abs() < 1e-15);
        assert!((membership(&g, 30.0) - (-2.0f64).exp()).abs() < 1e-15);
        assert!(membership(&g, f64::NAN).is_nan());
        assert!(membership(&tri(0.0, 1.0, 2.0), f64::NAN).is_nan());
    }
}
