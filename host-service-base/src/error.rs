//! `HostError`: the one error type that crosses every hostbridge service boundary.
//!
//! Servers turn it into an HTTP answer with [`HostError::into_response`] (one table:
//! [`HostError::code`] and [`HostError::status`]); clients turn an upstream answer back
//! into it with [`HostError::from_upstream`]. The two are inverse: a variant sent by a
//! server comes back as the same variant at the client. Internal details (source chains,
//! addresses) are logged where the error is answered, never sent.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A boxed error source, as carried by [`HostError::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Status nginx made common for "the client went away / cancelled"; no standard code fits.
pub const STATUS_CANCELLED: u16 = 499;

/// Every failure a host service call can end in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The service is switched off by configuration (not a fault; do not retry).
    #[error("{service} is disabled")]
    Disabled { service: String },
    /// The service could not be reached or refused to serve (connect error, 503).
    #[error("{service} is unavailable: {source}")]
    Unavailable {
        service: String,
        #[source]
        source: BoxError,
    },
    /// The service did not answer in time.
    #[error("{service} did not answer within {}", humantime::format_duration(*.after))]
    Timeout { service: String, after: Duration },
    /// The service answered with an error this crate has no variant for.
    #[error("upstream answered HTTP {status} ({code}): {message}")]
    Upstream {
        status: u16,
        code: String,
        message: String,
    },
    /// The answer could not be decoded.
    #[error("could not decode {what}: {message}")]
    Decode { what: String, message: String },
    /// The caller's cancellation token fired (or the operation was cancelled).
    #[error("cancelled")]
    Cancelled,
    /// The request is invalid; `field` names the offending input when there is one.
    #[error("{}", bad_request_text(.field.as_deref(), .message))]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// The caller did not prove who it is (missing or wrong API key).
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
    /// The named thing does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The request conflicts with current state (duplicate id, already finished, ...).
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// The service is up but at a limit (concurrent sessions, rate); retry later.
    #[error("busy: {message}")]
    Busy {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request body is larger than the service accepts.
    #[error("payload too large: {message}")]
    PayloadTooLarge { message: String },
    /// A bug or an unexpected local failure. The message sent to clients is generic.
    #[error("internal error: {message}")]
    Internal { message: String },
}

fn bad_request_text(field: Option<&str>, message: &str) -> String {
    match field {
        Some(f) => format!("invalid `{f}`: {message}"),
        None => format!("bad request: {message}"),
    }
}

/// An error that arrived over the wire as text: the source of a reconstructed
/// [`HostError::Unavailable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

/// The JSON body of every error answer. `detail` repeats the message so that clients
/// written for FastAPI services (`{"detail": ...}`) read it too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub success: bool,
    pub error: ErrorInfo,
    pub detail: Detail,
}

/// FastAPI's `detail`: a message, or (422 request validation) one entry per problem.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Detail {
    Message(String),
    Issues(Vec<ValidationIssue>),
}

/// One entry of FastAPI's 422 `detail` list: where (`["body", "symbol"]`), what, and a
/// pydantic-style error type (`missing`, `json_invalid`, `string_type`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ValidationIssue {
    pub loc: Vec<LocPart>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A step of a [`ValidationIssue`] location: a field name or a list index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum LocPart {
    Index(u64),
    Key(String),
}

impl ValidationIssue {
    /// The field as a key path, without FastAPI's leading `body`/`query`/`path`/
    /// `header` segment (`["body", "orders", 1, "qty"]` → `orders[1].qty`); `None` when
    /// the problem is the whole input.
    pub fn field(&self) -> Option<String> {
        let path = loc_text(self.loc.get(1..).unwrap_or_default());
        (!path.is_empty()).then_some(path)
    }
}

/// `error` inside [`ErrorBody`]: a stable machine code, a human message, and details.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Value,
}

/// Seconds a 503 tells clients to wait when nothing better is known.
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

impl HostError {
    /// Shorthand for a bad-request error naming `field`.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Shorthand for [`HostError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    /// Shorthand for [`HostError::Internal`].
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal {
            message: message.to_string(),
        }
    }

    /// Shorthand for [`HostError::Unavailable`] with a source error.
    pub fn unavailable(service: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            service: service.into(),
            source: source.into(),
        }
    }

    /// The stable machine code of this error; with [`HostError::status`], the one table.
    pub fn code(&self) -> &str {
        match self {
            Self::Disabled { .. } => "service_disabled",
            Self::Unavailable { .. } => "service_unavailable",
            Self::Timeout { .. } => "timeout",
            Self::Upstream { code, .. } => code,
            Self::Decode { .. } => "decode_error",
            Self::Cancelled => "cancelled",
            Self::BadRequest { .. } => "bad_request",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::Busy { .. } => "busy",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Internal { .. } => "internal_error",
        }
    }

    /// The HTTP status a server answers this error with. Upstream client errors (4xx)
    /// pass through unchanged; upstream server errors become 502 (the gateway rule:
    /// timeout 504, upstream failure 502, overload 503).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Disabled { .. } | Self::Unavailable { .. } | Self::Busy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { status, .. } => match StatusCode::from_u16(*status) {
                Ok(s) if s.is_client_error() => s,
                _ => StatusCode::BAD_GATEWAY,
            },
            Self::Decode { .. } => StatusCode::BAD_GATEWAY,
            Self::Cancelled => {
                StatusCode::from_u16(STATUS_CANCELLED).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether a client may try the same call again (given the call is safe to repeat).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Timeout { .. } | Self::Busy { .. } => true,
            Self::Upstream { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// True when the call provably did not take effect at the service: the request
    /// never left this process (the connection was refused), or the service answered
    /// and refused it (503, busy, a 4xx other than 409). False when it may have (a
    /// timeout, a connection lost after sending, an unreadable answer, a 409 that may be
    /// our own earlier attempt): work that must not run twice may not be sent elsewhere.
    pub fn did_not_take_effect(&self) -> bool {
        match self {
            Self::Unavailable { source, .. } => {
                self.never_sent() || source.downcast_ref::<RemoteError>().is_some()
            }
            Self::Disabled { .. }
            | Self::Busy { .. }
            | Self::BadRequest { .. }
            | Self::Unauthorized { .. }
            | Self::NotFound { .. }
            | Self::PayloadTooLarge { .. } => true,
            Self::Upstream { status, .. } => (400..500).contains(status) && *status != 409,
            _ => false,
        }
    }

    /// True when no byte of the request left this process (the connection was refused
    /// or timed out): the service cannot have seen it.
    pub fn never_sent(&self) -> bool {
        let Self::Unavailable { source, .. } = self else {
            return false;
        };
        // The host client's own transport, or a reqwest caller (the webhook writer).
        source
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
            || source
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_connect)
    }

    /// The message clients see. Internal errors and source chains stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable { service, .. } => format!("{service} is unavailable"),
            Self::Internal { .. } => "internal error; see the service log".to_owned(),
            Self::Upstream { message, .. } | Self::NotFound { message } => message.clone(),
            Self::Unauthorized { message } => message.clone(),
            Self::Conflict { message } | Self::Busy { message, .. } => message.clone(),
            Self::PayloadTooLarge { message } => message.clone(),
            other => other.to_string(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Disabled { service } | Self::Unavailable { service, .. } => {
                json!({ "service": service })
            }
            Self::Timeout { service, after } => {
                json!({ "service": service, "after_ms": after.as_millis() as u64 })
            }
            Self::Upstream { status, .. } => json!({ "upstream_status": status }),
            Self::Decode { what, .. } => json!({ "what": what }),
            Self::BadRequest { field, message } => json!({ "field": field, "reason": message }),
            Self::Busy { retry_after, .. } => {
                json!({ "retry_after_s": retry_after.map(|d| d.as_secs_f64()) })
            }
            _ => Value::Null,
        }
    }

    /// The JSON body a server sends for this error.
    pub fn to_body(&self) -> ErrorBody {
        let message = self.public_message();
        ErrorBody {
            success: false,
            error: ErrorInfo {
                code: self.code().to_owned(),
                message: message.clone(),
                details: self.details(),
            },
            detail: Detail::Message(message),
        }
    }

    /// Turns an upstream error answer back into a `HostError`. `service` names the
    /// service that answered (used when the body does not say). Bodies this crate wrote
    /// round-trip to the same variant; other bodies (FastAPI `{"detail": ...}`, plain
    /// text) map by status.
    pub fn from_upstream(
        service: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let parsed = parse_error_body(body);
        let message = parsed
            .as_ref()
            .map(|p| p.message.clone())
            .unwrap_or_else(|| fallback_message(status, body));
        let details = parsed.as_ref().map(|p| &p.details).unwrap_or(&Value::Null);
        let detail_str = |key: &str| details.get(key).and_then(Value::as_str).map(str::to_owned);
        let service_named = || detail_str("service").unwrap_or_else(|| service.to_owned());
        let retry_after = retry_after(headers);

        if let Some(code) = parsed.as_ref().and_then(|p| p.code.as_deref()) {
            match code {
                "service_disabled" => {
                    return Self::Disabled {
                        service: service_named(),
                    };
                }
                "service_unavailable" => {
                    return Self::Unavailable {
                        service: service_named(),
                        source: Box::new(RemoteError(message)),
                    };
                }
                "timeout" => {
                    let after = details.get("after_ms").and_then(Value::as_u64).unwrap_or(0);
                    return Self::Timeout {
                        service: service_named(),
                        after: Duration::from_millis(after),
                    };
                }
                "decode_error" => {
                    let what = detail_str("what").unwrap_or_else(|| service.to_owned());
                    return Self::Decode {
                        what,
                        message: strip_prefix(&message, "could not decode "),
                    };
                }
                "cancelled" => return Self::Cancelled,
                "bad_request" => {
                    let reason = detail_str("reason").unwrap_or(message);
                    return Self::BadRequest {
                        field: detail_str("field"),
                        message: reason,
                    };
                }
                "unauthorized" => return Self::Unauthorized { message },
                "not_found" => return Self::NotFound { message },
                "conflict" => return Self::Conflict { message },
                "busy" => {
                    return Self::Busy {
                        message,
                        retry_after,
                    };
                }
                "payload_too_large" => return Self::PayloadTooLarge { message },
                "internal_error" => return Self::Internal { message },
                other => {
                    let upstream = details
                        .get("upstream_status")
                        .and_then(Value::as_u64)
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(status.as_u16());
                    return Self::Upstream {
                        status: upstream,
                        code: other.to_owned(),
                        message,
                    };
                }
            }
        }

        match status.as_u16() {
            400 | 422 => Self::BadRequest {
                field: detail_str("field"),
                message,
            },
            401 => Self::Unauthorized { message },
            404 => Self::NotFound { message },
            409 => Self::Conflict { message },
            413 => Self::PayloadTooLarge { message },
            429 => Self::Busy {
                message,
                retry_after,
            },
            STATUS_CANCELLED => Self::Cancelled,
            503 => Self::Unavailable {
                service: service.to_owned(),
                source: Box::new(RemoteError(message)),
            },
            s => Self::Upstream {
                status: s,
                code: format!("http_{s}"),
                message,
            },
        }
    }
}

fn strip_prefix(message: &str, prefix: &str) -> String {
    // "could not decode {what}: {message}" — keep only the part after the first ": ".
    message
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once(": ").map(|(_, m)| m.to_owned()))
        .unwrap_or_else(|| message.to_owned())
}

struct ParsedError {
    code: Option<String>,
    message: String,
    details: Value,
}

/// Reads our envelope, or FastAPI's `{"detail": "..." | [...]}`.
fn parse_error_body(body: &[u8]) -> Option<ParsedError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if let Some(info) = value.get("error").filter(|e| e.is_object()) {
        let info: ErrorInfo = serde_json::from_value(info.clone()).ok()?;
        return Some(ParsedError {
            code: Some(info.code),
            message: info.message,
            details: info.details,
        });
    }
    let detail = value.get("detail")?;
    if let Ok(issues) = serde_json::from_value::<Vec<ValidationIssue>>(detail.clone())
        && let Some(first) = issues.first()
    {
        // FastAPI's 422: the first problem, with its field, reads as a bad request.
        let message = issues
            .iter()
            .map(|i| match i.field() {
                Some(field) => format!("{field}: {}", i.msg),
                None => i.msg.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Some(ParsedError {
            code: None,
            details: json!({ "field": first.field(), "reason": message }),
            message,
        });
    }
    let message = match detail {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(ParsedError {
        code: None,
        message,
        details: Value::Null,
    })
}

/// `["layers", 0, "width"]` → `layers[0].width`.
fn loc_text(loc: &[LocPart]) -> String {
    let mut text = String::new();
    for part in loc {
        match part {
            LocPart::Key(k) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(k);
            }
            LocPart::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// Longest upstream text echoed into a message; the rest is dropped.
const MAX_ECHOED_BODY: usize = 512;

fn fallback_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("HTTP {status}");
    }
    let mut end = text.len().min(MAX_ECHOED_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Parses `Retry-After` as delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

impl IntoResponse for HostError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The full chain goes to the log; the client gets the public message only.
            tracing::error!(error = %self, source = ?std::error::Error::source(&self), "request failed");
        } else {
            tracing::debug!(error = %self, "request rejected");
        }
        let retry = match &self {
            Self::Busy {
                retry_after: Some(d),
                ..
            } => Some(d.as_secs().max(1)),
            Self::Busy { .. } | Self::Unavailable { .. } => Some(DEFAULT_RETRY_AFTER_SECS),
            _ => None,
        };
        let mut response = (status, axum::Json(self.to_body())).into_response();
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastapi_detail_body_maps_by_status() {
        let err = HostError::from_upstream(
            "training-host",
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"detail":"Session abc not found"}"#,
        );
        assert!(
            matches!(err, HostError::NotFound { ref message } if message == "Session abc not found")
        );
    }

    #[test]
    fn plain_text_502_is_upstream_with_truncated_text() {
        let body = "x".repeat(10_000);
        let err = HostError::from_upstream(
            "s",
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            body.as_bytes(),
        );
        match err {
            HostError::Upstream {
                status, message, ..
            } => {
                assert_eq!(status, 502);
                assert_eq!(message.len(), MAX_ECHOED_BODY);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn internal_details_are_not_sent() {
        let err = HostError::internal("disk /var/secret full");
        let body = err.to_body();
        assert!(!body.error.message.contains("secret"));
        assert_eq!(body.error.code, "internal_error");
    }

    #[test]
    fn bad_request_names_the_field() {
        let err = HostError::bad_field("timeframe", "unknown timeframe `7m`");
        assert_eq!(
            err.to_string(),
            "invalid `timeframe`: unknown timeframe `7m`"
        );
        assert_eq!(err.to_body().error.details["field"], "timeframe");
    }
}
