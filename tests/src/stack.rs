//! The system as an operator starts it, as processes on 127.0.0.1 port 0: the IB Gateway
//! simulator, data-host, training-host and the gateway, plus the HTTP calls the
//! end-to-end tests make against them.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{Service, arg, sample_data, strategies};

/// The six months of sample AAPL hourly bars every flow loads.
pub const START: &str = "2025-01-01T00:00:00Z";
pub const END: &str = "2025-07-01T00:00:00Z";

/// The IB Gateway simulator on the sample data, answering after `delay` (`"0s"`).
pub fn sim(delay: &str) -> Service {
    Service::start(
        "data-host",
        &[
            "ib-sim",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            arg(&sample_data()),
            "--response-delay",
            delay,
        ],
        &[],
    )
}

/// data-host over the IB provider talking to `sim`, once its IB link is up (it is not
/// ready before, and a gateway probing it then rightly finds it so).
pub fn data_host(sim: &Service, client_id: &str) -> Service {
    let host = Service::start(
        "data-host",
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--source",
            "ib",
            "--ib-address",
            sim.addr(),
            "--ib-client-id",
            client_id,
        ],
        &[],
    );
    host.wait_for_log("connected to IB Gateway", Duration::from_secs(30));
    host
}

/// training-host reading `store`, writing models to `models`.
pub fn training_host(store: &Path, models: &Path) -> Service {
    Service::start(
        "training-host",
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            arg(store),
            "--models-dir",
            arg(models),
        ],
        &[],
    )
}

/// The gateway over `store`, with `env` choosing its modes.
pub fn gateway(store: &Path, models: &Path, ib: Option<&Service>, env: &[(&str, &str)]) -> Service {
    let ib_address = ib.map_or("127.0.0.1:9", Service::addr);
    Service::start(
        "api-gateway",
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            arg(store),
            "--models-dir",
            arg(models),
            "--strategies-dir",
            arg(&strategies()),
            "--ib-address",
            ib_address,
        ],
        env,
    )
}

/// A store holding the sample AAPL hourly bars (what training-host reads in these tests).
pub fn store_with_hourly_sample() -> tempfile::TempDir {
    let store = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        sample_data().join("AAPL_1h.csv"),
        store.path().join("AAPL_1h.csv"),
    )
    .expect("copy");
    store
}

/// The shipped strategy on AAPL hourly bars for 3 epochs.
pub fn hourly_strategy(epochs: u32) -> String {
    let yaml = std::fs::read_to_string(strategies().join("rsi_macd_mlp.yaml")).expect("strategy");
    yaml.replace("    epochs: 100", &format!("    epochs: {epochs}"))
        .replace("      enabled: true", "      enabled: false")
}

/// A training start body: the shipped strategy on AAPL 1h for `epochs` epochs.
pub fn train_body(epochs: u32) -> Value {
    json!({
        "strategy_yaml": hourly_strategy(epochs),
        "symbols": ["AAPL"], "timeframes": ["1h"],
        "start_date": START, "end_date": END,
    })
}

/// GET → (status, JSON body).
pub async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POST JSON → (status, JSON body).
pub async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls operation `id` at the gateway until `done` accepts it (bounded).
pub async fn wait_op(gateway: &Service, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..3000 {
        let (status, body) = get(&format!("{}/api/v1/operations/{id}", gateway.url())).await;
        assert_eq!(status, 200, "{body}");
        if done(&body["data"]) {
            return body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "operation {id} never reached the state; gateway log:\n{}",
        gateway.log()
    );
}

/// Whether an operation is over.
pub fn terminal(op: &Value) -> bool {
    matches!(
        op["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Starts a training run far too long to finish and waits until its first batch ran.
pub async fn start_long_training(gw: &Service) -> String {
    let (status, answer) = post(
        &format!("{}/api/v1/trainings/start", gw.url()),
        &train_body(10_000),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["task_id"].as_str().expect("task id").to_owned();
    wait_op(gw, &id, |op| {
        op["progress"]["context"]["batch"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    id
}
