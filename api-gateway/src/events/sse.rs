//! `GET /api/v1/events`: every envelope as Server-Sent Events, in every event mode.
//! `?type=PREFIX` keeps the envelopes whose type starts with it (`operation.`,
//! `training.epoch`). The event name is the envelope type, the id its id, the data the
//! envelope; a comment every 15 s keeps proxies from closing an idle stream. A client
//! that falls more than the sink buffer behind loses the oldest events, never the
//! stream.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use host_service_base::HostError;
use host_service_base::operations::KEEP_ALIVE_INTERVAL;
use serde::Deserialize;

use crate::gateway::Gateway;

/// Query of `/api/v1/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Type prefix to keep.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
}

/// Checks a `type` filter: at most 256 characters of `[a-z0-9._-]`.
pub fn check_prefix(prefix: &str) -> Result<(), HostError> {
    let ok = prefix.len() <= 256
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(HostError::bad_field(
            "type",
            "a type prefix is lowercase letters, digits, `.`, `_` and `-` (e.g. `operation.` or `training.epoch`), at most 256 characters",
        ))
    }
}

/// The handler.
pub async fn events(State(gateway): State<Gateway>, Query(query): Query<EventsQuery>) -> Response {
    let prefix = query.event_type.unwrap_or_default();
    if let Err(e) = check_prefix(&prefix) {
        return e.into_response();
    }
    // The subscription ends with the client (the stream is dropped) or when the
    // gateway starts shutting down, so open streams never hold up the drain.
    let reader = gateway.events().subscribe_client();
    let stream = reader.filter_map(move |item| {
        let event = match item {
            Ok(message) if message.value.event_type.starts_with(&prefix) => {
                let env = &message.value;
                Some(Ok::<_, Infallible>(
                    Event::default()
                        .event(env.event_type.clone())
                        .id(env.id.to_string())
                        .data(String::from_utf8_lossy(&env.to_json())),
                ))
            }
            _ => None,
        };
        std::future::ready(event)
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
        .into_response()
}
