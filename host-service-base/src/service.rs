//! `AsyncHostService`: the shape of every typed client of a host service.
//!
//! A typed client (data-host's `DataHostClient`, the training-host client, the
//! gateway's pool members) holds one [`HostClient`] and one [`HealthCache`]; the trait
//! provides health probing and JSON helpers on top, so each client only adds its
//! endpoints.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::client::HostClient;
use crate::error::HostError;
use crate::health::{HealthCache, HealthReport};

/// Time a health probe may take; a probe is never retried.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one host service.
#[async_trait]
pub trait AsyncHostService: Send + Sync {
    /// The shared HTTP client of this service.
    fn client(&self) -> &HostClient;

    /// The cache of health probe results.
    fn health_cache(&self) -> &HealthCache;

    /// The service name (errors, logs, metrics).
    fn name(&self) -> &str {
        self.client().service()
    }

    /// Where the service lives.
    fn base_url(&self) -> &Url {
        self.client().base_url()
    }

    /// The liveness path probed by [`health`](Self::health).
    fn health_path(&self) -> &str {
        "/health"
    }

    /// Probes the service now (no cache). Healthy when it answers 2xx within
    /// [`PROBE_TIMEOUT`] and, if its body has a `healthy` field, that field is true.
    async fn probe_health(&self) -> HealthReport {
        let started = Instant::now();
        let answer: Result<Value, HostError> = self
            .client()
            .get(self.health_path())
            .timeout(PROBE_TIMEOUT)
            .max_retries(0)
            .send_json()
            .await;
        let latency = started.elapsed();
        match answer {
            Ok(body) => {
                let healthy = body.get("healthy").and_then(Value::as_bool).unwrap_or(true);
                HealthReport {
                    healthy,
                    latency_ms: Some(latency.as_secs_f64() * 1000.0),
                    checked_at: chrono::Utc::now(),
                    error: (!healthy).then(|| format!("{} reports itself unhealthy", self.name())),
                    details: Some(body),
                }
            }
            Err(e) => HealthReport::unhealthy(e.to_string(), Some(latency)),
        }
    }

    /// The cached health, probing when the cached result is older than its TTL.
    async fn health(&self) -> HealthReport {
        self.health_cache()
            .get_or_probe(|| self.probe_health())
            .await
    }

    /// The last known health without waiting (None before the first probe): for hot
    /// paths that must not wait on a probe.
    fn last_health(&self) -> Option<HealthReport> {
        self.health_cache().last()
    }

    /// Not known to be down: healthy at the last probe, or never probed yet. What a
    /// pool asks per request (no report is copied).
    fn maybe_up(&self) -> bool {
        self.health_cache().last_healthy().unwrap_or(true)
    }

    /// GETs a JSON answer.
    async fn get_json<T>(
        &self,
        path: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<T, HostError>
    where
        T: DeserializeOwned + Send,
        Self: Sized,
    {
        self.client().get_json(path, cancel).await
    }

    /// POSTs JSON and decodes the JSON answer (not replayed once sent).
    async fn post_json<B, T>(
        &self,
        path: &str,
        body: &B,
        cancel: Option<&CancellationToken>,
    ) -> Result<T, HostError>
    where
        B: Serialize + Sync + ?Sized,
        T: DeserializeOwned + Send,
        Self: Sized,
    {
        self.client().post_json(path, body, cancel).await
    }
}

/// A plain host service: a client plus its health cache. Typed clients wrap one.
#[derive(Debug)]
pub struct HostService {
    client: HostClient,
    health: HealthCache,
}

impl HostService {
    /// Wraps `client` with a health cache of `ttl`.
    pub fn new(client: HostClient, ttl: Duration) -> Self {
        Self {
            client,
            health: HealthCache::new(ttl),
        }
    }
}

impl AsyncHostService for HostService {
    fn client(&self) -> &HostClient {
        &self.client
    }

    fn health_cache(&self) -> &HealthCache {
        &self.health
    }
}

/// Probes `service` at `base_url` once, without retries or caching: what a container
/// healthcheck subcommand runs (`Ok(())` when healthy, else the reason).
pub async fn check_health_once(service: &str, base_url: &str) -> Result<(), String> {
    let client = HostClient::new(service, base_url).map_err(|e| e.to_string())?;
    let report = HostService::new(client, Duration::ZERO)
        .probe_health()
        .await;
    if report.healthy {
        Ok(())
    } else {
        Err(report
            .error
            .unwrap_or_else(|| format!("{service} is unhealthy")))
    }
}

/// What every binary's `healthcheck` subcommand does: probe once, print why on stderr
/// when unhealthy, and exit 0 (healthy) or 1, as container healthchecks expect.
pub async fn healthcheck_exit(service: &str, base_url: &str) -> std::process::ExitCode {
    match check_health_once(service, base_url).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            std::process::ExitCode::FAILURE
        }
    }
}
