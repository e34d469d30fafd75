//! End to end with real processes: the IB Gateway simulator, data-host, training-host
//! and the gateway as separate binaries on 127.0.0.1 port 0, driven over HTTP and
//! through the `hostbridge` CLI.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hostbridge_tests::bins::binary;
use hostbridge_tests::process::{Service, arg, sample_data};
use hostbridge_tests::stack::{
    END, START, data_host, gateway, get, hourly_strategy, post, sim, start_long_training,
    store_with_hourly_sample, terminal, train_body, training_host, wait_op,
};
use serde_json::{Value, json};

/// Sample AAPL 1h bars with open time in `[START, END)`.
fn sample_rows() -> u64 {
    let store = data_host::store::Store::new(sample_data(), data_host::store::StoreFormat::Csv);
    let frame = store
        .load_range(
            &data_host::Symbol::parse("AAPL").expect("symbol"),
            data_host::Timeframe::H1,
            START.parse().expect("start"),
            END.parse().expect("end"),
        )
        .expect("sample bars");
    frame.height() as u64
}

/// Runs the `hostbridge` CLI against `gateway`; returns (exit code, stdout as JSON).
fn cli(gateway: &Service, args: &[&str]) -> (i32, Value) {
    let output = Command::new(binary("hostbridge"))
        .args(["--url", &gateway.url(), "--json", "--quiet"])
        .args(args)
        .env_remove("HOSTBRIDGE_API_KEY")
        .output()
        .expect("run hostbridge");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|_| json!({ "raw": stdout }));
    if !output.status.success() {
        eprintln!(
            "hostbridge {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    (output.status.code().unwrap_or(-1), value)
}

/// Polls training-host until session `id` is `stopped` (bounded); returns its status.
async fn wait_session_stopped(training_url: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        let (_, body) = get(&format!("{training_url}/training/status/{id}")).await;
        if body["status"] == "stopped" {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last
}

async fn train_and_check(gateway: &Service, models: &Path) -> Value {
    let (status, answer) = post(
        &format!("{}/api/v1/trainings/start", gateway.url()),
        &train_body(3),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["task_id"].as_str().expect("task id").to_owned();
    let op = wait_op(gateway, &id, terminal).await;
    assert_eq!(op["status"], "completed", "{op}\n{}", gateway.log());
    let result = &op["result_summary"];
    assert_eq!(result["training_metrics"]["epochs_trained"], 3, "{result}");
    assert_eq!(
        result["data_summary"]["timeframes"],
        json!(["1h"]),
        "{result}"
    );
    // Named from the store down (no server path), and found there.
    let model = result["model_path"].as_str().expect("model path");
    assert!(!Path::new(model).is_absolute(), "{model}");
    let dir = training_host::model::resolve_shown(models, model);
    assert!(dir.join("metadata.json").is_file(), "{}", dir.display());
    op
}

#[tokio::test]
async fn host_mode_loads_through_data_host_and_trains_on_training_host() {
    let store = tempfile::tempdir().expect("tempdir");
    let host_models = tempfile::tempdir().expect("tempdir");
    let gateway_models = tempfile::tempdir().expect("tempdir");
    let sim = sim("0s");
    let data = data_host(&sim, "31");
    let training = training_host(store.path(), host_models.path());
    let gw = gateway(
        store.path(),
        gateway_models.path(),
        None,
        &[
            ("USE_IB_HOST_SERVICE", "true"),
            ("IB_HOST_SERVICE_URL", &data.url()),
            ("USE_TRAINING_HOST_SERVICE", "yes"),
            ("TRAINING_HOST_SERVICE_URL", &training.url()),
        ],
    );

    let (code, op) = cli(
        &gw,
        &[
            "data", "load", "AAPL", "1h", "--mode", "full", "--start", START, "--end", END,
        ],
    );
    assert_eq!(code, 0, "{op}\n{}", gw.log());
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["result_summary"]["source"], "data-host");
    assert_eq!(op["result_summary"]["bars_added"], sample_rows(), "{op}");
    assert!(store.path().join("AAPL_1h.csv").is_file());

    let trained = train_and_check(&gw, host_models.path()).await;
    assert_eq!(trained["metadata"]["mode"], "host");
    let (_, health) = get(&format!("{}/api/v1/health", gw.url())).await;
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["services"]["data"]["mode"], "host");
    assert_eq!(health["services"]["training"]["mode"], "host");
}

#[tokio::test]
async fn fallback_mode_runs_the_same_flow_in_process() {
    let store = tempfile::tempdir().expect("tempdir");
    let models = tempfile::tempdir().expect("tempdir");
    let sim = sim("0s");
    let gw = gateway(
        store.path(),
        models.path(),
        Some(&sim),
        &[
            ("USE_IB_HOST_SERVICE", "false"),
            ("USE_TRAINING_HOST_SERVICE", "false"),
        ],
    );
    let (code, op) = cli(
        &gw,
        &[
            "data", "load", "AAPL", "1h", "--mode", "full", "--start", START, "--end", END,
        ],
    );
    assert_eq!(code, 0, "{op}\n{}", gw.log());
    assert_eq!(op["result_summary"]["source"], "ib");
    assert_eq!(op["result_summary"]["bars_added"], sample_rows(), "{op}");

    // Train through the CLI, from a YAML file.
    let yaml = store.path().join("hourly.yaml");
    std::fs::write(&yaml, hourly_strategy(3)).expect("write strategy");
    let (code, op) = cli(
        &gw,
        &[
            "train",
            arg(&yaml),
            "--symbols",
            "AAPL",
            "--timeframes",
            "1h",
            "--start",
            START,
            "--end",
            END,
        ],
    );
    assert_eq!(code, 0, "{op}\n{}", gw.log());
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["metadata"]["mode"], "local");
    let model = op["result_summary"]["model_path"].as_str().expect("model");
    let dir = training_host::model::resolve_shown(models.path(), model);
    assert!(dir.join("metadata.json").is_file(), "{}", dir.display());
}

#[tokio::test]
async fn cancelling_at_the_gateway_stops_the_host_session() {
    let store = store_with_hourly_sample();
    let host_models = tempfile::tempdir().expect("tempdir");
    let gateway_models = tempfile::tempdir().expect("tempdir");
    let training = training_host(store.path(), host_models.path());
    let gw = gateway(
        store.path(),
        gateway_models.path(),
        None,
        &[
            ("USE_TRAINING_HOST_SERVICE", "true"),
            ("TRAINING_HOST_SERVICE_URL", &training.url()),
        ],
    );
    let id = start_long_training(&gw).await;

    let (code, _) = cli(&gw, &["ops", "cancel", &id]);
    assert_eq!(code, 0);
    let session = wait_session_stopped(&training.url(), &id).await;
    assert_eq!(
        session["status"],
        "stopped",
        "{session}\n{}",
        training.log()
    );
    let op = wait_op(&gw, &id, terminal).await;
    assert_eq!(op["status"], "cancelled");
}

#[tokio::test]
async fn ctrl_c_in_the_cli_cancels_the_operation_it_started() {
    let store = store_with_hourly_sample();
    let models = tempfile::tempdir().expect("tempdir");
    let gw = gateway(store.path(), models.path(), None, &[]);
    let yaml = store.path().join("long.yaml");
    std::fs::write(&yaml, hourly_strategy(10_000)).expect("write strategy");
    let mut child = Command::new(binary("hostbridge"))
        .args(["--url", &gw.url(), "--quiet", "train", arg(&yaml)])
        .args([
            "--symbols",
            "AAPL",
            "--timeframes",
            "1h",
            "--start",
            START,
            "--end",
            END,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hostbridge train");
    // Wait until the run is training, then press Ctrl-C (SIGINT).
    let mut id = None;
    for _ in 0..1000 {
        let (_, list) = get(&format!("{}/api/v1/operations?active_only=true", gw.url())).await;
        if let Some(op) = list["data"].as_array().and_then(|ops| ops.first())
            && op["current_step"]
                .as_str()
                .is_some_and(|step| step.starts_with("epoch"))
        {
            id = op["operation_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = id.unwrap_or_else(|| panic!("no training started; gateway log:\n{}", gw.log()));
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("the CLI exits after Ctrl-C");
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("cancelled") && stderr.contains(&id),
        "says so: {stderr}"
    );
    let op = wait_op(&gw, &id, terminal).await;
    assert_eq!(op["status"], "cancelled", "{op}");
}

#[tokio::test]
async fn a_dead_data_host_is_reported_and_the_rest_keeps_working() {
    let store = tempfile::tempdir().expect("tempdir");
    let models = tempfile::tempdir().expect("tempdir");
    // Each IB answer takes 2 s, so the load is mid-flight when data-host dies.
    let sim = sim("2s");
    let mut data = data_host(&sim, "32");
    let data_url = data.url();
    let env = [
        ("USE_IB_HOST_SERVICE", "true"),
        ("IB_HOST_SERVICE_URL", data_url.as_str()),
    ];
    let mut gw = gateway(store.path(), models.path(), None, &env);

    let (status, answer) = post(
        &format!("{}/api/v1/data/load", gw.url()),
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full", "start_date": START, "end_date": END}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    wait_op(&gw, &id, |op| {
        op["progress"]["current_step"]
            .as_str()
            .is_some_and(|s| s.starts_with("segment"))
    })
    .await;

    data.kill();
    let killed = Instant::now();
    let op = wait_op(&gw, &id, terminal).await;
    assert_eq!(op["status"], "failed", "{op}");
    assert!(
        op["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("data-host"),
        "{op}"
    );

    // Health reports it down within 2 s of the kill: 20 polls 100 ms apart.
    let mut down = None;
    for _ in 0..20 {
        let (_, health) = get(&format!("{}/api/v1/health", gw.url())).await;
        if health["services"]["data"]["healthy"] == false {
            down = Some(health);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = down.unwrap_or_else(|| {
        panic!(
            "health still says data-host is up {:?} after the kill",
            killed.elapsed()
        )
    });
    eprintln!(
        "data-host reported down {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(health["status"], "degraded");
    assert!(
        health["services"]["data"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("data-host"),
        "{health}"
    );

    // Other routes answer; a fetching load is refused at once, naming data-host.
    let (status, _) = get(&format!("{}/api/v1/data", gw.url())).await;
    assert_eq!(status, 200);
    let (status, answer) = post(
        &format!("{}/api/v1/data/load", gw.url()),
        &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "tail"}),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("data-host"),
        "{answer}"
    );

    // A gateway restart keeps every finished operation.
    let (_, before) = get(&format!("{}/api/v1/operations", gw.url())).await;
    assert!(gw.terminate().is_some_and(|s| s.success()), "{}", gw.log());
    let gw = gateway(store.path(), models.path(), None, &env);
    let (_, after) = get(&format!("{}/api/v1/operations", gw.url())).await;
    assert_eq!(after["total_count"], before["total_count"], "{after}");
    let (_, op) = get(&format!("{}/api/v1/operations/{id}", gw.url())).await;
    assert_eq!(op["data"]["status"], "failed", "{op}");
}

/// A training-host on the hourly sample and the directories of a gateway in host mode
/// for training, which the tests start (and restart) with [`Self::gateway`].
struct HostTraining {
    store: tempfile::TempDir,
    _host_models: tempfile::TempDir,
    gateway_models: tempfile::TempDir,
    training: Service,
}

impl HostTraining {
    fn start() -> Self {
        let store = store_with_hourly_sample();
        let host_models = tempfile::tempdir().expect("tempdir");
        let training = training_host(store.path(), host_models.path());
        Self {
            store,
            _host_models: host_models,
            gateway_models: tempfile::tempdir().expect("tempdir"),
            training,
        }
    }

    /// A gateway on the same store and state as every earlier one.
    fn gateway(&self) -> Service {
        let url = self.training.url();
        let env = [
            ("USE_TRAINING_HOST_SERVICE", "true"),
            ("TRAINING_HOST_SERVICE_URL", url.as_str()),
        ];
        gateway(self.store.path(), self.gateway_models.path(), None, &env)
    }
}

#[tokio::test]
async fn a_gateway_stopped_mid_training_ends_it_failed_with_the_reason_and_stops_the_session() {
    let stack = HostTraining::start();
    let training_url = stack.training.url();
    let mut gw = stack.gateway();
    let id = start_long_training(&gw).await;
    let exit = gw.terminate().expect("the gateway exits on SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", gw.log());
    // The graceful path stops the session itself, before it exits.
    let (_, session) = get(&format!("{training_url}/training/status/{id}")).await;
    assert_eq!(session["status"], "stopped", "{session}\n{}", gw.log());

    let gw = stack.gateway();
    let (_, op) = get(&format!("{}/api/v1/operations/{id}", gw.url())).await;
    assert_eq!(op["data"]["status"], "failed", "{op}");
    let reason = op["data"]["error_message"].as_str().unwrap_or_default();
    assert!(reason.contains("shut down"), "{op}");
}

#[tokio::test]
async fn a_gateway_killed_mid_training_stops_the_orphaned_session_when_it_restarts() {
    let stack = HostTraining::start();
    let training_url = stack.training.url();
    let mut gw = stack.gateway();
    let id = start_long_training(&gw).await;
    gw.kill(); // No graceful shutdown: nobody stops the session.
    let (_, session) = get(&format!("{training_url}/training/status/{id}")).await;
    assert_eq!(session["status"], "running", "{session}");

    let gw = stack.gateway();
    let (_, op) = get(&format!("{}/api/v1/operations/{id}", gw.url())).await;
    assert_eq!(op["data"]["status"], "failed", "{op}");
    assert_eq!(op["data"]["error_message"], "interrupted by restart");
    let session = wait_session_stopped(&training_url, &id).await;
    assert_eq!(
        session["status"],
        "stopped",
        "the orphan was stopped: {session}\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_pool_of_training_hosts_survives_losing_one() {
    let store = store_with_hourly_sample();
    let models_a = tempfile::tempdir().expect("tempdir");
    let models_b = tempfile::tempdir().expect("tempdir");
    let gateway_models = tempfile::tempdir().expect("tempdir");
    let mut a = training_host(store.path(), models_a.path());
    let b = training_host(store.path(), models_b.path());
    let urls = format!("{},{}", a.url(), b.url());
    let gw = gateway(
        store.path(),
        gateway_models.path(),
        None,
        &[
            ("USE_TRAINING_HOST_SERVICE", "1"),
            ("TRAINING_HOST_SERVICE_URL", &urls),
        ],
    );
    a.kill();
    for _ in 0..3 {
        train_and_check(&gw, models_b.path()).await;
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_envelope_and_starts_nothing() {
    let store = tempfile::tempdir().expect("tempdir");
    let models = tempfile::tempdir().expect("tempdir");
    let key = "e2e-key-0123456789";
    let gw = gateway(
        store.path(),
        models.path(),
        None,
        &[("HOSTBRIDGE_API_KEY", key)],
    );
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>, with_key: bool| {
        let mut request = http.request(method, format!("{}{path}", gw.url()));
        if with_key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("send");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let load = |body: Value| call(reqwest::Method::POST, "/api/v1/data/load", Some(body), true);

    let (status, body) =
        load(json!({"symbol": "AAPL", "timeframe": "1h", "mode": "sideways"})).await;
    assert_eq!(
        (status, &body["error"]["details"]["field"]),
        (400, &json!("mode")),
        "{body}"
    );
    let (status, body) =
        load(json!({"symbol": "AAPL", "timeframe": "1h", "start_date": "2025-02-30"})).await;
    assert_eq!(
        (status, &body["error"]["details"]["field"]),
        (400, &json!("start_date")),
        "{body}"
    );
    let (status, body) = load(json!({"symbol": "AAPL", "timeframe": "1h", "start_date": "2025-03-01", "end_date": "2025-01-01"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        reqwest::Method::GET,
        "/api/v1/operations/op_unknown",
        None,
        true,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    let (status, body) = call(
        reqwest::Method::DELETE,
        "/api/v1/operations/op_unknown",
        None,
        true,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        reqwest::Method::POST,
        "/api/v1/data/load",
        Some(json!({"symbol": "AAPL", "timeframe": "1d", "mode": "local"})),
        false,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized")),
        "{body}"
    );
    assert_eq!(body["success"], false);
    let (status, _) = call(reqwest::Method::GET, "/api/v1/health", None, false).await;
    assert_eq!(status, 200, "health needs no key");

    let (_, list) = call(reqwest::Method::GET, "/api/v1/operations", None, true).await;
    assert_eq!(list["total_count"], 0, "nothing started: {list}");
    // The CLI says what is wrong too, and exits non-zero.
    let output = Command::new(binary("hostbridge"))
        .args([
            "--url",
            &gw.url(),
            "data",
            "load",
            "AAPL",
            "1h",
            "--mode",
            "sideways",
        ])
        .env("HOSTBRIDGE_API_KEY", key)
        .output()
        .expect("run hostbridge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mode") && stderr.contains("sideways"),
        "{stderr}"
    );
}
