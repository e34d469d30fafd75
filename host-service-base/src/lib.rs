//! host-service-base: the shared async foundation of every hostbridge service.
//!
//! Every hostbridge service (data-host, training-host, api-gateway) is built from the
//! same pieces, so that retries, errors, health, shutdown and long-running work behave
//! identically everywhere:
//!
//! - [`client::HostClient`]: one pooled HTTP client per service, with per-call timeouts,
//!   bounded jittered retries (idempotency-aware) and cancellation.
//! - [`error::HostError`]: the error type at every boundary, with ONE table to an HTTP
//!   answer and one function back from an upstream answer.
//! - [`service::AsyncHostService`]: the trait a typed client of a host service implements
//!   (name, base URL, client, cached health, JSON helpers).
//! - [`server`]: `serve(router, listener, shutdown)` with tracing spans per route,
//!   limits, `/health` and readiness, and graceful shutdown with a deadline.
//! - [`operations`]: the persisted registry of long-running work (progress, cancellation,
//!   Server-Sent Events).
//! - [`config`] and [`telemetry`]: typed environment parsing, logging and `/metrics`.
//! - [`names`]: the one check of a caller's name that reaches a path or a URL.
//! - [`rng::SplitMix64`]: the one seeded random number generator (training, random
//!   test inputs).
//! - [`webhook`]: an event-stream writer that POSTs batches to a URL through a
//!   `HostClient` (the "Kafka → REST" leg of a pipe).

pub mod client;
pub mod config;
pub mod error;
pub mod health;
pub mod names;
pub mod operations;
pub mod rng;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod webhook;

pub use client::{HostClient, HostClientBuilder, HostRequest, RetryPolicy};
pub use error::HostError;
pub use rng::SplitMix64;
pub use service::{AsyncHostService, HostService};
pub use tokio_util::sync::CancellationToken;
