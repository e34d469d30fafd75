//! The whole path over real sockets: HTTP client → data-host (`--source ib`) →
//! `ibapi` → the IB Gateway simulator serving the sample store. Waits are bounded;
//! nothing asserts how long something took.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use data_host::ib::{IbConfig, IbProvider, PacingLimits};
use data_host::provider::{BarsRequest, DataProvider};
use data_host::sim::{SimConfig, SimHandle, SimPacing, SimStats, Simulator, StoreBarSource};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use host_service_base::SplitMix64;
use serde_json::{Value, json};

use crate::support::{RunningHost, assert_both_clients_get, sample_dir, start_host};

const PATIENCE: Duration = Duration::from_secs(30);

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn store() -> Store {
    Store::new(sample_dir(), StoreFormat::Csv)
}

/// The simulator over the sample store, IB's pacing `divisor` times faster.
fn sim_config(divisor: u32) -> SimConfig {
    SimConfig {
        pacing: SimPacing::IB.time_scaled(divisor),
        ..SimConfig::new(Arc::new(StoreBarSource::new(store())))
    }
}

fn provider(sim: &SimHandle, divisor: u32, client_id: i32) -> Arc<IbProvider> {
    let mut config = IbConfig::new(sim.addr(), client_id);
    let defaults = config.pacing;
    config.pacing = PacingLimits {
        margin: defaults.margin,
        ..defaults.time_divided_by(divisor)
    };
    config.request_timeout = Duration::from_secs(10);
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(300);
    config.heartbeat = Duration::from_millis(200);
    Arc::new(IbProvider::new(config))
}

async fn until(what: &str, ok: impl Fn() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn stats_until(sim: &SimHandle, ok: impl Fn(&SimStats) -> bool) -> SimStats {
    until("simulator stats", || ok(&sim.stats())).await;
    sim.stats()
}

async fn post(host: &RunningHost, path: &str, body: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", host.base))
        .json(body)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json")
}

async fn get(host: &RunningHost, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}{path}", host.base))
        .await
        .expect("get");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

#[tokio::test]
async fn bars_over_http_from_the_simulator_equal_the_store() {
    let sim = Simulator::bind("127.0.0.1:0", sim_config(20))
        .await
        .expect("sim");
    let ib = provider(&sim, 20, 11);
    until("connected", || ib.status().connected).await;
    let host = start_host(ib.clone()).await;
    for (tf, start, end) in [
        (Timeframe::D1, at(2010, 1, 1), at(2011, 1, 1)),
        (Timeframe::H1, at(2025, 1, 1), at(2025, 4, 1)),
    ] {
        let request =
            BarsRequest::new(Symbol::parse("AAPL").expect("symbol"), tf, start, end, None)
                .expect("request");
        let expected = store()
            .load_range(&request.symbol, tf, start, end)
            .expect("store");
        assert!(expected.height() > 200, "{tf}");
        assert_both_clients_get(&host.base, &request, &expected).await;
    }
    let (_, detailed) = get(&host, "/health/detailed").await;
    assert_eq!(
        (
            detailed["source"].as_str(),
            detailed["ib_gateway_connected"].as_bool()
        ),
        (Some("ib"), Some(true)),
        "{detailed}"
    );
    let (status, _) = get(&host, "/ready").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn two_hundred_concurrent_http_requests_break_no_pacing_rule() {
    // IB's 10-minute window becomes 2 s on both sides.
    let sim = Simulator::bind("127.0.0.1:0", sim_config(300))
        .await
        .expect("sim");
    let ib = provider(&sim, 300, 12);
    until("connected", || ib.status().connected).await;
    let host = start_host(ib.clone()).await;
    let symbols = ["AAPL", "MSFT", "IBM", "GOOG"];
    let mut rng = SplitMix64::new(0x9E37_79B9_7F4A_7C15);
    let bodies: Vec<Value> = (0..200)
        .map(|_| {
            let symbol = rng.pick(&symbols).expect("a constant list");
            let year = 2005 + rng.below(7) as i32;
            let month = 1 + rng.below(12) as u32;
            json!({ "symbol": symbol, "timeframe": "1d", "start": format!("{year}-{month:02}-01"), "end": format!("{}-{month:02}-01", year + 1) })
        })
        .collect();
    let client = reqwest::Client::new();
    let answers = futures::future::join_all(bodies.iter().map(|body| {
        let client = client.clone();
        let url = format!("{}/data/historical", host.base);
        async move {
            client
                .post(url)
                .json(body)
                .send()
                .await
                .expect("post")
                .json::<Value>()
                .await
                .expect("json")
        }
    }))
    .await;
    let failures: Vec<&Value> = answers.iter().filter(|a| a["success"] != true).collect();
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let stats = sim.stats();
    assert_eq!(stats.violations, 0, "{stats:?}");
    assert!(
        stats.historical_requests >= 100,
        "coalescing may merge repeats, but most went to IB: {stats:?}"
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_cancels_the_ib_request() {
    let mut config = sim_config(20);
    config.response_delay = Duration::from_secs(3);
    let sim = Simulator::bind("127.0.0.1:0", config).await.expect("sim");
    let ib = provider(&sim, 20, 13);
    until("connected", || ib.status().connected).await;
    let host = start_host(ib.clone()).await;

    let body =
        json!({ "symbol": "MSFT", "timeframe": "1d", "start": "2006-01-01", "end": "2007-01-01" });
    let url = format!("{}/data/historical", host.base);
    let request =
        tokio::spawn(async move { reqwest::Client::new().post(url).json(&body).send().await });
    stats_until(&sim, |s| s.historical_requests == 1).await;
    request.abort(); // the HTTP client goes away mid-request
    let stats = stats_until(&sim, |s| s.cancels == 1).await;
    assert_eq!(stats.violations, 0);

    // Nothing hangs: the next request is answered.
    let answer = post(
        &host,
        "/data/historical",
        &json!({ "symbol": "IBM", "timeframe": "1d", "start": "2006-01-01", "end": "2006-02-01" }),
    )
    .await;
    assert_eq!(answer["success"], true, "{answer}");
}

#[tokio::test]
async fn gateway_gone_is_a_clear_error_and_reconnects_when_it_returns() {
    let mut config = sim_config(20);
    config.response_delay = Duration::from_secs(2);
    let sim = Simulator::bind("127.0.0.1:0", config).await.expect("sim");
    let addr = sim.addr();
    let ib = provider(&sim, 20, 14);
    until("connected", || ib.status().connected).await;
    let host = start_host(ib.clone()).await;

    let body =
        json!({ "symbol": "AAPL", "timeframe": "1d", "start": "2004-01-01", "end": "2005-01-01" });
    let url = format!("{}/data/historical", host.base);
    let pending = {
        let body = body.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await?
                .json::<Value>()
                .await
        })
    };
    stats_until(&sim, |s| s.historical_requests == 1).await;
    sim.shutdown().await; // the gateway dies mid-request
    let answer = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("answered within the timeout")
        .expect("join")
        .expect("json");
    assert_eq!(
        (answer["success"].as_bool(), answer["error_code"].as_str()),
        (Some(false), Some("connectivity")),
        "{answer}"
    );
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains(&addr.to_string())),
        "names the gateway: {answer}"
    );

    until("disconnected", || !ib.status().connected).await;
    let (_, detailed) = get(&host, "/health/detailed").await;
    assert_eq!(detailed["ib_gateway_connected"], false, "{detailed}");
    // Health is honest about the link: not healthy, and the status says why, naming
    // the gateway; liveness (the process answers) stays true for container checks.
    for path in ["/health/", "/health/detailed"] {
        let (_, health) = get(&host, path).await;
        assert_eq!(health["healthy"], false, "{path}: {health}");
        assert!(
            health["status"]
                .as_str()
                .is_some_and(|s| s.contains(&addr.to_string())),
            "{path}: the status names the gateway: {health}"
        );
    }
    let (_, live) = get(&host, "/health").await;
    assert_eq!(live["healthy"], true, "{live}");
    let (status, ready) = get(&host, "/ready").await;
    assert_eq!(status, 503, "{ready}");

    // The gateway comes back on the same address: the next request succeeds.
    let back = Simulator::bind(addr, sim_config(20))
        .await
        .expect("rebind the same port");
    until("reconnected", || ib.status().connected).await;
    let (_, health) = get(&host, "/health/").await;
    assert_eq!(
        (&health["healthy"], &health["status"]),
        (&json!(true), &json!("healthy"))
    );
    let answer = post(&host, "/data/historical", &body).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["rows"], 252);
    assert_eq!(back.stats().violations, 0);
}

#[tokio::test]
async fn unknown_symbols_are_named() {
    let sim = Simulator::bind("127.0.0.1:0", sim_config(20))
        .await
        .expect("sim");
    let ib = provider(&sim, 20, 15);
    until("connected", || ib.status().connected).await;
    let host = start_host(ib.clone()).await;
    let answer = post(
        &host,
        "/data/historical",
        &json!({ "symbol": "ZZZZ", "timeframe": "1d", "start": "2010-01-01", "end": "2011-01-01" }),
    )
    .await;
    assert_eq!(
        (answer["success"].as_bool(), answer["error_code"].as_str()),
        (Some(false), Some("unknown_symbol")),
        "{answer}"
    );
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("ZZZZ")));
    let answer = post(
        &host,
        "/data/validate",
        &json!({ "symbol": "ZZZZ", "timeframes": ["1d"] }),
    )
    .await;
    assert_eq!(
        (answer["success"].as_bool(), answer["is_valid"].as_bool()),
        (Some(true), Some(false)),
        "{answer}"
    );
    let answer = post(
        &host,
        "/data/validate",
        &json!({ "symbol": "GOOG", "timeframes": ["1d"] }),
    )
    .await;
    assert_eq!(answer["is_valid"], true, "{answer}");
    assert_eq!(answer["head_timestamps"]["1d"], "2004-08-19T00:00:00+00:00");
}
