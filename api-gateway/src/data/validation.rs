//! What a data request may say, checked before anything runs: the load body
//! ([`LoadRequest`] → [`LoadSpec`], each error naming its field).

use chrono::{DateTime, Utc};
use data_host::{InstrumentType, Symbol, Timeframe};
use host_service_base::HostError;
use serde::{Deserialize, Serialize};

use super::LoadMode;
// The one reading of these values is data-host's; re-exported for the gateway's API and CLI.
pub use data_host::params::{parse_instrument, parse_symbol, parse_time, parse_timeframe};

/// `POST /api/v1/data/load`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    /// Symbol, e.g. `AAPL`: letters, digits, `.` and `-` (case-insensitive).
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$", example = "AAPL")]
    pub symbol: String,
    /// Bar size: 1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w or 1M.
    #[schema(pattern = r"^(1m|5m|15m|30m|1h|2h|3h|4h|1d|1w|1M)$", example = "1d")]
    pub timeframe: String,
    /// `local` (store only), `tail` (the default: after the last stored bar),
    /// `backfill` (before the first) or `full` (both, plus gaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(local|tail|backfill|full)$", example = "local")]
    pub mode: Option<String>,
    /// First bar wanted (ISO date or time); default: the earliest the provider has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2024-01-02")]
    pub start_date: Option<String>,
    /// End of the range (exclusive); default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2024-01-31T00:00:00Z")]
    pub end_date: Option<String>,
    /// What the symbol is (KTRDR's `instrument_type`): `stock`, `forex`, `future`,
    /// `continuous_future` or `index` (IB's `STK`, `CASH`, `FUT`, `CONTFUT`, `IND` are
    /// accepted too); absent or empty: guessed from the symbol (a currency pair is
    /// forex, anything else a stock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "future")]
    pub instrument_type: Option<String>,
}

/// A load request after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSpec {
    /// The symbol.
    pub symbol: Symbol,
    /// The bar size.
    pub timeframe: Timeframe,
    /// The mode.
    pub mode: LoadMode,
    /// Explicit start, if given.
    pub start: Option<DateTime<Utc>>,
    /// Explicit end, if given.
    pub end: Option<DateTime<Utc>>,
    /// What the symbol is, if given; passed to the provider with every call of the load.
    pub instrument_type: Option<InstrumentType>,
    /// The id of the chain this load belongs to (the `X-Correlation-ID` it was started
    /// with); every event of the load carries it.
    pub correlation_id: Option<String>,
    /// The operation id to use (a command's id); `None` makes a fresh one.
    pub operation_id: Option<String>,
}

impl LoadRequest {
    /// Validates every field; each error names its field.
    pub fn validate(&self) -> Result<LoadSpec, HostError> {
        let symbol = parse_symbol("symbol", &self.symbol)?;
        let timeframe = parse_timeframe("timeframe", &self.timeframe)?;
        let mode = match self.mode.as_deref().map(str::trim) {
            None | Some("") => LoadMode::Tail,
            Some(text) => text
                .parse::<LoadMode>()
                .map_err(|e| HostError::bad_field("mode", e))?,
        };
        let opt_time = |field: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| parse_time(field, t))
                .transpose()
                .map_err(HostError::from)
        };
        let instrument_type = parse_instrument("instrument_type", self.instrument_type.as_deref())?;
        let start = opt_time("start_date", &self.start_date)?;
        let end = opt_time("end_date", &self.end_date)?;
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(HostError::bad_field(
                "start_date",
                format!("start_date {s} is not before end_date {e}"),
            ));
        }
        Ok(LoadSpec {
            symbol,
            timeframe,
            mode,
            start,
            end,
            instrument_type,
            correlation_id: None,
            operation_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(symbol: &str, timeframe: &str) -> LoadRequest {
        LoadRequest {
            symbol: symbol.into(),
            timeframe: timeframe.into(),
            ..LoadRequest::default()
        }
    }

    fn field_of(e: HostError) -> String {
        match e {
            HostError::BadRequest { field, .. } => field.unwrap_or_default(),
            other => panic!("not a bad request: {other:?}"),
        }
    }

    #[test]
    fn defaults_a_tail_load_and_takes_empty_values_for_absent() {
        let spec = LoadRequest {
            mode: Some(" ".into()),
            start_date: Some(String::new()),
            instrument_type: Some(String::new()),
            ..request(" aapl ", "1h")
        }
        .validate()
        .expect("valid");
        assert_eq!(spec.symbol.as_str(), "AAPL");
        assert_eq!(spec.timeframe, Timeframe::H1);
        assert_eq!(spec.mode, LoadMode::Tail);
        assert_eq!(
            (spec.start, spec.end, spec.instrument_type),
            (None, None, None)
        );
    }

    #[test]
    fn takes_the_instrument_type_in_either_spelling() {
        for (given, kind) in [
            ("future", InstrumentType::Future),
            ("IND", InstrumentType::Index),
        ] {
            let spec = LoadRequest {
                instrument_type: Some(given.into()),
                ..request("ES", "1d")
            }
            .validate()
            .expect("valid");
            assert_eq!(spec.instrument_type, Some(kind), "{given}");
        }
    }

    #[test]
    fn every_refusal_names_its_field() {
        let with = |edit: fn(&mut LoadRequest)| {
            let mut body = request("AAPL", "1d");
            edit(&mut body);
            body
        };
        let cases = [
            ("symbol", request("../x", "1d")),
            ("timeframe", request("AAPL", "2d")),
            ("mode", with(|b| b.mode = Some("all".into()))),
            ("start_date", with(|b| b.start_date = Some("soon".into()))),
            ("end_date", with(|b| b.end_date = Some("later".into()))),
            (
                "instrument_type",
                with(|b| b.instrument_type = Some("crypto".into())),
            ),
            (
                "start_date",
                with(|b| {
                    b.start_date = Some("2024-02-01".into());
                    b.end_date = Some("2024-01-01".into());
                }),
            ),
        ];
        for (field, body) in cases {
            let error = body.validate().expect_err("refused");
            assert_eq!(field_of(error), field, "{body:?}");
        }
    }
}
