//! The server scaffold: one way to run an axum router as a hostbridge service.
//!
//! [`Server::serve`] adds the standard routes (`/health`, `/ready`), the standard
//! middleware (route-keyed tracing spans, metrics, request timeout, body limit), and
//! graceful shutdown: when the shutdown token fires the listener stops accepting,
//! running operations are cancelled (they are often what in-flight requests wait on),
//! and in-flight requests and operation tasks drain until a deadline, after which the
//! rest is abandoned and the caller is told so.

mod extract;
mod layers;
mod routes;
mod shutdown;
mod streamed;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use extract::{Json, Query, ValidationStyle};
#[doc(hidden)]
pub use layers::LayerSet;
pub use routes::Readiness;
pub use shutdown::{shutdown_signal, shutdown_token};
pub use streamed::{CHUNK_BYTES, CountingWriter, blocking_body, blocking_writer_body};

use crate::operations::Operations;

/// How long a handler may take to produce its response head unless the service says
/// otherwise ([`ServerConfig::request_timeout`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the scaffold.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The service's contract name (reported by `/health`, used in errors).
    pub service: String,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Longest time a handler may take to produce its response head.
    pub request_timeout: Duration,
    /// Longest time shutdown waits for in-flight work after the signal.
    pub shutdown_grace: Duration,
    /// Whether the scaffold serves `GET /health` (turn off when the service has its own).
    pub liveness_route: bool,
    /// How a body or query that does not deserialize is answered (400 or FastAPI's 422).
    pub validation: ValidationStyle,
}

impl ServerConfig {
    /// Defaults for `service`: 2 MiB bodies, 30 s handlers, 10 s shutdown grace.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            body_limit: 2 * 1024 * 1024,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: Duration::from_secs(10),
            liveness_route: true,
            validation: ValidationStyle::Envelope,
        }
    }
}

/// How a server run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// True when every in-flight request and operation task finished before the grace
    /// deadline; false when some were abandoned.
    pub drained: bool,
}

/// Errors that end a server run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener or a connection failed fatally.
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server task panicked.
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A router plus everything the scaffold adds to it.
#[must_use]
pub struct Server {
    config: ServerConfig,
    router: Router,
    readiness: Option<Arc<dyn Readiness>>,
    operations: Option<Operations>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("readiness", &self.readiness.is_some())
            .field("operations", &self.operations.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Wraps the service's own `router`.
    pub fn new(config: ServerConfig, router: Router) -> Self {
        Self {
            config,
            router,
            readiness: None,
            operations: None,
        }
    }

    /// Answers `/ready` with `check`.
    pub fn readiness(mut self, check: Arc<dyn Readiness>) -> Self {
        self.readiness = Some(check);
        self
    }

    /// Cancels and drains these operations at shutdown.
    pub fn operations(mut self, operations: Operations) -> Self {
        self.operations = Some(operations);
        self
    }

    /// The finished router (standard routes and middleware), e.g. for `oneshot` tests.
    pub fn into_router(self) -> Router {
        self.router_with_layers(LayerSet::ALL)
    }

    /// The router with only some of the per-request layers: for the request_path
    /// benchmark, which prices each layer alone. Services use [`Self::into_router`].
    #[doc(hidden)]
    pub fn router_with_layers(self, layers: LayerSet) -> Router {
        let probes = routes::router(
            &self.config.service,
            self.config.liveness_route,
            self.readiness,
        );
        let limits = layers::Limits {
            service: self.config.service.clone(),
            request_timeout: self.config.request_timeout,
            body_limit: self.config.body_limit,
            validation: self.config.validation,
        };
        layers::apply(self.router.merge(probes), limits, layers)
    }

    /// Serves on `listener` until `shutdown` fires, then shuts down gracefully.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<ShutdownReport, ServeError> {
        let grace = self.config.shutdown_grace;
        let operations = self.operations.clone();
        let service = self.config.service.clone();
        let app = self.into_router();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%service, %addr, "listening");
        }

        if let Some(ops) = &operations {
            // Finished operations leave memory and store after their retention, so a
            // service that runs for weeks does not grow with every request it served.
            ops.spawn_pruner(ops.config().prune_interval(), shutdown.child_token());
        }
        let stop_accepting = shutdown.clone();
        let mut server = tokio::spawn(
            // Small answers and pushed events (SSE, Socket.IO) must leave at once, not
            // wait on Nagle's algorithm for the peer's delayed ACK (up to 40 ms).
            axum::serve(
                listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                app,
            )
            .with_graceful_shutdown(async move { stop_accepting.cancelled().await })
            .into_future(),
        );
        // Biased, shutdown first: once the token fires, an idle server finishes its
        // graceful shutdown at once, so both branches are ready in the same poll; an
        // unbiased select then picked the server half the time and skipped the shutdown
        // path (running operations were left `running`, found "interrupted by restart").
        let ended_unasked = tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            result = &mut server => Some(result),
        };
        if let Some(result) = ended_unasked {
            // The server ended without being asked to: surface why.
            result??;
            return Ok(ShutdownReport { drained: true });
        }

        tracing::info!(%service, grace_s = grace.as_secs_f64(), "shutting down");
        if let Some(ops) = &operations {
            // Failed, not cancelled: nobody asked for it, and a restart finds it ended
            // the same way as after a crash ("interrupted by restart").
            ops.interrupt_all("interrupted: the service shut down before it finished");
        }
        let drain = async {
            let served = (&mut server).await;
            if let Some(ops) = &operations {
                ops.wait_idle().await;
            }
            served
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(result) => {
                result??;
                tracing::info!(%service, "shut down cleanly");
                Ok(ShutdownReport { drained: true })
            }
            Err(_) => {
                server.abort();
                tracing::warn!(%service, "shutdown deadline passed; abandoning in-flight work");
                Ok(ShutdownReport { drained: false })
            }
        }
    }
}

/// Serves `router` with the default [`ServerConfig`] for `service` until `shutdown`.
pub async fn serve(
    service: &str,
    router: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<ShutdownReport, ServeError> {
    Server::new(ServerConfig::new(service), router)
        .serve(listener, shutdown)
        .await
}
