//! The HTTP API of data-host, wire-compatible with the KTRDR IB host service (:5001).
//!
//! Contract failures are answered the KTRDR way, HTTP 200 with `success: false` and an
//! `error` that names the offending field; a body that is not JSON or lacks a required
//! field is a 400 in the hostbridge error envelope (also naming the field).

mod data;
pub(crate) use data::{
    HeadResponse, HistoricalRequest, HistoricalResponse, ValidateRequest, ValidationResponse,
};
mod health;
pub mod pandas_json;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};

use crate::provider::DataProvider;

/// Request and error counters reported by `/health/detailed`.
#[derive(Debug)]
pub struct ServiceStats {
    started: Instant,
    requests: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Default for ServiceStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl ServiceStats {
    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(message.to_owned());
    }

    /// Data requests served since start.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Data requests that failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The last failure's message.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Seconds since the service started.
    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// Where bars come from.
    pub provider: Arc<dyn DataProvider>,
    /// Counters.
    pub stats: Arc<ServiceStats>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("provider", &self.provider.name())
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State around `provider` with fresh counters.
    pub fn new(provider: Arc<dyn DataProvider>) -> Self {
        Self {
            provider,
            stats: Arc::default(),
        }
    }
}

/// The data-host routes (the scaffold adds `/health` liveness, `/ready`, limits).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(health::root))
        .route("/health/", get(health::basic))
        .route("/health/detailed", get(health::detailed))
        .route("/data/historical", post(data::historical))
        .route("/data/validate", post(data::validate))
        .route("/data/symbol-info/{symbol}", get(data::symbol_info))
        .route("/data/head-timestamp", get(data::head_timestamp))
        .with_state(state)
}
