//! The IB provider against the IB Gateway simulator: `IbProvider` → `ibapi` → the
//! simulator on 127.0.0.1:0 serving the repository's sample store. Every wait is
//! bounded (a broken test fails instead of hanging); nothing asserts how long
//! something took.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use data_host::bars::frame_to_bars;
use data_host::ib::{IbConfig, IbProvider, PacingLimits};
use data_host::provider::{BarsRequest, DataError, DataProvider};
use data_host::sim::{MemoryBarSource, SimConfig, SimHandle, SimPacing, SimStats, Simulator};
use data_host::store::{Store, StoreFormat};
use data_host::{Bar, InstrumentType, Symbol, Timeframe};
use futures::future::join_all;
use host_service_base::{CancellationToken, SplitMix64};
use polars::prelude::DataFrame;

use crate::support::sample_dir;

/// Bounds every wait.
const PATIENCE: Duration = Duration::from_secs(30);

/// Pacing divisor for the tests that are not about pacing: IB's rules, 20 times
/// faster, on both sides.
const FAST: u32 = 20;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// 13:30 UTC: the opening bar of a US session, so segments starting then begin and
/// end exactly on a bar (the boundaries most likely to lose one).
fn at_open(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    at(y, m, d) + TimeDelta::minutes(13 * 60 + 30)
}

fn symbol(s: &str) -> Symbol {
    Symbol::parse(s).expect("symbol")
}

fn store() -> Store {
    Store::new(sample_dir(), StoreFormat::Csv)
}

/// A synthetic EURUSD hourly series (the sample store has no forex).
fn eurusd() -> Vec<Bar> {
    (0..24 * 40)
        .map(|i| {
            let p = 1.08 + f64::from(i % 17) * 0.0005;
            Bar {
                timestamp: at(2024, 3, 1) + TimeDelta::hours(i64::from(i)),
                open: p,
                high: p + 0.001,
                low: p - 0.001,
                close: p + 0.0002,
                volume: 0.0,
            }
        })
        .collect()
}

/// Every series of the sample store, plus EURUSD 1h.
fn sample_source() -> MemoryBarSource {
    let store = store();
    let mut source = MemoryBarSource::new();
    for (sym, timeframe) in store.list().expect("sample store") {
        let frame = store
            .load(&sym, timeframe)
            .expect("load")
            .expect("listed series");
        source.insert(
            sym.as_str(),
            timeframe,
            frame_to_bars(&frame).expect("bars"),
        );
    }
    source.insert("EURUSD", Timeframe::H1, eurusd());
    source
}

fn sim_config(divisor: u32) -> SimConfig {
    SimConfig {
        pacing: SimPacing::IB.time_scaled(divisor),
        ..SimConfig::new(Arc::new(sample_source()))
    }
}

async fn start_sim(config: SimConfig) -> SimHandle {
    Simulator::bind("127.0.0.1:0", config)
        .await
        .expect("simulator binds")
}

/// IB's pacing `divisor` times faster, with the default margin: it absorbs the
/// jitter between our clock and the simulator's, which does not scale with time.
fn scaled_pacing(divisor: u32) -> PacingLimits {
    let defaults = IbConfig::default().pacing;
    PacingLimits {
        margin: defaults.margin,
        ..defaults.time_divided_by(divisor)
    }
}

/// Provider settings for tests: [`scaled_pacing`], quick reconnects, frequent
/// heartbeats.
fn ib_config(address: SocketAddr, divisor: u32) -> IbConfig {
    let mut config = IbConfig::new(address, 1);
    config.pacing = scaled_pacing(divisor);
    config.request_timeout = Duration::from_secs(10);
    config.connect_timeout = Duration::from_secs(5);
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(500);
    // Probed often, so every test also checks that heartbeats keep a live
    // connection up.
    config.heartbeat = Duration::from_millis(200);
    config
}

/// Waits until `ok` holds.
async fn until(what: &str, ok: impl Fn() -> bool) {
    let polling = async {
        while !ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(PATIENCE, polling).await.is_err() {
        panic!("gave up waiting: {what}");
    }
}

async fn stats_until(sim: &SimHandle, ok: impl Fn(&SimStats) -> bool) -> SimStats {
    until("simulator counters", || ok(&sim.stats())).await;
    sim.stats()
}

/// A provider connected to `sim`.
async fn provider(sim: &SimHandle, divisor: u32) -> IbProvider {
    let provider = IbProvider::new(ib_config(sim.addr(), divisor));
    until("the provider connects", || provider.status().connected).await;
    provider
}

fn request(
    sym: &str,
    timeframe: Timeframe,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> BarsRequest {
    BarsRequest::new(symbol(sym), timeframe, start, end, None).expect("request")
}

async fn bars(provider: &IbProvider, request: &BarsRequest) -> Result<DataFrame, DataError> {
    tokio::time::timeout(PATIENCE, provider.bars(request, &CancellationToken::new()))
        .await
        .expect("bars() returns")
}

/// The frame equals the store's bars in the request's range: schema, every row,
/// every column.
fn assert_as_stored(frame: &DataFrame, request: &BarsRequest) {
    let expected = store()
        .load_range(
            &request.symbol,
            request.timeframe,
            request.start,
            request.end,
        )
        .expect("store range");
    assert!(expected.height() > 0, "the test range has stored bars");
    assert_eq!(frame.schema(), expected.schema());
    assert_eq!(
        frame_to_bars(frame).expect("bars"),
        frame_to_bars(&expected).expect("bars")
    );
    assert!(frame.equals(&expected), "frames differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_stored_bars_end_to_end() {
    let sim = start_sim(sim_config(FAST)).await;
    let provider = provider(&sim, FAST).await;

    // Daily bars over three segments (365 + 365 + 92 days), hourly over four
    // (30 + 30 + 30 + 1 days); every segment starts on a trading day's bar.
    let daily = request("AAPL", Timeframe::D1, at(2005, 3, 1), at(2007, 6, 1));
    assert_as_stored(&bars(&provider, &daily).await.expect("daily"), &daily);
    let hourly = request("AAPL", Timeframe::H1, at_open(2024, 9, 3), at(2024, 12, 3));
    assert_as_stored(&bars(&provider, &hourly).await.expect("hourly"), &hourly);
    // Minute bars: one request of 86400 S per day, each starting on a session's
    // first bar.
    let minutes = request(
        "AAPL",
        Timeframe::M1,
        at_open(2026, 7, 29),
        at_open(2026, 8, 4),
    );
    assert_as_stored(&bars(&provider, &minutes).await.expect("minutes"), &minutes);
    assert_eq!(sim.stats().historical_requests, 7 + 6);

    // Forex goes out as CASH EUR/USD on IDEALPRO and comes back whole.
    let fx = request("EURUSD", Timeframe::H1, at(2024, 3, 5), at(2024, 3, 9));
    let frame = bars(&provider, &fx).await.expect("forex");
    let want: Vec<Bar> = eurusd()
        .into_iter()
        .filter(|b| b.timestamp >= fx.start && b.timestamp < fx.end)
        .collect();
    assert_eq!(frame_to_bars(&frame).expect("bars"), want);

    // No data in the range: an empty frame, not an error.
    let before = request("AAPL", Timeframe::D1, at(1990, 1, 1), at(1990, 6, 1));
    let empty = bars(&provider, &before).await.expect("empty range");
    assert_eq!(empty.height(), 0);
    assert_eq!(empty.schema(), data_host::bars::empty_frame().schema());
    assert_eq!(sim.stats().violations, 0);
    provider.shutdown_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_hourly_bars_is_segmented_and_stitched_without_gaps() {
    let sim = start_sim(sim_config(FAST)).await;
    let provider = provider(&sim, FAST).await;
    let year = request(
        "AAPL",
        Timeframe::H1,
        at_open(2024, 9, 3),
        at_open(2025, 9, 3),
    );
    let frame = bars(&provider, &year).await.expect("a year");
    let stats = sim.stats();
    assert!(stats.historical_requests >= 13, "{stats:?}");
    assert_eq!(stats.violations, 0);
    assert_as_stored(&frame, &year);
    let ts = frame_to_bars(&frame).expect("bars");
    assert!(
        ts.windows(2).all(|w| w[0].timestamp < w[1].timestamp),
        "sorted and unique"
    );
    provider.shutdown_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_calls_send_one_ib_request() {
    let sim = start_sim(SimConfig {
        response_delay: Duration::from_millis(500),
        ..sim_config(FAST)
    })
    .await;
    let provider = provider(&sim, FAST).await;
    let same = request("MSFT", Timeframe::D1, at(2010, 1, 1), at(2010, 7, 1));
    let calls = (0..20).map(|_| bars(&provider, &same));
    for frame in join_all(calls).await {
        assert_as_stored(&frame.expect("bars"), &same);
    }
    assert_eq!(sim.stats().historical_requests, 1);
    let details = provider.status().details;
    assert_eq!(details["coalescing"]["requests"]["joined"], 19, "{details}");
    provider.shutdown_and_wait().await;
}

/// 200 random one-segment daily requests on four symbols, a third of them repeats
/// of an earlier one.
fn random_requests(seed: u64) -> Vec<BarsRequest> {
    let mut rng = SplitMix64::new(seed);
    let symbols = ["AAPL", "MSFT", "IBM", "GOOG"];
    let mut out: Vec<BarsRequest> = Vec::new();
    for _ in 0..200 {
        if !out.is_empty() && rng.below(3) == 0 {
            let pick = usize::try_from(rng.below(out.len() as u64)).expect("small");
            out.push(out[pick].clone());
            continue;
        }
        let sym = symbols[usize::try_from(rng.below(4)).expect("small")];
        let start =
            at(2005, 1, 1) + TimeDelta::days(i64::try_from(rng.below(6 * 365)).expect("small"));
        let days = 10 + i64::try_from(rng.below(50)).expect("small");
        out.push(request(
            sym,
            Timeframe::D1,
            start,
            start + TimeDelta::days(days),
        ));
    }
    out
}

/// Fires the requests all at once through a provider with `limits` against a
/// simulator enforcing IB's rules `divisor` times faster.
async fn burst(
    limits: PacingLimits,
    divisor: u32,
) -> (Vec<Result<DataFrame, DataError>>, SimStats) {
    let sim = start_sim(sim_config(divisor)).await;
    let mut config = ib_config(sim.addr(), divisor);
    config.pacing = limits;
    let provider = IbProvider::new(config);
    until("the provider connects", || provider.status().connected).await;
    let requests = random_requests(7);
    let results = join_all(requests.iter().map(|r| bars(&provider, r))).await;
    let stats = sim.stats();
    provider.shutdown_and_wait().await;
    (results, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_burst_breaks_no_rule_and_an_unpaced_one_does() {
    // IB's 10 minutes become 2 s: 60 requests in any 2 s, so the ~130 distinct
    // requests take three windows. The provider's default pacing (scaled), with its
    // 25 ms between grants.
    let divisor = 300;
    let (results, stats) = burst(scaled_pacing(divisor), divisor).await;
    assert_eq!(stats.violations, 0, "{stats:?}");
    assert!(stats.historical_requests > 60, "{stats:?}");
    for (result, request) in results.iter().zip(random_requests(7)) {
        let frame = result.as_ref().expect("every request answered");
        let stored = store()
            .load_range(
                &request.symbol,
                request.timeframe,
                request.start,
                request.end,
            )
            .expect("store");
        assert_eq!(frame.height(), stored.height());
    }

    // The same burst unpaced: the simulator refuses some with 162 pacing violations.
    let (results, stats) = burst(PacingLimits::disabled(), divisor).await;
    assert!(stats.violations > 0, "{stats:?}");
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(DataError::Pacing(_))))
        .count();
    assert!(refused > 0);
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(DataError::Pacing(_)))),
        "only pacing failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_cancels_the_ib_request() {
    let sim = start_sim(SimConfig {
        response_delay: Duration::from_secs(20),
        ..sim_config(FAST)
    })
    .await;
    let provider = Arc::new(provider(&sim, FAST).await);

    // By the token.
    let cancel = CancellationToken::new();
    let call = {
        let (provider, cancel) = (Arc::clone(&provider), cancel.clone());
        let r = request("IBM", Timeframe::D1, at(2008, 1, 1), at(2008, 3, 1));
        tokio::spawn(async move { provider.bars(&r, &cancel).await })
    };
    stats_until(&sim, |s| s.historical_requests == 1).await;
    cancel.cancel();
    let result = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("returns")
        .expect("task");
    assert!(matches!(result, Err(DataError::Cancelled)), "{result:?}");
    stats_until(&sim, |s| s.cancels == 1).await;

    // By dropping the call.
    let call = {
        let provider = Arc::clone(&provider);
        let r = request("IBM", Timeframe::D1, at(2009, 1, 1), at(2009, 3, 1));
        tokio::spawn(async move { provider.bars(&r, &CancellationToken::new()).await })
    };
    stats_until(&sim, |s| s.historical_requests == 2).await;
    call.abort();
    stats_until(&sim, |s| s.cancels == 2).await;
    until("the permits are released", || {
        provider.status().details["pacing"]["open"] == 0
    })
    .await;
    provider.shutdown_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_gateway_fails_fast_and_the_provider_reconnects() {
    let config = SimConfig {
        response_delay: Duration::from_secs(3),
        ..sim_config(FAST)
    };
    let sim = start_sim(config.clone()).await;
    let address = sim.addr();
    let provider = Arc::new(provider(&sim, FAST).await);
    let call = {
        let provider = Arc::clone(&provider);
        let r = request("AAPL", Timeframe::D1, at(2006, 1, 1), at(2006, 6, 1));
        tokio::spawn(async move { provider.bars(&r, &CancellationToken::new()).await })
    };
    stats_until(&sim, |s| s.historical_requests == 1).await;
    sim.shutdown().await;
    // Within the request timeout (10 s), well inside PATIENCE.
    let result = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("returns")
        .expect("task");
    match result {
        Err(DataError::Connectivity(message)) => {
            assert!(message.contains(&address.to_string()), "{message}");
        }
        other => panic!("expected a connectivity error, got {other:?}"),
    }
    until("status shows the loss", || !provider.status().connected).await;
    // While down, calls fail fast with the address in the message.
    let r = request("AAPL", Timeframe::D1, at(2006, 1, 1), at(2006, 6, 1));
    match bars(&provider, &r).await {
        Err(DataError::Connectivity(message)) => {
            assert!(message.contains(&address.to_string()), "{message}");
        }
        other => panic!("expected a connectivity error, got {other:?}"),
    }

    // The gateway comes back on the same port.
    let sim = Simulator::bind(
        address,
        SimConfig {
            response_delay: Duration::ZERO,
            ..config
        },
    )
    .await
    .expect("rebinds the port");
    until("the provider reconnects", || provider.status().connected).await;
    assert_as_stored(&bars(&provider, &r).await.expect("after reconnecting"), &r);
    let status = provider.status();
    assert!(
        status.details["reconnects"].as_u64() >= Some(1),
        "{status:?}"
    );
    assert!(status.last_error.is_some());
    assert_eq!(sim.stats().historical_requests, 1);
    provider.shutdown_and_wait().await;
    assert!(!provider.status().connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbols_validation_and_head_timestamps() {
    let sim = start_sim(sim_config(FAST)).await;
    let provider = provider(&sim, FAST).await;
    let none = CancellationToken::new();

    let unknown = request("ZZZZ", Timeframe::D1, at(2010, 1, 1), at(2010, 2, 1));
    match bars(&provider, &unknown).await {
        Err(DataError::UnknownSymbol { symbol }) => assert_eq!(symbol, "ZZZZ"),
        other => panic!("expected UnknownSymbol, got {other:?}"),
    }
    let v = provider
        .validate(&symbol("ZZZZ"), &[Timeframe::D1], &none)
        .await
        .expect("validation answers");
    assert!(!v.is_valid);
    assert!(
        v.error_message
            .as_deref()
            .is_some_and(|m| m.contains("ZZZZ")),
        "{v:?}"
    );

    let v = provider
        .validate(&symbol("AAPL"), &[Timeframe::D1, Timeframe::H1], &none)
        .await
        .expect("validation answers");
    assert!(v.is_valid, "{v:?}");
    let info = v.contract_info.expect("contract info");
    assert_eq!(
        (info.asset_type.as_str(), info.currency.as_str()),
        ("STK", "USD")
    );
    let first = store()
        .coverage(&symbol("AAPL"), Timeframe::D1)
        .expect("coverage")
        .expect("stored")
        .first;
    assert_eq!(v.head_timestamps.get("1d"), Some(&Some(first)));
    assert_eq!(v.head_timestamps.get("1h"), Some(&Some(first)));
    let head = provider
        .head_timestamp(
            &symbol("AAPL"),
            Timeframe::D1,
            Some(InstrumentType::Stock),
            &none,
        )
        .await
        .expect("head timestamp");
    assert_eq!(head, Some(first));
    // Asked once: the head timestamp does not depend on the bar size, and is cached.
    assert_eq!(sim.stats().head_timestamp_requests, 1);
    let status = provider.status();
    assert!(status.connected);
    assert_eq!(status.source, "ib");
    assert_eq!(status.details["address"], sim.addr().to_string());
    assert_eq!(status.details["errors"], 1, "{status:?}");
    provider.shutdown_and_wait().await;
}
