//! Gap detection: the ranges within `[start, end)` where bars of a timeframe are
//! missing, not counting weekends.
//!
//! Without exchange calendars a missing intraday hour cannot be told from a closed
//! market hour, so holes no longer than a timeframe's tolerance are taken for closed
//! hours (overnight, holidays). [`GapPolicy::for_timeframe`] holds the defaults; pass
//! a stricter policy for 24-hour markets.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeDelta, Utc, Weekday};
use serde::Serialize;

use crate::timeframe::Timeframe;

/// A missing range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// First missing instant.
    pub start: DateTime<Utc>,
    /// End of the hole (the next bar's time, or the range end).
    pub end: DateTime<Utc>,
}

/// When a hole counts as a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapPolicy {
    /// Holes of at most this length (after removing weekends, if skipped) are not gaps.
    pub tolerance: TimeDelta,
    /// Whether Saturday and Sunday (UTC) count as closed.
    pub skip_weekends: bool,
}

impl GapPolicy {
    /// Defaults: intraday bars tolerate 18 h (a stock market's night), daily bars one
    /// weekday (a holiday), weekly and monthly bars report any whole missing bar.
    pub fn for_timeframe(timeframe: Timeframe) -> Self {
        match timeframe {
            tf if tf.is_intraday() => Self {
                tolerance: TimeDelta::hours(18),
                skip_weekends: true,
            },
            Timeframe::D1 => Self {
                tolerance: TimeDelta::days(1),
                skip_weekends: true,
            },
            Timeframe::W1 => Self {
                tolerance: TimeDelta::days(7) - TimeDelta::milliseconds(1),
                skip_weekends: false,
            },
            _ => Self {
                tolerance: TimeDelta::days(27),
                skip_weekends: false,
            },
        }
    }
}

/// Missing ranges of `timestamps_ms` (sorted bar open times) within `[start, end)`.
pub fn find_gaps(
    timestamps_ms: &[i64],
    timeframe: Timeframe,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    policy: GapPolicy,
) -> Vec<Gap> {
    let bar = timeframe.bar_length();
    let inside = timestamps_ms
        .iter()
        .filter_map(|&ms| DateTime::from_timestamp_millis(ms))
        .filter(|t| *t >= start && *t < end);
    let mut gaps = Vec::new();
    // Each hole runs from where the next bar was due to where the next bar (or the end) is.
    let mut due = start;
    for t in inside.chain(std::iter::once(end)) {
        if t > due && open_time(due, t, policy.skip_weekends) > policy.tolerance {
            gaps.push(Gap { start: due, end: t });
        }
        due = due.max(t + bar);
    }
    gaps
}

/// Time in `[from, to)`, minus Saturdays and Sundays when `skip_weekends`.
fn open_time(from: DateTime<Utc>, to: DateTime<Utc>, skip_weekends: bool) -> TimeDelta {
    if !skip_weekends {
        return to - from;
    }
    let mut total = TimeDelta::zero();
    let mut cursor = from;
    while cursor < to {
        let next_midnight = (cursor.date_naive() + Duration::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc();
        let chunk_end = next_midnight.min(to);
        if !matches!(cursor.weekday(), Weekday::Sat | Weekday::Sun) {
            total += chunk_end - cursor;
        }
        cursor = chunk_end;
    }
    total
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid")
    }

    fn weekdays(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<i64> {
        let mut out = Vec::new();
        let mut day = from;
        while day < to {
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                out.push(day.timestamp_millis());
            }
            day += TimeDelta::days(1);
        }
        out
    }

    #[test]
    fn complete_daily_series_has_no_gaps_across_weekends_and_one_holiday() {
        let (from, to) = (t(2024, 1, 1, 0), t(2024, 3, 1, 0));
        let mut bars = weekdays(from, to);
        bars.retain(|&ms| ms != t(2024, 1, 15, 0).timestamp_millis()); // a Monday holiday
        let policy = GapPolicy::for_timeframe(Timeframe::D1);
        assert!(find_gaps(&bars, Timeframe::D1, from, to, policy).is_empty());
    }

    #[test]
    fn reports_interior_head_and_tail_gaps() {
        let (from, to) = (t(2024, 1, 1, 0), t(2024, 3, 1, 0));
        let all = weekdays(from, to);
        // Drop the first week, 5 weekdays in February's middle, and the last week.
        let keep = |ms: &i64| {
            *ms >= t(2024, 1, 8, 0).timestamp_millis()
                && !(t(2024, 2, 12, 0).timestamp_millis()..t(2024, 2, 17, 0).timestamp_millis())
                    .contains(ms)
                && *ms < t(2024, 2, 23, 0).timestamp_millis()
        };
        let bars: Vec<i64> = all.into_iter().filter(keep).collect();
        let gaps = find_gaps(
            &bars,
            Timeframe::D1,
            from,
            to,
            GapPolicy::for_timeframe(Timeframe::D1),
        );
        assert_eq!(
            gaps,
            vec![
                Gap {
                    start: t(2024, 1, 1, 0),
                    end: t(2024, 1, 8, 0)
                },
                Gap {
                    start: t(2024, 2, 10, 0),
                    end: t(2024, 2, 19, 0)
                },
                Gap {
                    start: t(2024, 2, 23, 0),
                    end: t(2024, 3, 1, 0)
                },
            ]
        );
    }

    #[test]
    fn overnight_is_not_a_gap_but_a_missing_day_is() {
        let mut bars = Vec::new();
        // Tue 2 .. Fri 5 Jan 2024 without Wed 3, hourly bars 14:00..20:00 UTC.
        for day in [2, 4, 5] {
            for h in 14..21 {
                bars.push(t(2024, 1, day, h).timestamp_millis());
            }
        }
        let gaps = find_gaps(
            &bars,
            Timeframe::H1,
            t(2024, 1, 2, 14),
            t(2024, 1, 6, 0),
            GapPolicy::for_timeframe(Timeframe::H1),
        );
        assert_eq!(
            gaps,
            vec![Gap {
                start: t(2024, 1, 2, 21),
                end: t(2024, 1, 4, 14)
            }]
        );
    }

    #[test]
    fn empty_series_is_one_gap() {
        let (from, to) = (t(2024, 1, 1, 0), t(2024, 2, 1, 0));
        assert_eq!(
            find_gaps(
                &[],
                Timeframe::D1,
                from,
                to,
                GapPolicy::for_timeframe(Timeframe::D1)
            ),
            vec![Gap {
                start: from,
                end: to
            }]
        );
    }
}
