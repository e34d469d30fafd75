//! Reading a `reqHistoricalData` the way IB does (end time, duration, bar size,
//! what-to-show) and writing bars the way the API expects them.

use chrono::{DateTime, Months, NaiveDateTime, TimeDelta, Utc};

use super::proto::HistoricalDataBar;
use crate::{Bar, Timeframe};

/// Why a historical request is answered with an error instead of bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request is malformed: error 321 "Error validating request".
    Invalid(String),
    /// The request is valid but there is nothing to serve: error 162 "HMDS query
    /// returned no data".
    NoData,
}

/// The what-to-show values the simulator serves (all with the same bars).
pub(crate) const SERVED_WHAT_TO_SHOW: [&str; 5] = ["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"];
/// Values IB knows that the simulator has no data for.
const UNSERVED_WHAT_TO_SHOW: [&str; 8] = [
    "ADJUSTED_LAST",
    "AGGTRADES",
    "HISTORICAL_VOLATILITY",
    "OPTION_IMPLIED_VOLATILITY",
    "FEE_RATE",
    "SCHEDULE",
    "YIELD_BID",
    "YIELD_ASK",
];

/// Checks what-to-show (case-insensitive) and returns its canonical spelling.
pub(crate) fn what_to_show(text: &str) -> Result<String, Refusal> {
    let upper = text.trim().to_ascii_uppercase();
    if SERVED_WHAT_TO_SHOW.contains(&upper.as_str()) {
        Ok(upper)
    } else if UNSERVED_WHAT_TO_SHOW.contains(&upper.as_str())
        || upper == "YIELD_BID_ASK"
        || upper == "YIELD_LAST"
    {
        Err(Refusal::NoData)
    } else {
        Err(Refusal::Invalid(format!("unknown whatToShow {text:?}")))
    }
}

/// Parses an IB bar size (`1 min`, `5 mins`, `1 hour`, `1 day`, ...). `Ok(None)` is a
/// bar size IB serves but the contract's timeframes do not include (`30 secs`,
/// `2 mins`, `8 hours`, ...): the simulator does not resample.
pub(crate) fn bar_size(text: &str) -> Result<Option<Timeframe>, Refusal> {
    let invalid = || Refusal::Invalid(format!("invalid bar size {text:?}"));
    let (count, unit) = text.trim().split_once(' ').ok_or_else(invalid)?;
    let count: u32 = count.parse().map_err(|_| invalid())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('s').unwrap_or(&unit);
    let valid: &[u32] = match unit {
        "sec" => &[1, 5, 10, 15, 30],
        "min" => &[1, 2, 3, 5, 10, 15, 20, 30],
        "hour" => &[1, 2, 3, 4, 8],
        "day" | "week" | "month" => &[1],
        _ => return Err(invalid()),
    };
    if !valid.contains(&count) {
        return Err(invalid());
    }
    Ok(match (unit, count) {
        ("min", 1) => Some(Timeframe::M1),
        ("min", 5) => Some(Timeframe::M5),
        ("min", 15) => Some(Timeframe::M15),
        ("min", 30) => Some(Timeframe::M30),
        ("hour", 1) => Some(Timeframe::H1),
        ("hour", 2) => Some(Timeframe::H2),
        ("hour", 3) => Some(Timeframe::H3),
        ("hour", 4) => Some(Timeframe::H4),
        ("day", 1) => Some(Timeframe::D1),
        ("week", 1) => Some(Timeframe::W1),
        ("month", 1) => Some(Timeframe::Mo1),
        _ => None,
    })
}

/// Parses `endDateTime`: empty means now; `YYYYMMDD-HH:MM:SS` is UTC;
/// `YYYYMMDD HH:MM:SS [zone]` is read in UTC, the simulated gateway's zone (other
/// zones are refused).
pub(crate) fn end_date_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(now);
    }
    let invalid = || Refusal::Invalid(format!("end date/time string [{text}] is invalid"));
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y%m%d-%H:%M:%S") {
        return Ok(naive.and_utc());
    }
    let mut parts = text.splitn(3, ' ');
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else {
        return Err(invalid());
    };
    match parts.next().map(str::trim) {
        None | Some("UTC" | "GMT" | "Etc/UTC" | "Etc/GMT" | "Z") => {}
        Some(zone) => {
            return Err(Refusal::Invalid(format!(
                "time zone {zone} in end date/time is not supported by the simulator; use UTC"
            )));
        }
    }
    NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y%m%d %H:%M:%S")
        .map(|naive| naive.and_utc())
        .map_err(|_| invalid())
}

/// Parses `durationStr` (`<n> S|D|W|M|Y`) and returns the window start `end - duration`
/// (days are calendar days, months and years calendar months).
pub(crate) fn window_start(duration: &str, end: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
    let invalid = || {
        Refusal::Invalid(format!(
            "invalid duration {duration:?}; expected <integer> <S|D|W|M|Y>"
        ))
    };
    let (count, unit) = duration.trim().split_once(' ').ok_or_else(invalid)?;
    let count: u32 = count.trim().parse().map_err(|_| invalid())?;
    if count == 0 {
        return Err(invalid());
    }
    let start = match unit.trim().to_ascii_uppercase().as_str() {
        "S" => end.checked_sub_signed(TimeDelta::seconds(count.into())),
        "D" => end.checked_sub_signed(TimeDelta::days(count.into())),
        "W" => end.checked_sub_signed(TimeDelta::weeks(count.into())),
        "M" => end.checked_sub_months(Months::new(count)),
        "Y" => end.checked_sub_months(Months::new(count.saturating_mul(12))),
        _ => None,
    };
    start.ok_or_else(invalid)
}

/// The bars whose open time falls in `(start, end]` (IB's window).
pub(crate) fn select(bars: &[Bar], start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Bar> {
    bars.iter()
        .filter(|bar| bar.timestamp > start && bar.timestamp <= end)
        .copied()
        .collect()
}

/// One bar as the API expects it: daily and longer bars carry `YYYYMMDD`; intraday
/// bars epoch seconds (formatDate 2, what ibapi asks for) or `YYYYMMDD HH:MM:SS`
/// in the gateway's zone, UTC (formatDate 1).
pub(crate) fn wire_bar(bar: &Bar, timeframe: Timeframe, format_date: i32) -> HistoricalDataBar {
    let date = if !timeframe.is_intraday() {
        bar.timestamp.format("%Y%m%d").to_string()
    } else if format_date == 1 {
        bar.timestamp.format("%Y%m%d %H:%M:%S").to_string()
    } else {
        bar.timestamp.timestamp().to_string()
    };
    HistoricalDataBar {
        date: Some(date),
        open: Some(bar.open),
        high: Some(bar.high),
        low: Some(bar.low),
        close: Some(bar.close),
        volume: Some(bar.volume.to_string()),
    }
}

/// A window bound in `historicalDataEnd`: `YYYYMMDD-HH:MM:SS`, UTC.
pub(crate) fn window_text(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d-%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn reads_bar_sizes() {
        assert_eq!(bar_size("1 min"), Ok(Some(Timeframe::M1)));
        assert_eq!(bar_size("5 mins"), Ok(Some(Timeframe::M5)));
        assert_eq!(bar_size("4 hours"), Ok(Some(Timeframe::H4)));
        assert_eq!(bar_size("1 month"), Ok(Some(Timeframe::Mo1)));
        assert_eq!(bar_size("30 secs"), Ok(None));
        assert!(matches!(bar_size("7 mins"), Err(Refusal::Invalid(_))));
        assert!(matches!(bar_size("1d"), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn reads_end_times_and_durations() {
        let now = Utc
            .with_ymd_and_hms(2024, 3, 1, 12, 0, 0)
            .single()
            .expect("valid");
        let end = Utc
            .with_ymd_and_hms(2024, 1, 31, 16, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(end_date_time("", now), Ok(now));
        assert_eq!(end_date_time("20240131 16:00:00 UTC", now), Ok(end));
        assert_eq!(end_date_time("20240131-16:00:00", now), Ok(end));
        assert!(end_date_time("20240131 16:00:00 US/Eastern", now).is_err());
        assert_eq!(
            window_start("1 M", end),
            Ok(Utc
                .with_ymd_and_hms(2023, 12, 31, 16, 0, 0)
                .single()
                .expect("valid"))
        );
        assert_eq!(window_start("3600 S", end), Ok(end - TimeDelta::hours(1)));
        assert!(window_start("1 X", end).is_err());
        assert!(window_start("D", end).is_err());
    }

    #[test]
    fn window_excludes_start_and_includes_end() {
        let at = |h| {
            Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0)
                .single()
                .expect("valid")
        };
        let bars: Vec<Bar> = (0..5)
            .map(|h| Bar {
                timestamp: at(h),
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 1.0,
            })
            .collect();
        let picked: Vec<_> = select(&bars, at(1), at(3))
            .iter()
            .map(|b| b.timestamp)
            .collect();
        assert_eq!(picked, vec![at(2), at(3)]);
    }
}
