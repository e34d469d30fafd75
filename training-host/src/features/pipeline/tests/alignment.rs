//! No look-ahead across timeframes, on the sample AAPL hourly bars and daily bars
//! resampled from them (the sample daily file covers other years).

use std::collections::BTreeMap;

use data_host::Timeframe;
use polars::prelude::DataFrame;

use super::{DAY, perturb_after, repo, resample_daily, store_bars};
use crate::features::compute_features;
use crate::strategy::{Overrides, apply_overrides, load_strategy};

#[test]
fn higher_timeframes_never_look_ahead() {
    let m = load_strategy(&repo("strategies/multi_tf_example.yaml")).expect("multi");
    let hourly = store_bars("AAPL", Timeframe::H1);
    let build = |h: &DataFrame| {
        let bars = BTreeMap::from([
            (Timeframe::H1, h.clone()),
            (Timeframe::D1, resample_daily(h)),
        ]);
        compute_features(&m, &bars).expect("features")
    };
    let original = build(&hourly);
    let ts = &original.timestamps;
    // Cut in the middle of a trading day, so the daily bar containing t changes too.
    let i = (ts.len() / 2..ts.len() - 1)
        .find(|&i| ts[i] / DAY == ts[i + 1] / DAY)
        .expect("a day with two hourly bars");
    let t = ts[i];
    let changed = build(&perturb_after(&hourly, t, 1.37));
    let daily_cols: Vec<usize> = (0..original.names.len())
        .filter(|&j| original.names[j].starts_with("1d_"))
        .collect();
    let mut daily_values_used = 0;
    for (i, &time) in ts.iter().enumerate() {
        for j in 0..original.names.len() {
            let (a, b) = (original.columns[j][i], changed.columns[j][i]);
            if time <= t {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{} changed at {time} <= {t}",
                    original.names[j]
                );
                if daily_cols.contains(&j) && a.is_finite() {
                    daily_values_used += 1;
                }
            }
        }
    }
    assert!(
        daily_values_used > 1000,
        "daily features are aligned at all"
    );
    let later_differs = (0..ts.len()).filter(|&i| ts[i] > t).any(|i| {
        daily_cols
            .iter()
            .any(|&j| original.columns[j][i].to_bits() != changed.columns[j][i].to_bits())
    });
    assert!(
        later_differs,
        "the perturbation must reach later daily features"
    );
}

#[test]
fn daily_values_come_from_the_last_closed_daily_bar() {
    let m = load_strategy(&repo("strategies/multi_tf_example.yaml")).expect("multi");
    let daily_only = apply_overrides(
        m.clone(),
        &Overrides {
            timeframes: Some(vec!["1d".into()]),
            ..Overrides::default()
        },
    )
    .expect("override");
    let hourly = store_bars("AAPL", Timeframe::H1);
    let daily = resample_daily(&hourly);
    let bars = BTreeMap::from([(Timeframe::H1, hourly), (Timeframe::D1, daily.clone())]);
    let multi = compute_features(&m, &bars).expect("multi features");
    let only = compute_features(&daily_only, &BTreeMap::from([(Timeframe::D1, daily)]))
        .expect("daily features");
    let name = "rsi_14_neutral";
    let aligned = multi.column(&format!("1d_{name}")).expect("aligned column");
    let own = only.column(name).expect("daily column");
    let mut checked = 0;
    for (i, &t) in multi.timestamps.iter().enumerate() {
        // The daily bar of date D (open D 00:00) closes at D+1 00:00: an hour of day
        // D+1 uses bar D, never bar D+1 (its own day, still open).
        let Some(k) = only.timestamps.iter().rposition(|&d| d + DAY <= t) else {
            assert!(aligned[i].is_nan());
            continue;
        };
        if t - (only.timestamps[k] + DAY) <= 4 * DAY {
            assert_eq!(aligned[i].to_bits(), own[k].to_bits(), "row {i}");
            checked += 1;
        }
    }
    assert!(checked > 3000, "checked {checked}");
}
