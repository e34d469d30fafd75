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

/// The pacing budget flags: IB's rules are per IB Gateway (per account), not per
/// process, so a user whose account is shared with other programs (a second data-host,
/// the gateway's in-process provider, TWS charts) lowers them here. Each may only be
/// made stricter than IB's rule: a looser one would earn pacing violations (IB 162).
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct PacingArgs {
    /// Historical requests in any 10 minutes (IB: 60).
    #[arg(long, env = "IB_PACING_REQUESTS_PER_10MIN", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=60))]
    pub ib_pacing_requests_per_10min: u32,
    /// Shortest wait between two identical requests (IB: 15s; at least that).
    #[arg(long, env = "IB_PACING_IDENTICAL_INTERVAL", default_value = "15s",
          value_parser = identical_interval)]
    pub ib_pacing_identical_interval: Duration,
    /// Requests for one contract, exchange and what-to-show in any 2 seconds (IB: 5).
    #[arg(long, env = "IB_PACING_BURST_PER_CONTRACT", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=5))]
    pub ib_pacing_burst_per_contract: u32,
    /// Historical requests open at once (IB: 50).
    #[arg(long, env = "IB_PACING_MAX_OPEN", default_value_t = 50,
          value_parser = clap::value_parser!(u16).range(1..=50))]
    pub ib_pacing_max_open: u16,
}

impl Default for PacingArgs {
    /// IB's own limits.
    fn default() -> Self {
        let ib = PacingLimits::ib();
        Self {
            ib_pacing_requests_per_10min: ib.max_per_window,
            ib_pacing_identical_interval: ib.identical_interval,
            ib_pacing_burst_per_contract: ib.max_per_burst,
            ib_pacing_max_open: u16::try_from(ib.max_open).unwrap_or(u16::MAX),
        }
    }
}

impl PacingArgs {
    /// `limits` with these budgets (windows, margin and weights are kept).
    pub fn apply(&self, limits: PacingLimits) -> PacingLimits {
        PacingLimits {
            max_per_window: self.ib_pacing_requests_per_10min,
            identical_interval: self.ib_pacing_identical_interval,
            max_per_burst: self.ib_pacing_burst_per_contract,
            max_open: usize::from(self.ib_pacing_max_open),
            ..limits
        }
    }
}

fn identical_interval(text: &str) -> Result<Duration, String> {
    let interval =
        host_service_base::config::parse_duration("--ib-pacing-identical-interval", text)
            .map_err(|e| e.to_string())?;
    let floor = PacingLimits::ib().identical_interval;
    if interval < floor {
        return Err(format!(
            "{interval:?} is shorter than IB's {floor:?} between identical requests"
        ));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        pacing: PacingArgs,
    }

    #[test]
    fn the_defaults_are_ibs_rules() {
        let cli = Cli::try_parse_from(["x"]).expect("defaults parse");
        assert_eq!(cli.pacing, PacingArgs::default());
        let ib = PacingLimits::ib();
        assert_eq!(cli.pacing.apply(ib), ib);
    }

    #[test]
    fn budgets_can_be_lowered() {
        let cli = Cli::try_parse_from([
            "x",
            "--ib-pacing-requests-per-10min",
            "30",
            "--ib-pacing-identical-interval",
            "20s",
            "--ib-pacing-burst-per-contract",
            "2",
            "--ib-pacing-max-open",
            "10",
        ])
        .expect("lower budgets parse");
        let limits = cli.pacing.apply(PacingLimits::ib());
        assert_eq!(limits.max_per_window, 30);
        assert_eq!(limits.identical_interval, Duration::from_secs(20));
        assert_eq!(limits.max_per_burst, 2);
        assert_eq!(limits.max_open, 10);
        assert_eq!(limits.window, PacingLimits::ib().window);
    }

    #[test]
    fn budgets_looser_than_ibs_are_refused_naming_the_flag() {
        for (flag, value) in [
            ("--ib-pacing-requests-per-10min", "61"),
            ("--ib-pacing-requests-per-10min", "0"),
            ("--ib-pacing-identical-interval", "10s"),
            ("--ib-pacing-burst-per-contract", "6"),
            ("--ib-pacing-max-open", "51"),
        ] {
            let err = Cli::try_parse_from(["x", flag, value]).expect_err(flag);
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
    }
}
