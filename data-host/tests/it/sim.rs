//! The IB Gateway simulator, driven by the ibapi client.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use data_host::sim::{MemoryBarSource, SimConfig, SimHandle, SimStats, Simulator};
use data_host::{Bar, Timeframe};
use futures::future::join_all;
use ibapi::contracts::{Contract, SecurityType};
use ibapi::market_data::TradingHours;
use ibapi::market_data::historical::{BarSize, HistoricalData, ToDuration, WhatToShow};
use ibapi::{Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds every wait, so a broken test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid time")
}

/// `n` bars `step` apart from `first`, prices from a fixed pattern.
fn bars(first: DateTime<Utc>, step: TimeDelta, n: i32) -> Vec<Bar> {
    (0..n)
        .map(|i| {
            let base = 100.0 + f64::from(i % 37) * 0.25 + f64::from(i / 37);
            Bar {
                timestamp: first + step * i,
                open: base,
                high: base + 1.5,
                low: base - 1.25,
                close: base + 0.125,
                volume: 1000.0 + f64::from(i) * 7.5,
            }
        })
        .collect()
}

const DAILY_START: (i32, u32, u32) = (2023, 1, 2);
const HOURLY_START: (i32, u32, u32) = (2024, 1, 2);

fn source() -> MemoryBarSource {
    let (y, m, d) = DAILY_START;
    let (hy, hm, hd) = HOURLY_START;
    MemoryBarSource::new()
        .with(
            "AAPL",
            Timeframe::D1,
            bars(at(y, m, d, 0), TimeDelta::days(1), 300),
        )
        .with(
            "AAPL",
            Timeframe::H1,
            bars(at(hy, hm, hd, 0), TimeDelta::hours(1), 500),
        )
        .with(
            "EURUSD",
            Timeframe::H1,
            bars(at(hy, hm, hd, 0), TimeDelta::hours(1), 50),
        )
}

/// AAPL daily bars up to today, so requests ending "now" find bars.
fn recent_source() -> MemoryBarSource {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    MemoryBarSource::new().with(
        "AAPL",
        Timeframe::D1,
        bars(today - TimeDelta::days(2999), TimeDelta::days(1), 3000),
    )
}

async fn start(config: SimConfig) -> SimHandle {
    Simulator::bind("127.0.0.1:0", config)
        .await
        .expect("simulator binds")
}

async fn start_default() -> SimHandle {
    start(SimConfig::new(Arc::new(source()))).await
}

async fn connect(sim: &SimHandle, client_id: i32) -> Result<Client, Error> {
    let connecting = Client::builder()
        .address(sim.addr().to_string())
        .client_id(client_id)
        .one_shot_timeout(PATIENCE)
        .max_reconnect_attempts(1)
        .connect();
    tokio::time::timeout(PATIENCE, connecting)
        .await
        .expect("connect finishes")
}

/// Waits until the simulator's counters satisfy `ok`.
async fn stats_until(sim: &SimHandle, ok: impl Fn(&SimStats) -> bool) -> SimStats {
    let polling = async {
        loop {
            let stats = sim.stats();
            if ok(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, polling)
        .await
        .expect("stats reached")
}

fn ib_code(result: Result<impl std::fmt::Debug, Error>) -> i32 {
    match result {
        Err(Error::Notice(notice)) => notice.code,
        other => panic!("expected an IB error, got {other:?}"),
    }
}

/// The bars ibapi returned, in the simulator's terms; every field compared.
fn assert_same_bars(got: &HistoricalData, want: &[Bar], timeframe: Timeframe) {
    let render = |ts: DateTime<Utc>| {
        if timeframe.is_intraday() {
            ts.timestamp().to_string()
        } else {
            ts.format("%Y%m%d").to_string()
        }
    };
    let got: Vec<_> = got
        .bars
        .iter()
        .map(|b| (b.date.to_string(), b.open, b.high, b.low, b.close, b.volume))
        .collect();
    let want: Vec<_> = want
        .iter()
        .map(|b| {
            (
                render(b.timestamp),
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
            )
        })
        .collect();
    assert_eq!(got, want);
}

fn in_window(all: &[Bar], start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Bar> {
    all.iter()
        .filter(|b| b.timestamp > start && b.timestamp <= end)
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_with_handshake_and_next_valid_id() {
    let sim = start_default().await;
    let client = connect(&sim, 7).await.expect("connects");
    assert!(client.server_version() >= 213);
    assert_eq!(client.next_order_id(), 1);
    assert_eq!(
        client.handshake_managed_accounts(),
        ["DU0000000".to_owned()]
    );
    assert!(client.connection_time().is_some(), "gateway time parsed");
    assert_eq!(sim.stats().connections, 1);
    // A second connection with the same client id is refused, as by IB (326).
    match connect(&sim, 7).await {
        Err(Error::ClientIdInUse { client_id: 7 }) => {}
        Err(other) => panic!("expected ClientIdInUse, got {other:?}"),
        Ok(_) => panic!("a second connection with client id 7 was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_exactly_the_source_bars_in_the_window() {
    let sim = start_default().await;
    let client = connect(&sim, 1).await.expect("connects");
    let aapl = Contract::stock("AAPL").build();
    let all = source();
    let daily = data_host::sim::BarSource::bars(&all, "AAPL", Timeframe::D1).expect("daily");
    let hourly = data_host::sim::BarSource::bars(&all, "AAPL", Timeframe::H1).expect("hourly");

    // Anchor ibapi's OffsetDateTime on the head timestamp (the first daily bar).
    let head = client
        .head_timestamp(&aapl, WhatToShow::Trades, TradingHours::Regular)
        .await
        .expect("head");
    let first = daily[0].timestamp;
    assert_eq!(head.unix_timestamp(), first.timestamp());
    let ib_time =
        |t: DateTime<Utc>| head + Duration::from_secs((t - first).num_seconds().unsigned_abs());

    // Daily: 100 days ending mid-series.
    let end = first + TimeDelta::days(200);
    let got = client
        .historical_data(&aapl, BarSize::Day)
        .duration(100.days())
        .ending(ib_time(end))
        .fetch()
        .await
        .expect("daily bars");
    let want = in_window(&daily, end - TimeDelta::days(100), end);
    assert_eq!(want.len(), 100);
    assert_same_bars(&got, &want, Timeframe::D1);
    assert_eq!(got.end.unix_timestamp(), end.timestamp());
    assert_eq!(
        got.start.unix_timestamp(),
        (end - TimeDelta::days(100)).timestamp()
    );

    // Hourly, BID_ASK and a window past the last bar: only what the source has.
    let end = hourly[499].timestamp + TimeDelta::minutes(30);
    let got = client
        .historical_data(&aapl, BarSize::Hour)
        .what_to_show(WhatToShow::BidAsk)
        .duration(5.days())
        .ending(ib_time(end))
        .fetch()
        .await
        .expect("hourly bars");
    let want = in_window(&hourly, end - TimeDelta::days(5), end);
    assert_eq!(want.len(), 120);
    assert_same_bars(&got, &want, Timeframe::H1);

    // ibapi's `between` asks for a covering duration and trims to [start, end).
    let (start, end) = (hourly[100].timestamp, hourly[130].timestamp);
    let got = client
        .historical_data(&aapl, BarSize::Hour)
        .between(ib_time(start), ib_time(end))
        .fetch()
        .await
        .expect("between");
    assert_same_bars(&got, &hourly[100..130], Timeframe::H1);

    // A bar size the source lacks, and a window with no bars: IB's 162 "no data".
    let lacking = client
        .historical_data(&aapl, BarSize::Min5)
        .duration(1.days())
        .ending(ib_time(end))
        .fetch()
        .await;
    assert_eq!(ib_code(lacking), 162);
    let before = head - Duration::from_secs(1);
    let before = client
        .historical_data(&aapl, BarSize::Day)
        .duration(1.days())
        .ending(before)
        .fetch()
        .await;
    assert_eq!(ib_code(before), 162);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_contract_details_and_rejects_unknown_symbols() {
    let sim = start_default().await;
    let client = connect(&sim, 1).await.expect("connects");

    let details = client
        .contract_details(&Contract::stock("AAPL").build())
        .await
        .expect("details");
    assert_eq!(details.len(), 1);
    let stock = &details[0];
    assert_eq!(stock.contract.symbol.to_string(), "AAPL");
    assert_eq!(stock.contract.security_type, SecurityType::Stock);
    assert_eq!(stock.contract.exchange.to_string(), "SMART");
    assert_eq!(stock.contract.currency.to_string(), "USD");
    assert!(stock.contract.contract_id > 0);
    assert!(!stock.long_name.is_empty());
    let again = client
        .contract_details(&Contract::stock("AAPL").build())
        .await
        .expect("details");
    assert_eq!(
        again[0].contract.contract_id, stock.contract.contract_id,
        "conId is stable"
    );

    let fx = client
        .contract_details(&Contract::forex("EUR", "USD").build())
        .await
        .expect("forex details");
    assert_eq!(fx[0].contract.security_type, SecurityType::ForexPair);
    assert_eq!(fx[0].contract.exchange.to_string(), "IDEALPRO");
    assert_eq!(
        (
            fx[0].contract.symbol.to_string(),
            fx[0].contract.currency.to_string()
        ),
        ("EUR".into(), "USD".into())
    );

    let unknown = Contract::stock("NOPE").build();
    assert_eq!(ib_code(client.contract_details(&unknown).await), 200);
    assert_eq!(
        ib_code(
            client
                .historical_data(&unknown, BarSize::Day)
                .duration(10.days())
                .fetch()
                .await
        ),
        200
    );
    assert_eq!(
        ib_code(
            client
                .head_timestamp(&unknown, WhatToShow::Trades, TradingHours::Regular)
                .await
        ),
        200
    );
    let stats = sim.stats();
    assert_eq!(
        (
            stats.contract_detail_requests,
            stats.head_timestamp_requests
        ),
        (4, 1)
    );
}

/// Seven concurrent requests for AAPL daily bars, all different (durations 1..=7 Y).
async fn seven_on_one_contract(client: &Client) -> Vec<Result<HistoricalData, Error>> {
    let aapl = Contract::stock("AAPL").build();
    join_all((1..=7).map(|years| {
        client
            .historical_data(&aapl, BarSize::Day)
            .duration(years.years())
            .fetch()
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforces_ib_pacing_rules() {
    let sim = start(SimConfig::new(Arc::new(recent_source()))).await;
    let client = connect(&sim, 1).await.expect("connects");
    let results = seven_on_one_contract(&client).await;
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!refused.is_empty());
    for err in &refused {
        assert!(
            matches!(err, Error::Notice(n) if n.code == 162 && n.message.contains("pacing violation")),
            "{err:?}"
        );
    }
    assert!(results.iter().filter(|r| r.is_ok()).count() <= 5);
    assert!(sim.stats().violations >= 1);

    // An identical request one second after an accepted one.
    let sim = start(SimConfig::new(Arc::new(recent_source()))).await;
    let client = connect(&sim, 1).await.expect("connects");
    let aapl = Contract::stock("AAPL").build();
    let request = || {
        client
            .historical_data(&aapl, BarSize::Day)
            .duration(30.days())
            .fetch()
    };
    request().await.expect("first is served");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ib_code(request().await), 162);
    assert_eq!(sim.stats().violations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_no_violations_when_pacing_is_off() {
    let config = SimConfig {
        enforce_pacing: false,
        ..SimConfig::new(Arc::new(recent_source()))
    };
    let sim = start(config).await;
    let client = connect(&sim, 1).await.expect("connects");
    for result in seven_on_one_contract(&client).await {
        result.expect("served");
    }
    for result in seven_on_one_contract(&client).await {
        result.expect("identical requests served too");
    }
    let stats = sim.stats();
    assert_eq!((stats.historical_requests, stats.violations), (14, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_is_cancelled_at_the_gateway() {
    let config = SimConfig {
        response_delay: Duration::from_secs(2),
        ..SimConfig::new(Arc::new(source()))
    };
    let sim = start(config).await;
    let client = connect(&sim, 1).await.expect("connects");
    let aapl = Contract::stock("AAPL").build();
    let fetch = client
        .historical_data(&aapl, BarSize::Day)
        .duration(1.years())
        .fetch();
    let mut fetch = Box::pin(fetch);
    // Drop the request once the gateway has it, well inside the 2 s delay.
    tokio::select! {
        result = fetch.as_mut() => panic!("answered before it was dropped: {result:?}"),
        _ = stats_until(&sim, |s| s.historical_requests == 1) => {}
    }
    drop(fetch);
    let stats = stats_until(&sim, |s| s.cancels >= 1).await;
    assert_eq!(
        (stats.historical_requests, stats.cancels, stats.violations),
        (1, 1, 0)
    );
    // The connection is still good.
    client
        .head_timestamp(&aapl, WhatToShow::Trades, TradingHours::Regular)
        .await
        .expect("still connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drops_connections_and_refuses_new_ones() {
    let sim = start_default().await;
    let client = connect(&sim, 1).await.expect("connects");
    let aapl = Contract::stock("AAPL").build();
    client
        .head_timestamp(&aapl, WhatToShow::Trades, TradingHours::Regular)
        .await
        .expect("served");

    sim.shutdown().await;
    assert_eq!(sim.stats().active_connections, 0);
    let after = tokio::time::timeout(
        PATIENCE,
        client.head_timestamp(&aapl, WhatToShow::Trades, TradingHours::Regular),
    );
    assert!(
        after.await.expect("fails promptly").is_err(),
        "the gateway is gone"
    );
    assert!(
        TcpStream::connect(sim.addr()).await.is_err(),
        "nothing listens any more"
    );
    assert!(connect(&sim, 2).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_closes_only_its_connection() {
    let sim = start_default().await;
    let client = connect(&sim, 1).await.expect("connects");

    let mut raw = TcpStream::connect(sim.addr()).await.expect("raw connect");
    raw.write_all(b"API\0\0\0\0\x09v213..221")
        .await
        .expect("greets");
    // startApi (protobuf id 71 + 200) with client id 9, then a 16 MiB length prefix.
    raw.write_all(&[0, 0, 0, 6, 0, 0, 1, 15, 0x08, 9])
        .await
        .expect("starts api");
    raw.write_all(&[1, 0, 0, 0]).await.expect("bad frame");
    let mut sink = Vec::new();
    // EOF or a reset, either way the simulator closed it.
    let _ended = tokio::time::timeout(PATIENCE, raw.read_to_end(&mut sink))
        .await
        .expect("closed by the simulator");
    assert!(!sink.is_empty(), "handshake answered before the bad frame");

    let aapl = Contract::stock("AAPL").build();
    client
        .head_timestamp(&aapl, WhatToShow::Trades, TradingHours::Regular)
        .await
        .expect("other client unaffected");
    stats_until(&sim, |s| s.active_connections == 1).await;
}
