//! [`IbConfig`]: how to reach and pace one TWS / IB Gateway.

use std::net::SocketAddr;
use std::time::Duration;

use super::pacing::PacingLimits;

/// IB's limit on messages per second from one client.
pub const MESSAGES_PER_SECOND: u32 = 50;

/// How to reach and pace one TWS / IB Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct IbConfig {
    /// Where TWS / IB Gateway listens. Use `127.0.0.1`, not `localhost` (which may
    /// resolve to `::1`, where the gateway does not listen).
    pub address: SocketAddr,
    /// The API client id (each connection to one gateway needs its own).
    pub client_id: i32,
    /// Historical-data pacing. The default is IB's rules with a 25 ms
    /// [`min_interval`](PacingLimits::min_interval), which keeps requests within the
    /// message rate limiter.
    pub pacing: PacingLimits,
    /// How long one IB request may take (`ibapi` would otherwise wait forever).
    pub request_timeout: Duration,
    /// How long one connection attempt (TCP connect and handshake) may take.
    pub connect_timeout: Duration,
    /// The first delay before reconnecting; doubled per failed attempt.
    pub reconnect_min: Duration,
    /// The longest delay between attempts (before jitter).
    pub reconnect_max: Duration,
    /// How often a live connection is probed with `reqCurrentTime`.
    pub heartbeat: Duration,
    /// How many segments of one bars request are asked for at once (pacing decides
    /// when each is really sent).
    pub segment_concurrency: usize,
    /// Regular trading hours only (`useRTH=1`); the default asks for all hours.
    pub use_rth: bool,
}

impl IbConfig {
    /// A configuration for the gateway at `address` with defaults: IB's pacing, 60 s
    /// per request, 10 s to connect, reconnects from 0.5 s backing off to 30 s, a
    /// heartbeat every 30 s, 4 segments at once, all trading hours.
    pub fn new(address: SocketAddr, client_id: i32) -> Self {
        Self {
            address,
            client_id,
            pacing: PacingLimits {
                min_interval: Duration::from_millis(25),
                ..PacingLimits::ib()
            },
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            heartbeat: Duration::from_secs(30),
            segment_concurrency: 4,
            use_rth: false,
        }
    }

    /// `IB Gateway at 127.0.0.1:4002 (client id 7)`, for messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "IB Gateway at {} (client id {})",
            self.address, self.client_id
        )
    }
}

impl Default for IbConfig {
    /// IB Gateway's paper-trading port on this host, client id 1.
    fn default() -> Self {
        Self::new(SocketAddr::from(([127, 0, 0, 1], 4002)), 1)
    }
}
