//! Data loads: every mode over the store, gaps filled from the IB Gateway simulator
//! through the in-process IB provider (fallback) and through data-host (host mode),
//! progress by segment, cancellation reaching IB, a host dying mid-load.

use std::sync::Arc;
use std::time::Duration;

use api_gateway::{GatewayConfig, ServiceMode};
use chrono::{DateTime, Utc};
use data_host::provider::{BarsRequest, DataError, DataProvider, ProviderStatus, Validation};
use data_host::store::{Store, StoreFormat};
use data_host::{InstrumentType, Symbol, Timeframe};
use host_service_base::CancellationToken;
use serde_json::{Value, json};

use data_host::sim::SimHandle;

use crate::support::{
    Dirs, data_host, data_host_over, gateway, get, http, post, simulator, simulator_at, wait_for,
    wait_terminal,
};

fn stored_rows(dir: &std::path::Path, symbol: &str, timeframe: Timeframe) -> usize {
    Store::new(dir, StoreFormat::Csv)
        .load(&Symbol::parse(symbol).expect("symbol"), timeframe)
        .expect("readable")
        .map_or(0, |f| f.height())
}

/// Sample AAPL 1h bars with open time in `[start, end)`.
fn sample_rows(start: &str, end: &str) -> usize {
    let store = Store::new(crate::support::repo().join("data"), StoreFormat::Csv);
    store
        .load_range(
            &Symbol::parse("AAPL").expect("symbol"),
            Timeframe::H1,
            start.parse().expect("start"),
            end.parse().expect("end"),
        )
        .expect("sample")
        .height()
}

async fn start_load(base: &str, body: &Value) -> String {
    let (status, answer) = post(&http(), &format!("{base}/api/v1/data/load"), body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["success"], true);
    answer["data"]["operation_id"]
        .as_str()
        .expect("operation id")
        .to_owned()
}

#[tokio::test]
async fn local_mode_reads_the_store_and_fetches_nothing() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let id = start_load(
        &gw.base,
        &json!({"symbol": "MSFT", "timeframe": "1d", "mode": "local"}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    let r = &op["result_summary"];
    assert_eq!(r["segments_total"], 0, "{r}");
    assert_eq!(r["bars_added"], 0);
    assert_eq!(r["bars_after"], 3270);
    assert_eq!(r["first_bar"], "2000-03-01T00:00:00Z");
}

#[tokio::test]
async fn fallback_full_load_fills_an_empty_store_from_ib_by_segment() {
    let sim = simulator(Duration::ZERO).await;
    let dirs = Dirs::empty();
    let mut settings = dirs.settings(GatewayConfig::default());
    settings.ib = data_host::ib::IbConfig::new(sim.addr(), 11);
    let (gw, _) = gateway(settings).await;

    let (start, end) = ("2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z");
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": start, "end_date": end}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    let r = &op["result_summary"];
    let expected = sample_rows(start, end);
    assert!(
        expected > 200,
        "the sample has bars in the range: {expected}"
    );
    // 59 days in 30-day segments.
    assert_eq!(r["segments_total"], 2, "{r}");
    assert_eq!(r["segments_failed"], 0, "{r}");
    assert_eq!(r["bars_added"], expected, "{r}");
    assert_eq!(r["source"], "ib");
    assert_eq!(op["progress"]["steps_completed"], 2);
    assert_eq!(op["progress"]["percentage"], 100.0);
    assert_eq!(
        stored_rows(dirs.data.path(), "AAPL", Timeframe::H1),
        expected
    );

    // Tail from the last stored bar: the sample continues, so it adds bars; a second
    // identical full load finds nothing missing.
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "tail", "end_date": "2025-03-15T00:00:00Z"}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    let tail_added = op["result_summary"]["bars_added"].as_u64().expect("count");
    assert_eq!(
        tail_added as usize,
        sample_rows(end, "2025-03-15T00:00:00Z"),
        "{op}"
    );

    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": start, "end_date": end}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["result_summary"]["bars_added"], 0, "{op}");
    assert_eq!(
        sim.stats().violations,
        0,
        "the provider kept IB's pacing rules"
    );
}

#[tokio::test]
async fn a_segment_waiting_for_ib_pacing_says_so_in_its_progress() {
    let sim = simulator(Duration::ZERO).await;
    let dirs = Dirs::empty();
    let mut settings = dirs.settings(GatewayConfig::default());
    settings.ib = data_host::ib::IbConfig::new(sim.addr(), 12);
    // One request per contract in any 2 s: the second segment waits about 2 s.
    settings.ib.pacing.max_per_burst = 1;
    let (gw, _) = gateway(settings).await;

    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full",
                "start_date": "2025-01-01T00:00:00Z", "end_date": "2025-03-01T00:00:00Z"}),
    )
    .await;
    let waiting = wait_for(&http(), &gw.base, &id, |op| {
        op["progress"]["current_step"]
            .as_str()
            .is_some_and(|s| s.contains("for IB pacing"))
            || op["status"] == "completed"
    })
    .await;
    let step = waiting["progress"]["current_step"]
        .as_str()
        .unwrap_or_default();
    assert!(
        step.starts_with("waiting ") && step.contains("s for IB pacing, segment 2 of 2"),
        "the wait is reported while it lasts: {waiting}"
    );
    assert!(step.contains("next request in"), "{step}");
    let context = &waiting["progress"]["context"];
    assert_eq!(context["waiting_for"], "ib_pacing", "{waiting}");
    assert!(context["waiting_seconds"].as_u64().is_some(), "{waiting}");

    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["result_summary"]["segments_total"], 2, "{op}");
    assert_eq!(sim.stats().violations, 0);
}

#[tokio::test]
async fn host_mode_loads_through_data_host() {
    let sim = simulator(Duration::ZERO).await;
    let host = data_host(&sim, 21).await;
    let dirs = Dirs::empty();
    let config = GatewayConfig {
        data: ServiceMode::Host(vec![host.base.parse().expect("url")]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    let (start, end) = ("2025-02-01T00:00:00Z", "2025-02-20T00:00:00Z");
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "backfill", "start_date": start, "end_date": end}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["result_summary"]["source"], "data-host");
    assert_eq!(
        op["result_summary"]["bars_added"]
            .as_u64()
            .map(|n| n as usize),
        Some(sample_rows(start, end)),
        "{op}"
    );
    let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(health["services"]["data"]["mode"], "host", "{health}");
    assert_eq!(health["services"]["data"]["healthy"], true, "{health}");
}

#[tokio::test]
async fn cancelling_a_load_cancels_the_ib_request_and_keeps_what_was_stored() {
    // Every historical answer takes 3 s, so the first segment is in flight when we cancel.
    let sim = simulator(Duration::from_secs(3)).await;
    let dirs = Dirs::empty();
    let mut settings = dirs.settings(GatewayConfig::default());
    settings.ib = data_host::ib::IbConfig::new(sim.addr(), 12);
    let (gw, _) = gateway(settings).await;
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": "2025-01-01", "end_date": "2025-06-01"}),
    )
    .await;
    wait_for(&http(), &gw.base, &id, |op| {
        op["progress"]["current_step"]
            .as_str()
            .is_some_and(|s| s.starts_with("segment 1/"))
    })
    .await;
    // Give the request time to reach the simulator.
    for _ in 0..200 {
        if sim.stats().historical_requests > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let response = http()
        .delete(format!("{}/api/v1/operations/{id}", gw.base))
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status().as_u16(), 200);
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "cancelled", "{op}");
    let mut cancels = 0;
    for _ in 0..300 {
        cancels = sim.stats().cancels;
        if cancels > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        cancels > 0,
        "the IB request was cancelled at the gateway: {:?}",
        sim.stats()
    );
}

/// Gateway settings whose in-process IB provider talks to `sim` and notices a lost or
/// returning IB Gateway within a fraction of a second.
fn quick_ib(dirs: &Dirs, sim: &SimHandle, client_id: i32) -> api_gateway::GatewaySettings {
    let mut settings = dirs.settings(GatewayConfig::default());
    let mut ib = data_host::ib::IbConfig::new(sim.addr(), client_id);
    ib.reconnect_min = Duration::from_millis(50);
    ib.reconnect_max = Duration::from_millis(300);
    ib.heartbeat = Duration::from_millis(200);
    settings.ib = ib;
    settings
}

/// Waits until the load's progress says it is waiting for its link.
async fn until_waiting_for_the_link(base: &str, id: &str) -> Value {
    wait_for(&http(), base, id, |op| {
        op["progress"]["context"]["waiting_for"] == "reconnect" || op["status"] != "running"
    })
    .await
}

#[tokio::test]
async fn a_short_ib_outage_pauses_a_load_which_resumes_at_its_segment() {
    let sim = simulator(Duration::from_millis(400)).await;
    let addr = sim.addr();
    let dirs = Dirs::empty();
    let (gw, _) = gateway(quick_ib(&dirs, &sim, 31)).await;
    let (start, end) = ("2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z");
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": start, "end_date": end}),
    )
    .await;
    // The IB Gateway goes away while the second segment is in flight.
    wait_for(&http(), &gw.base, &id, |op| {
        op["progress"]["steps_completed"].as_u64() >= Some(1)
    })
    .await;
    sim.shutdown().await;
    let waiting = until_waiting_for_the_link(&gw.base, &id).await;
    assert_eq!(waiting["status"], "running", "{waiting}");
    let step = waiting["progress"]["current_step"]
        .as_str()
        .unwrap_or_default();
    assert!(
        step.contains("link lost") && step.contains("resuming at segment"),
        "{step}"
    );
    let at = waiting["progress"]["steps_completed"]
        .as_u64()
        .expect("steps");

    // It comes back where it was; the load resumes at the segment it was on.
    let back = simulator_at(addr, Duration::ZERO).await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    let r = &op["result_summary"];
    assert_eq!(r["segments_failed"], 0, "{r}");
    let expected = sample_rows(start, end);
    assert_eq!(r["bars_added"], expected, "{r}");
    assert_eq!(
        stored_rows(dirs.data.path(), "AAPL", Timeframe::H1),
        expected
    );
    // Segments finished before the outage were not fetched again.
    let total = r["segments_total"].as_u64().expect("total");
    assert_eq!(
        back.stats().historical_requests as u64,
        total - at,
        "resumed at segment {} of {total}",
        at + 1
    );
}

#[tokio::test]
async fn an_ib_outage_longer_than_the_bound_fails_the_load_naming_the_gateway() {
    let sim = simulator(Duration::from_millis(400)).await;
    let addr = sim.addr();
    let dirs = Dirs::empty();
    let mut settings = quick_ib(&dirs, &sim, 32);
    settings.load_reconnect_wait = Duration::from_secs(2);
    let (gw, _) = gateway(settings).await;
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": "2025-01-01", "end_date": "2025-06-01"}),
    )
    .await;
    wait_for(&http(), &gw.base, &id, |op| {
        op["progress"]["steps_completed"].as_u64() >= Some(1)
    })
    .await;
    sim.shutdown().await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let message = op["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&addr.to_string()),
        "names the gateway: {message}"
    );
    assert!(message.contains("waited 2s"), "{message}");
    assert!(
        message.contains("are stored"),
        "says what was kept: {message}"
    );
    assert!(stored_rows(dirs.data.path(), "AAPL", Timeframe::H1) > 0);
}

#[tokio::test]
async fn a_data_host_dying_mid_load_fails_the_load_naming_it() {
    let sim = simulator(Duration::from_millis(1500)).await;
    let host = data_host(&sim, 22).await;
    let dirs = Dirs::empty();
    let config = GatewayConfig {
        data: ServiceMode::Host(vec![host.base.parse().expect("url")]),
        ..GatewayConfig::default()
    };
    let mut settings = dirs.settings(config);
    // A load waits this long for a data-host to come back before it fails.
    settings.load_reconnect_wait = Duration::from_secs(2);
    let (gw, _) = gateway(settings).await;
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": "2025-01-01", "end_date": "2025-06-01"}),
    )
    .await;
    wait_for(&http(), &gw.base, &id, |op| {
        op["progress"]["current_step"]
            .as_str()
            .is_some_and(|s| s.starts_with("segment 1/"))
    })
    .await;
    host.shutdown.cancel();
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let message = op["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("data-host"), "names data-host: {message}");
    assert!(
        message.contains("waited 2s"),
        "says how long it waited: {message}"
    );

    // Health says which service is down; other routes keep answering.
    let mut health = Value::Null;
    for _ in 0..100 {
        let (_, body) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
        if body["services"]["data"]["healthy"] == false {
            health = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["services"]["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("data-host")),
        "{health}"
    );
    assert_eq!(health["services"]["training"]["healthy"], true);
    let (status, _) = get(&http(), &format!("{}/api/v1/operations", gw.base)).await;
    assert_eq!(status, 200);
    // A load that needs data-host fails fast with 503 naming it; a local one works.
    let (status, answer) = post(
        &http(),
        &format!("{}/api/v1/data/load", gw.base),
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "tail"}),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "service_unavailable");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("data-host"),
        "{answer}"
    );
    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "local"}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
}

#[tokio::test]
async fn finished_operations_survive_a_gateway_restart() {
    let dirs = Dirs::sample();
    let (gw, gateway_handle) = gateway(dirs.settings(GatewayConfig::default())).await;
    let id = start_load(
        &gw.base,
        &json!({"symbol": "IBM", "timeframe": "1d", "mode": "local"}),
    )
    .await;
    let before = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(before["status"], "completed", "{before}");
    drop(gw);
    drop(gateway_handle);

    // The store file is free once the old gateway's tasks have wound down.
    let mut restarted = None;
    for _ in 0..200 {
        match api_gateway::Gateway::build(dirs.settings(GatewayConfig::default())) {
            Ok(g) => {
                restarted = Some(g);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    let restarted = restarted.expect("the gateway restarts on the same state file");
    let after = restarted
        .operations()
        .get(&id)
        .expect("the load is still known");
    assert_eq!(after.status.as_str(), "completed");
    assert_eq!(
        after
            .result_summary
            .as_ref()
            .map(|r| r["bars_after"].clone()),
        Some(before["result_summary"]["bars_after"].clone())
    );
}

#[tokio::test]
async fn a_second_load_of_the_same_series_is_a_conflict() {
    let sim = simulator(Duration::from_secs(2)).await;
    let dirs = Dirs::empty();
    let mut settings = dirs.settings(GatewayConfig::default());
    settings.ib = data_host::ib::IbConfig::new(sim.addr(), 13);
    let (gw, _) = gateway(settings).await;
    let body = json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": "2025-01-01", "end_date": "2025-02-01"});
    let id = start_load(&gw.base, &body).await;
    let (status, answer) = post(&http(), &format!("{}/api/v1/data/load", gw.base), &body).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&id)
    );
    let _ = http()
        .delete(format!("{}/api/v1/operations/{id}", gw.base))
        .send()
        .await;
}

/// `GET /api/v1/data/{series}/head-timestamp{query}` → (status, JSON body).
async fn head_timestamp(base: &str, series: &str, query: &str) -> (u16, Value) {
    let url = format!("{base}/api/v1/data/{series}/head-timestamp{query}");
    get(&http(), &url).await
}

/// A data source that remembers the instrument type of every call it gets, served by
/// the real data-host router: what reaches it is what data-host's provider would see.
#[derive(Default)]
struct Recording {
    calls: std::sync::Mutex<Vec<(&'static str, String, Option<InstrumentType>)>>,
}

impl Recording {
    fn calls(&self) -> Vec<(&'static str, String, Option<InstrumentType>)> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: &'static str, symbol: &Symbol, kind: Option<InstrumentType>) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((call, symbol.to_string(), kind));
        }
    }
}

#[async_trait::async_trait]
impl DataProvider for Recording {
    fn name(&self) -> &str {
        "recording"
    }

    async fn bars(
        &self,
        request: &BarsRequest,
        _cancel: &CancellationToken,
    ) -> Result<polars::prelude::DataFrame, DataError> {
        self.record("bars", &request.symbol, request.instrument_type);
        Ok(data_host::bars::empty_frame())
    }

    async fn head_timestamp(
        &self,
        symbol: &Symbol,
        _timeframe: Timeframe,
        instrument_type: Option<InstrumentType>,
        _cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError> {
        self.record("head_timestamp", symbol, instrument_type);
        Ok("2020-01-02T00:00:00Z".parse().ok())
    }

    async fn validate(
        &self,
        _symbol: &Symbol,
        _timeframes: &[Timeframe],
        _cancel: &CancellationToken,
    ) -> Result<Validation, DataError> {
        Err(DataError::Store("not used by these tests".into()))
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            source: "recording".into(),
            connected: true,
            connections: 1,
            last_error: None,
            details: Value::Null,
        }
    }
}

#[tokio::test]
async fn instrument_type_reaches_data_host_from_the_load_and_head_timestamp_routes() {
    let recording = Arc::new(Recording::default());
    let host = data_host_over(recording.clone()).await;
    let dirs = Dirs::empty();
    let config = GatewayConfig {
        data: ServiceMode::Host(vec![host.base.parse().expect("url")]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;

    let (status, answer) = head_timestamp(&gw.base, "ES/1h", "?instrument_type=future").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["instrument_type"], "future", "{answer}");
    assert_eq!(answer["data"]["head_timestamp"], "2020-01-02T00:00:00Z");
    // IB's spelling is accepted too; absent or empty leaves the guess to the provider.
    for (query, kind) in [
        ("?instrument_type=IND", Some(InstrumentType::Index)),
        ("?instrument_type=", None),
        ("", None),
    ] {
        let (status, answer) = head_timestamp(&gw.base, "SPX/1d", query).await;
        assert_eq!(status, 200, "{query}: {answer}");
        assert_eq!(
            recording.calls().last(),
            Some(&("head_timestamp", "SPX".to_owned(), kind)),
            "{query}"
        );
    }

    let (status, answer) = post(
        &http(),
        &format!("{}/api/v1/data/load", gw.base),
        &json!({"symbol": "EURUSD", "timeframe": "1d", "mode": "full", "start_date": "2024-01-01",
                "end_date": "2025-06-01", "instrument_type": "continuous_future"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["data"]["instrument_type"], "continuous_future");
    let id = answer["data"]["operation_id"].as_str().expect("id");
    let op = wait_terminal(&http(), &gw.base, id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(
        op["metadata"]["instrument_type"], "continuous_future",
        "{op}"
    );
    // 1d segments span at most 365 days: two segments, each with the type given (not
    // the forex the symbol would be guessed as).
    let bars: Vec<_> = recording
        .calls()
        .into_iter()
        .filter(|(call, _, _)| *call == "bars")
        .collect();
    assert_eq!(bars.len(), 2, "{bars:?}");
    assert!(
        bars.iter()
            .all(|(_, s, k)| s == "EURUSD" && *k == Some(InstrumentType::ContinuousFuture)),
        "{bars:?}"
    );

    // A load without a start asks where the data begins, with the type too.
    let id = start_load(
        &gw.base,
        &json!({"symbol": "ES", "timeframe": "1w", "mode": "tail", "instrument_type": "fut"}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    let calls = recording.calls();
    assert!(
        calls.contains(&(
            "head_timestamp",
            "ES".to_owned(),
            Some(InstrumentType::Future)
        )),
        "{calls:?}"
    );
}

#[tokio::test]
async fn an_unknown_instrument_type_is_a_400_naming_the_field() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let (status, answer) = post(
        &http(),
        &format!("{}/api/v1/data/load", gw.base),
        &json!({"symbol": "AAPL", "timeframe": "1d", "mode": "local", "instrument_type": "crypto"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["details"]["field"], "instrument_type",
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("stock, forex, future"), "{message}");

    let (status, answer) = head_timestamp(&gw.base, "AAPL/1d", "?instrument_type=crypto").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["details"]["field"], "instrument_type",
        "{answer}"
    );
}

#[tokio::test]
async fn fallback_mode_gives_instrument_type_to_the_in_process_ib_provider() {
    let dirs = Dirs::empty().with_ib().await;
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    for query in ["", "?instrument_type=stock"] {
        let (status, answer) = head_timestamp(&gw.base, "AAPL/1d", query).await;
        assert_eq!(status, 200, "{query}: {answer}");
        assert!(answer["data"]["head_timestamp"].is_string(), "{answer}");
    }
    // Taken for forex, AAPL is no currency pair: the IB provider says so, which it can
    // only do if the type reached it (the guess for AAPL is a stock).
    let (status, answer) = head_timestamp(&gw.base, "AAPL/1d", "?instrument_type=forex").await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not a currency pair"), "{answer}");

    let id = start_load(
        &gw.base,
        &json!({"symbol": "AAPL", "timeframe": "1d", "mode": "full", "start_date": "2024-01-01",
                "end_date": "2024-06-01", "instrument_type": "forex"}),
    )
    .await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    assert!(
        op["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("not a currency pair")),
        "{op}"
    );
}

#[tokio::test]
async fn a_long_range_is_streamed_as_json_with_every_bar_and_matches_arrow() {
    use std::fmt::Write as _;
    // 150,001 one-minute bars from 2024-01-01 00:00 on: once refused as JSON (the old
    // ceiling was 100,000), now written as the client reads.
    const BARS: i64 = 150_001;
    let dirs = Dirs::empty();
    let first: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("time");
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    for i in 0..BARS {
        let t = first + chrono::TimeDelta::minutes(i);
        let _ = writeln!(
            csv,
            "{},{},2,0.5,1.5,{}",
            t.format("%Y-%m-%dT%H:%M:%SZ"),
            1.0 + i as f64 / 1e4,
            10 + i
        );
    }
    std::fs::write(dirs.data.path().join("WIDE_1m.csv"), csv).expect("store file");
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let url = |query: &str| format!("{}/api/v1/data/WIDE/1m{query}", gw.base);

    for query in ["", "?start_date=2024-01-01"] {
        let response = http().get(url(query)).send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 200, "{query}");
        // Streamed: no length is known before the last bar is written.
        assert!(
            response.content_length().is_none(),
            "{query}: {:?}",
            response.headers()
        );
        let answer: Value = response.json().await.expect("json");
        let data = &answer["data"];
        assert_eq!(data["points"], BARS, "{query}");
        assert_eq!(data["dates"].as_array().map(Vec::len), Some(BARS as usize));
        assert_eq!(data["ohlcv"].as_array().map(Vec::len), Some(BARS as usize));
        assert_eq!(data["dates"][0], "2024-01-01T00:00:00+00:00");
        assert_eq!(data["start"], "2024-01-01T00:00:00Z");
        let last = first + chrono::TimeDelta::minutes(BARS - 1);
        assert_eq!(data["dates"][BARS as usize - 1], last.to_rfc3339());
        let open = 1.0 + 12_345.0 / 1e4;
        assert_eq!(
            data["ohlcv"][12_345],
            json!([open, 2.0, 0.5, 1.5, 12_355.0])
        );
    }

    // Arrow: the same bars.
    let response = http()
        .get(url(""))
        .header("accept", data_host::api::wire::ARROW_STREAM)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.expect("body");
    let frame = data_host::api::wire::from_arrow(&bytes).expect("arrow");
    assert_eq!(frame.height(), BARS as usize);
    let opens = data_host::bars::value_column(&frame, "open").expect("open");
    assert_eq!(opens[12_345], 1.0 + 12_345.0 / 1e4);
}

#[tokio::test]
async fn a_lower_case_store_file_is_served_and_a_bad_symbol_is_a_400_listing_the_characters() {
    let dirs = Dirs::empty();
    std::fs::copy(
        crate::support::repo().join("data/FB_1d.csv"),
        dirs.data.path().join("fb_1d.csv"),
    )
    .expect("a store file another tool wrote");
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    for asked in ["FB", "fb"] {
        let (status, answer) = get(&http(), &format!("{}/api/v1/data/{asked}/1d", gw.base)).await;
        assert_eq!(status, 200, "{asked}: {answer}");
        assert_eq!(answer["data"]["points"], 196, "{asked}");
    }
    let (_, inventory) = get(&http(), &format!("{}/api/v1/data", gw.base)).await;
    assert_eq!(inventory["data"][0]["symbol"], "FB", "{inventory}");
    assert_eq!(inventory["data"][0]["rows"], 196, "{inventory}");

    let refused = [
        get(&http(), &format!("{}/api/v1/data/-rf/1d", gw.base)).await,
        get(
            &http(),
            &format!("{}/api/v1/data/A%20B/1d/head-timestamp", gw.base),
        )
        .await,
        post(
            &http(),
            &format!("{}/api/v1/data/load", gw.base),
            &json!({"symbol": "../etc", "timeframe": "1d", "mode": "local"}),
        )
        .await,
    ];
    for (status, answer) in refused {
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["details"]["field"], "symbol", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("only letters, digits, `.` and `-`"),
            "the allowed characters are listed: {message}"
        );
    }
}
