//! Logging and metrics for every hostbridge service.
//!
//! - Logging: [`init_tracing`] installs a global `tracing` subscriber writing to stderr,
//!   human-readable or JSON ([`LogFormat`], chosen by [`LOG_FORMAT_ENV`]), filtered by
//!   `RUST_LOG` (default `info`). A malformed `RUST_LOG` is an error, never a silent fallback.
//! - Metrics: [`Metrics::install`] installs the process-wide Prometheus recorder once, and
//!   [`metrics_router`] serves it at `GET /metrics`. The metric names other modules record
//!   are the constants below, described by [`describe_metrics`].

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::{EnvFilter, ParseError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{Layer, fmt};

use crate::config::{ConfigError, Env, EnvSource, ProcessEnv, parse_enum};

/// Environment variable choosing the log format: `human` (default) or `json`.
pub const LOG_FORMAT_ENV: &str = "HOSTBRIDGE_LOG_FORMAT";
/// Environment variable holding the `tracing` filter directives (default `info`).
pub const RUST_LOG_ENV: &str = "RUST_LOG";

/// Counter of served HTTP requests; labels `method`, `route`, `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "hostbridge_http_requests_total";
/// Histogram of served HTTP request durations in seconds; labels `method`, `route`, `status`.
pub const HTTP_REQUEST_DURATION: &str = "hostbridge_http_request_duration_seconds";
/// Counter of client calls to host services; labels `service`, `outcome`.
pub const CLIENT_REQUESTS_TOTAL: &str = "hostbridge_client_requests_total";
/// Counter of client retries to host services; label `service`.
pub const CLIENT_RETRIES_TOTAL: &str = "hostbridge_client_retries_total";
/// Content type of the Prometheus text exposition format served by [`metrics_router`].
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Histogram buckets (seconds) for [`HTTP_REQUEST_DURATION`].
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why logging or metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A configuration variable (e.g. [`LOG_FORMAT_ENV`]) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `RUST_LOG` does not parse as filter directives.
    #[error("invalid value {value:?} for RUST_LOG: {source}")]
    InvalidRustLog {
        /// The offending value.
        value: String,
        /// The parser's complaint.
        source: ParseError,
    },
    /// A global `tracing` subscriber is already installed (e.g. `init_tracing` ran twice).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized(#[source] TryInitError),
    /// The Prometheus recorder could not be built or installed globally.
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Metrics(#[source] BuildError),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (coloured when stderr is a terminal).
    #[default]
    Human,
    /// One JSON object per line, including the current span and span list.
    Json,
}

impl LogFormat {
    /// Parses a format for `var` (`human` or `json`, case-insensitive).
    pub fn parse(var: &str, value: &str) -> Result<Self, ConfigError> {
        parse_enum(var, value, &[("human", Self::Human), ("json", Self::Json)])
    }

    /// Reads [`LOG_FORMAT_ENV`]; [`LogFormat::Human`] when unset or empty.
    pub fn from_env<S: EnvSource>(env: &Env<S>) -> Result<Self, ConfigError> {
        env.or(LOG_FORMAT_ENV, Self::Human, Self::parse)
    }
}

impl FromStr for LogFormat {
    type Err = ConfigError;

    /// Parses `human` or `json`; the error names [`LOG_FORMAT_ENV`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(LOG_FORMAT_ENV, s)
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Human => "human",
            Self::Json => "json",
        })
    }
}

/// Builds the log filter from `RUST_LOG` in `env` (`info` when unset or empty).
pub fn env_filter<S: EnvSource>(env: &Env<S>) -> Result<EnvFilter, TelemetryError> {
    let value = env.raw(RUST_LOG_ENV)?.unwrap_or_else(|| "info".to_owned());
    EnvFilter::builder()
        .parse(&value)
        .map_err(|source| TelemetryError::InvalidRustLog { value, source })
}

/// Installs the global `tracing` subscriber: `RUST_LOG` filter, stderr, `format`.
///
/// Span fields (`method`, `route`, `status` on server request spans) are included in every
/// line. A second call returns [`TelemetryError::AlreadyInitialized`] instead of panicking.
pub fn init_tracing(format: LogFormat) -> Result<(), TelemetryError> {
    try_init(format, env_filter(&Env::new(ProcessEnv))?)
}

fn try_init(format: LogFormat, filter: EnvFilter) -> Result<(), TelemetryError> {
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer(format, std::io::stderr, ansi))
        .try_init()
        .map_err(TelemetryError::AlreadyInitialized)
}

/// The formatting layer for `format`, writing to `writer`; span fields are always included.
fn fmt_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Human => fmt::layer().with_writer(writer).with_ansi(ansi).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}

/// Registers the help text of the hostbridge metrics with the current recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests served, by method, route and status."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP request duration in seconds, by method, route and status."
    );
    metrics::describe_counter!(
        CLIENT_REQUESTS_TOTAL,
        "Calls to host services, by service and outcome."
    );
    metrics::describe_counter!(
        CLIENT_RETRIES_TOTAL,
        "Retried calls to host services, by service."
    );
}

/// The Prometheus builder hostbridge uses (duration histograms get buckets). Tests build a
/// local recorder with `prometheus_builder()?.build_recorder()`.
pub fn prometheus_builder() -> Result<PrometheusBuilder, TelemetryError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )
        .map_err(TelemetryError::Metrics)
}

/// The process-wide recorder's handle, once [`Metrics::install`] ran.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Whether [`Metrics::install`] has installed the process-wide recorder: a metric
/// handle registered before that is a no-op forever, so only after it may a hot path
/// keep one instead of registering per use.
pub(crate) fn recorder_installed() -> bool {
    HANDLE.get().is_some()
}

/// A cheap, cloneable handle onto a Prometheus recorder's registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the process-wide recorder on the first call (describing the hostbridge metrics
    /// and starting a small upkeep thread that folds histogram samples every few seconds);
    /// later calls return the same handle.
    pub fn install() -> Result<Self, TelemetryError> {
        static INSTALLING: Mutex<()> = Mutex::new(());
        if let Some(handle) = HANDLE.get() {
            return Ok(Self::from_handle(handle.clone()));
        }
        let _guard = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = HANDLE.get() {
            return Ok(Self::from_handle(handle.clone()));
        }
        let handle = prometheus_builder()?
            .install_recorder()
            .map_err(TelemetryError::Metrics)?;
        let handle = HANDLE.get_or_init(|| handle).clone();
        describe_metrics();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            // Not fatal: rendering also folds pending histogram samples.
            tracing::warn!(%error, "cannot start the metrics upkeep thread");
        }
        Ok(Self::from_handle(handle))
    }

    /// Wraps an existing handle (e.g. of a locally built recorder in tests).
    pub fn from_handle(handle: PrometheusHandle) -> Self {
        Self { handle }
    }

    /// The underlying Prometheus handle.
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// A router serving `GET /metrics` (Prometheus text format) from `metrics`.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], metrics.render())
}

/// Log output kept in memory, for tests that check what a service says (and how often):
/// give a clone to a subscriber as its writer, then read [`LogCapture::text`].
#[derive(Debug, Clone, Default)]
pub struct LogCapture(std::sync::Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[test]
    fn log_format_parses() {
        assert_eq!("human".parse(), Ok(LogFormat::Human));
        assert_eq!(" JSON ".parse(), Ok(LogFormat::Json));
        let err = "xml".parse::<LogFormat>().map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                r#"invalid value "xml" for HOSTBRIDGE_LOG_FORMAT: expected one of human, json"#
                    .to_owned()
            )
        );
        assert_eq!(
            LogFormat::from_env(&Env::new(MapEnv::default())),
            Ok(LogFormat::Human)
        );
        let env = Env::new(MapEnv::default().with(LOG_FORMAT_ENV, "json"));
        assert_eq!(LogFormat::from_env(&env), Ok(LogFormat::Json));
        let env = Env::new(MapEnv::default().with(LOG_FORMAT_ENV, "yaml"));
        assert!(LogFormat::from_env(&env).is_err_and(|e| e.to_string().contains(LOG_FORMAT_ENV)));
        assert_eq!(LogFormat::Json.to_string().parse(), Ok(LogFormat::Json));
    }

    #[test]
    fn rust_log_is_parsed_strictly() {
        assert!(env_filter(&Env::new(MapEnv::default())).is_ok());
        assert!(env_filter(&Env::new(MapEnv::default().with(RUST_LOG_ENV, ""))).is_ok());
        let env =
            Env::new(MapEnv::default().with(RUST_LOG_ENV, "debug,hyper=warn,data_host[x]=trace"));
        assert!(env_filter(&env).is_ok());
        for bad in ["info,foo=notalevel", "foo=bar=baz"] {
            let env = Env::new(MapEnv::default().with(RUST_LOG_ENV, bad));
            let msg = env_filter(&env).map(|_| ()).map_err(|e| e.to_string());
            assert!(
                msg.as_ref()
                    .is_err_and(|m| m.contains("RUST_LOG") && m.contains(bad)),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn second_init_is_an_error_not_a_panic() {
        // The first call may lose to another test; the second can never succeed.
        let _ = try_init(LogFormat::Json, EnvFilter::new("off"));
        let second = try_init(LogFormat::Human, EnvFilter::new("off"));
        assert!(
            matches!(second, Err(TelemetryError::AlreadyInitialized(_))),
            "{second:?}"
        );
    }

    #[test]
    fn log_lines_carry_span_fields() {
        for format in [LogFormat::Human, LogFormat::Json] {
            let log = LogCapture::default();
            let subscriber =
                tracing_subscriber::registry().with(fmt_layer(format, log.clone(), false));
            tracing::subscriber::with_default(subscriber, || {
                let empty = tracing::field::Empty;
                let span =
                    tracing::info_span!("request", method = "GET", route = "/x", status = empty);
                span.record("status", 200);
                span.in_scope(|| tracing::info!("done"));
            });
            let text = log.text();
            let want = match format {
                LogFormat::Human => ["method=\"GET\"", "route=\"/x\"", "status=200"],
                LogFormat::Json => [r#""method":"GET""#, r#""route":"/x""#, r#""status":200"#],
            };
            assert!(want.iter().all(|w| text.contains(w)), "{format}: {text}");
        }
    }

    /// A local recorder with one request counted and one duration observed.
    fn local_metrics() -> Metrics {
        let recorder = prometheus_builder().map(PrometheusBuilder::build_recorder);
        let recorder = recorder.unwrap_or_else(|e| panic!("builder: {e}"));
        metrics::with_local_recorder(&recorder, || {
            describe_metrics();
            let labels = [("method", "GET"), ("route", "/health"), ("status", "200")];
            metrics::counter!(HTTP_REQUESTS_TOTAL, &labels).increment(3);
            metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(0.02);
        });
        Metrics::from_handle(recorder.handle())
    }

    const COUNTER_LINE: &str =
        r#"hostbridge_http_requests_total{method="GET",route="/health",status="200"} 3"#;

    #[test]
    fn render_shows_incremented_counter_and_buckets() {
        let text = local_metrics().render();
        assert!(text.contains(COUNTER_LINE), "{text}");
        assert!(
            text.contains("# HELP hostbridge_http_requests_total HTTP requests served"),
            "{text}"
        );
        assert!(
            text.contains("hostbridge_http_request_duration_seconds_bucket{"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn metrics_route_serves_prometheus_text() {
        let router = metrics_router(local_metrics());
        let request = Request::get("/metrics").body(Body::empty());
        let response = router.clone().oneshot(request.unwrap_or_default()).await;
        let response = response.unwrap_or_else(|e| match e {});
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some(METRICS_CONTENT_TYPE));
        let body = to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        assert!(String::from_utf8_lossy(&body).contains(COUNTER_LINE));
        let post = Request::post("/metrics")
            .body(Body::empty())
            .unwrap_or_default();
        let response = router.oneshot(post).await.unwrap_or_else(|e| match e {});
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn install_is_idempotent() {
        let first = Metrics::install().map_err(|e| e.to_string());
        let second = Metrics::install().map_err(|e| e.to_string());
        let (Ok(first), Ok(second)) = (first, second) else {
            panic!("install failed")
        };
        metrics::counter!("hostbridge_test_install_total").increment(1);
        assert!(first.render().contains("hostbridge_test_install_total 1"));
        assert!(second.render().contains("hostbridge_test_install_total 1"));
    }
}
