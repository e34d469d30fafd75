//! Load modes and what each one fetches: the ranges of `[start, end)` a load asks its
//! provider for, given what the store already holds. Pure functions, so the rules are
//! tested without a provider.

use chrono::{DateTime, Utc};
use data_host::Timeframe;
use data_host::store::{GapPolicy, find_gaps};
use serde::{Deserialize, Serialize};

/// How a load fills the store (KTRDR's data loading modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Read the store only; fetch nothing.
    Local,
    /// Fetch bars after the last stored one, up to the end.
    Tail,
    /// Fetch bars before the first stored one, back to the start.
    Backfill,
    /// Fetch every missing range in `[start, end)`: before, inside and after.
    Full,
}

impl LoadMode {
    /// Every mode, in the order users meet them.
    pub const ALL: [Self; 4] = [Self::Local, Self::Tail, Self::Backfill, Self::Full];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Tail => "tail",
            Self::Backfill => "backfill",
            Self::Full => "full",
        }
    }
}

impl std::str::FromStr for LoadMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown mode `{s}`; expected one of local, tail, backfill, full")
            })
    }
}

impl std::fmt::Display for LoadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A range to fetch, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FetchRange {
    /// First instant wanted.
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

/// The ranges `mode` fetches in `[start, end)` when the store holds the bars at
/// `stored_ms` (sorted open times, possibly empty). Sorted, non-overlapping.
pub fn plan(
    mode: LoadMode,
    timeframe: Timeframe,
    stored_ms: &[i64],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<FetchRange> {
    if start >= end {
        return Vec::new();
    }
    let first = stored_ms
        .first()
        .and_then(|&ms| DateTime::from_timestamp_millis(ms));
    let last = stored_ms
        .last()
        .and_then(|&ms| DateTime::from_timestamp_millis(ms));
    let whole = || vec![FetchRange { start, end }];
    let nonempty =
        |s: DateTime<Utc>, e: DateTime<Utc>| (s < e).then_some(FetchRange { start: s, end: e });
    match (mode, first, last) {
        (LoadMode::Local, _, _) => Vec::new(),
        (_, None, _) | (_, _, None) => whole(),
        // Everything after the last bar, however short: tail is asked for explicitly.
        (LoadMode::Tail, _, Some(last)) => nonempty(start.max(last + timeframe.bar_length()), end)
            .into_iter()
            .collect(),
        (LoadMode::Backfill, Some(first), _) => {
            nonempty(start, first.min(end)).into_iter().collect()
        }
        (LoadMode::Full, Some(_), Some(_)) => {
            let policy = GapPolicy::for_timeframe(timeframe);
            find_gaps(stored_ms, timeframe, start, end, policy)
                .into_iter()
                .map(|g| FetchRange {
                    start: g.start,
                    end: g.end,
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .expect("valid date")
    }

    /// Daily bars on every weekday of `[from, to)`.
    fn weekdays(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<i64> {
        use chrono::{Datelike, Weekday};
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            if !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
                out.push(t.timestamp_millis());
            }
            t += TimeDelta::days(1);
        }
        out
    }

    #[test]
    fn modes_parse_case_insensitively_and_reject_others_naming_the_choices() {
        assert_eq!("FULL".parse::<LoadMode>(), Ok(LoadMode::Full));
        assert_eq!(" tail ".parse::<LoadMode>(), Ok(LoadMode::Tail));
        let err = "sideways".parse::<LoadMode>().expect_err("unknown");
        assert!(
            err.contains("sideways") && err.contains("backfill"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_store_fetches_the_whole_range_in_every_fetching_mode() {
        let (s, e) = (day(2024, 1, 1), day(2024, 2, 1));
        for mode in [LoadMode::Tail, LoadMode::Backfill, LoadMode::Full] {
            assert_eq!(
                plan(mode, Timeframe::D1, &[], s, e),
                vec![FetchRange { start: s, end: e }],
                "{mode}"
            );
        }
        assert!(plan(LoadMode::Local, Timeframe::D1, &[], s, e).is_empty());
        assert!(plan(LoadMode::Full, Timeframe::D1, &[], e, s).is_empty());
    }

    #[test]
    fn tail_and_backfill_fetch_only_outside_the_stored_span() {
        // Stored: March 2024. Asked: all of Q1.
        let stored = weekdays(day(2024, 3, 1), day(2024, 4, 1));
        let (s, e) = (day(2024, 1, 1), day(2024, 4, 15));
        let last = DateTime::from_timestamp_millis(*stored.last().expect("bars")).expect("ms");
        assert_eq!(
            plan(LoadMode::Tail, Timeframe::D1, &stored, s, e),
            vec![FetchRange {
                start: last + TimeDelta::days(1),
                end: e
            }]
        );
        assert_eq!(
            plan(LoadMode::Backfill, Timeframe::D1, &stored, s, e),
            vec![FetchRange {
                start: s,
                end: day(2024, 3, 1)
            }]
        );
        // Asked for a range inside the stored one: nothing to tail or backfill.
        let (s2, e2) = (day(2024, 3, 5), day(2024, 3, 20));
        assert!(plan(LoadMode::Tail, Timeframe::D1, &stored, s2, e2).is_empty());
        assert!(plan(LoadMode::Backfill, Timeframe::D1, &stored, s2, e2).is_empty());
    }

    #[test]
    fn full_fetches_head_interior_and_tail_holes() {
        let mut stored = weekdays(day(2024, 2, 1), day(2024, 4, 1));
        // A hole of two weeks in the middle of March.
        let (hole_s, hole_e) = (day(2024, 3, 11), day(2024, 3, 25));
        stored.retain(|&ms| ms < hole_s.timestamp_millis() || ms >= hole_e.timestamp_millis());
        let ranges = plan(
            LoadMode::Full,
            Timeframe::D1,
            &stored,
            day(2024, 1, 1),
            day(2024, 5, 1),
        );
        assert_eq!(ranges.len(), 3, "{ranges:?}");
        assert_eq!(ranges[0].start, day(2024, 1, 1));
        assert_eq!(ranges[0].end, day(2024, 2, 1));
        // The hole starts where the bar after Friday 8 March was due (the weekend is
        // fetched too; IB simply has no bars there).
        assert_eq!(ranges[1].start, day(2024, 3, 9));
        assert_eq!(ranges[1].end, hole_e);
        assert_eq!(ranges[2].end, day(2024, 5, 1));
        assert!(ranges.windows(2).all(|w| w[0].end <= w[1].start));
    }
}
