//! Segmenting: one bars request becomes IB historical requests IB accepts.
//!
//! IB limits how much history one request may span for a bar size
//! ([`Timeframe::max_request_span`]), so a range is split into consecutive segments of at
//! most that length, in chronological order, covering `[start, end)` exactly: the first
//! segment starts at `start`, each next one starts where the previous one ended, the last
//! one ends at `end` and is the only one that may be shorter. Segments are anchored at
//! `start` (not at midnight), so a range needs the fewest requests (`ceil(len / span)`).
//!
//! Each segment is asked of IB as "`duration` back from `end`"; this module also holds
//! the IB spellings of those parameters and their mapping to the `ibapi` types:
//!
//! * [`ib_bar_size`] / [`bar_size_setting`]: our [`Timeframe`] as `ibapi`'s
//!   [`BarSize`](ib::BarSize) and as IB's bar-size string (`"1 min"`, `"5 mins"`, ... `"1 month"`).
//! * [`IbDuration`]: the duration string (`"3600 S"`, `"30 D"`, `"2 Y"`); see
//!   [`IbDuration::covering`] for the rule. [`IbDuration::to_ibapi`] gives `ibapi`'s
//!   [`Duration`](ibapi::market_data::historical::Duration).
//! * [`WhatToShow`]: the data type (`TRADES`, `BID_ASK`, ...), hashable (unlike `ibapi`'s,
//!   which the pacing keys cannot use), with [`WhatToShow::to_ibapi`].
//!
//! IB measures `S` and `D` in trading time counted back from the end, so a wall-clock
//! duration can only over-fetch; the provider keeps the bars whose open time lies in the
//! segment and drops the rest.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use ibapi::market_data::historical as ib;

use crate::timeframe::Timeframe;

/// IB's bar-size string for `timeframe` (`barSizeSetting` of `reqHistoricalData`).
pub fn bar_size_setting(timeframe: Timeframe) -> &'static str {
    match timeframe {
        Timeframe::M1 => "1 min",
        Timeframe::M5 => "5 mins",
        Timeframe::M15 => "15 mins",
        Timeframe::M30 => "30 mins",
        Timeframe::H1 => "1 hour",
        Timeframe::H2 => "2 hours",
        Timeframe::H3 => "3 hours",
        Timeframe::H4 => "4 hours",
        Timeframe::D1 => "1 day",
        Timeframe::W1 => "1 week",
        Timeframe::Mo1 => "1 month",
    }
}

/// `ibapi`'s bar size for `timeframe`, for `client.historical_data(&contract, bar_size)`.
/// Its `Display` is [`bar_size_setting`] (tested).
pub fn ib_bar_size(timeframe: Timeframe) -> ib::BarSize {
    match timeframe {
        Timeframe::M1 => ib::BarSize::Min,
        Timeframe::M5 => ib::BarSize::Min5,
        Timeframe::M15 => ib::BarSize::Min15,
        Timeframe::M30 => ib::BarSize::Min30,
        Timeframe::H1 => ib::BarSize::Hour,
        Timeframe::H2 => ib::BarSize::Hour2,
        Timeframe::H3 => ib::BarSize::Hour3,
        Timeframe::H4 => ib::BarSize::Hour4,
        Timeframe::D1 => ib::BarSize::Day,
        Timeframe::W1 => ib::BarSize::Week,
        Timeframe::Mo1 => ib::BarSize::Month,
    }
}

/// What IB should build the bars from (`whatToShow`). Hashable, so it can be part of the
/// pacing keys; [`WhatToShow::to_ibapi`] converts for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum WhatToShow {
    /// Trade prices and volume (`TRADES`); what stocks and futures use.
    #[default]
    Trades,
    /// Bid/ask midpoint (`MIDPOINT`); what forex uses.
    Midpoint,
    /// Bid prices (`BID`).
    Bid,
    /// Ask prices (`ASK`).
    Ask,
    /// Time-averaged bid and ask (`BID_ASK`); IB counts it twice for pacing.
    BidAsk,
    /// Split-adjusted trades (`ADJUSTED_LAST`); IB allows no end time with it.
    AdjustedLast,
    /// Aggregated trades (`AGGTRADES`), required for crypto.
    AggTrades,
    /// IB's historical volatility (`HISTORICAL_VOLATILITY`).
    HistoricalVolatility,
    /// Option implied volatility (`OPTION_IMPLIED_VOLATILITY`).
    OptionImpliedVolatility,
}

impl WhatToShow {
    /// IB's spelling (`TRADES`, `BID_ASK`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trades => "TRADES",
            Self::Midpoint => "MIDPOINT",
            Self::Bid => "BID",
            Self::Ask => "ASK",
            Self::BidAsk => "BID_ASK",
            Self::AdjustedLast => "ADJUSTED_LAST",
            Self::AggTrades => "AGGTRADES",
            Self::HistoricalVolatility => "HISTORICAL_VOLATILITY",
            Self::OptionImpliedVolatility => "OPTION_IMPLIED_VOLATILITY",
        }
    }

    /// The same value as `ibapi`'s type.
    pub fn to_ibapi(self) -> ib::WhatToShow {
        match self {
            Self::Trades => ib::WhatToShow::Trades,
            Self::Midpoint => ib::WhatToShow::MidPoint,
            Self::Bid => ib::WhatToShow::Bid,
            Self::Ask => ib::WhatToShow::Ask,
            Self::BidAsk => ib::WhatToShow::BidAsk,
            Self::AdjustedLast => ib::WhatToShow::AdjustedLast,
            Self::AggTrades => ib::WhatToShow::AggTrades,
            Self::HistoricalVolatility => ib::WhatToShow::HistoricalVolatility,
            Self::OptionImpliedVolatility => ib::WhatToShow::OptionImpliedVolatility,
        }
    }

    /// Whether IB counts a request of this type twice against its pacing budgets.
    pub fn counts_twice(self) -> bool {
        self == Self::BidAsk
    }
}

impl fmt::Display for WhatToShow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unit of an IB duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DurationUnit {
    /// `S`: seconds (IB accepts at most 86400).
    Seconds,
    /// `D`: days (trading sessions; IB accepts at most 365).
    Days,
    /// `W`: weeks.
    Weeks,
    /// `M`: months.
    Months,
    /// `Y`: calendar years.
    Years,
}

impl DurationUnit {
    /// IB's letter for the unit.
    pub fn letter(self) -> char {
        match self {
            Self::Seconds => 'S',
            Self::Days => 'D',
            Self::Weeks => 'W',
            Self::Months => 'M',
            Self::Years => 'Y',
        }
    }
}

/// An IB duration (`durationStr` of `reqHistoricalData`): `"{value} {unit}"`, e.g.
/// `"86400 S"`, `"1 D"`, `"2 Y"`. Hashable, so it can be part of the pacing key of an
/// identical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IbDuration {
    value: u32,
    unit: DurationUnit,
}

impl IbDuration {
    /// Most seconds IB accepts in an `S` duration (one day).
    pub const MAX_SECONDS: u32 = 86_400;
    /// Most days IB accepts in a `D` duration.
    pub const MAX_DAYS: u32 = 365;

    /// A duration of `value` `unit`s (`value` of 0 is raised to 1: IB rejects `0 S`).
    pub fn new(value: u32, unit: DurationUnit) -> Self {
        Self {
            value: value.max(1),
            unit,
        }
    }

    /// The duration that asks for a wall-clock `span` back from a request's end time:
    ///
    /// * up to one day: whole seconds, rounded up (`5400 S` for 90 minutes, `86400 S`
    ///   for exactly one day, as a full 1m segment is);
    /// * above a day, up to 365 days: whole days, rounded up (`2 D` for 36 hours,
    ///   `365 D` for a 1d segment);
    /// * longer: calendar years, rounded up (`2 Y` for the 730-day 1w / 1M segments).
    ///
    /// Seconds up to a day because IB counts `D` in trading sessions back from the
    /// session that contains the end time: `1 D` ending at midnight UTC covers only
    /// the session of that day (or the previous one), not the 24 hours before the end,
    /// and the 1m bars of a day segment could go missing. `S` is wall-clock time, and
    /// IB accepts up to 86400 of them. Above a day, where `S` is not allowed, `D`
    /// reaches at least as many calendar days back as asked (there is at most one
    /// session per calendar day), so it can only over-fetch. Rounding up never asks for
    /// less than the span (the provider trims the surplus). `W` and `M` are never
    /// produced: months and weeks of trading time are not a fixed number of seconds.
    /// A zero or negative span gives the smallest duration, `1 S`.
    pub fn covering(span: TimeDelta) -> Self {
        let whole = span.num_seconds();
        let part = i64::from(span.subsec_nanos() > 0);
        let seconds = u64::try_from(whole.saturating_add(part))
            .unwrap_or(0)
            .max(1);
        if seconds <= u64::from(Self::MAX_SECONDS) {
            // seconds <= 86_400, so it fits.
            return Self::new(
                u32::try_from(seconds).unwrap_or(Self::MAX_SECONDS),
                DurationUnit::Seconds,
            );
        }
        let days = seconds.div_ceil(u64::from(Self::MAX_SECONDS));
        if days <= u64::from(Self::MAX_DAYS) {
            return Self::new(
                u32::try_from(days).unwrap_or(Self::MAX_DAYS),
                DurationUnit::Days,
            );
        }
        let years = days.div_ceil(u64::from(Self::MAX_DAYS));
        Self::new(
            u32::try_from(years).unwrap_or(u32::MAX),
            DurationUnit::Years,
        )
    }

    /// The number of units.
    pub fn value(self) -> u32 {
        self.value
    }

    /// The unit.
    pub fn unit(self) -> DurationUnit {
        self.unit
    }

    /// The same duration as `ibapi`'s type, for `.duration(...)` of its request builder.
    pub fn to_ibapi(self) -> ib::Duration {
        let value = i32::try_from(self.value).unwrap_or(i32::MAX);
        match self.unit {
            DurationUnit::Seconds => ib::Duration::seconds(value),
            DurationUnit::Days => ib::Duration::days(value),
            DurationUnit::Weeks => ib::Duration::weeks(value),
            DurationUnit::Months => ib::Duration::months(value),
            DurationUnit::Years => ib::Duration::years(value),
        }
    }
}

impl fmt::Display for IbDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.unit.letter())
    }
}

/// One IB request's worth of a range: bars with open times in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    /// First instant covered (inclusive).
    pub start: DateTime<Utc>,
    /// End of the segment (exclusive); IB's `endDateTime`.
    pub end: DateTime<Utc>,
}

impl Segment {
    /// The wall-clock length.
    pub fn span(&self) -> TimeDelta {
        self.end - self.start
    }

    /// The IB duration to ask for, back from [`Segment::end`]
    /// ([`IbDuration::covering`] the span).
    pub fn ib_duration(&self) -> IbDuration {
        IbDuration::covering(self.span())
    }

    /// Whether `t` lies in the segment.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// Splits `[start, end)` into consecutive segments of at most
/// `timeframe.max_request_span()`, in chronological order, covering the range exactly.
/// An empty or inverted range gives no segments.
pub fn split(timeframe: Timeframe, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Segment> {
    split_by(timeframe.max_request_span(), start, end)
}

/// [`split`] with an explicit maximum span (a span of zero or less is taken as one
/// second, so the loop always ends).
pub fn split_by(max_span: TimeDelta, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Segment> {
    let step = if max_span > TimeDelta::zero() {
        max_span
    } else {
        TimeDelta::seconds(1)
    };
    let mut segments = Vec::new();
    let mut cursor = start;
    while cursor < end {
        // An overflow past chrono's range can only happen near its end: clamp to `end`.
        let next = cursor.checked_add_signed(step).map_or(end, |t| t.min(end));
        segments.push(Segment {
            start: cursor,
            end: next,
        });
        cursor = next;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use host_service_base::SplitMix64;

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid test date")
    }

    /// Independent check of a split: exact cover, order, bounds, minimal count.
    fn assert_exact_cover(
        max: TimeDelta,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        segs: &[Segment],
    ) {
        let ctx = format!("[{start}, {end}) by {max}");
        assert!(!segs.is_empty(), "{ctx}: no segments");
        assert_eq!(segs[0].start, start, "{ctx}: first start");
        assert_eq!(segs[segs.len() - 1].end, end, "{ctx}: last end");
        for pair in segs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{ctx}: gap or overlap");
        }
        for (i, s) in segs.iter().enumerate() {
            assert!(s.start < s.end, "{ctx}: empty segment {i}");
            assert!(s.span() <= max, "{ctx}: segment {i} spans {}", s.span());
            if i + 1 < segs.len() {
                assert_eq!(s.span(), max, "{ctx}: only the last segment may be short");
            }
        }
        let total = (end - start)
            .num_nanoseconds()
            .expect("test range fits i64 ns");
        let step = max.num_nanoseconds().expect("span fits i64 ns");
        let expected = usize::try_from((total + step - 1) / step).expect("positive");
        assert_eq!(segs.len(), expected, "{ctx}: not the fewest segments");
    }

    /// What a duration asks for at least, in wall-clock seconds (IB's units taken at
    /// their shortest: a day of 86400 s, a year of 365 days), and whether IB accepts it.
    fn duration_seconds_and_valid(d: IbDuration) -> (u64, bool) {
        let v = u64::from(d.value());
        match d.unit() {
            DurationUnit::Seconds => (v, (1..=86_400).contains(&v)),
            DurationUnit::Days => (v * 86_400, (1..=365).contains(&v)),
            DurationUnit::Weeks => (v * 7 * 86_400, v >= 1),
            DurationUnit::Months => (v * 28 * 86_400, v >= 1),
            DurationUnit::Years => (v * 365 * 86_400, v >= 1),
        }
    }

    #[test]
    fn one_year_of_hourly_bars_takes_thirteen_segments() {
        let (start, end) = (utc(2023, 1, 1, 0), utc(2024, 1, 1, 0));
        let segs = split(Timeframe::H1, start, end);
        assert!(segs.len() >= 13, "{} segments", segs.len());
        assert_eq!(segs.len(), 13);
        assert_exact_cover(TimeDelta::days(30), start, end, &segs);
        assert_eq!(segs[0].ib_duration().to_string(), "30 D");
        assert_eq!(segs[12].span(), TimeDelta::days(5));
        assert_eq!(segs[12].ib_duration().to_string(), "5 D");
    }

    #[test]
    fn empty_and_inverted_ranges_have_no_segments() {
        let t = utc(2024, 3, 1, 0);
        assert!(split(Timeframe::M1, t, t).is_empty());
        assert!(split(Timeframe::M1, t, t - TimeDelta::hours(1)).is_empty());
    }

    #[test]
    fn a_range_within_one_span_is_one_segment() {
        let (start, end) = (utc(2024, 3, 1, 9), utc(2024, 3, 1, 17));
        assert_eq!(
            split(Timeframe::M5, start, end),
            vec![Segment { start, end }]
        );
    }

    #[test]
    fn random_ranges_are_covered_exactly_for_every_timeframe() {
        let mut rng = SplitMix64::new(0x5EED_0001);
        let base = utc(2000, 1, 1, 0);
        for tf in Timeframe::ALL {
            let max = tf.max_request_span();
            for _ in 0..400 {
                let offset_s = i64::try_from(rng.below(30 * 365 * 86_400)).expect("fits");
                let start = base
                    + TimeDelta::seconds(offset_s)
                    + TimeDelta::nanoseconds(
                        i64::try_from(rng.below(1_000_000_000)).expect("fits"),
                    );
                // Lengths from a second to ~5 years, biased towards multiples of the span.
                let len = match rng.below(4) {
                    0 => TimeDelta::seconds(
                        1 + i64::try_from(rng.below(5 * 365 * 86_400)).expect("fits"),
                    ),
                    1 => max * i32::try_from(1 + rng.below(12)).expect("fits"),
                    2 => {
                        max * i32::try_from(rng.below(6)).expect("fits")
                            + TimeDelta::seconds(
                                1 + i64::try_from(rng.below(86_400)).expect("fits"),
                            )
                    }
                    _ => TimeDelta::nanoseconds(
                        1 + i64::try_from(rng.below(10_000_000_000)).expect("fits"),
                    ),
                };
                let end = start + len;
                let segs = split(tf, start, end);
                assert_exact_cover(max, start, end, &segs);
                for s in &segs {
                    let d = s.ib_duration();
                    let (secs, valid) = duration_seconds_and_valid(d);
                    assert!(valid, "{tf}: IB would reject {d} for {}", s.span());
                    let span_ns = s.span().num_nanoseconds().expect("fits");
                    assert!(
                        i128::from(secs) * 1_000_000_000 >= i128::from(span_ns),
                        "{tf}: {d} does not cover {}",
                        s.span()
                    );
                    assert_eq!(d.to_ibapi().to_string(), d.to_string());
                }
            }
        }
    }

    #[test]
    fn duration_strings_follow_the_documented_rule() {
        let cases = [
            (TimeDelta::nanoseconds(1), "1 S"),
            (TimeDelta::seconds(1), "1 S"),
            (TimeDelta::milliseconds(1500), "2 S"),
            (TimeDelta::minutes(90), "5400 S"),
            (TimeDelta::seconds(86_399), "86399 S"),
            (TimeDelta::days(1), "86400 S"),
            (TimeDelta::days(1) + TimeDelta::nanoseconds(1), "2 D"),
            (TimeDelta::hours(36), "2 D"),
            (TimeDelta::days(7), "7 D"),
            (TimeDelta::days(365), "365 D"),
            (TimeDelta::days(366), "2 Y"),
            (TimeDelta::days(730), "2 Y"),
            (TimeDelta::days(731), "3 Y"),
            (TimeDelta::zero(), "1 S"),
            (TimeDelta::seconds(-5), "1 S"),
        ];
        for (span, want) in cases {
            assert_eq!(IbDuration::covering(span).to_string(), want, "{span}");
        }
    }

    #[test]
    fn full_segments_of_each_timeframe_ask_for_the_expected_duration() {
        let want = [
            (Timeframe::M1, "86400 S"),
            (Timeframe::M5, "7 D"),
            (Timeframe::M15, "14 D"),
            (Timeframe::M30, "30 D"),
            (Timeframe::H1, "30 D"),
            (Timeframe::H2, "60 D"),
            (Timeframe::H3, "90 D"),
            (Timeframe::H4, "120 D"),
            (Timeframe::D1, "365 D"),
            (Timeframe::W1, "2 Y"),
            (Timeframe::Mo1, "2 Y"),
        ];
        for (tf, d) in want {
            let start = utc(2020, 2, 1, 0);
            let seg = split(tf, start, start + tf.max_request_span())[0];
            assert_eq!(seg.ib_duration().to_string(), d, "{tf}");
        }
    }

    #[test]
    fn bar_sizes_match_ib_and_ibapi() {
        let want = [
            "1 min", "5 mins", "15 mins", "30 mins", "1 hour", "2 hours", "3 hours", "4 hours",
            "1 day", "1 week", "1 month",
        ];
        for (tf, s) in Timeframe::ALL.into_iter().zip(want) {
            assert_eq!(bar_size_setting(tf), s);
            assert_eq!(ib_bar_size(tf).to_string(), s, "{tf}");
        }
    }

    #[test]
    fn what_to_show_matches_ibapi_spelling() {
        use WhatToShow::*;
        for w in [
            Trades,
            Midpoint,
            Bid,
            Ask,
            BidAsk,
            AdjustedLast,
            AggTrades,
            HistoricalVolatility,
            OptionImpliedVolatility,
        ] {
            assert_eq!(w.to_ibapi().to_string(), w.as_str());
            assert_eq!(w.counts_twice(), w == BidAsk);
        }
    }

    #[test]
    fn durations_convert_to_ibapi() {
        for (d, s) in [
            (IbDuration::new(30, DurationUnit::Seconds), "30 S"),
            (IbDuration::new(3, DurationUnit::Weeks), "3 W"),
            (IbDuration::new(6, DurationUnit::Months), "6 M"),
            (IbDuration::new(0, DurationUnit::Days), "1 D"),
        ] {
            assert_eq!(d.to_string(), s);
            assert_eq!(d.to_ibapi().to_string(), s);
            assert_eq!(
                d.to_ibapi(),
                s.parse::<ib::Duration>().expect("ibapi parses it")
            );
        }
    }
}
