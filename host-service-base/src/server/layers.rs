//! The middleware every service runs: a tracing span per request keyed by the matched
//! route (not the raw URI, which would explode cardinality and leak ids), request
//! metrics, a request timeout answered in the error envelope, and a body-size limit,
//! priced layer by layer by the request_path benchmark.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use tokio::time::Instant;
use tracing::{Instrument, Span};

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

/// Which per-request layers run. Services run them all ([`LayerSet::ALL`]); the
/// request_path benchmark switches them one at a time to price each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSet {
    /// A tracing span per request (method, matched route, status).
    pub span: bool,
    /// `http_requests_total` and `http_request_duration_seconds`.
    pub metrics: bool,
    /// The request timeout, answered in the error envelope.
    pub timeout: bool,
}

impl LayerSet {
    /// Every layer: what services run.
    pub const ALL: Self = Self {
        span: true,
        metrics: true,
        timeout: true,
    };
    /// None of the optional layers (routing, the body limit and the extractors'
    /// validation style remain).
    pub const NONE: Self = Self {
        span: false,
        metrics: false,
        timeout: false,
    };
}

/// What the per-request middleware needs.
#[derive(Clone)]
struct PerRequest {
    limits: Arc<Limits>,
    layers: LayerSet,
    metrics: Arc<MetricHandles>,
}

/// Wraps every route of `router` (call after all routes are added).
pub(crate) fn apply(router: Router, limits: Limits, layers: LayerSet) -> Router {
    let body_limit = limits.body_limit;
    let state = PerRequest {
        limits: Arc::new(limits),
        layers,
        metrics: Arc::default(),
    };
    // One middleware for the span, the timeout and the metrics: each tower layer costs
    // a boxed future and a poll per request, and tower-http's TraceLayer also wrapped
    // and entered its span for every frame of every response body.
    router
        .layer(middleware::from_fn_with_state(state, per_request))
        .layer(DefaultBodyLimit::max(body_limit))
}

/// The method as a label. Methods outside the standard set read `OTHER`: a client
/// inventing methods must not invent metric series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The request metrics of one (method, route, status).
struct Handles {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// Request metric handles, registered with the recorder once per (method, route,
/// status) and reused: registering a labelled metric (building its key, hashing it,
/// finding it in the recorder's registry) costs more than the rest of a small request's
/// path. Routes are the router's patterns and methods a fixed set, so this stays small.
#[derive(Default)]
struct MetricHandles {
    by_route: RwLock<HashMap<String, Vec<Handles>>>,
}

impl MetricHandles {
    fn record(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let find = |handles: &[Handles]| {
            handles
                .iter()
                .position(|h| h.method == method && h.status == status)
        };
        {
            let by_route = self.by_route.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(handles) = by_route.get(route)
                && let Some(i) = find(handles)
            {
                handles[i].requests.increment(1);
                handles[i].duration.record(seconds);
                return;
            }
        }
        let mut by_route = self
            .by_route
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let handles = by_route.entry(route.to_owned()).or_default();
        let i = find(handles).unwrap_or_else(|| {
            let labels = |with_status: bool| {
                let mut labels = vec![
                    metrics::Label::new("method", method),
                    metrics::Label::new("route", route.to_owned()),
                ];
                if with_status {
                    labels.push(metrics::Label::new("status", status.to_string()));
                }
                labels
            };
            handles.push(Handles {
                method,
                status,
                requests: metrics::counter!(HTTP_REQUESTS_TOTAL, labels(true)),
                duration: metrics::histogram!(HTTP_REQUEST_DURATION, labels(false)),
            });
            handles.len() - 1
        });
        handles[i].requests.increment(1);
        handles[i].duration.record(seconds);
    }
}

/// The span, timeout and metrics of one request. The span is keyed by the matched
/// route (the router's pattern, never the raw URI: ids in paths would explode
/// cardinality and leak into logs) and covers the handler; the status is recorded when
/// the response head is ready.
async fn per_request(State(state): State<PerRequest>, mut req: Request, next: Next) -> Response {
    let limits = &state.limits;
    // Read by the scaffold's extractors to answer a malformed request the service's way.
    req.extensions_mut().insert(limits.validation);
    let method = method_label(req.method());
    // An Arc clone: the route outlives the request, which `next` consumes.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = if state.layers.span {
        tracing::info_span!(
            "request",
            method = %req.method(),
            route,
            status = tracing::field::Empty,
        )
    } else {
        Span::none()
    };
    let started = Instant::now();
    // Only the time to produce the response head is bounded: streamed bodies (SSE,
    // Arrow, long JSON) may legitimately run longer.
    let handled = async {
        if !state.layers.timeout {
            return next.run(req).await;
        }
        match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => HostError::Timeout {
                service: limits.service.clone(),
                after: limits.request_timeout,
            }
            .into_response(),
        }
    };
    let response = handled.instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if state.layers.span {
        span.record("status", status);
        tracing::debug!(parent: &span, latency_ms = elapsed.as_secs_f64() * 1000.0, "answered");
    }
    if state.layers.metrics {
        state.metrics.record(method, route, status, elapsed);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn standard_methods_are_their_names_and_invented_ones_read_other() {
        for method in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS] {
            assert_eq!(method_label(&method), method.as_str());
        }
        let custom = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_label(&custom), "OTHER");
    }

    #[test]
    fn each_method_route_and_status_is_registered_once() {
        let handles = MetricHandles::default();
        for _ in 0..3 {
            handles.record("GET", "/health", 200, Duration::from_micros(5));
            handles.record("GET", "/health", 503, Duration::from_micros(5));
            handles.record("POST", "/health", 200, Duration::from_micros(5));
            handles.record("GET", "/ready", 200, Duration::from_micros(5));
        }
        let by_route = handles.by_route.read().expect("lock");
        assert_eq!(by_route.len(), 2);
        assert_eq!(by_route["/health"].len(), 3);
        assert_eq!(by_route["/ready"].len(), 1);
    }
}
