//! api-gateway: the service backend code calls (port 8000), and the `hostbridge` CLI.
//!
//! It routes each data and training call to a host service or, in development, to the
//! same library code in-process, and tracks every long-running call as an operation.
//! The pieces:
//!
//! - [`config`]: where each service runs (`USE_IB_HOST_SERVICE`, `IB_HOST_SERVICE_URL`,
//!   `USE_TRAINING_HOST_SERVICE`, `TRAINING_HOST_SERVICE_URL`, `HOSTBRIDGE_API_KEY`).
//! - [`pool`]: instances of one host service; calls go to a healthy one, a dead one is
//!   skipped until a probe finds it healthy again.
//! - [`data`]: the data manager — load modes over the local store, gaps filled through
//!   a `DataProvider` (data-host pool or the in-process IB provider), progress per
//!   segment, cancellation down to the IB request.
//! - [`training`]: the training manager — sessions on training-host or in-process,
//!   mirrored as gateway operations; a cancel stops the host session.
//! - [`events`]: the event publisher — operation changes and domain events as
//!   envelopes to the SSE stream and the sinks `EVENT_MODE` names.
//! - [`commands`]: the commands consumer — `data.load.requested` and
//!   `training.start.requested` off Kafka, exactly one operation per command.
//! - [`gateway`]: everything assembled, with health aggregation; [`api`]: the
//!   `/api/v1` routes; [`ui`]: the operations page at `/`.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod events;
pub mod gateway;
pub mod origin;
pub mod pool;
pub mod training;
pub mod ui;

pub use config::{GatewayConfig, ServiceMode};
pub use gateway::{Gateway, GatewayError, GatewaySettings};
pub use origin::Origin;

/// Name this service reports in its health answer.
pub const SERVICE_NAME: &str = "api-gateway";
