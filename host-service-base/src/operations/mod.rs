//! The operations registry: every piece of long-running work a hostbridge service does
//! (a data load, a training session) is an *operation* with an id, a status, progress,
//! a cancellation token, timestamps and a result or error.
//!
//! Why a registry: a client that starts long work gets an id back at once and then
//! polls (`GET /operations/{id}`), streams (`GET /operations/{id}/events`, Server-Sent
//! Events) or cancels (`DELETE /operations/{id}`) it, with the same contract in every
//! service and in the gateway (KTRDR's operations API, field for field).
//!
//! Why it is persisted: a client holding an operation id must get a truthful answer
//! even after the service restarted. Every operation is written to a redb file
//! ([`OperationsConfig::store_path`]) by one writer thread that coalesces what arrives
//! during a commit, so no async thread runs a commit; a status change returns once it
//! is committed, progress is queued at most once per
//! [`OperationsConfig::progress_persist_interval`] and never waited for. On open,
//! finished operations come back exactly as they were, and those that were pending or
//! running (the process died under them) come back `failed` with the message
//! [`INTERRUPTED_BY_RESTART`], never stuck `running`. Finished operations are kept for
//! [`OperationsConfig::retention`] and then pruned.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use host_service_base::operations::{Operations, OperationsConfig};
//! let ops = Operations::open(OperationsConfig::persistent("state/operations.redb"))?;
//! let handle = ops.spawn("data_load", serde_json::json!({"symbol": "AAPL"}), |op| async move {
//!     for i in 0..10u64 {
//!         if op.is_cancelled() {
//!             break; // ends `cancelled`, whatever we return
//!         }
//!         op.progress(|p| {
//!             p.percentage = i as f64 * 10.0;
//!             p.items_processed = i;
//!         });
//!     }
//!     Ok(serde_json::json!({"rows": 10}))
//! });
//! let app = axum::Router::<()>::new().nest("/api/v1", host_service_base::operations::router(ops.clone()));
//! # let _ = (handle, app);
//! // At shutdown:
//! ops.interrupt_all("interrupted: the service shut down before it finished");
//! ops.wait_idle_for(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! Files: `model` (wire types), `config`, `registry` ([`Operations`]), `handle`
//! ([`OperationHandle`]), `tasks` (spawn, wait), `prune` (retention), `store` (redb),
//! `writer` (the store's commit thread), `events` (broadcast and SSE), `api` (routes),
//! `error`.

mod api;
mod config;
mod error;
mod events;
mod handle;
mod model;
mod prune;
mod registry;
mod store;
mod tasks;
mod writer;

pub use api::{
    CancelData, CancelRequest, CancelResponse, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT,
    OperationListResponse, OperationResponse, parse_list_query, router,
};
pub use config::{
    DEFAULT_CANCEL_REASON, INTERRUPTED_BY_RESTART, MIN_RETENTION, OperationsConfig, parse_retention,
};
pub use error::{CancelError, OperationsError};
pub use events::{EVENT_BUFFER, EventStream, KEEP_ALIVE_INTERVAL, sse_event, sse_response};
pub use handle::OperationHandle;
pub use model::{
    OperationEvent, OperationEventKind, OperationFilter, OperationInfo, OperationProgress,
    OperationStatus, OperationSummary, ParseStatusError,
};
pub use registry::{FEED_BUFFER, OPERATION_ID, Operations};
