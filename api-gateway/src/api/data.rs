//! Data routes: start a load, list the store, read bars (JSON or Arrow).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use data_host::api::wire::{arrow_answer, wants_arrow};
use host_service_base::server::Json;
use host_service_base::{CancellationToken, HostError};

use super::schemas::{
    ArrowStream, Bars, ErrorResponse, HeadTimestamp, LoadStarted, Success, meta_text,
};
use super::{bars_json, correlation_id};
use crate::data::{
    LoadRequest, StoredSeries, parse_instrument, parse_symbol, parse_time, parse_timeframe,
};
use crate::gateway::Gateway;

/// `POST /api/v1/data/load` → 202 `{success, data: {operation_id, status, ...}}`.
#[utoipa::path(post, path = "/api/v1/data/load", tag = "data",
    request_body(content = LoadRequest, examples(
        ("local" = (summary = "bars already in the store (no provider call)", value = json!({"symbol": "AAPL", "timeframe": "1d", "mode": "local"}))),
        ("tail" = (summary = "fetch what is newer than the last stored bar", value = json!({"symbol": "AAPL", "timeframe": "1h", "mode": "tail", "start_date": "2024-01-02", "end_date": "2024-01-31"}))),
        ("future" = (summary = "a non-stock instrument: say what it is", value = json!({"symbol": "ES", "timeframe": "1h", "mode": "tail", "instrument_type": "future"}))),
    )),
    params(("X-Correlation-ID" = Option<String>, Header, description = "the chain this load belongs to: 1 to 128 visible ASCII characters; every event of the load carries it")),
    responses(
        (status = 202, description = "started; follow it at /api/v1/operations/{operation_id}", body = Success<LoadStarted>),
        (status = 400, description = "a bad field, named in `error.details.field`", body = ErrorResponse),
        (status = 409, description = "a load of the same series is running", body = ErrorResponse),
        (status = 503, description = "data-host is down (host mode) and the mode needs it", body = ErrorResponse),
    ))]
pub(super) async fn load(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Json(request): Json<LoadRequest>,
) -> Result<Response, HostError> {
    let correlation = correlation_id(&headers)?;
    let info = gateway.start_load(&request, crate::Origin::correlated(correlation))?;
    let text = |key| meta_text(&info.metadata, key).unwrap_or_default();
    let body = Success::new(LoadStarted {
        status: "started".to_owned(),
        symbol: text("symbol"),
        timeframe: text("timeframe"),
        mode: text("mode"),
        source: text("source"),
        instrument_type: meta_text(&info.metadata, "instrument_type"),
        correlation_id: meta_text(&info.metadata, "correlation_id"),
        operation_type: info.operation_type,
        operation_id: info.operation_id,
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `GET /api/v1/data`: every stored series with its coverage.
#[utoipa::path(get, path = "/api/v1/data", tag = "data",
    responses(
        (status = 200, description = "every stored series", body = Success<Vec<StoredSeries>>),
    ))]
pub(super) async fn inventory(State(gateway): State<Gateway>) -> Result<Response, HostError> {
    let data = gateway.data().inventory().await?;
    Ok(axum::Json(Success::new(data)).into_response())
}

/// `GET /api/v1/data/{symbol}/{timeframe}?start&end` (also `start_date`/`end_date`):
/// stored bars in `[start, end)`; Arrow IPC when the client accepts it, else JSON
/// streamed as it is written (no ceiling on the bars: memory stays flat).
#[utoipa::path(get, path = "/api/v1/data/{symbol}/{timeframe}", tag = "data",
    params(
        ("symbol" = String, Path, description = "letters, digits, `.` and `-`", example = "FB"),
        ("timeframe" = String, Path, description = "1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w or 1M", example = "1d"),
        ("start" = Option<String>, Query, description = "first bar (ISO date or time; alias start_date)", example = "2012-05-18"),
        ("end" = Option<String>, Query, description = "end, exclusive (alias end_date)", example = "2012-06-01"),
    ),
    responses(
        (status = 200, description = "the bars as JSON columns, or an Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream`",
            content(
                (Success<Bars> = "application/json"),
                (ArrowStream = "application/vnd.apache.arrow.stream"),
            )),
        (status = 400, description = "a bad parameter, named in `error.details.field`", body = ErrorResponse),
        (status = 404, description = "nothing stored for the series", body = ErrorResponse),
    ))]
pub(super) async fn bars(
    State(gateway): State<Gateway>,
    Path((symbol, timeframe)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HostError> {
    let symbol = parse_symbol("symbol", &symbol)?;
    let timeframe = parse_timeframe("timeframe", &timeframe)?;
    let (mut start, mut end): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        // The error names the parameter as the client spelled it.
        match key.as_ref() {
            "start" => start = Some(parse_time("start", value)?),
            "start_date" => start = Some(parse_time("start_date", value)?),
            "end" => end = Some(parse_time("end", value)?),
            "end_date" => end = Some(parse_time("end_date", value)?),
            _ => {}
        }
    }
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        return Err(HostError::bad_field(
            "start",
            format!("start {s} is not before end {e}"),
        ));
    }
    let frame = gateway.data().bars(&symbol, timeframe, start, end).await?;
    if wants_arrow(&headers) {
        return arrow_answer(frame).await.map_err(HostError::internal);
    }
    // JSON of any length: written on the blocking pool as the client reads it.
    let body = bars_json::bars_body(symbol.as_str(), timeframe.as_str(), &frame)
        .map_err(HostError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/v1/data/{symbol}/{timeframe}/head-timestamp?instrument_type`: where the
/// provider's data begins (asked of data-host in host mode, of IB in fallback mode).
#[utoipa::path(get, path = "/api/v1/data/{symbol}/{timeframe}/head-timestamp", tag = "data",
    params(
        ("symbol" = String, Path, description = "letters, digits, `.` and `-`", example = "AAPL"),
        ("timeframe" = String, Path, description = "1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w or 1M", example = "1d"),
        ("instrument_type" = Option<String>, Query, description = "stock, forex, future, continuous_future or index (IB's STK, CASH, FUT, CONTFUT, IND too); absent or empty: guessed from the symbol", example = "stock"),
    ),
    responses(
        (status = 200, description = "where the provider's data begins", body = Success<HeadTimestamp>),
        (status = 400, description = "a bad parameter, named in `error.details.field`", body = ErrorResponse),
        (status = 404, description = "the provider does not know the symbol", body = ErrorResponse),
        (status = 502, description = "the provider answered with an error", body = ErrorResponse),
        (status = 503, description = "the provider is unreachable; the message names it", body = ErrorResponse),
        (status = 504, description = "the provider did not answer in time", body = ErrorResponse),
    ))]
pub(super) async fn head_timestamp(
    State(gateway): State<Gateway>,
    Path((symbol, timeframe)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, HostError> {
    let symbol = parse_symbol("symbol", &symbol)?;
    let timeframe = parse_timeframe("timeframe", &timeframe)?;
    // Other parameters are ignored, as on the bars route; a repeated one: the last wins.
    let query = query.unwrap_or_default();
    let given = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "instrument_type")
        .map(|(_, value)| value)
        .last();
    let instrument_type = parse_instrument("instrument_type", given.as_deref())?;
    gateway.require_data_provider()?;
    // Dropping the request (client gone) drops this future and the upstream call.
    let cancel = CancellationToken::new();
    let _guard = cancel.clone().drop_guard();
    let head = gateway
        .data()
        .provider()
        .head_timestamp(&symbol, timeframe, instrument_type, &cancel)
        .await?;
    let data = HeadTimestamp {
        symbol: symbol.as_str().to_owned(),
        timeframe: timeframe.as_str().to_owned(),
        head_timestamp: head,
        instrument_type: instrument_type.map(|i| i.as_str().to_owned()),
        source: gateway.data().provider().name().to_owned(),
    };
    Ok(axum::Json(Success::new(data)).into_response())
}
