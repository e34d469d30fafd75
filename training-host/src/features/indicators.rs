//! Technical indicators on plain f64 slices, following the textbook definitions
//! exactly; outputs have the input's length with NaN during warm-up.
//!
//! Everything is O(n) whatever the period (issue 16: periods go up to 10 000 and
//! series to millions of bars). Windowed sums, variances and extremes slide in
//! `rolling`, which says why they stay within a few ulps of the window summed afresh:
//! non-finite values are counted instead of summed, so a NaN in one window cannot
//! poison later ones, and each window is re-summed every `period` rows, so rounding
//! never drifts. `super::reference` keeps the per-row textbook loops they are tested
//! against.
//!
//! Conventions where definitions differ between libraries:
//! - EMA: `alpha = 2/(n+1)`, seeded with the SMA of the first `n` values (from the
//!   first non-NaN input, so it also works on MACD's warm-up NaNs).
//! - RSI and ATR: Wilder smoothing, first average = simple mean of the first `n`
//!   values, then `avg = (prev*(n-1) + x)/n`. RSI = 100 when the average loss is 0.
//!   True range needs the previous close, so TR starts at bar 1 and the first ATR is at
//!   bar `n` (as TA-Lib).
//! - Bollinger bands: population standard deviation (ddof = 0).
//! - Stochastic: %K = 100 (close - LL)/(HH - LL) over `k` bars; a flat window
//!   (HH == LL) has no defined %K and reads 50, the midpoint. %D = SMA(%K, d).
//! - ROC in percent; a zero base price gives NaN.

use super::frame::Ohlc;
use crate::strategy::Indicator;

/// Simple moving average.
pub fn sma(x: &[f64], period: usize) -> Vec<f64> {
    let mut out = rolling::window_sums(x, period);
    for v in &mut out {
        *v /= period as f64;
    }
    out
}

/// Exponential moving average, seeded with the SMA of the first `period` values.
pub fn ema(x: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    let Some(first) = x.iter().position(|v| !v.is_nan()) else {
        return out;
    };
    let seed_at = first + period.saturating_sub(1);
    if period == 0 || seed_at >= x.len() {
        return out;
    }
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut prev = x[first..=seed_at].iter().sum::<f64>() / period as f64;
    out[seed_at] = prev;
    for i in seed_at + 1..x.len() {
        prev = alpha * x[i] + (1.0 - alpha) * prev;
        out[i] = prev;
    }
    out
}

/// Relative Strength Index with Wilder smoothing.
pub fn rsi(x: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if period == 0 || x.len() <= period {
        return out;
    }
    let n = period as f64;
    let delta = |i: usize| x[i] - x[i - 1];
    let (mut gain, mut loss) = (0.0, 0.0);
    for i in 1..=period {
        let d = delta(i);
        gain += d.max(0.0);
        loss += (-d).max(0.0);
    }
    let (mut avg_gain, mut avg_loss) = (gain / n, loss / n);
    out[period] = rsi_value(avg_gain, avg_loss);
    for (i, slot) in out.iter_mut().enumerate().skip(period + 1) {
        let d = delta(i);
        avg_gain = (avg_gain * (n - 1.0) + d.max(0.0)) / n;
        avg_loss = (avg_loss * (n - 1.0) + (-d).max(0.0)) / n;
        *slot = rsi_value(avg_gain, avg_loss);
    }
    out
}

fn rsi_value(avg_gain: f64, avg_loss: f64) -> f64 {
    if avg_loss == 0.0 {
        100.0
    } else {
        100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    }
}

/// MACD line, signal line and histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    /// EMA(fast) - EMA(slow).
    pub macd: Vec<f64>,
    /// EMA(signal) of the MACD line.
    pub signal: Vec<f64>,
    /// MACD - signal.
    pub histogram: Vec<f64>,
}

/// MACD (fast < slow).
pub fn macd(x: &[f64], fast: usize, slow: usize, signal: usize) -> Macd {
    let (f, s) = (ema(x, fast), ema(x, slow));
    let line: Vec<f64> = f.iter().zip(&s).map(|(a, b)| a - b).collect();
    let signal_line = ema(&line, signal);
    let histogram = line.iter().zip(&signal_line).map(|(a, b)| a - b).collect();
    Macd {
        macd: line,
        signal: signal_line,
        histogram,
    }
}

/// Bollinger bands.
#[derive(Debug, Clone, PartialEq)]
pub struct Bbands {
    /// middle + k σ.
    pub upper: Vec<f64>,
    /// SMA.
    pub middle: Vec<f64>,
    /// middle - k σ.
    pub lower: Vec<f64>,
}

/// Bollinger bands with the population standard deviation.
pub fn bbands(x: &[f64], period: usize, multiplier: f64) -> Bbands {
    // The variances' buffer becomes the upper band: one series-sized allocation less.
    let (middle, mut upper) = rolling::window_mean_var(x, period);
    let mut lower = vec![f64::NAN; x.len()];
    for ((upper, lower), &mean) in upper.iter_mut().zip(&mut lower).zip(&middle) {
        let sd = upper.sqrt();
        *upper = mean + multiplier * sd;
        *lower = mean - multiplier * sd;
    }
    Bbands {
        upper,
        middle,
        lower,
    }
}

/// Average True Range with Wilder smoothing; the first value is at bar `period`.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let len = high.len().min(low.len()).min(close.len());
    let mut out = vec![f64::NAN; high.len()];
    if period == 0 || len <= period {
        return out;
    }
    let tr = |i: usize| {
        let prev = close[i - 1];
        (high[i] - low[i])
            .max((high[i] - prev).abs())
            .max((low[i] - prev).abs())
    };
    let n = period as f64;
    let mut avg = (1..=period).map(tr).sum::<f64>() / n;
    out[period] = avg;
    for (i, slot) in out.iter_mut().enumerate().take(len).skip(period + 1) {
        avg = (avg * (n - 1.0) + tr(i)) / n;
        *slot = avg;
    }
    out
}

/// Rate of change in percent.
pub fn roc(x: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if period == 0 {
        return out;
    }
    for i in period..x.len() {
        let base = x[i - period];
        if base != 0.0 {
            out[i] = 100.0 * (x[i] - base) / base;
        }
    }
    out
}

/// Stochastic oscillator %K and %D.
#[derive(Debug, Clone, PartialEq)]
pub struct Stochastic {
    /// %K.
    pub k: Vec<f64>,
    /// %D = SMA(%K, d).
    pub d: Vec<f64>,
}

/// Stochastic oscillator.
pub fn stochastic(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    k_period: usize,
    d_period: usize,
) -> Stochastic {
    let len = high.len().min(low.len()).min(close.len());
    let mut k = vec![f64::NAN; close.len()];
    rolling::window_high_low(high, low, k_period, len, |i, hh, ll| {
        k[i] = if hh > ll {
            100.0 * (close[i] - ll) / (hh - ll)
        } else {
            50.0
        };
    });
    let d = sma(&k, d_period);
    Stochastic { k, d }
}

/// Computes `indicator` on `bars`: `(output name, values)` for every output.
pub fn compute(indicator: &Indicator, bars: &Ohlc) -> Vec<(&'static str, Vec<f64>)> {
    match *indicator {
        Indicator::Rsi { period, source } => vec![("rsi", rsi(bars.source(source), period))],
        Indicator::Sma { period, source } => vec![("sma", sma(bars.source(source), period))],
        Indicator::Ema { period, source } => vec![("ema", ema(bars.source(source), period))],
        Indicator::Macd {
            fast_period,
            slow_period,
            signal_period,
            source,
        } => {
            let m = macd(bars.source(source), fast_period, slow_period, signal_period);
            vec![
                ("macd", m.macd),
                ("signal", m.signal),
                ("histogram", m.histogram),
            ]
        }
        Indicator::Bbands {
            period,
            multiplier,
            source,
        } => {
            let b = bbands(bars.source(source), period, multiplier);
            vec![("upper", b.upper), ("middle", b.middle), ("lower", b.lower)]
        }
        Indicator::Atr { period } => vec![("atr", atr(&bars.high, &bars.low, &bars.close, period))],
        Indicator::Roc { period, source } => vec![("roc", roc(bars.source(source), period))],
        Indicator::Stochastic { k_period, d_period } => {
            let s = stochastic(&bars.high, &bars.low, &bars.close, k_period, d_period);
            vec![("k", s.k), ("d", s.d)]
        }
    }
}

mod rolling;

#[cfg(test)]
mod tests;
