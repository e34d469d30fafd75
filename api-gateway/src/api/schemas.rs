//! The bodies of the gateway's answers as typed values, for the OpenAPI document.
//!
//! Where a handler's answer is one of these types, the handler serializes that very
//! type, so the schema and the wire cannot disagree. The few answers put together from
//! parts that live elsewhere (the health report, the error body of host-service-base,
//! the event envelope of event-stream) are described here field by field instead, and
//! `api-gateway/tests/it/api.rs` checks real answers against these schemas so that a
//! change on either side fails a test.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Every error answer (host-service-base's `ErrorBody`): a stable machine code, a
/// message for people, details, and `detail` repeating the message for clients written
/// for FastAPI services.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "success": false,
    "error": {"code": "bad_request", "message": "invalid `timeframe`: unknown timeframe `7m`", "details": {"field": "timeframe", "reason": "unknown timeframe `7m`"}},
    "detail": "invalid `timeframe`: unknown timeframe `7m`"
}))]
pub struct ErrorResponse {
    /// Always false.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorDetail,
    /// The message again.
    pub detail: String,
}

/// `error` of [`ErrorResponse`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code: `bad_request`, `unauthorized`, `not_found`, `conflict`,
    /// `busy`, `payload_too_large`, `service_unavailable`, `service_disabled`,
    /// `timeout`, `decode_error`, `cancelled`, `internal_error`, or an upstream code.
    pub code: String,
    /// For people.
    pub message: String,
    /// null or an object: `{field, reason}` for bad input (the field named),
    /// `{service}` when a service is down, `{retry_after_s}` when busy, ...
    #[schema(value_type = Option<Object>)]
    pub details: Value,
}

/// `{success: true, data}`: the answer of every route that has nothing to say beside
/// its data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Success<T> {
    /// Always true.
    pub success: bool,
    /// The answer.
    pub data: T,
}

impl<T> Success<T> {
    /// `{success: true, data}`.
    pub fn new(data: T) -> Self {
        Self {
            success: true,
            data,
        }
    }
}

/// `status` of the health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every service and sink can serve.
    Healthy,
    /// Something is down; the service's `error` says what.
    Degraded,
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always true (the gateway answered).
    pub success: bool,
    /// `healthy` or `degraded`.
    pub status: HealthStatus,
    /// The gateway's version.
    pub version: String,
    /// Seconds since the gateway started.
    pub uptime_seconds: f64,
    /// The services behind the gateway.
    pub services: ServicesHealth,
    /// The event layer.
    #[schema(value_type = EventsHealth)]
    pub events: Value,
}

/// `services` of the health report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServicesHealth {
    /// Market data (data-host or in-process).
    #[schema(value_type = ServiceHealthDoc)]
    pub data: crate::gateway::ServiceHealth,
    /// Training (training-host or in-process).
    #[schema(value_type = ServiceHealthDoc)]
    pub training: crate::gateway::ServiceHealth,
}

/// One service in the health report (the gateway's `ServiceHealth`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ServiceHealth)]
pub struct ServiceHealthDoc {
    /// `host` (a host service) or `local` (in-process).
    pub mode: String,
    /// Whether calls that need it can be served now.
    pub healthy: bool,
    /// Round trip of the last probe in ms (0 in-process; null when unknown).
    pub latency_ms: Option<f64>,
    /// Why it is not healthy (present only then).
    #[serde(default)]
    pub error: Option<String>,
    /// The host instances (host mode only).
    #[serde(default)]
    pub instances: Option<Vec<InstanceHealth>>,
    /// Service-specific figures (the store and the IB provider's state for data, the
    /// device and sessions for training).
    pub details: Value,
}

/// One host instance of a pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceHealth {
    /// Its base URL.
    pub url: String,
    /// Whether the last probe or call found it healthy (null: not probed yet).
    pub healthy: Option<bool>,
    /// Round trip of the last probe in ms.
    pub latency_ms: Option<f64>,
    /// Why it is down.
    pub error: Option<String>,
}

/// `events` of the health report: the event mode, counters and each sink's state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventsHealth {
    /// `socketio`, `kafka`, `both` or `off`.
    pub mode: String,
    /// Envelopes published.
    pub published: u64,
    /// Envelopes dropped (full buffers, lagging feed).
    pub dropped: u64,
    /// Clients of the in-process topic.
    pub subscribers: u64,
    /// `{kafka?: {connected, queued, dropped, ...}, socketio?: {...}}`.
    pub sinks: serde_json::Map<String, Value>,
    /// The commands consumer when `KAFKA_COMMANDS_TOPIC` is set, else null.
    pub commands: Option<CommandsHealth>,
}

/// `events.commands` of the health report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandsHealth {
    /// The commands topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// Where poison and exhausted commands go.
    pub dead_letter_topic: String,
    /// Whether the consumer runs.
    pub running: bool,
    /// The consumer's counters (null before it started).
    pub consumer: Value,
    /// The dedup store's state (null before it started).
    pub dedup: Value,
}

/// `data` of a started load.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "operation_id": "op_data_load_20240131_143000_1a2b3c4d", "status": "started",
    "operation_type": "data_load", "symbol": "AAPL", "timeframe": "1d", "mode": "local",
    "source": "ib", "correlation_id": null
}))]
pub struct LoadStarted {
    /// Follow it at `/api/v1/operations/{operation_id}`.
    pub operation_id: String,
    /// Always `started`.
    pub status: String,
    /// `data_load`.
    pub operation_type: String,
    /// The symbol.
    pub symbol: String,
    /// The bar size.
    pub timeframe: String,
    /// `local`, `tail`, `backfill` or `full`.
    pub mode: String,
    /// The provider that fetches (`ib`, `data-host`, ...).
    pub source: String,
    /// The `instrument_type` given (`stock`, `forex`, `future`, `continuous_future`,
    /// `index`); null: the provider guesses it from the symbol.
    #[serde(default)]
    pub instrument_type: Option<String>,
    /// The `X-Correlation-ID` it was started with.
    pub correlation_id: Option<String>,
}

/// Bars of one series as columns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "symbol": "FB", "timeframe": "1d", "points": 2,
    "start": "2012-05-18T00:00:00Z", "end": "2012-05-21T00:00:00Z",
    "dates": ["2012-05-18T00:00:00+00:00", "2012-05-21T00:00:00+00:00"],
    "ohlcv": [[42.05, 45.0, 38.0, 38.23, 573576400.0], [36.53, 36.66, 33.0, 34.03, 168192700.0]]
}))]
pub struct Bars {
    /// The symbol.
    pub symbol: String,
    /// The bar size.
    pub timeframe: String,
    /// Number of bars.
    pub points: usize,
    /// First bar's time (null when there are none).
    pub start: Option<DateTime<Utc>>,
    /// Last bar's time (null when there are none).
    pub end: Option<DateTime<Utc>>,
    /// Each bar's time, RFC 3339.
    pub dates: Vec<String>,
    /// Each bar's `[open, high, low, close, volume]`.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub ohlcv: Vec<[f64; 5]>,
}

/// The bars as an Arrow IPC stream (columns timestamp, open, high, low, close, volume),
/// with `Accept: application/vnd.apache.arrow.stream`.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ArrowStream(pub Vec<u8>);

/// `data` of the head-timestamp answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeadTimestamp {
    /// The symbol.
    pub symbol: String,
    /// The bar size.
    pub timeframe: String,
    /// Where the provider's data begins (null: it does not say).
    pub head_timestamp: Option<DateTime<Utc>>,
    /// The `instrument_type` asked for; null: the provider guessed it from the symbol.
    #[serde(default)]
    pub instrument_type: Option<String>,
    /// The provider asked.
    pub source: String,
}

/// `data` of a started training.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "task_id": "op_training_20240131_143000_1a2b3c4d", "operation_id": "op_training_20240131_143000_1a2b3c4d",
    "status": "started", "mode": "local", "instance": "in-process", "strategy": "rsi_macd_mlp",
    "symbols": ["AAPL"], "timeframes": ["1d"], "correlation_id": null
}))]
pub struct TrainingStarted {
    /// The operation id, also the session id on the training host.
    pub task_id: String,
    /// The same id.
    pub operation_id: String,
    /// Always `started`.
    pub status: String,
    /// `host` or `local`.
    pub mode: Option<String>,
    /// Where the session runs (a training-host URL or `in-process`).
    pub instance: Option<String>,
    /// The strategy's name.
    pub strategy: Option<String>,
    /// The symbols trained on.
    pub symbols: Option<Vec<String>>,
    /// The timeframes used.
    pub timeframes: Option<Vec<String>>,
    /// The `X-Correlation-ID` it was started with.
    pub correlation_id: Option<String>,
}

/// `POST /api/v1/trainings/start` → 202.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrainingStartedResponse {
    /// Always true.
    pub success: bool,
    /// The operation id (KTRDR's field).
    pub task_id: String,
    /// The training.
    pub data: TrainingStarted,
}

/// `data` of the strategies answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Strategies {
    /// The strategies directory.
    #[schema(value_type = String)]
    pub directory: PathBuf,
    /// The names `strategy_name` accepts, sorted.
    pub strategies: Vec<String>,
}

/// The `data:` of each `GET /api/v1/events` event: the event envelope of DESIGN.md
/// (the SSE event name is its `type`, the SSE id its `id`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventEnvelope {
    /// UUID v7.
    pub id: uuid::Uuid,
    /// Dotted type: `operation.started|progress|completed|failed|cancelled`,
    /// `data.loaded`, `training.epoch`, `host.health_changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 UTC with milliseconds.
    pub timestamp: DateTime<Utc>,
    /// The emitting service.
    pub source: String,
    /// The id that started the chain.
    pub correlation_id: Option<String>,
    /// What it is about (an operation id, a symbol).
    pub subject: Option<String>,
    /// The payload of the type.
    pub data: Value,
}

/// A string field of an operation's metadata.
pub(crate) fn meta_text(metadata: &Value, key: &str) -> Option<String> {
    metadata.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A list-of-strings field of an operation's metadata.
pub(crate) fn meta_texts(metadata: &Value, key: &str) -> Option<Vec<String>> {
    metadata.get(key).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}
