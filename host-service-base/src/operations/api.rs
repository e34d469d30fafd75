//! The operations HTTP API (KTRDR's `/operations` endpoints plus SSE):
//!
//! - `GET /operations?status&operation_type&limit&offset&active_only`
//! - `GET /operations/{id}`
//! - `DELETE /operations/{id}` with an optional `{reason?, force?}` body
//! - `GET /operations/{id}/events` (Server-Sent Events)
//!
//! Successes use the envelope `{success: true, data, ...}`; errors are [`HostError`]
//! answers. Query parameters are parsed here rather than by axum's `Query`, so that a
//! bad value is a 400 naming the parameter.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{BOOL_EXPECTED, bool_word};
use crate::error::HostError;

use super::events::sse_response;
use super::model::{OperationFilter, OperationInfo, OperationStatus, OperationSummary};
use super::registry::Operations;

/// Largest `limit` honoured; larger values are capped.
pub const MAX_LIST_LIMIT: usize = 1000;
/// `limit` when none is given (KTRDR's default).
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// The operations routes, with the registry as state. Nest or merge the result, e.g.
/// `Router::new().nest("/api/v1", operations::router(ops))`.
pub fn router(ops: Operations) -> Router {
    Router::new()
        .route("/operations", get(list_operations))
        .route(
            "/operations/{id}",
            get(get_operation).delete(cancel_operation),
        )
        .route("/operations/{id}/events", get(operation_events))
        .with_state(ops)
}

/// Body of `GET /operations`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationListResponse {
    /// Always true.
    pub success: bool,
    /// The page of operations, newest first.
    pub data: Vec<OperationSummary>,
    /// Operations matching the filters, before limit/offset.
    pub total_count: usize,
    /// Pending or running operations in the whole registry.
    pub active_count: usize,
    /// `data.len()`.
    pub returned_count: usize,
}

/// Body of `GET /operations/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationResponse {
    /// Always true.
    pub success: bool,
    /// The operation.
    pub data: OperationInfo,
}

/// Optional body of `DELETE /operations/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelRequest {
    /// Stored as the operation's `error_message`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Accepted for KTRDR compatibility; cancellation is always cooperative.
    #[serde(default)]
    pub force: bool,
}

/// `data` of the `DELETE /operations/{id}` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelData {
    /// The cancelled operation.
    pub operation_id: String,
    /// Always `cancelled`.
    pub status: OperationStatus,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The reason recorded.
    pub cancellation_reason: Option<String>,
}

/// Body of `DELETE /operations/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelResponse {
    /// Always true.
    pub success: bool,
    /// What was cancelled.
    pub data: CancelData,
}

/// Parses the list query; every error names its parameter. Empty values count as
/// absent, unknown parameters are ignored, and a repeated parameter keeps its last value.
pub fn parse_list_query(raw: Option<&str>) -> Result<OperationFilter, HostError> {
    let mut filter = OperationFilter {
        limit: Some(DEFAULT_LIST_LIMIT),
        ..OperationFilter::default()
    };
    let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes());
    for (key, value) in pairs {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "status" => {
                let status = value
                    .parse::<OperationStatus>()
                    .map_err(|e| HostError::bad_field("status", e.to_string()))?;
                filter.status = Some(status);
            }
            "operation_type" => filter.operation_type = Some(value.to_owned()),
            "limit" => filter.limit = Some(parse_count("limit", value)?.min(MAX_LIST_LIMIT)),
            "offset" => filter.offset = parse_count("offset", value)?,
            "active_only" => {
                filter.active_only = bool_word(value).ok_or_else(|| {
                    HostError::bad_field(
                        "active_only",
                        format!("`{value}` is not a boolean: {BOOL_EXPECTED}"),
                    )
                })?;
            }
            _ => {}
        }
    }
    Ok(filter)
}

fn parse_count(field: &str, value: &str) -> Result<usize, HostError> {
    value.parse::<usize>().map_err(|_| {
        HostError::bad_field(field, format!("`{value}` is not a non-negative integer"))
    })
}

async fn list_operations(
    State(ops): State<Operations>,
    RawQuery(query): RawQuery,
) -> Result<Json<OperationListResponse>, HostError> {
    let filter = parse_list_query(query.as_deref())?;
    let (page, total_count, active_count) = ops.list(&filter);
    let data: Vec<OperationSummary> = page.iter().map(OperationInfo::summary).collect();
    Ok(Json(OperationListResponse {
        success: true,
        returned_count: data.len(),
        data,
        total_count,
        active_count,
    }))
}

fn not_found(id: &str) -> HostError {
    HostError::not_found(format!("operation {id} not found"))
}

async fn get_operation(
    State(ops): State<Operations>,
    Path(id): Path<String>,
) -> Result<Json<OperationResponse>, HostError> {
    let data = ops.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(Json(OperationResponse {
        success: true,
        data,
    }))
}

async fn cancel_operation(
    State(ops): State<Operations>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CancelResponse>, HostError> {
    // The optional body is read as raw bytes (an empty one is allowed), so axum's own
    // rejection of an oversized one would be plain text: answer it in the envelope.
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            HostError::PayloadTooLarge {
                message: "the cancel request body is larger than this service accepts".into(),
            }
        } else {
            HostError::bad_field("body", rejection.body_text())
        }
    })?;
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        serde_json::from_slice::<CancelRequest>(&body)
            .map_err(|e| HostError::bad_field("body", format!("invalid cancel request: {e}")))?
    };
    let info = ops.cancel(&id, request.reason)?;
    Ok(Json(CancelResponse {
        success: true,
        data: CancelData {
            operation_id: info.operation_id,
            status: info.status,
            cancelled_at: info.completed_at,
            cancellation_reason: info.error_message,
        },
    }))
}

async fn operation_events(
    State(ops): State<Operations>,
    Path(id): Path<String>,
) -> Result<Response, HostError> {
    let stream = ops.subscribe(&id).ok_or_else(|| not_found(&id))?;
    Ok(sse_response(stream).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: HostError) -> Option<String> {
        err.to_body().error.details["field"]
            .as_str()
            .map(str::to_owned)
    }

    #[test]
    fn list_query_parses_and_caps() {
        let f = parse_list_query(Some(
            "status=running&operation_type=data_load&limit=5000&offset=3&active_only=true",
        ))
        .expect("valid query");
        assert_eq!(f.status, Some(OperationStatus::Running));
        assert_eq!(f.operation_type.as_deref(), Some("data_load"));
        assert_eq!(f.limit, Some(MAX_LIST_LIMIT));
        assert_eq!(f.offset, 3);
        assert!(f.active_only);
        let f = parse_list_query(Some("status=&other=x")).expect("empty values are absent");
        assert_eq!(f.status, None);
        assert_eq!(f.limit, Some(DEFAULT_LIST_LIMIT));
    }

    #[test]
    fn list_query_errors_name_the_parameter() {
        for (query, field) in [
            ("status=bogus", "status"),
            ("limit=-1", "limit"),
            ("limit=abc", "limit"),
            ("offset=x", "offset"),
            ("active_only=maybe", "active_only"),
        ] {
            let err = parse_list_query(Some(query)).expect_err(query);
            assert_eq!(field_of(err).as_deref(), Some(field), "{query}");
        }
    }
}
