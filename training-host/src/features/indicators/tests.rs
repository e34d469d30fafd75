//! Indicator values against references computed independently here: hand-worked
//! values for short series, the published StockCharts RSI-14 example, and plain
//! textbook loops written from the definitions (not calling the code under test).

use super::*;

const TOL: f64 = 1e-9;

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "row {i}: got {g}, want NaN");
        } else {
            assert!((g - w).abs() <= TOL, "row {i}: got {g}, want {w}");
        }
    }
}

/// A deterministic wandering price series (LCG), long enough for every warm-up.
fn prices(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut price = 100.0;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let step = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 4.0;
            price = (price + step).max(1.0);
            price
        })
        .collect()
}

/// Textbook EMA: SMA seed over the first n values, then ema += alpha (x - ema).
fn ref_ema(x: &[f64], n: usize) -> Vec<f64> {
    let alpha = 2.0 / (n as f64 + 1.0);
    let mut out = vec![f64::NAN; x.len()];
    let start = x.iter().take_while(|v| v.is_nan()).count();
    if start + n > x.len() {
        return out;
    }
    let mut seed = 0.0;
    for v in &x[start..start + n] {
        seed += v;
    }
    let mut e = seed / n as f64;
    out[start + n - 1] = e;
    for i in start + n..x.len() {
        e += alpha * (x[i] - e);
        out[i] = e;
    }
    out
}

/// Textbook Wilder RSI: gain/loss lists first, then the averages.
fn ref_rsi(x: &[f64], n: usize) -> Vec<f64> {
    let gains: Vec<f64> = x
        .windows(2)
        .map(|w| if w[1] > w[0] { w[1] - w[0] } else { 0.0 })
        .collect();
    let losses: Vec<f64> = x
        .windows(2)
        .map(|w| if w[1] < w[0] { w[0] - w[1] } else { 0.0 })
        .collect();
    let mut out = vec![f64::NAN; x.len()];
    let mut ag: f64 = gains[..n].iter().sum::<f64>() / n as f64;
    let mut al: f64 = losses[..n].iter().sum::<f64>() / n as f64;
    for k in n..=gains.len() {
        if k > n {
            ag = (ag * (n as f64 - 1.0) + gains[k - 1]) / n as f64;
            al = (al * (n as f64 - 1.0) + losses[k - 1]) / n as f64;
        }
        out[k] = if al == 0.0 {
            100.0
        } else {
            100.0 - 100.0 / (1.0 + ag / al)
        };
    }
    out
}

#[test]
fn sma_and_ema_hand_values() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let nan = f64::NAN;
    assert_close(&sma(&x, 3), &[nan, nan, 2.0, 3.0, 4.0, 5.0]);
    // alpha = 0.5, seed = SMA(1,2,3) = 2, then 0.5*4+0.5*2 = 3, ...
    assert_close(&ema(&x, 3), &[nan, nan, 2.0, 3.0, 4.0, 5.0]);
    let y = [10.0, 11.0, 12.0, 20.0];
    // alpha = 2/3: seed at 1 = 10.5, then 2/3*12 + 1/3*10.5 = 11.5, then 2/3*20 + 11.5/3
    assert_close(&ema(&y, 2), &[nan, 10.5, 11.5, 40.0 / 3.0 + 11.5 / 3.0]);
    assert!(sma(&x, 7).iter().all(|v| v.is_nan()));
    assert!(ema(&x, 0).iter().all(|v| v.is_nan()));
}

#[test]
fn ema_matches_textbook_loop() {
    let x = prices(300, 7);
    for n in [1, 2, 9, 12, 26, 50] {
        assert_close(&ema(&x, n), &ref_ema(&x, n));
    }
}

#[test]
fn rsi_matches_the_stockcharts_example_and_a_textbook_loop() {
    // StockCharts "Relative Strength Index" worked example (RSI-14, 33 closes), whose
    // published values are rounded to two decimals.
    let closes = [
        44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
        45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
        46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
        43.4205, 42.6628, 43.1314,
    ];
    let published = [
        70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
        41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
    ];
    let got = rsi(&closes, 14);
    assert!(got[..14].iter().all(|v| v.is_nan()));
    for (g, p) in got[14..].iter().zip(published) {
        assert!((g - p).abs() < 0.006, "got {g}, published {p}");
    }
    assert_close(&got, &ref_rsi(&closes, 14));
    // 30 values, RSI-14 against the loop to 1e-9.
    let thirty = prices(30, 3);
    assert_close(&rsi(&thirty, 14), &ref_rsi(&thirty, 14));
    let long = prices(400, 11);
    assert_close(&rsi(&long, 14), &ref_rsi(&long, 14));
}

#[test]
fn rsi_hand_values_and_no_losses() {
    // period 2 on 1, 2, 1, 3: gains 1, 0, 2; losses 0, 1, 0.
    // at 2: ag = 0.5, al = 0.5 → 50; at 3: ag = (0.5 + 2)/2 = 1.25, al = 0.25 → 100 - 100/6
    let got = rsi(&[1.0, 2.0, 1.0, 3.0], 2);
    assert_close(&got, &[f64::NAN, f64::NAN, 50.0, 100.0 - 100.0 / 6.0]);
    assert_close(
        &rsi(&[1.0, 2.0, 3.0, 3.0], 2),
        &[f64::NAN, f64::NAN, 100.0, 100.0],
    );
}

#[test]
fn macd_matches_textbook_emas() {
    let x = prices(300, 5);
    let m = macd(&x, 12, 26, 9);
    let line: Vec<f64> = ref_ema(&x, 12)
        .iter()
        .zip(ref_ema(&x, 26))
        .map(|(a, b)| a - b)
        .collect();
    let signal = ref_ema(&line, 9);
    assert_close(&m.macd, &line);
    assert_close(&m.signal, &signal);
    let hist: Vec<f64> = line.iter().zip(&signal).map(|(a, b)| a - b).collect();
    assert_close(&m.histogram, &hist);
    // First MACD at 25 (slow warm-up), first signal at 25 + 8.
    assert!(m.macd[24].is_nan() && !m.macd[25].is_nan());
    assert!(m.signal[32].is_nan() && !m.signal[33].is_nan());
    // A constant series has no momentum.
    let flat = macd(&[5.0; 60], 3, 6, 4);
    assert!(flat.histogram[60 - 1].abs() < TOL && flat.macd[59].abs() < TOL);
}

#[test]
fn bbands_hand_values_and_loop() {
    let b = bbands(&[1.0, 2.0, 3.0, 4.0], 4, 2.0);
    // mean 2.5, population variance 1.25
    let sd = 1.25f64.sqrt();
    assert_close(&b.middle[3..], &[2.5]);
    assert_close(&b.upper[3..], &[2.5 + 2.0 * sd]);
    assert_close(&b.lower[3..], &[2.5 - 2.0 * sd]);
    assert!(b.upper[2].is_nan());

    let x = prices(200, 9);
    let (n, k) = (20, 2.5);
    let b = bbands(&x, n, k);
    for i in n - 1..x.len() {
        let w = &x[i + 1 - n..=i];
        let mean = w.iter().sum::<f64>() / n as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        assert!((b.middle[i] - mean).abs() < TOL);
        assert!((b.upper[i] - (mean + k * var.sqrt())).abs() < TOL);
        assert!((b.lower[i] - (mean - k * var.sqrt())).abs() < TOL);
    }
}

#[test]
fn atr_hand_values_and_loop() {
    let high = [10.0, 11.0, 12.0, 11.5, 13.0];
    let low = [9.0, 9.5, 10.5, 10.0, 11.0];
    let close = [9.5, 10.5, 11.0, 10.5, 12.5];
    // TR from bar 1: max(1.5, |11-9.5|, |9.5-9.5|) = 1.5; bar 2: max(1.5, 1.5, 0) = 1.5;
    // bar 3: max(1.5, 0.5, 1.0) = 1.5; bar 4: max(2.0, 2.5, 0.5) = 2.5.
    // ATR-2: first at bar 2 = (1.5+1.5)/2 = 1.5; bar 3 = (1.5+1.5)/2 = 1.5; bar 4 = (1.5+2.5)/2 = 2
    let nan = f64::NAN;
    assert_close(&atr(&high, &low, &close, 2), &[nan, nan, 1.5, 1.5, 2.0]);

    let c = prices(250, 21);
    let h: Vec<f64> = c
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.5 + (i % 3) as f64)
        .collect();
    let l: Vec<f64> = c
        .iter()
        .enumerate()
        .map(|(i, v)| v - 0.7 - (i % 5) as f64 * 0.3)
        .collect();
    let n = 14;
    let mut tr = vec![0.0];
    for i in 1..c.len() {
        let a = h[i] - l[i];
        let b = (h[i] - c[i - 1]).abs();
        let d = (l[i] - c[i - 1]).abs();
        tr.push(a.max(b).max(d));
    }
    let mut want = vec![nan; c.len()];
    let mut avg = tr[1..=n].iter().sum::<f64>() / n as f64;
    want[n] = avg;
    for i in n + 1..c.len() {
        avg = (avg * (n as f64 - 1.0) + tr[i]) / n as f64;
        want[i] = avg;
    }
    assert_close(&atr(&h, &l, &c, n), &want);
}

#[test]
fn roc_and_stochastic() {
    let nan = f64::NAN;
    assert_close(
        &roc(&[100.0, 110.0, 99.0, 0.0, 5.0], 1),
        &[nan, 10.0, -10.0, -100.0, nan],
    );

    let high = [10.0, 12.0, 11.0, 13.0, 12.0];
    let low = [8.0, 9.0, 9.0, 10.0, 11.0];
    let close = [9.0, 11.0, 10.0, 12.0, 11.5];
    // k=3: bar 2: HH 12, LL 8 → 100*(10-8)/4 = 50; bar 3: HH 13, LL 9 → 75;
    // bar 4: HH 13, LL 9 → 62.5. d=2: (50+75)/2, (75+62.5)/2.
    let s = stochastic(&high, &low, &close, 3, 2);
    assert_close(&s.k, &[nan, nan, 50.0, 75.0, 62.5]);
    assert_close(&s.d, &[nan, nan, nan, 62.5, 68.75]);
    // A flat window has no range: %K reads the midpoint.
    let flat = stochastic(&[5.0; 3], &[5.0; 3], &[5.0; 3], 2, 1);
    assert_close(&flat.k, &[nan, 50.0, 50.0]);

    let c = prices(120, 33);
    let h: Vec<f64> = c.iter().map(|v| v + 1.0).collect();
    let l: Vec<f64> = c.iter().map(|v| v - 1.5).collect();
    let s = stochastic(&h, &l, &c, 14, 3);
    for (i, &close) in c.iter().enumerate().skip(13) {
        let mut hh = f64::MIN;
        let mut ll = f64::MAX;
        for j in i - 13..=i {
            hh = hh.max(h[j]);
            ll = ll.min(l[j]);
        }
        assert!((s.k[i] - 100.0 * (close - ll) / (hh - ll)).abs() < TOL);
        if i >= 15 {
            let d = (s.k[i] + s.k[i - 1] + s.k[i - 2]) / 3.0;
            assert!((s.d[i] - d).abs() < TOL);
        }
    }
}

#[test]
fn compute_names_outputs_and_reads_the_source() {
    let c = prices(60, 1);
    let bars = Ohlc {
        timestamps: (0..60).collect(),
        open: c.iter().map(|v| v - 0.25).collect(),
        high: c.iter().map(|v| v + 1.0).collect(),
        low: c.iter().map(|v| v - 1.0).collect(),
        close: c.clone(),
    };
    let out = compute(
        &Indicator::Sma {
            period: 5,
            source: crate::strategy::PriceSource::Open,
        },
        &bars,
    );
    assert_eq!(out[0].0, "sma");
    assert_close(&out[0].1, &sma(&bars.open, 5));
    let names: Vec<&str> = compute(
        &Indicator::Bbands {
            period: 5,
            multiplier: 2.0,
            source: crate::strategy::PriceSource::Close,
        },
        &bars,
    )
    .into_iter()
    .map(|(n, _)| n)
    .collect();
    assert_eq!(names, ["upper", "middle", "lower"]);
}
