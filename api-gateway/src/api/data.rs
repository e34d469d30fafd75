//! Data routes: start a load, list the store, read bars (JSON or Arrow).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use data_host::api::wire::{ARROW_STREAM, to_arrow};
use data_host::bars::frame_to_bars;
use host_service_base::server::Json;
use host_service_base::{CancellationToken, HostError};
use serde_json::json;

use super::{correlation_id, envelope};
use crate::data::{LoadRequest, parse_symbol, parse_time, parse_timeframe};
use crate::gateway::Gateway;

/// `POST /api/v1/data/load` → 202 `{success, data: {operation_id, status, ...}}`.
#[utoipa::path(post, path = "/api/v1/data/load", tag = "data", request_body = LoadRequest,
    responses(
        (status = 202, description = "`{success, data: {operation_id, status: started, operation_type, symbol, timeframe, mode, source}}`; follow it at /api/v1/operations/{operation_id}"),
        (status = 400, description = "a bad field, named in `error.details.field`"),
        (status = 409, description = "a load of the same series is running"),
        (status = 503, description = "data-host is down (host mode) and the mode needs it"),
    ))]
pub(super) async fn load(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Json(request): Json<LoadRequest>,
) -> Result<Response, HostError> {
    let correlation = correlation_id(&headers)?;
    let info = gateway.start_load(&request, crate::Origin::correlated(correlation))?;
    let body = envelope(json!({
        "operation_id": info.operation_id,
        "status": "started",
        "operation_type": info.operation_type,
        "symbol": info.metadata["symbol"],
        "timeframe": info.metadata["timeframe"],
        "mode": info.metadata["mode"],
        "source": info.metadata["source"],
        "correlation_id": info.metadata["correlation_id"],
    }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

/// `GET /api/v1/data`: every stored series with its coverage.
#[utoipa::path(get, path = "/api/v1/data", tag = "data",
    responses((status = 200, description = "`{success, data: [{symbol, timeframe, first, last, rows}]}`")))]
pub(super) async fn inventory(State(gateway): State<Gateway>) -> Result<Response, HostError> {
    Ok(envelope(gateway.data().inventory().await?).into_response())
}

/// `GET /api/v1/data/{symbol}/{timeframe}?start&end` (also `start_date`/`end_date`):
/// stored bars in `[start, end)`; Arrow IPC when the client accepts it.
#[utoipa::path(get, path = "/api/v1/data/{symbol}/{timeframe}", tag = "data",
    params(
        ("symbol" = String, Path, description = "e.g. AAPL"),
        ("timeframe" = String, Path, description = "1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w or 1M"),
        ("start" = Option<String>, Query, description = "first bar (ISO date or time; alias start_date)"),
        ("end" = Option<String>, Query, description = "end, exclusive (alias end_date)"),
    ),
    responses(
        (status = 200, description = "`{success, data: {symbol, timeframe, points, start, end, dates, ohlcv}}`, or an Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream`"),
        (status = 400, description = "a bad parameter, named"),
        (status = 404, description = "nothing stored for the series"),
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
        match key.as_ref() {
            "start" | "start_date" => start = Some(parse_time(&key, value)?),
            "end" | "end_date" => end = Some(parse_time(&key, value)?),
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
    let wants_arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ARROW_STREAM));
    // Encoding a large frame is CPU work: off the async threads.
    tokio::task::spawn_blocking(move || -> Result<Response, HostError> {
        if wants_arrow {
            let bytes = to_arrow(&frame).map_err(HostError::internal)?;
            return Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], Body::from(bytes)).into_response());
        }
        let bars = frame_to_bars(&frame).map_err(HostError::internal)?;
        let dates: Vec<String> = bars.iter().map(|b| b.timestamp.to_rfc3339()).collect();
        let ohlcv: Vec<[f64; 5]> = bars
            .iter()
            .map(|b| [b.open, b.high, b.low, b.close, b.volume])
            .collect();
        Ok(envelope(json!({
            "symbol": symbol.as_str(),
            "timeframe": timeframe.as_str(),
            "points": bars.len(),
            "start": bars.first().map(|b| b.timestamp),
            "end": bars.last().map(|b| b.timestamp),
            "dates": dates,
            "ohlcv": ohlcv,
        }))
        .into_response())
    })
    .await
    .map_err(|e| HostError::internal(format_args!("encoding task failed: {e}")))?
}

/// `GET /api/v1/data/{symbol}/{timeframe}/head-timestamp`: where the provider's data
/// begins (asked of data-host in host mode, of IB in fallback mode).
#[utoipa::path(get, path = "/api/v1/data/{symbol}/{timeframe}/head-timestamp", tag = "data",
    params(("symbol" = String, Path, description = "e.g. AAPL"), ("timeframe" = String, Path, description = "e.g. 1d")),
    responses(
        (status = 200, description = "`{success, data: {symbol, timeframe, head_timestamp, source}}`"),
        (status = 503, description = "the provider is unreachable; the message names it"),
    ))]
pub(super) async fn head_timestamp(
    State(gateway): State<Gateway>,
    Path((symbol, timeframe)): Path<(String, String)>,
) -> Result<Response, HostError> {
    let symbol = parse_symbol("symbol", &symbol)?;
    let timeframe = parse_timeframe("timeframe", &timeframe)?;
    gateway.require_data_provider()?;
    // Dropping the request (client gone) drops this future and the upstream call.
    let cancel = CancellationToken::new();
    let _guard = cancel.clone().drop_guard();
    let head = gateway
        .data()
        .provider()
        .head_timestamp(&symbol, timeframe, None, &cancel)
        .await?;
    Ok(envelope(json!({
        "symbol": symbol.as_str(),
        "timeframe": timeframe.as_str(),
        "head_timestamp": head,
        "source": gateway.data().provider().name(),
    }))
    .into_response())
}
