//! A pool of instances of one host service: calls go to a healthy instance, an
//! instance that fails to answer is skipped until a probe finds it healthy again.
//!
//! Health comes from a background prober (every [`PROBE_INTERVAL`]) and from real
//! calls: a connect failure marks the instance down at once, so the next call does not
//! wait for the prober. Calls never wait on a probe; when every instance is down they
//! fail at once with a 503 naming the service.
//!
//! Every change of the pool's view of an instance (unknown → healthy, healthy → down,
//! down → healthy) is announced once on [`HostPool::watch_changes`]; the gateway
//! publishes them as `host.health_changed` events.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use data_host::provider::DataError;
use host_service_base::error::RemoteError;
use host_service_base::health::HealthReport;
use host_service_base::{AsyncHostService, CancellationToken, HostError};
use serde::Serialize;
use tokio::sync::broadcast;

/// How often the prober checks every instance.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The HTTP client of one pool member: a short connect timeout and a single quick
/// retry, because the pool fails over to another instance instead of waiting on a dead
/// one.
pub fn member_client(
    service: &str,
    url: &url::Url,
) -> Result<host_service_base::HostClient, HostError> {
    host_service_base::HostClient::builder(service, url.as_str())?
        .connect_timeout(Duration::from_secs(2))
        .retry(host_service_base::RetryPolicy {
            max_retries: 1,
            initial_backoff: Duration::from_millis(50),
            ..host_service_base::RetryPolicy::default()
        })
        .build()
}

/// Errors that say "this instance could not serve the call; another may".
pub trait Failover {
    /// True when the instance was unreachable or refused for capacity, so trying
    /// another instance is right (and cannot run the work twice).
    fn try_elsewhere(&self) -> bool;
    /// True when the instance itself is down (not merely busy).
    fn instance_down(&self) -> bool;
}

impl Failover for HostError {
    /// Only what provably did not take effect on this instance (never sent, or
    /// refused by its answer): a start whose answer was lost, or whose outcome is
    /// unknown, must not run a second time on another instance.
    fn try_elsewhere(&self) -> bool {
        matches!(self, HostError::Unavailable { .. } | HostError::Busy { .. })
            && self.did_not_take_effect()
    }

    fn instance_down(&self) -> bool {
        matches!(self, HostError::Unavailable { .. })
    }
}

impl Failover for DataError {
    /// Besides an instance that cannot be reached, an instance whose IB Gateway link
    /// is down (`Connectivity`) is tried elsewhere: another data-host may have its own.
    /// Reads are safe to repeat, so a connection lost mid-answer is tried elsewhere too.
    fn try_elsewhere(&self) -> bool {
        match self {
            DataError::Host(e) => {
                matches!(e, HostError::Unavailable { .. } | HostError::Busy { .. })
            }
            DataError::Connectivity(_) => true,
            _ => false,
        }
    }

    fn instance_down(&self) -> bool {
        match self {
            DataError::Host(e) => e.instance_down(),
            DataError::Connectivity(_) => true,
            _ => false,
        }
    }
}

/// One instance in `/api/v1/health`.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    /// Its base URL.
    pub url: String,
    /// Whether the last probe or call found it healthy (`None`: not probed yet).
    pub healthy: Option<bool>,
    /// Round trip of the last probe.
    pub latency_ms: Option<f64>,
    /// Why it is down.
    pub error: Option<String>,
}

/// A change of the pool's view of one instance.
#[derive(Debug, Clone, Serialize)]
pub struct HealthChange {
    /// The service (`data-host`, `training-host`).
    pub service: String,
    /// The instance's base URL.
    pub url: String,
    /// Its health now.
    pub healthy: bool,
    /// Its health before (`None`: not known yet).
    pub previous: Option<bool>,
    /// Why it is down, when it is.
    pub reason: Option<String>,
    /// Round trip of the probe that saw the change.
    pub latency_ms: Option<f64>,
    /// Instances of the service not known to be down, after the change.
    pub instances_up: usize,
    /// Instances of the service.
    pub instances: usize,
}

/// Changes a subscriber may fall behind before it misses some.
const CHANGES_BUFFER: usize = 256;

/// Instances of one service.
#[derive(Debug)]
pub struct HostPool<C> {
    service: String,
    members: Vec<Arc<C>>,
    next: AtomicUsize,
    /// The health of each member last announced on `changes`.
    announced: Mutex<Vec<Option<bool>>>,
    changes: broadcast::Sender<HealthChange>,
}

impl<C: AsyncHostService + 'static> HostPool<C> {
    /// A pool of `members` of `service` (at least one).
    pub fn new(service: impl Into<String>, members: Vec<C>) -> Result<Self, HostError> {
        let service = service.into();
        if members.is_empty() {
            return Err(HostError::internal(format_args!(
                "a pool of {service} needs at least one instance"
            )));
        }
        let announced = Mutex::new(vec![None; members.len()]);
        Ok(Self {
            service,
            members: members.into_iter().map(Arc::new).collect(),
            next: AtomicUsize::new(0),
            announced,
            changes: broadcast::channel(CHANGES_BUFFER).0,
        })
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Every instance.
    pub fn members(&self) -> &[Arc<C>] {
        &self.members
    }

    /// The instance at `url` (as [`AsyncHostService::base_url`] spells it).
    pub fn member(&self, url: &str) -> Option<Arc<C>> {
        self.members
            .iter()
            .find(|m| m.base_url().as_str() == url)
            .cloned()
    }

    /// Instances worth trying, in order: those not known to be down, rotating the
    /// first one so load spreads. Empty when every instance is down.
    pub fn candidates(&self) -> Vec<Arc<C>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.members.len();
        (0..n)
            .map(|i| &self.members[(start + i) % n])
            .filter(|m| m.maybe_up())
            .cloned()
            .collect()
    }

    /// Whether some instance is not known to be down (does not rotate the choice).
    pub fn any_up(&self) -> bool {
        self.members.iter().any(|m| m.maybe_up())
    }

    /// The error a call gets when no instance is healthy.
    pub fn all_down(&self) -> HostError {
        let reasons: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let why = m
                    .last_health()
                    .and_then(|h| h.error)
                    .unwrap_or_else(|| "down".to_owned());
                format!("{}: {why}", m.base_url())
            })
            .collect();
        HostError::unavailable(
            self.service.clone(),
            RemoteError(format!("no healthy instance ({})", reasons.join("; "))),
        )
    }

    /// Records that a real call found `member` down.
    pub fn mark_down(&self, member: &C, error: &impl std::fmt::Display) {
        tracing::warn!(service = %self.service, url = %member.base_url(), %error, "instance marked down");
        member
            .health_cache()
            .store(HealthReport::unhealthy(error.to_string(), None));
        self.announce();
    }

    /// Every change of the pool's view of an instance from now on.
    pub fn watch_changes(&self) -> broadcast::Receiver<HealthChange> {
        self.changes.subscribe()
    }

    /// Announces each member whose last known health differs from what was last
    /// announced. Compares with the cache rather than hooking each store, so a result
    /// stored by any path is seen.
    fn announce(&self) {
        let mut announced = self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now: Vec<Option<HealthReport>> = self.members.iter().map(|m| m.last_health()).collect();
        let instances_up = now
            .iter()
            .filter(|h| h.as_ref().is_none_or(|h| h.healthy))
            .count();
        for (i, report) in now.iter().enumerate() {
            let Some(report) = report else { continue };
            if announced[i] == Some(report.healthy) {
                continue;
            }
            let change = HealthChange {
                service: self.service.clone(),
                url: self.members[i].base_url().to_string(),
                healthy: report.healthy,
                previous: announced[i],
                reason: report.error.clone(),
                latency_ms: report.latency_ms,
                instances_up,
                instances: self.members.len(),
            };
            announced[i] = Some(report.healthy);
            // No subscriber (no event publisher) is fine.
            let _ = self.changes.send(change);
        }
    }

    /// Runs `call` on a healthy instance; when it fails in a way another instance
    /// could serve ([`Failover::try_elsewhere`]), tries the next one. Returns the
    /// instance that answered with the result.
    pub async fn call<T, E, F, Fut>(&self, call: F) -> Result<(Arc<C>, T), E>
    where
        E: Failover + From<HostError> + std::fmt::Display,
        F: Fn(Arc<C>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let candidates = self.candidates();
        if candidates.is_empty() {
            return Err(self.all_down().into());
        }
        let mut last = None;
        for member in candidates {
            match call(member.clone()).await {
                Ok(value) => return Ok((member, value)),
                Err(e) if e.try_elsewhere() => {
                    if e.instance_down() {
                        self.mark_down(&member, &e);
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.all_down().into()))
    }

    /// Probes every instance now and records the results.
    pub async fn probe_all(&self) {
        let probes = self.members.iter().map(|m| async move {
            let report = m.probe_health().await;
            if !report.healthy {
                tracing::debug!(service = %self.service, url = %m.base_url(), error = ?report.error, "probe failed");
            }
            m.health_cache().store(report);
        });
        futures::future::join_all(probes).await;
        self.announce();
    }

    /// Probes every [`PROBE_INTERVAL`] until `stop` fires.
    pub fn spawn_prober(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => pool.probe_all().await,
                }
            }
        })
    }

    /// The last known state of every instance (never waits).
    pub fn report(&self) -> Vec<InstanceReport> {
        self.members
            .iter()
            .map(|m| {
                let last = m.last_health();
                InstanceReport {
                    url: m.base_url().to_string(),
                    healthy: last.as_ref().map(|h| h.healthy),
                    latency_ms: last.as_ref().and_then(|h| h.latency_ms),
                    error: last.and_then(|h| h.error),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use host_service_base::HostClient;
    use host_service_base::service::HostService;

    use super::*;

    fn pool(urls: &[&str]) -> HostPool<HostService> {
        let members = urls
            .iter()
            .map(|u| HostService::new(HostClient::new("svc", u).expect("url"), PROBE_INTERVAL))
            .collect();
        HostPool::new("svc", members).expect("non-empty")
    }

    #[test]
    fn an_empty_pool_is_refused() {
        assert!(HostPool::<HostService>::new("svc", Vec::new()).is_err());
    }

    #[test]
    fn candidates_rotate_and_skip_instances_marked_down() {
        let p = pool(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let firsts: Vec<String> = (0..4)
            .map(|_| p.candidates()[0].base_url().to_string())
            .collect();
        assert_ne!(firsts[0], firsts[1], "the first choice rotates: {firsts:?}");

        p.mark_down(&p.members()[0], &"connection refused");
        for _ in 0..4 {
            let c = p.candidates();
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].base_url().as_str(), "http://127.0.0.1:2/");
        }
        p.mark_down(&p.members()[1], &"connection refused");
        assert!(p.candidates().is_empty());
        let err = p.all_down();
        assert!(matches!(err, HostError::Unavailable { ref service, .. } if service == "svc"));
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[tokio::test]
    async fn an_instance_marked_down_is_used_again_once_a_probe_finds_it_healthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let router = axum::Router::new().route(
            "/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"healthy": true})) }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        let p = pool(&[&url]);
        p.mark_down(&p.members()[0], &"connection refused");
        assert!(p.candidates().is_empty() && !p.any_up());
        let mut changes = p.watch_changes();
        p.probe_all().await;
        assert!(p.any_up(), "{:?}", p.report());
        assert_eq!(p.candidates().len(), 1);
        assert_eq!(p.report()[0].healthy, Some(true));
        let change = changes.try_recv().expect("announced");
        assert!(change.healthy);
        assert_eq!(change.previous, Some(false));
        assert_eq!((change.instances_up, change.instances), (1, 1));
        // The same view again announces nothing.
        p.probe_all().await;
        assert!(changes.try_recv().is_err());
    }

    #[test]
    fn each_change_of_view_is_announced_once() {
        let p = pool(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let mut changes = p.watch_changes();
        p.mark_down(&p.members()[0], &"connection refused");
        p.mark_down(&p.members()[0], &"connection refused");
        let change = changes.try_recv().expect("announced");
        assert_eq!(change.url, "http://127.0.0.1:1/");
        assert!(!change.healthy);
        assert_eq!(change.previous, None);
        assert_eq!(change.reason.as_deref(), Some("connection refused"));
        assert_eq!((change.instances_up, change.instances), (1, 2));
        assert!(changes.try_recv().is_err(), "announced once");
    }

    #[tokio::test]
    async fn call_fails_over_to_the_next_instance_and_marks_the_dead_one() {
        let p = pool(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let (member, value) = p
            .call(|m| async move {
                if m.base_url().port() == Some(1) {
                    Err(HostError::unavailable("svc", RemoteError("refused".into())))
                } else {
                    Ok(7)
                }
            })
            .await
            .expect("the second instance answers");
        assert_eq!(value, 7);
        assert_eq!(member.base_url().port(), Some(2));
        let down = p.members()[0].last_health().expect("marked");
        assert!(!down.healthy);

        // A request error is not retried elsewhere.
        let err = p
            .call(|_| async { Err::<(), _>(HostError::bad_field("x", "bad")) })
            .await
            .expect_err("bad request");
        assert!(matches!(err, HostError::BadRequest { .. }));
    }

    #[tokio::test]
    async fn an_instance_whose_ib_link_is_down_fails_over_and_a_bad_symbol_does_not() {
        let p = pool(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        // Two calls: the rotation puts the instance without IB first in one of them.
        for _ in 0..2 {
            let (member, value) = p
                .call(|m| async move {
                    if m.base_url().port() == Some(1) {
                        Err(DataError::Connectivity(
                            "not connected to IB Gateway at 127.0.0.1:4002".into(),
                        ))
                    } else {
                        Ok(7)
                    }
                })
                .await
                .expect("the instance with a live IB link answers");
            assert_eq!((member.base_url().port(), value), (Some(2), 7));
        }
        let down = p.members()[0].last_health().expect("marked down");
        assert!(!down.healthy);
        assert!(down.error.is_some_and(|e| e.contains("4002")));

        // The symbol is unknown to IB itself: another instance would say the same.
        let asked = AtomicUsize::new(0);
        let err = p
            .call(|_| {
                asked.fetch_add(1, Ordering::Relaxed);
                async {
                    Err::<(), _>(DataError::UnknownSymbol {
                        symbol: "NOPE".into(),
                    })
                }
            })
            .await
            .expect_err("unknown symbol");
        assert!(matches!(err, DataError::UnknownSymbol { .. }), "{err}");
        assert_eq!(asked.load(Ordering::Relaxed), 1);
    }
}
