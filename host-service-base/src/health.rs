//! Health: the liveness body every service answers on `/health`, and the short-lived
//! cache of probe results that keeps health checks off hot paths.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

/// Default time a probe result is trusted.
pub const DEFAULT_HEALTH_TTL: Duration = Duration::from_secs(5);

/// The liveness answer of `GET /health`: `{healthy, service, timestamp, status}` (the
/// KTRDR host-service contract).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Liveness {
    /// Always true when the process answers at all.
    pub healthy: bool,
    /// The service's contract name (`ib-connector`, `training-host`, ...).
    pub service: String,
    /// When the answer was made.
    pub timestamp: DateTime<Utc>,
    /// `healthy` (liveness says nothing about dependencies; see readiness).
    pub status: String,
}

impl Liveness {
    /// A healthy answer for `service`, stamped now.
    pub fn now(service: &str) -> Self {
        Self {
            healthy: true,
            service: service.to_owned(),
            timestamp: Utc::now(),
            status: "healthy".to_owned(),
        }
    }
}

/// What one probe of a host service found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthReport {
    /// Whether the service answered and said it is healthy.
    pub healthy: bool,
    /// Round-trip time of the probe.
    pub latency_ms: Option<f64>,
    /// When the probe finished.
    pub checked_at: DateTime<Utc>,
    /// Why it is unhealthy.
    pub error: Option<String>,
    /// The service's own answer, when it gave one.
    pub details: Option<Value>,
}

impl HealthReport {
    /// An unhealthy report with a reason.
    pub fn unhealthy(error: impl Into<String>, latency: Option<Duration>) -> Self {
        Self {
            healthy: false,
            latency_ms: latency.map(|d| d.as_secs_f64() * 1000.0),
            checked_at: Utc::now(),
            error: Some(error.into()),
            details: None,
        }
    }
}

/// Caches probe results for a TTL and lets one probe run at a time, so a burst of
/// callers costs one probe and hot paths can read the last result without waiting.
#[derive(Debug)]
pub struct HealthCache {
    ttl: Duration,
    last: Mutex<Option<(Instant, HealthReport)>>,
    probing: tokio::sync::Mutex<()>,
}

impl Default for HealthCache {
    fn default() -> Self {
        Self::new(DEFAULT_HEALTH_TTL)
    }
}

impl HealthCache {
    /// A cache trusting results for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            last: Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    /// The last result, however old; never waits.
    pub fn last(&self) -> Option<HealthReport> {
        self.lock().as_ref().map(|(_, report)| report.clone())
    }

    /// Whether the last result was healthy (None before the first); never waits, and
    /// copies nothing: hot paths ask this per request, and a report carries details.
    pub fn last_healthy(&self) -> Option<bool> {
        self.lock().as_ref().map(|(_, report)| report.healthy)
    }

    /// The last result if it is younger than the TTL; never waits.
    pub fn fresh(&self) -> Option<HealthReport> {
        self.lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, report)| report.clone())
    }

    /// Records a result (e.g. a failure seen on a real call).
    pub fn store(&self, report: HealthReport) {
        *self.lock() = Some((Instant::now(), report));
    }

    /// Forgets the cached result so the next read probes.
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    /// The fresh result, or the result of `probe` run by exactly one of the callers
    /// that arrive while it is stale.
    pub async fn get_or_probe<F, Fut>(&self, probe: F) -> HealthReport
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = HealthReport>,
    {
        if let Some(report) = self.fresh() {
            return report;
        }
        let _guard = self.probing.lock().await;
        // Another caller may have probed while this one waited for the lock.
        if let Some(report) = self.fresh() {
            return report;
        }
        let report = probe().await;
        self.store(report.clone());
        report
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, HealthReport)>> {
        // A panic while holding this lock cannot leave the Option half-written.
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn ok() -> HealthReport {
        HealthReport {
            healthy: true,
            latency_ms: Some(1.0),
            checked_at: Utc::now(),
            error: None,
            details: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_costs_one_probe_until_ttl_expires() {
        let cache = HealthCache::new(Duration::from_secs(5));
        let probes = AtomicUsize::new(0);
        let probe = || async {
            probes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            ok()
        };
        let results = futures::future::join_all((0..10).map(|_| cache.get_or_probe(probe))).await;
        assert!(results.iter().all(|r| r.healthy));
        assert_eq!(probes.load(Ordering::SeqCst), 1);

        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(cache.fresh().is_none());
        assert!(cache.last().is_some(), "stale result stays readable");
        cache.get_or_probe(probe).await;
        assert_eq!(probes.load(Ordering::SeqCst), 2);
    }
}
