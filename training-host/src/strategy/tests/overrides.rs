//! Runtime overrides: replaced lists, the base-timeframe rule, dates, and errors that
//! name the overriding field.

use data_host::Timeframe;

use super::BASE;
use crate::strategy::{Overrides, apply_overrides, parse_strategy};

#[test]
fn overrides_replace_lists_and_pick_a_base() {
    let s = parse_strategy(BASE).expect("valid");
    let o = Overrides {
        symbols: Some(vec!["IBM".into()]),
        timeframes: Some(vec!["4h".into(), "1d".into()]),
        start_date: Some("2020-01-01".into()),
        end_date: Some("2020-12-31".into()),
    };
    let out = apply_overrides(s.clone(), &o).expect("valid overrides");
    assert_eq!(out.training_data.symbols[0].as_str(), "IBM");
    assert_eq!(out.training_data.timeframes, [Timeframe::H4, Timeframe::D1]);
    // 1h (the YAML's base) is not in the override: the first overriding one is.
    assert_eq!(out.training_data.base_timeframe, Timeframe::H4);
    let start = out.date_range.start.expect("start").to_rfc3339();
    let end = out.date_range.end.expect("end").to_rfc3339();
    assert_eq!(start, "2020-01-01T00:00:00+00:00");
    assert_eq!(
        end, "2021-01-01T00:00:00+00:00",
        "a date-only end is inclusive"
    );

    let keep_base = Overrides {
        timeframes: Some(vec!["1d".into(), "1h".into()]),
        start_date: Some("2020-01-01T09:30:00+02:00".into()),
        end_date: Some("2020-01-02 10:00:00".into()),
        ..Overrides::default()
    };
    let out = apply_overrides(s.clone(), &keep_base).expect("valid");
    assert_eq!(out.training_data.base_timeframe, Timeframe::H1);
    assert_eq!(out.training_data.symbols, s.training_data.symbols);
    assert_eq!(
        out.date_range.start.expect("start").to_rfc3339(),
        "2020-01-01T07:30:00+00:00"
    );
    assert_eq!(
        out.date_range.end.expect("end").to_rfc3339(),
        "2020-01-02T10:00:00+00:00"
    );
    assert_eq!(apply_overrides(s.clone(), &Overrides::default()), Ok(s));
}

#[test]
fn bad_overrides_name_the_field() {
    let s = parse_strategy(BASE).expect("valid");
    let bad = Overrides {
        symbols: Some(vec!["AAPL".into(), "bad symbol".into()]),
        timeframes: Some(vec!["2d".into()]),
        start_date: Some("yesterday".into()),
        end_date: Some("2020-13-01".into()),
    };
    let err = apply_overrides(s.clone(), &bad).expect_err("invalid");
    for path in ["symbols[1]", "timeframes[0]", "start_date", "end_date"] {
        assert!(err.has_path(path), "{path} missing in:\n{err}");
    }
    let empty = Overrides {
        symbols: Some(vec![]),
        ..Overrides::default()
    };
    let err = apply_overrides(s.clone(), &empty).expect_err("empty");
    assert!(err.has_path("symbols"), "{err}");
    let backwards = Overrides {
        start_date: Some("2021-01-01".into()),
        end_date: Some("2020-06-01T00:00:00Z".into()),
        ..Overrides::default()
    };
    let err = apply_overrides(s, &backwards).expect_err("start >= end");
    assert!(
        err.errors
            .iter()
            .any(|e| e.path == "end_date" && e.message.contains("must be after start_date")),
        "{err}"
    );
}

#[test]
fn the_strategy_may_carry_its_dates_and_the_request_replaces_them() {
    let dated = BASE.replace(
        "  history_required: 200\n",
        "  history_required: 200\n  start_date: 2019-01-01\n  end_date: \"2019-12-31\"\n",
    );
    let s = parse_strategy(&dated).expect("valid");
    let text = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
    assert_eq!(
        (text(s.date_range.start), text(s.date_range.end)),
        (
            Some("2019-01-01T00:00:00+00:00".to_owned()),
            Some("2020-01-01T00:00:00+00:00".to_owned())
        ),
        "same rules as the request's dates: a date-only end is inclusive"
    );
    let later = Overrides {
        start_date: Some("2019-06-01".into()),
        ..Overrides::default()
    };
    let out = apply_overrides(s.clone(), &later).expect("valid");
    assert_eq!(
        text(out.date_range.start).as_deref(),
        Some("2019-06-01T00:00:00+00:00")
    );
    assert_eq!(
        out.date_range.end, s.date_range.end,
        "the strategy's end stays"
    );

    // A request start after the strategy's end: an empty range, named at the request's key.
    let past = Overrides {
        start_date: Some("2020-06-01".into()),
        ..Overrides::default()
    };
    let err = apply_overrides(s, &past).expect_err("empty range");
    assert!(err.has_path("start_date"), "{err}");

    for (yaml, path) in [
        (
            BASE.replace(
                "  history_required: 200\n",
                "  history_required: 200\n  start_date: someday\n",
            ),
            "training_data.start_date",
        ),
        (
            BASE.replace(
                "  history_required: 200\n",
                "  history_required: 200\n  start_date: 2020-01-01\n  end_date: 2019-01-01\n",
            ),
            "training_data.end_date",
        ),
    ] {
        let err = parse_strategy(&yaml).expect_err("invalid dates");
        assert!(err.has_path(path), "{path} missing in:\n{err}");
    }
}
