//! O(n) window kernels behind `sma`, `bbands` and `stochastic`.
//!
//! Sums and variances slide: one value enters and one leaves per row. Two things keep
//! every output equal to its textbook definition (the window summed afresh) within a
//! few ulps of the window's own magnitude:
//!
//! - Non-finite values never enter the running sums. A window counts its NaN, +inf and
//!   -inf values instead and reads NaN / ±inf exactly as the textbook sum would, so a
//!   NaN poisons only the windows that hold it: once it leaves, the sums hold finite
//!   values only again.
//! - Re-summation: every `period` rows (and whenever a running sum stops being finite)
//!   the window is summed afresh, left to right as the textbook does. Rounding therefore
//!   accumulates over at most `period` add/subtract pairs, the same order of error as
//!   the textbook's own `period` additions, and never drifts across a long series. The
//!   re-sums cost one extra pass per `period` rows: still O(1) per row.
//!
//! The variance slides as shifted sums `S1 = Σ(v - c)`, `S2 = Σ(v - c)²` around `c`,
//! the window mean at the last re-sum, so the terms stay the size of recent moves
//! rather than of the price. `S2/p - (S1/p)²` cancels when a window is nearly flat
//! compared with those moves; where its error bound could reach 1e-8 of the variance,
//! the window's variance is computed two-pass afresh (rare: calm after a jump).

/// Re-summed sum of the finite values of the current window, with its non-finite counts.
#[derive(Debug)]
struct WindowSum {
    sum: f64,
    nan: usize,
    pos_inf: usize,
    neg_inf: usize,
}

impl WindowSum {
    fn new() -> Self {
        Self {
            sum: 0.0,
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
        }
    }

    fn count(&mut self, v: f64, step: isize) {
        let slot = if v.is_nan() {
            &mut self.nan
        } else if v > 0.0 {
            &mut self.pos_inf
        } else {
            &mut self.neg_inf
        };
        *slot = slot.wrapping_add_signed(step);
    }

    fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.sum += v;
        } else {
            self.count(v, 1);
        }
    }

    fn remove(&mut self, v: f64) {
        if v.is_finite() {
            self.sum -= v;
        } else {
            self.count(v, -1);
        }
    }

    /// Sums `window`'s finite values afresh (counts are exact already).
    fn resum(&mut self, window: &[f64]) {
        self.sum = window.iter().filter(|v| v.is_finite()).sum();
    }

    fn is_finite(&self) -> bool {
        self.nan + self.pos_inf + self.neg_inf == 0
    }

    /// The textbook sum: NaN if any NaN (or both infinities), else ±inf if any.
    fn value(&self) -> f64 {
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            f64::NAN
        } else if self.pos_inf > 0 {
            f64::INFINITY
        } else if self.neg_inf > 0 {
            f64::NEG_INFINITY
        } else {
            self.sum
        }
    }
}

/// Calls `emit(i, window)` for every full window ending at `i`, with `window` holding
/// the running sum state of `x[i + 1 - period ..= i]`, re-summed as the module says.
fn slide(x: &[f64], period: usize, mut emit: impl FnMut(usize, &WindowSum, bool)) {
    if period == 0 || x.len() < period {
        return;
    }
    let mut w = WindowSum::new();
    let mut since_resum = 0;
    for (i, &v) in x.iter().enumerate() {
        w.add(v);
        if i >= period {
            w.remove(x[i - period]);
        }
        if i + 1 < period {
            continue;
        }
        since_resum += 1;
        let resummed = since_resum >= period || !w.sum.is_finite();
        if resummed {
            w.resum(&x[i + 1 - period..=i]);
            since_resum = 0;
        }
        emit(i, &w, resummed || i + 1 == period);
    }
}

/// Window sums with textbook NaN/inf semantics, NaN before the first full window.
pub(super) fn window_sums(x: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    slide(x, period, |i, w, _| out[i] = w.value());
    out
}

/// Shifted sums of the current window (finite values only): see the module docs.
#[derive(Debug)]
struct ShiftedSums {
    shift: f64,
    s1: f64,
    s2: f64,
    /// Largest squared term since the last reset: scales the rounding error.
    top: f64,
    /// Whether the sums were rebuilt from the window on this row.
    fresh: bool,
}

impl ShiftedSums {
    /// Rebuilds the sums around `mean`: `s2 / p` is then the textbook two-pass variance.
    fn reset(&mut self, window: &[f64], mean: f64) {
        (self.shift, self.s1, self.s2, self.top, self.fresh) = (mean, 0.0, 0.0, 0.0, true);
        for &v in window {
            let d = v - mean;
            self.s1 += d;
            self.s2 += d * d;
            self.top = self.top.max(d * d);
        }
    }

    fn slide(&mut self, new: f64, old: f64) {
        let (new, old) = (new - self.shift, old - self.shift);
        self.s1 += new - old;
        self.s2 += new * new - old * old;
        self.top = self.top.max(new * new);
        self.fresh = false;
    }

    /// The variance, or `None` when cancellation could have cost more than 1e-8 of it.
    fn variance(&self, p: f64) -> Option<f64> {
        if self.fresh {
            return Some(self.s2 / p);
        }
        let shifted = self.s1 / p;
        let fast = (self.s2 / p - shifted * shifted).max(0.0);
        // Each of the <= 3p running updates since the reset rounds by at most
        // eps * p * top; 16x that bounds the error of `fast` with room to spare. A zero
        // `top` means every value equalled the shift exactly: the variance is 0.
        let bound = 16.0 * p * f64::EPSILON * self.top;
        (fast > 1e8 * bound || self.top == 0.0).then_some(fast)
    }
}

/// Window means and population variances (NaN when a window holds a non-finite value).
pub(super) fn window_mean_var(x: &[f64], period: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![f64::NAN; x.len()];
    let mut var = vec![f64::NAN; x.len()];
    let p = period as f64;
    let mut sums = ShiftedSums {
        shift: 0.0,
        s1: 0.0,
        s2: 0.0,
        top: 0.0,
        fresh: false,
    };
    // Whether `sums` describe the previous window (a non-finite value invalidates them).
    let mut valid = false;
    slide(x, period, |i, w, resummed| {
        let m = w.value() / p;
        mean[i] = m;
        if !w.is_finite() {
            valid = false;
            return;
        }
        let window = &x[i + 1 - period..=i];
        if valid && !resummed {
            sums.slide(x[i], x[i - period]);
        } else {
            sums.reset(window, m);
            valid = true;
        }
        var[i] = sums.variance(p).unwrap_or_else(|| {
            // Rebuilding costs O(period), as often as big moves leave the window.
            sums.reset(window, m);
            sums.s2 / p
        });
    });
    (mean, var)
}

/// Calls `emit(i, highest, lowest)` for every full window ending at `i < len`: the
/// highest of `high` (NaN ignored, -inf if all NaN) and the lowest of `low` (+inf if
/// all NaN) over rows `i + 1 - period ..= i`.
///
/// van Herk / Gil-Werman: cut the series into blocks of `period` rows. A window spans
/// at most two blocks, so its extreme is the extreme of the previous block from the
/// window's start to that block's end (a suffix, stored per block) against the
/// extreme of the current block from its start to the window's end (a running
/// prefix): three comparisons per value whatever the period, and only period-sized
/// buffers, so nothing series-sized to allocate. `f64::max`/`min` pick exactly one of
/// the values and skip NaN, as the textbook fold does.
pub(super) fn window_high_low(
    high: &[f64],
    low: &[f64],
    period: usize,
    len: usize,
    mut emit: impl FnMut(usize, f64, f64),
) {
    let len = len.min(high.len()).min(low.len());
    if period == 0 || len < period {
        return;
    }
    let (high, low) = (&high[..len], &low[..len]);
    let (mut previous_high, mut current_high) =
        (vec![f64::NEG_INFINITY; period], vec![0.0; period]);
    let (mut previous_low, mut current_low) = (vec![f64::INFINITY; period], vec![0.0; period]);
    for (b, (hb, lb)) in high.chunks(period).zip(low.chunks(period)).enumerate() {
        let (mut hh, mut ll) = (f64::NEG_INFINITY, f64::INFINITY);
        for (j, (&h, &l)) in hb.iter().zip(lb).enumerate().rev() {
            hh = hh.max(h);
            ll = ll.min(l);
            current_high[j] = hh;
            current_low[j] = ll;
        }
        // Row j of this block ends the window starting at row j + 1 of the previous
        // block, or (j = period - 1) the window that is exactly this block.
        let (mut hh, mut ll) = (f64::NEG_INFINITY, f64::INFINITY);
        for (j, (&h, &l)) in hb.iter().zip(lb).enumerate() {
            hh = hh.max(h);
            ll = ll.min(l);
            let i = b * period + j;
            if i + 1 < period {
                continue;
            }
            match (previous_high.get(j + 1), previous_low.get(j + 1)) {
                (Some(&ph), Some(&pl)) => emit(i, ph.max(hh), pl.min(ll)),
                _ => emit(i, hh, ll),
            }
        }
        std::mem::swap(&mut previous_high, &mut current_high);
        std::mem::swap(&mut previous_low, &mut current_low);
    }
}
