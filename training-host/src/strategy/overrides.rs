//! Runtime overrides of a strategy (`POST /training/start`'s `symbols`, `timeframes`,
//! `start_date`, `end_date`).
//!
//! Overridden lists replace the YAML's. When the overriding timeframes do not contain
//! the YAML's `base_timeframe`, the first of them becomes the base (the DESIGN rule).
//! Dates are ISO dates (`2024-01-31`) or datetimes (`2024-01-31T15:30:00Z`, with an
//! offset, or naive = UTC). The range is `[start, end)`: a date-only `start_date` means
//! that day's 00:00 UTC, and a date-only `end_date` means the END of that day (the next
//! 00:00 UTC), so `2024-01-01`..`2024-12-31` is the whole year. The strategy's own
//! `training_data.start_date`/`end_date` follow the same rules; a request's date
//! replaces the strategy's.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::error::{Errors, StrategyError};
use super::limits::check_network;
use super::model::{DateRange, Strategy};
use super::validate::{indexed, parse_symbols, parse_timeframes};

/// Runtime overrides; `None` keeps the strategy's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// Replaces `training_data.symbols`.
    pub symbols: Option<Vec<String>>,
    /// Replaces `training_data.timeframes`.
    pub timeframes: Option<Vec<String>>,
    /// First day or instant of training data.
    pub start_date: Option<String>,
    /// Last day (inclusive) or first excluded instant of training data.
    pub end_date: Option<String>,
}

/// Applies `overrides` to `strategy`; errors name `symbols[i]`, `timeframes[i]`,
/// `start_date`, `end_date`, and all are reported together. The result is checked
/// against the ceilings again (other timeframes make other feature counts).
pub fn apply_overrides(
    mut strategy: Strategy,
    overrides: &Overrides,
) -> Result<Strategy, StrategyError> {
    let mut errors = Errors::default();
    let symbols = overrides
        .symbols
        .as_ref()
        .map(|list| parse_symbols(&mut errors, "symbols", &indexed("symbols", list)));
    let timeframes = overrides
        .timeframes
        .as_ref()
        .map(|list| parse_timeframes(&mut errors, "timeframes", &indexed("timeframes", list)));
    let range = parse_range(
        &mut errors,
        ("start_date", overrides.start_date.as_deref()),
        ("end_date", overrides.end_date.as_deref()),
    );
    errors.finish(())?;

    if let Some(Some(symbols)) = symbols {
        strategy.training_data.symbols = symbols;
    }
    if let Some(Some(timeframes)) = timeframes {
        let data = &mut strategy.training_data;
        if !timeframes.contains(&data.base_timeframe)
            && let Some(first) = timeframes.first()
        {
            data.base_timeframe = *first;
        }
        data.timeframes = timeframes;
    }
    let range = range.unwrap_or_default();
    let dates = &mut strategy.date_range;
    dates.start = range.start.or(dates.start);
    dates.end = range.end.or(dates.end);
    let mut errors = Errors::default();
    // One end from the request, the other from the strategy's training_data.
    let path = if overrides.end_date.is_some() {
        "end_date"
    } else {
        "start_date"
    };
    check_order(&mut errors, path, &strategy.date_range);
    check_network(&mut errors, &strategy);
    errors.finish(strategy)
}

/// Parses an optional `[start, end)` pair given as `(path, text)` each; `None` when
/// either bound is malformed or the range is empty (recorded at its path).
pub(crate) fn parse_range(
    errors: &mut Errors,
    (start_path, start): (&str, Option<&str>),
    (end_path, end): (&str, Option<&str>),
) -> Option<DateRange> {
    let before = errors.len();
    let range = DateRange {
        start: start.and_then(|text| parse_bound(errors, start_path, text, false)),
        end: end.and_then(|text| parse_bound(errors, end_path, text, true)),
    };
    check_order(errors, end_path, &range);
    (errors.len() == before).then_some(range)
}

/// Records an empty range at `path`.
fn check_order(errors: &mut Errors, path: &str, range: &DateRange) {
    if let (Some(s), Some(e)) = (range.start, range.end)
        && s >= e
    {
        errors.push(
            path,
            format!(
                "end_date must be after start_date ({} >= {})",
                s.to_rfc3339(),
                e.to_rfc3339()
            ),
        );
    }
}

/// Parses one bound; a date-only end bound is the next midnight (end of that day).
fn parse_bound(errors: &mut Errors, path: &str, text: &str, is_end: bool) -> Option<DateTime<Utc>> {
    let found = parse_instant(text.trim(), is_end);
    if found.is_none() {
        errors.push(
            path,
            format!(
                "not an ISO date or datetime: {text:?} (expected e.g. 2024-01-31 or 2024-01-31T15:30:00Z)"
            ),
        );
    }
    found
}

fn parse_instant(text: &str, is_end: bool) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let midnight = date.and_hms_opt(0, 0, 0)?.and_utc();
    if is_end {
        midnight.checked_add_signed(TimeDelta::days(1))
    } else {
        Some(midnight)
    }
}
