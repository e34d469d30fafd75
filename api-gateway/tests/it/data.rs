//! Data loads: every mode over the store, gaps filled from the IB Gateway simulator
//! through the in-process IB provider (fallback) and through data-host (host mode),
//! progress by segment, cancellation reaching IB, a host dying mid-load.

use std::time::Duration;

use api_gateway::{GatewayConfig, ServiceMode};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use serde_json::{Value, json};

use crate::support::{
    Dirs, data_host, gateway, get, http, post, simulator, wait_for, wait_terminal,
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

#[tokio::test]
async fn a_data_host_dying_mid_load_fails_the_load_naming_it() {
    let sim = simulator(Duration::from_millis(1500)).await;
    let host = data_host(&sim, 22).await;
    let dirs = Dirs::empty();
    let config = GatewayConfig {
        data: ServiceMode::Host(vec![host.base.parse().expect("url")]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
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
