//! The envelope: one JSON object for every event and command of the platform.
//!
//! `{id, type, timestamp, source, correlation_id, subject, data}`: `id` a UUID v7,
//! `type` dotted (`operation.completed`), `timestamp` RFC 3339 UTC with milliseconds,
//! `source` the emitting service, `correlation_id` null or the id that started the
//! chain, `subject` what the event is about and the Kafka key. Fields this version does
//! not know are kept and written back, so a hop through an older service loses nothing.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::SerdeError;
use crate::message::Message;

/// Header names that repeat envelope fields on transports with headers (Kafka).
pub mod header {
    /// The envelope's `type`.
    pub const TYPE: &str = "type";
    /// The envelope's `id`.
    pub const ID: &str = "id";
    /// The envelope's `correlation_id` (absent when null).
    pub const CORRELATION_ID: &str = "correlation_id";
}

/// Longest accepted `type`, `source`, `subject` or `correlation_id`.
const MAX_NAME: usize = 256;

/// One event or command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct Envelope {
    /// Unique id (UUID v7 when made here: time-ordered).
    pub id: Uuid,
    /// Dotted type, e.g. `operation.completed`.
    pub event_type: String,
    /// When it happened (UTC, written with milliseconds).
    pub timestamp: DateTime<Utc>,
    /// The emitting service, e.g. `api-gateway`.
    pub source: String,
    /// The id that started the chain, if any.
    pub correlation_id: Option<String>,
    /// What it is about (an operation id, a symbol); the Kafka key.
    pub subject: Option<String>,
    /// The payload.
    pub data: Value,
    /// Fields not known to this version, kept as they came.
    pub extra: Map<String, Value>,
}

impl Envelope {
    /// A new envelope: fresh UUID v7, now, no correlation, no subject.
    ///
    /// `event_type` must be dotted lowercase words (`data.loaded`); see [`check_type`].
    pub fn new(
        event_type: impl Into<String>,
        source: impl Into<String>,
        data: Value,
    ) -> Result<Self, SerdeError> {
        let event_type = event_type.into();
        check_type(&event_type)?;
        Ok(Envelope {
            id: Uuid::now_v7(),
            event_type,
            timestamp: now_ms(),
            source: source.into(),
            correlation_id: None,
            subject: None,
            data,
            extra: Map::new(),
        })
    }

    /// An envelope caused by `parent`: it carries the parent's correlation id, or the
    /// parent's id when the parent started the chain.
    pub fn caused_by(
        parent: &Envelope,
        event_type: impl Into<String>,
        source: impl Into<String>,
        data: Value,
    ) -> Result<Self, SerdeError> {
        Ok(Envelope::new(event_type, source, data)?.with_correlation_id(Some(parent.chain_id())))
    }

    /// The id that identifies this envelope's chain: its correlation id, or its own id.
    pub fn chain_id(&self) -> String {
        self.correlation_id
            .clone()
            .unwrap_or_else(|| self.id.to_string())
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets (or clears) the correlation id.
    pub fn with_correlation_id(mut self, correlation_id: Option<String>) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    /// A message keyed by the subject, with the `type`, `id` and `correlation_id`
    /// headers.
    pub fn into_message(self) -> Message<String, Envelope> {
        let mut message = Message::new(self);
        let env = &message.value;
        message.key = env.subject.clone();
        message.headers.push(header::TYPE, env.event_type.clone());
        message.headers.push(header::ID, env.id.to_string());
        if let Some(c) = &env.correlation_id {
            message.headers.push(header::CORRELATION_ID, c.clone());
        }
        message
    }

    /// The JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        // An Envelope is a JSON object of JSON values: serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the JSON form; errors name the field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SerdeError> {
        crate::codec::Serde::<Envelope>::from_bytes(&crate::codec::Json, bytes)
    }
}

/// The current time truncated to milliseconds, the envelope's precision.
pub fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Checks a `type`: dotted words of `[a-z0-9_-]`, at least two, at most 256 characters.
pub fn check_type(event_type: &str) -> Result<(), SerdeError> {
    let ok = !event_type.is_empty()
        && event_type.len() <= MAX_NAME
        && event_type.contains('.')
        && event_type.split('.').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(SerdeError::Decode {
            format: "envelope",
            message: format!(
                "`type` must be dotted lowercase words like `operation.completed`, got {event_type:?}"
            ),
        })
    }
}

/// The JSON layout; unknown fields land in `extra`.
#[derive(Serialize, Deserialize)]
struct Wire {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    source: String,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    data: Value,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl TryFrom<Wire> for Envelope {
    type Error = String;

    fn try_from(w: Wire) -> Result<Self, String> {
        check_type(&w.event_type).map_err(|e| e.to_string())?;
        let timestamp = DateTime::parse_from_rfc3339(&w.timestamp)
            .map_err(|e| format!("`timestamp` {:?} is not RFC 3339: {e}", w.timestamp))?
            .with_timezone(&Utc);
        for (field, value) in [
            ("source", Some(&w.source)),
            ("subject", w.subject.as_ref()),
            ("correlation_id", w.correlation_id.as_ref()),
        ] {
            if value.is_some_and(|v| v.len() > MAX_NAME) {
                return Err(format!("`{field}` is longer than {MAX_NAME} bytes"));
            }
        }
        Ok(Envelope {
            id: w.id,
            event_type: w.event_type,
            timestamp,
            source: w.source,
            correlation_id: w.correlation_id,
            subject: w.subject,
            data: w.data,
            extra: w.extra,
        })
    }
}

impl From<Envelope> for Wire {
    fn from(e: Envelope) -> Self {
        Wire {
            id: e.id,
            event_type: e.event_type,
            timestamp: e.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            source: e.source,
            correlation_id: e.correlation_id,
            subject: e.subject,
            data: e.data,
            extra: e.extra,
        }
    }
}

#[cfg(test)]
mod tests;
