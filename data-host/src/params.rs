//! Request values as text → typed values, each failure naming its field: the one
//! reading of a symbol, a timeframe, a time and an instrument type for data-host's API
//! and the gateway's (its API, its load requests, its CLI), so the same text is accepted
//! or refused the same way, with the same words, wherever it is given.

use chrono::{DateTime, Utc};

use crate::provider::DataError;
use crate::store::csv::parse_timestamp;
use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

/// A symbol ([`Symbol::parse`]: trimmed, upper-cased, safe characters only).
pub fn parse_symbol(field: &'static str, text: &str) -> Result<Symbol, DataError> {
    Symbol::parse(text).map_err(|e| DataError::invalid(field, e.to_string()))
}

/// A timeframe (`1m` … `1M`).
pub fn parse_timeframe(field: &'static str, text: &str) -> Result<Timeframe, DataError> {
    text.parse::<Timeframe>()
        .map_err(|e| DataError::invalid(field, e.to_string()))
}

/// An ISO 8601 date or time; a time without an offset is UTC.
pub fn parse_time(field: &'static str, text: &str) -> Result<DateTime<Utc>, DataError> {
    parse_timestamp(text)
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| {
            DataError::invalid(
                field,
                format!(
                    "`{}` is not an ISO 8601 date or time (e.g. 2024-01-31 or 2024-01-31T14:30:00Z)",
                    text.escape_default()
                ),
            )
        })
}

/// An optional instrument type; absent or empty is `None` (taken from the symbol).
pub fn parse_instrument(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<InstrumentType>, DataError> {
    InstrumentType::parse_optional(text).map_err(|e| DataError::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: DataError) -> &'static str {
        match e {
            DataError::Invalid { field, .. } => field,
            other => panic!("not Invalid: {other:?}"),
        }
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            parse_symbol("symbol", " aapl ").map(|s| s.to_string()).ok(),
            Some("AAPL".into())
        );
        assert_eq!(parse_timeframe("timeframe", "1h").ok(), Some(Timeframe::H1));
        let t = parse_time("start", "2024-01-31").expect("a date");
        assert_eq!(t.to_rfc3339(), "2024-01-31T00:00:00+00:00");
        assert_eq!(
            parse_instrument("instrument_type", Some("")).ok(),
            Some(None)
        );
        assert_eq!(
            parse_instrument("instrument_type", Some("forex")).ok(),
            Some(Some(InstrumentType::Forex))
        );
    }

    #[test]
    fn every_failure_names_its_field() {
        assert_eq!(
            field_of(parse_symbol("sym", "../x").expect_err("bad")),
            "sym"
        );
        assert_eq!(
            field_of(parse_timeframe("tf", "2d").expect_err("bad")),
            "tf"
        );
        assert_eq!(
            field_of(parse_instrument("it", Some("crypto")).expect_err("bad")),
            "it"
        );
        let e = parse_time("end_date", "yesterday").expect_err("bad");
        assert!(e.to_string().contains("ISO 8601 date or time"), "{e}");
        assert_eq!(field_of(e), "end_date");
    }
}
