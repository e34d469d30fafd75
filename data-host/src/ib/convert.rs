//! Conversions between our types and `ibapi`'s: the IB window asked for a segment,
//! end times, and bars.
//!
//! **The IB window of a segment.** A segment `[start, end)` is asked as the
//! duration covering it back from `end - 1 s` (end rounded up to whole seconds
//! first). IB answers the bars that open before the end time; a peer that also
//! includes a bar opening exactly at the end time, and excludes one opening exactly
//! at the window's start (as the simulator does: `(end - duration, end]`), would
//! otherwise lose the first bar of every segment. Shifted by a second, both readings
//! return every bar of `[start, end)` (bars open on whole seconds); the bars outside
//! the segment are dropped.

use chrono::{DateTime, TimeDelta, Utc};
use ibapi::market_data::historical::{self as ib, BarTimestamp};
use time::OffsetDateTime;

use super::errors::IbError;
use super::segment::{IbDuration, Segment};
use crate::bars::Bar;

/// The IB end time and duration that cover `segment` (see the module docs).
pub(crate) fn ib_window(segment: &Segment) -> (DateTime<Utc>, IbDuration) {
    let ceil = |t: DateTime<Utc>| {
        let whole = DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
        if whole < t {
            whole + TimeDelta::seconds(1)
        } else {
            whole
        }
    };
    let floor = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    let end = ceil(segment.end);
    (
        end - TimeDelta::seconds(1),
        IbDuration::covering(end - floor(segment.start)),
    )
}

pub(crate) fn offset_time(t: DateTime<Utc>) -> Result<OffsetDateTime, IbError> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| IbError::Invalid {
        field: "end",
        message: format!("{} cannot be sent to IB: {e}", t.to_rfc3339()),
    })
}

/// An `ibapi` bar as ours (daily and longer bars come as dates: midnight UTC).
pub(crate) fn convert(bar: &ib::Bar) -> Option<Bar> {
    let nanos = match bar.date {
        BarTimestamp::Date(date) => date.midnight().assume_utc().unix_timestamp_nanos(),
        BarTimestamp::DateTime(at) => at.unix_timestamp_nanos(),
    };
    let timestamp = DateTime::from_timestamp_nanos(i64::try_from(nanos).ok()?);
    Some(Bar {
        timestamp,
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        // IB reports -1 for bars without volume (MIDPOINT, indices).
        volume: bar.volume.max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn windows_end_a_second_early_and_cover_the_segment() {
        let seg = Segment {
            start: utc(2024, 1, 1, 0),
            end: utc(2024, 1, 2, 0),
        };
        let (end, duration) = ib_window(&seg);
        assert_eq!(end, utc(2024, 1, 1, 23) + TimeDelta::seconds(3599));
        assert_eq!(duration.to_string(), "86400 S");
        let seg = Segment {
            start: utc(2024, 1, 1, 0),
            end: utc(2024, 1, 31, 0),
        };
        assert_eq!(ib_window(&seg).1.to_string(), "30 D");
        // Fractional ends round up first: the bar at 12:00:00 stays inside.
        let seg = Segment {
            start: utc(2024, 1, 1, 11),
            end: utc(2024, 1, 1, 12) + TimeDelta::milliseconds(500),
        };
        let (end, duration) = ib_window(&seg);
        assert_eq!(end, utc(2024, 1, 1, 12));
        assert_eq!(duration.to_string(), "3601 S");
    }

    #[test]
    fn converts_dated_and_timed_bars() {
        let bar = |date| ib::Bar {
            date,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: -1.0,
            wap: 0.0,
            count: 0,
        };
        let day = Date::from_calendar_date(2024, Month::March, 1).expect("date");
        let daily = convert(&bar(BarTimestamp::Date(day))).expect("bar");
        assert_eq!(daily.timestamp, utc(2024, 3, 1, 0));
        assert_eq!(daily.volume, 0.0);
        let at = PrimitiveDateTime::new(day, Time::from_hms(14, 30, 0).expect("time"))
            .assume_offset(UtcOffset::from_hms(1, 0, 0).expect("offset"));
        let hourly = convert(&bar(BarTimestamp::DateTime(at))).expect("bar");
        assert_eq!(
            hourly.timestamp,
            utc(2024, 3, 1, 13) + TimeDelta::minutes(30)
        );
        assert_eq!(
            (hourly.open, hourly.high, hourly.low, hourly.close),
            (1.0, 2.0, 0.5, 1.5)
        );
    }
}
