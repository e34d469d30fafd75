//! Multi-timeframe alignment without look-ahead.
//!
//! Rule: the row of a base bar opening at `t` may use a bar of another timeframe only
//! if that bar has fully CLOSED by `t`, i.e. `open + bar length <= t`; it uses the
//! latest such bar. Timestamps are bar OPEN times (the store's convention), so a 1h
//! bar at 14:30 on day D sees the daily bar of D-1 (closed at D 00:00), never the bar
//! of D, whose close is still in the future. Bar lengths are the timeframe's nominal
//! length, except a month, which closes at the same instant one calendar month later.
//!
//! A closed bar is also not used once it is stale: more than `max(3 bar lengths,
//! 4 days)` past its close (4 days spans a weekend plus a holiday). Beyond that the
//! value is NaN and the row is dropped, so series that do not overlap in time are
//! never silently forward-filled for years.

use chrono::{DateTime, Months};
use data_host::Timeframe;

/// Unix milliseconds at which a `timeframe` bar opening at `open_ms` closes.
pub fn bar_close_ms(timeframe: Timeframe, open_ms: i64) -> i64 {
    if timeframe == Timeframe::Mo1
        && let Some(close) = DateTime::from_timestamp_millis(open_ms)
            .and_then(|open| open.checked_add_months(Months::new(1)))
    {
        return close.timestamp_millis();
    }
    open_ms.saturating_add(timeframe.bar_length().num_milliseconds())
}

/// How long after its close a bar may still stand for the present.
pub fn stale_after_ms(timeframe: Timeframe) -> i64 {
    let three_bars = timeframe.bar_length().num_milliseconds().saturating_mul(3);
    three_bars.max(4 * 24 * 3_600_000)
}

/// For every base open time, the index of the latest `other` bar closed by then (and
/// not stale), or `None`. Both time lists must be sorted ascending.
pub fn closed_bar_index(base_ts: &[i64], other_ts: &[i64], other: Timeframe) -> Vec<Option<usize>> {
    let stale = stale_after_ms(other);
    let mut next = 0; // first other bar not yet closed at the current base time
    base_ts
        .iter()
        .map(|&t| {
            // Close times increase with open times, so one forward sweep suffices.
            while next < other_ts.len() && bar_close_ms(other, other_ts[next]) <= t {
                next += 1;
            }
            let latest = next.checked_sub(1)?;
            let closed_at = bar_close_ms(other, other_ts[latest]);
            (t - closed_at <= stale).then_some(latest)
        })
        .collect()
}

/// `columns` of the `other` timeframe re-indexed onto the base rows (NaN where no
/// closed, fresh bar exists).
pub fn align_columns(
    base_ts: &[i64],
    other_ts: &[i64],
    other: Timeframe,
    columns: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let index = closed_bar_index(base_ts, other_ts, other);
    columns
        .iter()
        .map(|column| {
            index
                .iter()
                .map(|i| i.and_then(|i| column.get(i).copied()).unwrap_or(f64::NAN))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    #[test]
    fn a_base_bar_sees_only_closed_bars() {
        // Daily bars opening at day 0, 1, 2 (00:00); hourly bars through day 2.
        let daily = [0, D, 2 * D];
        let hourly: Vec<i64> = (0..60).map(|h| h * H).collect();
        let index = closed_bar_index(&hourly, &daily, Timeframe::D1);
        for (t, i) in hourly.iter().zip(&index) {
            let want = match t / D {
                0 => None,    // day 0's bar closes at day 1 00:00
                1 => Some(0), // from day 1 00:00 (inclusive) the day-0 bar is closed
                _ => Some(1),
            };
            assert_eq!(*i, want, "hour {}", t / H);
        }
    }

    #[test]
    fn stale_bars_are_not_forward_filled() {
        let daily = [0];
        let base = [D, 4 * D, 5 * D, 5 * D + 1];
        let index = closed_bar_index(&base, &daily, Timeframe::D1);
        assert_eq!(index, [Some(0), Some(0), Some(0), None]);
        let aligned = align_columns(&base, &daily, Timeframe::D1, &[vec![7.0]]);
        assert_eq!(&aligned[0][..3], &[7.0, 7.0, 7.0]);
        assert!(aligned[0][3].is_nan());
    }

    #[test]
    fn months_close_on_the_calendar() {
        let jan = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .expect("date")
            .timestamp_millis();
        let feb = DateTime::parse_from_rfc3339("2024-02-01T00:00:00Z")
            .expect("date")
            .timestamp_millis();
        assert_eq!(bar_close_ms(Timeframe::Mo1, jan), feb);
        // 31 days, not the nominal 30: Jan 31 must not see January's bar.
        assert_eq!(
            closed_bar_index(&[feb - D, feb], &[jan], Timeframe::Mo1),
            [None, Some(0)]
        );
    }
}
