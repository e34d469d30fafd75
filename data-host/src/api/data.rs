//! `/data/*`: historical bars, validation, symbol info, head timestamps.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use host_service_base::CancellationToken;
use host_service_base::server::{Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiState;
use super::pandas_json;
use super::wire;
use crate::params::{parse_instrument, parse_symbol, parse_time, parse_timeframe};
use crate::provider::{BarsRequest, DataError, Validation};
use crate::timeframe::Timeframe;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HistoricalRequest {
    pub(crate) symbol: String,
    pub(crate) timeframe: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) instrument_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HistoricalResponse {
    pub(crate) success: bool,
    pub(crate) data: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) rows: Option<usize>,
    /// hostbridge addition: [`DataError::code`] of a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<String>,
}

impl HistoricalRequest {
    fn parse(&self) -> Result<BarsRequest, DataError> {
        BarsRequest::new(
            parse_symbol("symbol", &self.symbol)?,
            parse_timeframe("timeframe", &self.timeframe)?,
            parse_time("start", &self.start)?,
            parse_time("end", &self.end)?,
            parse_instrument("instrument_type", self.instrument_type.as_deref())?,
        )
    }
}

fn failure(state: &ApiState, error: &DataError) -> Response {
    let message = error.to_string();
    state.stats.error(&message);
    tracing::info!(error = %message, "historical request failed");
    axum::Json(HistoricalResponse {
        success: false,
        data: None,
        error: Some(message),
        rows: None,
        error_code: Some(error.code()),
    })
    .into_response()
}

pub(super) async fn historical(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(body): Json<HistoricalRequest>,
) -> Response {
    state.stats.request();
    let request = match body.parse() {
        Ok(r) => r,
        Err(e) => return failure(&state, &e),
    };
    // Dropping this handler (the client went away) cancels the provider's work.
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let frame = match state.provider.bars(&request, &cancel).await {
        Ok(frame) => frame,
        Err(e) => return failure(&state, &e),
    };
    if !wire::wants_arrow(&headers) {
        // Streamed: encoded on the blocking pool chunk by chunk as the client reads.
        return match pandas_json::historical_body(&frame) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => failure(&state, &DataError::Store(e.to_string())),
        };
    }
    match wire::arrow_answer(frame).await {
        Ok(response) => response,
        Err(e) => failure(&state, &DataError::Store(e.to_string())),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ValidateRequest {
    pub(crate) symbol: String,
    pub(crate) timeframes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ValidationResponse {
    pub(crate) success: bool,
    pub(crate) is_valid: Option<bool>,
    pub(crate) error_message: Option<String>,
    pub(crate) contract_info: Option<Value>,
    pub(crate) head_timestamps: Option<std::collections::BTreeMap<String, Option<String>>>,
    pub(crate) error: Option<String>,
    /// hostbridge addition: [`DataError::code`] of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<String>,
}

impl ValidationResponse {
    fn from_result(state: &ApiState, result: Result<Validation, DataError>) -> Self {
        match result {
            Ok(v) => Self {
                success: true,
                is_valid: Some(v.is_valid),
                error_message: v.error_message,
                contract_info: v.contract_info.and_then(|c| serde_json::to_value(c).ok()),
                head_timestamps: Some(
                    v.head_timestamps
                        .into_iter()
                        .map(|(tf, t)| (tf, t.map(|t| t.to_rfc3339())))
                        .collect(),
                ),
                error: None,
                error_code: None,
            },
            Err(e) => {
                let message = e.to_string();
                state.stats.error(&message);
                Self {
                    success: false,
                    is_valid: None,
                    error_message: None,
                    contract_info: None,
                    head_timestamps: None,
                    error: Some(message),
                    error_code: Some(e.code()),
                }
            }
        }
    }
}

/// Most entries of `/data/validate`'s `timeframes`: one per timeframe there is. The
/// answer is keyed by timeframe, so more entries can only be repeats, and a source may
/// look each entry up (the local store reads a file per entry): a longer list is
/// refused naming `timeframes` rather than worked through.
const MAX_VALIDATE_TIMEFRAMES: usize = Timeframe::ALL.len();

async fn run_validate(
    state: &ApiState,
    raw_symbol: &str,
    raw_timeframes: &[String],
) -> Result<Validation, DataError> {
    let symbol = parse_symbol("symbol", raw_symbol)?;
    if raw_timeframes.len() > MAX_VALIDATE_TIMEFRAMES {
        return Err(DataError::invalid(
            "timeframes",
            format!(
                "{} entries; at most {MAX_VALIDATE_TIMEFRAMES} are taken, one per timeframe",
                raw_timeframes.len()
            ),
        ));
    }
    let mut timeframes = raw_timeframes
        .iter()
        .map(|t| parse_timeframe("timeframe", t))
        .collect::<Result<Vec<_>, _>>()?;
    // A repeat would only be looked up again: the answer holds each timeframe once.
    timeframes.sort_unstable();
    timeframes.dedup();
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    state.provider.validate(&symbol, &timeframes, &cancel).await
}

pub(super) async fn validate(
    State(state): State<ApiState>,
    Json(body): Json<ValidateRequest>,
) -> axum::Json<Value> {
    state.stats.request();
    let result = run_validate(
        &state,
        &body.symbol,
        body.timeframes.as_deref().unwrap_or_default(),
    )
    .await;
    axum::Json(
        serde_json::to_value(ValidationResponse::from_result(&state, result)).unwrap_or_default(),
    )
}

/// Timeframes whose head timestamps `symbol-info` reports (as the KTRDR service does).
const SYMBOL_INFO_TIMEFRAMES: [&str; 1] = ["1h"];

pub(super) async fn symbol_info(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
) -> axum::Json<Value> {
    state.stats.request();
    let timeframes: Vec<String> = SYMBOL_INFO_TIMEFRAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let result = run_validate(&state, &raw, &timeframes).await;
    axum::Json(
        serde_json::to_value(ValidationResponse::from_result(&state, result)).unwrap_or_default(),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct HeadQuery {
    symbol: String,
    timeframe: String,
    instrument_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HeadResponse {
    pub(crate) success: bool,
    pub(crate) timestamp: Option<String>,
    pub(crate) error: Option<String>,
    /// hostbridge addition: [`DataError::code`] of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<String>,
}

pub(super) async fn head_timestamp(
    State(state): State<ApiState>,
    Query(query): Query<HeadQuery>,
) -> axum::Json<HeadResponse> {
    state.stats.request();
    let result = async {
        let symbol = parse_symbol("symbol", &query.symbol)?;
        let timeframe = parse_timeframe("timeframe", &query.timeframe)?;
        let instrument = parse_instrument("instrument_type", query.instrument_type.as_deref())?;
        let cancel = CancellationToken::new();
        let _cancel_on_drop = cancel.clone().drop_guard();
        state
            .provider
            .head_timestamp(&symbol, timeframe, instrument, &cancel)
            .await
    }
    .await;
    axum::Json(match result {
        Ok(t) => HeadResponse {
            success: true,
            timestamp: t.map(|t| t.to_rfc3339()),
            error: None,
            error_code: None,
        },
        Err(e) => {
            let message = e.to_string();
            state.stats.error(&message);
            HeadResponse {
                success: false,
                timestamp: None,
                error: Some(message),
                error_code: Some(e.code()),
            }
        }
    })
}
