//! Timeframes (bar sizes) of the contract: `1m 5m 15m 30m 1h 2h 3h 4h 1d 1w 1M`.
//!
//! An unknown timeframe is an error naming the valid ones, never silently "1 day" (the
//! bug this replaces). `1m` is a minute and `1M` a month: parsing is case-sensitive.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A bar size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeframe {
    /// 1 minute.
    M1,
    /// 5 minutes.
    M5,
    /// 15 minutes.
    M15,
    /// 30 minutes.
    M30,
    /// 1 hour.
    H1,
    /// 2 hours.
    H2,
    /// 3 hours.
    H3,
    /// 4 hours.
    H4,
    /// 1 day.
    D1,
    /// 1 week.
    W1,
    /// 1 month.
    Mo1,
}

/// The text given is not a timeframe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeframe `{0}`; expected one of 1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w, 1M")]
pub struct UnknownTimeframe(pub String);

impl Timeframe {
    /// Every timeframe, shortest first.
    pub const ALL: [Self; 11] = [
        Self::M1,
        Self::M5,
        Self::M15,
        Self::M30,
        Self::H1,
        Self::H2,
        Self::H3,
        Self::H4,
        Self::D1,
        Self::W1,
        Self::Mo1,
    ];

    /// The contract spelling (`1h`, `1M`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H2 => "2h",
            Self::H3 => "3h",
            Self::H4 => "4h",
            Self::D1 => "1d",
            Self::W1 => "1w",
            Self::Mo1 => "1M",
        }
    }

    /// The nominal length of one bar (a month counts 30 days: use it for spacing
    /// estimates, not calendar arithmetic).
    pub fn bar_length(self) -> TimeDelta {
        match self {
            Self::M1 => TimeDelta::minutes(1),
            Self::M5 => TimeDelta::minutes(5),
            Self::M15 => TimeDelta::minutes(15),
            Self::M30 => TimeDelta::minutes(30),
            Self::H1 => TimeDelta::hours(1),
            Self::H2 => TimeDelta::hours(2),
            Self::H3 => TimeDelta::hours(3),
            Self::H4 => TimeDelta::hours(4),
            Self::D1 => TimeDelta::days(1),
            Self::W1 => TimeDelta::weeks(1),
            Self::Mo1 => TimeDelta::days(30),
        }
    }

    /// The longest range one IB historical request may span for this bar size; longer
    /// ranges are split into segments of at most this length.
    pub fn max_request_span(self) -> TimeDelta {
        match self {
            Self::M1 => TimeDelta::days(1),
            Self::M5 => TimeDelta::days(7),
            Self::M15 => TimeDelta::days(14),
            Self::M30 | Self::H1 => TimeDelta::days(30),
            Self::H2 => TimeDelta::days(60),
            Self::H3 => TimeDelta::days(90),
            Self::H4 => TimeDelta::days(120),
            Self::D1 => TimeDelta::days(365),
            Self::W1 | Self::Mo1 => TimeDelta::days(730),
        }
    }

    /// Whether bars are intraday (shorter than a day).
    pub fn is_intraday(self) -> bool {
        self < Self::D1
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Timeframe {
    type Err = UnknownTimeframe;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Self::ALL
            .into_iter()
            .find(|tf| tf.as_str() == trimmed)
            .ok_or_else(|| UnknownTimeframe(s.to_owned()))
    }
}

impl Serialize for Timeframe {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_contract_spelling_and_nothing_else() {
        for tf in Timeframe::ALL {
            assert_eq!(tf.as_str().parse::<Timeframe>(), Ok(tf));
        }
        assert_eq!("1M".parse::<Timeframe>(), Ok(Timeframe::Mo1));
        assert_eq!("1m".parse::<Timeframe>(), Ok(Timeframe::M1));
        for bad in ["", "1D", "1 day", "7m", "1min", "60"] {
            let err = bad.parse::<Timeframe>().expect_err(bad);
            assert!(err.to_string().contains("expected one of"), "{err}");
        }
    }

    #[test]
    fn spans_hold_whole_bars() {
        for tf in Timeframe::ALL {
            assert!(tf.max_request_span() >= tf.bar_length(), "{tf}");
        }
    }
}
