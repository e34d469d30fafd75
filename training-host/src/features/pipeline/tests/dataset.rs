//! Datasets: split sizes and order, multi-symbol concatenation, train-only scaling,
//! inference matching training, errors and the date range.

use std::collections::BTreeMap;

use data_host::{Symbol, Timeframe};

use super::{DAY, SMALL, perturb_after, repo, small_bars, store_bars, sym};
use crate::features::{build_dataset, features_for_inference};
use crate::strategy::{Overrides, apply_overrides, load_strategy, parse_strategy};

#[test]
fn single_timeframe_dataset_on_the_sample_store() {
    let s = load_strategy(&repo("strategies/rsi_macd_mlp.yaml")).expect("strategy");
    let bars = BTreeMap::from([(
        (sym("AAPL"), Timeframe::D1),
        store_bars("AAPL", Timeframe::D1),
    )]);
    let d = build_dataset(&s, &bars).expect("dataset");
    let counts = &d.per_symbol[0];
    assert_eq!(counts.bars, 3270);
    // MACD signal warm-up (25 + 8 bars) plus 2 lags; the last 20 bars have no label.
    assert_eq!(counts.rows, 3270 - 35 - 20);
    // Train and validation each give up their last 20 rows (the label window).
    assert_eq!(counts.train, counts.rows * 7 / 10 - 20);
    assert_eq!(
        counts.validation,
        (counts.rows as f64 * 0.15 + 1e-9) as usize - 20
    );
    assert_eq!(
        counts.train + counts.validation + counts.test,
        counts.rows - 40
    );
    assert_eq!(d.train.len(), counts.train);
    assert_eq!(d.n_features(), (3 + 3 + 2) * 3);
    for split in [&d.train, &d.validation, &d.test] {
        assert_eq!(split.x.len(), split.len() * d.n_features());
        assert!(split.x.iter().all(|v| v.is_finite()));
        assert!(split.y.iter().all(|&y| y < 3));
        assert!(split.timestamps.windows(2).all(|w| w[0] < w[1]));
    }
    assert!(d.train.timestamps.last() < d.validation.timestamps.first());
    assert!(d.validation.timestamps.last() < d.test.timestamps.first());
    // AAPL 2000-2013 nearly always moves 3 % within 20 days: few or no HOLDs.
    let [buy, hold, sell] = d.train.class_counts();
    assert!(buy > 0 && sell > 0, "{buy} {hold} {sell}");
    assert_eq!(buy + hold + sell, d.train.len());
    // Train columns are z-scored with their own statistics.
    let n = d.n_features();
    for j in 0..n {
        let col: Vec<f64> = (0..d.train.len())
            .map(|i| f64::from(d.train.x[i * n + j]))
            .collect();
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        assert!(mean.abs() < 1e-4, "{}: mean {mean}", d.feature_names[j]);
    }
}

#[test]
fn symbols_are_split_separately_then_concatenated() {
    let s = parse_strategy(SMALL).expect("valid");
    let d = build_dataset(&s, &small_bars(200, 120)).expect("dataset");
    let (a, b) = (&d.per_symbol[0], &d.per_symbol[1]);
    assert_eq!((a.symbol.as_str(), b.symbol.as_str()), ("AAA", "BBB"));
    // rows = bars - 8 warm-up - 5 lookahead
    assert_eq!((a.rows, b.rows), (187, 107));
    // 5 rows purged from the end of train and of validation (label_lookahead 5).
    assert_eq!((a.train, a.validation, a.test), (107, 32, 38));
    assert_eq!((b.train, b.validation, b.test), (59, 16, 22));
    assert_eq!(d.train.len(), 107 + 59);
    let seg: Vec<(&str, usize, usize)> = d
        .test
        .segments
        .iter()
        .map(|s| (s.symbol.as_str(), s.start, s.len))
        .collect();
    assert_eq!(seg, [("AAA", 0, 38), ("BBB", 38, 22)]);
    assert_eq!(d.test.symbol_of(40).map(Symbol::as_str), Some("BBB"));
    // Each symbol's part is chronological; the next symbol starts over in time.
    assert!(d.train.timestamps[..107].windows(2).all(|w| w[0] < w[1]));
    assert!(d.train.timestamps[107..].windows(2).all(|w| w[0] < w[1]));
    assert!(d.train.timestamps[107] < d.train.timestamps[106]);
    assert!(d.train.row(0).is_some() && d.train.row(d.train.len()).is_none());
}

#[test]
fn the_scaler_sees_only_train_rows() {
    let s = parse_strategy(SMALL).expect("valid");
    let bars = small_bars(200, 120);
    let d = build_dataset(&s, &bars).expect("dataset");
    // Change every bar after the last train row of each symbol.
    let mut changed = bars.clone();
    for ((symbol, _), frame) in changed.iter_mut() {
        let seg = d
            .train
            .segments
            .iter()
            .find(|g| &g.symbol == symbol)
            .expect("segment");
        let last_train = d.train.timestamps[seg.start + seg.len - 1];
        *frame = perturb_after(frame, last_train, 0.61);
    }
    let e = build_dataset(&s, &changed).expect("dataset");
    assert_eq!(e.scaler, d.scaler);
    assert_eq!(e.train.x, d.train.x);
    assert_ne!(e.test.x, d.test.x);
    assert!(d.scaler.std.iter().all(|&v| v > 0.0));
}

#[test]
fn inference_reproduces_training_rows() {
    let s = parse_strategy(SMALL).expect("valid");
    let bars = small_bars(200, 120);
    let d = build_dataset(&s, &bars).expect("dataset");
    let aaa = BTreeMap::from([(Timeframe::D1, bars[&(sym("AAA"), Timeframe::D1)].clone())]);
    let inf = features_for_inference(&s, &d.scaler, &aaa).expect("inference");
    assert_eq!(inf.feature_names, d.feature_names);
    // Inference has no label lookahead: it also covers the last 5 bars.
    assert_eq!(inf.len(), 187 + 5);
    for i in 0..d.train.segments[0].len {
        let t = d.train.timestamps[i];
        let k = inf
            .timestamps
            .iter()
            .position(|&x| x == t)
            .expect("same row");
        let n = d.n_features();
        assert_eq!(&inf.x[k * n..(k + 1) * n], d.train.row(i).expect("row"));
    }
    assert_eq!(inf.last_row().map(|(t, _)| t), Some(199 * DAY));
    let mut other = d.scaler.clone();
    other.feature_names[0] = "something_else".into();
    let err = features_for_inference(&s, &other, &aaa).expect_err("mismatch");
    assert!(
        err.to_string().contains("something_else != rsi_5_low"),
        "{err}"
    );
}

#[test]
fn errors_name_the_symbol_and_timeframe() {
    let s = parse_strategy(SMALL).expect("valid");
    let mut bars = small_bars(200, 120);
    bars.remove(&(sym("BBB"), Timeframe::D1));
    let err = build_dataset(&s, &bars).expect_err("missing");
    assert_eq!(err.to_string(), "BBB: no 1d bars were given");
    let err = build_dataset(&s, &small_bars(200, 12)).expect_err("too short");
    assert!(
        err.to_string().starts_with("BBB: no complete rows"),
        "{err}"
    );
}

#[test]
fn the_date_range_restricts_bars() {
    let s = parse_strategy(SMALL).expect("valid");
    let s = apply_overrides(
        s,
        &Overrides {
            start_date: Some("1970-01-11".into()),
            end_date: Some("1970-04-30".into()),
            ..Overrides::default()
        },
    )
    .expect("dates");
    let d = build_dataset(&s, &small_bars(200, 120)).expect("dataset");
    // Jan 11 .. Apr 30 inclusive = days 10 ..= 119 → 110 bars.
    assert_eq!(d.per_symbol[0].bars, 110);
    assert_eq!(d.per_symbol[0].first_timestamp, Some((10 + 8) * DAY));
    // BBB starts on day 5: days 10 ..= 119 too.
    assert_eq!(d.per_symbol[1].bars, 110);
}
