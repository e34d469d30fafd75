//! The middleware every service runs: a tracing span per request keyed by the matched
//! route (not the raw URI, which would explode cardinality and leak ids), request
//! metrics, a request timeout answered in the error envelope, and a body-size limit.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::HostError;
use crate::telemetry::{HTTP_REQUEST_DURATION, HTTP_REQUESTS_TOTAL};

/// Limits applied to every request.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) service: String,
    pub(crate) request_timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) validation: super::ValidationStyle,
}

/// Wraps every route of `router` (call after all routes are added).
pub(crate) fn apply(router: Router, limits: Limits) -> Router {
    let body_limit = limits.body_limit;
    router
        .layer(middleware::from_fn_with_state(limits, timeout_and_metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = route_of(req);
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route,
                        status = tracing::field::Empty,
                    )
                })
                .on_response(|res: &Response, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    tracing::debug!(latency_ms = latency.as_secs_f64() * 1000.0, "answered");
                }),
        )
}

fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned())
}

/// The method as a label without allocating for the standard ones.
fn method_label(method: &axum::http::Method) -> std::borrow::Cow<'static, str> {
    use axum::http::Method;
    let known = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => return std::borrow::Cow::Owned(method.as_str().to_owned()),
    };
    std::borrow::Cow::Borrowed(known)
}

/// The status as a label without allocating.
fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        202 => "202".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        404 => "404".into(),
        409 => "409".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}

async fn timeout_and_metrics(
    State(limits): State<Limits>,
    mut req: Request,
    next: Next,
) -> Response {
    // Read by the scaffold's extractors to answer a malformed request the service's way.
    req.extensions_mut().insert(limits.validation);
    let method = method_label(req.method());
    let route = route_of(&req);
    let started = Instant::now();
    // Only the time to produce the response head is bounded: streamed bodies (SSE,
    // Arrow) may legitimately run longer.
    let response = match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => HostError::Timeout {
            service: limits.service.clone(),
            after: limits.request_timeout,
        }
        .into_response(),
    };
    let status = status_label(response.status().as_u16());
    metrics::counter!(HTTP_REQUESTS_TOTAL, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn labels_read_as_the_method_and_status_always_did() {
        for method in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS] {
            assert_eq!(method_label(&method), method.to_string());
        }
        let custom = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_label(&custom), "PURGE");
        for status in [200u16, 202, 404, 418, 503, 599] {
            assert_eq!(status_label(status), status.to_string());
        }
    }
}
