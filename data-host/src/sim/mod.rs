//! IB Gateway simulator: a real TWS-API peer for running hostbridge without an IB
//! account, and for testing the IB provider against the real `ibapi` client.
//!
//! It speaks the wire protocol of TWS / IB Gateway 10.40+ (server version >= 213,
//! protobuf messages after the handshake) on a TCP listener:
//!
//! - the handshake (`API\0` + version range; the answer is the version and the
//!   gateway time), `startApi`, then `nextValidId`, `managedAccounts` and the usual
//!   "data farm connection is OK" notices (2104, 2106, 2158); a second connection
//!   with a client id already in use is refused with error 326;
//! - `reqHistoricalData` served from a [`BarSource`]: the bars whose open time falls
//!   in `(endDateTime - durationStr, endDateTime]`, at the requested bar size when the
//!   source has that timeframe (no resampling), then `historicalDataEnd`;
//!   `cancelHistoricalData` stops an answer not yet sent (366 for an unknown id);
//! - `reqHeadTimestamp` (the first bar), `reqContractDetails` (a synthesized
//!   contract with a stable conId), `reqCurrentTime`, `reqManagedAccts`, `reqIds`;
//! - IB's historical pacing rules ([`SimPacing`]), refusing a violating request with
//!   error 162 "Historical data request pacing violation", and IB's errors and texts
//!   otherwise: 200 unknown symbol, 162 "HMDS query returned no data", 321 invalid
//!   request.
//!
//! It does NOT do live or streaming data (`keepUpToDate` requests get their history
//! and then stay open silently), orders, accounts or positions, news, scanners, or
//! time zones other than UTC; such messages are logged and ignored. Bars are served
//! as the source holds them whatever `whatToShow` (TRADES, MIDPOINT, BID, ASK,
//! BID_ASK) and `useRTH` say.

mod answers;
mod contract;
mod history;
mod leases;
mod pacing;
mod proto;
mod session;
mod source;
mod stats;
mod store_source;
mod wire;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use host_service_base::CancellationToken;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

pub use pacing::SimPacing;
pub use source::{BarSource, MemoryBarSource};
pub use stats::SimStats;
pub use store_source::{DEFAULT_CONVERTED_BYTES, StoreBarSource};

/// The server version the simulator announces by default (ibapi 5.x needs >= 213).
pub const DEFAULT_SERVER_VERSION: i32 = 221;
/// The account `managedAccounts` reports.
pub const SIM_ACCOUNT: &str = "DU0000000";

/// How the simulated gateway behaves.
#[derive(Clone)]
pub struct SimConfig {
    /// Where the bars come from.
    pub source: Arc<dyn BarSource>,
    /// IB's historical pacing limits.
    pub pacing: SimPacing,
    /// Wait this long before answering each historical request (default 0), so a
    /// test can cancel one mid-flight.
    pub response_delay: Duration,
    /// The highest server version to announce; the handshake answers the lower of
    /// this and the client's maximum. ibapi 5.x refuses anything below 213.
    pub server_version: i32,
    /// Refuse requests that break `pacing` with error 162 (default true).
    pub enforce_pacing: bool,
}

impl SimConfig {
    /// IB's rules, no delay, [`DEFAULT_SERVER_VERSION`], bars from `source`.
    pub fn new(source: Arc<dyn BarSource>) -> Self {
        Self {
            source,
            pacing: SimPacing::default(),
            response_delay: Duration::ZERO,
            server_version: DEFAULT_SERVER_VERSION,
            enforce_pacing: true,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("pacing", &self.pacing)
            .field("response_delay", &self.response_delay)
            .field("server_version", &self.server_version)
            .field("enforce_pacing", &self.enforce_pacing)
            .finish_non_exhaustive()
    }
}

/// State shared by every connection of one simulated gateway.
#[derive(Debug)]
struct Shared {
    config: SimConfig,
    counters: stats::Counters,
    pacer: Mutex<pacing::Pacer>,
    con_ids: contract::ConIds,
    client_ids: Mutex<HashSet<i32>>,
}

impl Shared {
    fn new(config: SimConfig) -> Self {
        Self {
            pacer: Mutex::new(pacing::Pacer::new(config.pacing)),
            config,
            counters: stats::Counters::default(),
            con_ids: contract::ConIds::default(),
            client_ids: Mutex::new(HashSet::new()),
        }
    }

    fn pacer(&self) -> std::sync::MutexGuard<'_, pacing::Pacer> {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the TWS API on `listener` until `shutdown` fires, then stops listening,
/// drops every open connection and returns once they are all closed.
pub async fn run(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    serve(listener, Arc::new(Shared::new(config)), shutdown).await
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "ib-sim: IB Gateway simulator listening");
    let tracker = TaskTracker::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracker.spawn(session::serve(stream, peer, Arc::clone(&shared), shutdown.clone()));
                }
                Err(err) => {
                    // Out of descriptors and the like: back off, keep listening.
                    tracing::warn!(%err, "ib-sim: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    tracing::info!(%addr, "ib-sim: stopped");
    Ok(())
}

/// Starts simulated gateways in the background.
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// Serves on `listener` in a background task (call inside a Tokio runtime).
    pub fn start(listener: TcpListener, config: SimConfig) -> io::Result<SimHandle> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), shutdown.clone()));
        Ok(SimHandle {
            addr,
            shared,
            shutdown,
            task: Mutex::new(Some(task)),
        })
    }

    /// Binds `addr` (e.g. `127.0.0.1:0`) and [starts](Self::start) serving on it.
    pub async fn bind(addr: impl ToSocketAddrs, config: SimConfig) -> io::Result<SimHandle> {
        Self::start(TcpListener::bind(addr).await?, config)
    }
}

/// A running simulator. Dropping it shuts the simulator down without waiting.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl SimHandle {
    /// The address it listens on; give ibapi `addr().to_string()`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// "The gateway is gone": stops listening (new connects are refused) and drops
    /// every open connection; returns once all are closed. Idempotent.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(%err, "ib-sim: stopped with an error"),
                Err(err) => tracing::warn!(%err, "ib-sim: task failed"),
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
