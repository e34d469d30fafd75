//! The connection to TWS / IB Gateway: connected in the background, watched, and
//! replaced with exponential backoff and jitter whenever it dies, until shutdown.
//!
//! **Who reconnects.** `ibapi` can reconnect by itself, and then re-sends a
//! historical request that was in flight (up to three times) — outside our pacing,
//! with a Fibonacci backoff and no jitter. The provider switches that off
//! (`max_reconnect_attempts(0)`): when the socket dies, `ibapi` fails every open
//! request (`ConnectionReset`, then `ConnectionFailed`), closes the client's notice
//! stream, and this module's task builds a new client. A request that was in flight
//! therefore fails with `DataError::Connectivity` and is never re-sent behind the
//! pacer's back; the caller may retry.
//!
//! **Calls while not connected.** [`Connection::client`] waits for the very first
//! connection attempt (at most `connect_timeout`), so a request made right after
//! start-up waits for the handshake instead of failing. After any failed attempt or
//! lost connection it fails fast with `Connectivity` (naming the address and why)
//! until the connection is back — also while a retry is under way, since a gateway
//! known to be down should not hold every caller up to `connect_timeout`.
//!
//! **Dead connections** are detected by: the notice stream ending (`ibapi` closed
//! the session: socket closed or reset, undecodable stream); notices 502 / 504 / 1300
//! (the session is unusable: reconnect); a heartbeat (`reqCurrentTime`) unanswered
//! within the request timeout (a half-open socket). Notice 1100 (TWS lost IB's
//! servers) keeps the socket — a new one would not help, TWS itself has to get its
//! link back — but marks the provider not connected until 1101 / 1102.
//!
//! Every client gets `ibapi`'s outbound rate limiter (IB allows 50 messages per
//! second) and `one_shot_timeout` = the request timeout, so no `ibapi` call waits
//! forever.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::BackoffBuilder;
use ibapi::subscriptions::NoticeStream;
use ibapi::{Client, RateLimiter};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backoff::reconnect_backoff;
use super::config::{IbConfig, MESSAGES_PER_SECOND};
use super::errors::{IbError, codes};

/// Where the connection stands.
#[derive(Clone)]
enum Link {
    /// An attempt is under way; after a failure or a loss, with its reason (calls
    /// then fail fast instead of waiting for the retry).
    Connecting(Option<String>),
    /// Handshake done: requests go to this client.
    Up(Arc<Client>),
    /// Down for this reason; the task is waiting to try again.
    Down(String),
    /// Shut down for good.
    Stopped,
}

/// Counters of the connection, for health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ConnectionStats {
    /// Connection attempts made.
    pub(crate) attempts: u64,
    /// Attempts that failed.
    pub(crate) failures: u64,
    /// Successful connections after the first one.
    pub(crate) reconnects: u64,
}

struct Shared {
    config: IbConfig,
    gateway: String,
    link: watch::Sender<Link>,
    /// TWS reported 1100 and not yet 1101 / 1102.
    servers_lost: AtomicBool,
    attempts: AtomicU64,
    failures: AtomicU64,
    connects: AtomicU64,
    last_error: Mutex<Option<String>>,
    shutdown: CancellationToken,
}

impl Shared {
    /// Logs a request's error and keeps it as the last error.
    fn note_error(&self, message: String) {
        tracing::warn!(gateway = %self.gateway, "{message}");
        self.record_error(message);
    }

    /// Keeps `message` as the last error without logging it (the connection task
    /// logs an outage once, not every retry).
    fn record_error(&self, message: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

/// The connection, shared by everything the provider sends.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("gateway", &self.shared.gateway)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts connecting in the background. Panics outside a tokio runtime.
    pub(crate) fn start(config: IbConfig) -> Self {
        let (link, _) = watch::channel(Link::Connecting(None));
        let shared = Arc::new(Shared {
            gateway: config.describe(),
            config,
            link,
            servers_lost: AtomicBool::new(false),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            last_error: Mutex::new(None),
            shutdown: CancellationToken::new(),
        });
        let task = tokio::spawn(run(Arc::clone(&shared)));
        Self {
            shared,
            task: Mutex::new(Some(task)),
        }
    }

    /// `IB Gateway at 127.0.0.1:4002 (client id 7)`.
    pub(crate) fn gateway(&self) -> &str {
        &self.shared.gateway
    }

    /// Whether requests can be sent now.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(*self.shared.link.borrow(), Link::Up(_))
            && !self.shared.servers_lost.load(Ordering::Relaxed)
    }

    /// `connected`, `connecting`, `reconnecting`, `disconnected`, `ib_servers_lost`
    /// or `stopped`.
    pub(crate) fn state(&self) -> &'static str {
        match *self.shared.link.borrow() {
            Link::Up(_) if self.shared.servers_lost.load(Ordering::Relaxed) => "ib_servers_lost",
            Link::Up(_) => "connected",
            Link::Connecting(None) => "connecting",
            Link::Connecting(Some(_)) => "reconnecting",
            Link::Down(_) => "disconnected",
            Link::Stopped => "stopped",
        }
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> ConnectionStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            attempts: read(&self.shared.attempts),
            failures: read(&self.shared.failures),
            reconnects: read(&self.shared.connects).saturating_sub(1),
        }
    }

    /// The most recent error of the connection or of a request.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a request's error as the last error.
    pub(crate) fn note_error(&self, message: String) {
        self.shared.note_error(message);
    }

    fn servers_check(&self) -> Result<(), IbError> {
        if self.shared.servers_lost.load(Ordering::Relaxed) {
            return Err(IbError::Connectivity(format!(
                "{} has lost its connection to IB's servers (IB 1100); waiting for it to \
                 come back (1101/1102)",
                self.shared.gateway
            )));
        }
        Ok(())
    }

    fn down(&self, reason: &str) -> IbError {
        IbError::Connectivity(format!(
            "not connected to {}: {reason}; reconnecting in the background",
            self.shared.gateway
        ))
    }

    fn stopped(&self) -> IbError {
        IbError::Connectivity(format!(
            "the connection to {} was shut down",
            self.shared.gateway
        ))
    }

    /// The live client: at once when connected; after the first attempt (at most
    /// `connect_timeout`) at start-up; `Connectivity` at once otherwise.
    pub(crate) async fn client(&self, cancel: &CancellationToken) -> Result<Arc<Client>, IbError> {
        let mut link = self.shared.link.subscribe();
        let deadline = tokio::time::Instant::now() + self.shared.config.connect_timeout;
        loop {
            let now = link.borrow_and_update().clone();
            match now {
                Link::Up(client) => {
                    self.servers_check()?;
                    return Ok(client);
                }
                Link::Down(reason) | Link::Connecting(Some(reason)) => {
                    return Err(self.down(&reason));
                }
                Link::Stopped => return Err(self.stopped()),
                Link::Connecting(None) => {}
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(IbError::Cancelled),
                changed = tokio::time::timeout_at(deadline, link.changed()) => match changed {
                    Ok(Ok(())) => {}
                    // The sender lives as long as `self`; treat its end as a shutdown.
                    Ok(Err(_)) => return Err(self.stopped()),
                    Err(_) => {
                        return Err(IbError::Connectivity(format!(
                            "still connecting to {} after {:?}",
                            self.shared.gateway, self.shared.config.connect_timeout
                        )));
                    }
                },
            }
        }
    }

    /// Stops the connection task and closes the connection (in the background).
    pub(crate) fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// [`shutdown`](Self::shutdown), then waits until the task has closed the
    /// connection.
    pub(crate) async fn shutdown_and_wait(&self) {
        self.shutdown();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::warn!(%err, "IB connection task failed");
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// The connection task: connect, watch, reconnect, until shutdown.
async fn run(shared: Arc<Shared>) {
    let config = &shared.config;
    let backoff = reconnect_backoff(config.reconnect_min, config.reconnect_max);
    let mut delays = backoff.build();
    let mut down: Option<String> = None;
    // Whether the current outage has been logged: a gateway that is not there (the
    // usual case on a machine without IB) is said once, in one line, and then retried
    // quietly; the next line is logged when the state changes (connected, or lost).
    let mut outage_announced = false;
    let mut ever_connected = false;
    while !shared.shutdown.is_cancelled() {
        shared.link.send_replace(Link::Connecting(down.take()));
        shared.attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = tokio::time::timeout(config.connect_timeout, connect(config));
        let outcome = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            outcome = attempt => outcome,
        };
        let reason = match outcome {
            Ok(Ok((client, notices))) => {
                let client = Arc::new(client);
                shared.connects.fetch_add(1, Ordering::Relaxed);
                shared.servers_lost.store(false, Ordering::Relaxed);
                shared.link.send_replace(Link::Up(Arc::clone(&client)));
                tracing::info!(gateway = %shared.gateway, "connected to IB Gateway");
                outage_announced = false;
                ever_connected = true;
                delays = backoff.build();
                let reason = watch(&shared, &client, notices).await;
                // Ends the session even while requests still hold the client: they
                // fail with `Shutdown` instead of waiting on a dead socket.
                client.disconnect().await;
                reason
            }
            Ok(Err(err)) => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                format!("connecting failed: {err}")
            }
            Err(_) => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                format!("no handshake within {:?}", config.connect_timeout)
            }
        };
        if shared.shutdown.is_cancelled() {
            break;
        }
        if outage_announced {
            tracing::debug!(gateway = %shared.gateway, %reason, "IB Gateway still unreachable");
        } else {
            announce_outage(&shared, &reason, ever_connected);
            outage_announced = true;
        }
        shared.record_error(format!("{}: {reason}", shared.gateway));
        shared.link.send_replace(Link::Down(reason.clone()));
        down = Some(reason);
        // The builder sets no attempt limit, so `None` never comes; the cap is a safe
        // answer all the same.
        let delay = delays.next().unwrap_or(config.reconnect_max);
        tokio::select! {
            () = shared.shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    shared.link.send_replace(Link::Stopped);
    tracing::info!(gateway = %shared.gateway, "IB connection stopped");
}

/// The one line an outage gets: what is wrong, what still works, what happens next
/// and how to point the service elsewhere.
fn announce_outage(shared: &Shared, reason: &str, ever_connected: bool) {
    let gateway = &shared.gateway;
    let retry = shared.config.reconnect_max;
    if ever_connected {
        tracing::warn!(
            "lost the connection to {gateway} ({reason}); requests to IB fail until it is \
             back; reconnecting quietly with backoff (at most {retry:?} apart)"
        );
    } else {
        tracing::warn!(
            "no {gateway} reachable ({reason}); bars already in the store are still \
             served, loads from IB fail until it answers; retrying quietly with backoff \
             (at most {retry:?} apart); set IB_ADDRESS (--ib-address) to point elsewhere"
        );
    }
}

async fn connect(config: &IbConfig) -> Result<(Client, NoticeStream), ibapi::Error> {
    Client::builder()
        .address(config.address.to_string())
        .client_id(config.client_id)
        .max_reconnect_attempts(0)
        .rate_limiter(RateLimiter::per_second(MESSAGES_PER_SECOND))
        .one_shot_timeout(config.request_timeout.max(Duration::from_millis(1)))
        .connect_with_notice_stream()
        .await
}

/// Watches a live connection; returns why it is no longer usable (or that the
/// provider shut down).
async fn watch(shared: &Shared, client: &Client, mut notices: NoticeStream) -> String {
    let config = &shared.config;
    let mut heartbeat = tokio::time::interval(config.heartbeat.max(Duration::from_millis(10)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return "shut down".to_owned(),
            notice = notices.next() => {
                let Some(notice) = notice else {
                    return "the connection was closed".to_owned();
                };
                match notice.code {
                    codes::CONNECTIVITY_LOST => {
                        shared.servers_lost.store(true, Ordering::Relaxed);
                        shared.note_error(format!(
                            "{} lost IB's servers (IB 1100): {}",
                            shared.gateway, notice.message
                        ));
                    }
                    codes::RESTORED_DATA_LOST | codes::RESTORED_DATA_MAINTAINED => {
                        shared.servers_lost.store(false, Ordering::Relaxed);
                        let code = notice.code;
                        tracing::info!(gateway = %shared.gateway, code, "IB servers reachable");
                    }
                    codes::COULD_NOT_CONNECT | codes::NOT_CONNECTED | codes::SOCKET_PORT_RESET => {
                        return format!("IB {}: {}", notice.code, notice.message);
                    }
                    // Request errors reach their request; farm notices are noise.
                    code => tracing::debug!(code, message = %notice.message, "IB notice"),
                }
            }
            _ = heartbeat.tick() => {
                let probe = tokio::time::timeout(config.request_timeout, client.server_time());
                // A hung gateway must not hold up a shutdown for the whole timeout.
                let answer = tokio::select! {
                    () = shared.shutdown.cancelled() => return "shut down".to_owned(),
                    answer = probe => answer,
                };
                match answer {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return format!("heartbeat failed: {err}"),
                    Err(_) => {
                        let after = config.request_timeout;
                        return format!("no answer to a heartbeat within {after:?}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_fail_fast_naming_the_address_when_nothing_listens() {
        // A port nobody listens on: bind, take the port, close.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        drop(listener);
        let mut config = IbConfig::new(address, 3);
        config.reconnect_min = Duration::from_secs(30);
        let connection = Connection::start(config);
        let none = CancellationToken::new();
        let Err(IbError::Connectivity(message)) = connection.client(&none).await else {
            panic!("expected a connectivity error: nothing listens")
        };
        assert!(message.contains(&address.to_string()), "{message}");
        assert!(!connection.is_connected());
        assert_eq!(connection.state(), "disconnected");
        // Down: later calls fail at once, without waiting for the next attempt.
        assert!(matches!(
            connection.client(&none).await,
            Err(IbError::Connectivity(_))
        ));
        assert!(connection.last_error().is_some());
        connection.shutdown_and_wait().await;
        assert_eq!(connection.state(), "stopped");
    }

    #[tokio::test]
    async fn an_absent_gateway_is_announced_once_then_retried_quietly() {
        let log = host_service_base::telemetry::LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        // The test's runtime is single-threaded: the connection task logs here too.
        let _guard = tracing::subscriber::set_default(subscriber);

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        drop(listener);
        let mut config = IbConfig::new(address, 3);
        config.reconnect_min = Duration::from_millis(5);
        config.reconnect_max = Duration::from_millis(10);
        let connection = Connection::start(config);
        let waited = tokio::time::Instant::now();
        while connection.stats().failures < 6 {
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "six attempts did not fail: {:?}",
                connection.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        connection.shutdown_and_wait().await;

        let text = log.text();
        let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(
            warnings.len(),
            1,
            "one warning for the outage, not one per retry:\n{text}"
        );
        let line = warnings[0];
        for says in [
            address.to_string().as_str(),
            "still served",
            "IB_ADDRESS",
            "quietly",
        ] {
            assert!(
                line.contains(says),
                "the warning should say {says:?}: {line}"
            );
        }
        // The retries still happened and the last error is kept for health reports.
        assert!(connection.stats().attempts >= 6);
        assert!(
            connection
                .last_error()
                .is_some_and(|e| e.contains(&address.to_string()))
        );
    }
}
