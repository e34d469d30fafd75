//! training-host over real sockets: sessions started, watched, stopped and read back
//! through the KTRDR training contract, with real training on the sample bars.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use training_host::LoadedModel;
use training_host::model::resolve_shown;

mod common;

use common::{repo, start_host, strategy};

const PATIENCE: Duration = Duration::from_secs(180);

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .expect("post");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}{path}")).await.expect("get");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

/// Polls the session's status until `done` holds (bounded).
async fn wait_status(base: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let (_, status) = get(base, &format!("/training/status/{id}")).await;
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("session {id} never reached the expected state"))
}

/// Stops session `id` keeping a checkpoint; the answer (which must be 200).
async fn stop_with_checkpoint(base: &str, id: &str) -> Value {
    let body = json!({ "session_id": id, "save_checkpoint": true });
    let (code, stopped) = post(base, "/training/stop", &body).await;
    assert_eq!(code, 200, "{stopped}");
    stopped
}

fn finished(s: &Value) -> bool {
    matches!(
        s["status"].as_str(),
        Some("completed" | "failed" | "stopped")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ktrdr_strategy_trains_end_to_end_over_http() {
    let host = start_host(2).await;
    let (code, started) = post(
        &host.base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(4, false), "session_id": "e2e-1" }),
    )
    .await;
    assert_eq!(code, 200, "{started}");
    assert_eq!(
        (started["session_id"].as_str(), started["status"].as_str()),
        (Some("e2e-1"), Some("started"))
    );
    assert_eq!(started["gpu_allocated"], false);
    // Nothing is measured at start: no invented estimate.
    assert!(started["estimated_duration_minutes"].is_null(), "{started}");

    let status = wait_status(&host.base, "e2e-1", finished).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert!(status["progress"]["epoch"].as_u64() >= Some(1));
    assert_eq!(status["progress"]["progress_percent"], 100.0, "{status}");
    // Four epochs ran: the estimate comes from this session's measured throughput.
    let progress = &status["progress"];
    assert!(
        progress["samples_per_second"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{status}"
    );
    assert!(
        progress["estimated_duration_minutes"]
            .as_f64()
            .is_some_and(|m| m >= 0.0),
        "{status}"
    );
    assert_eq!(progress["estimated_remaining_minutes"], 0.0, "{status}");
    // On CPU there are no GPU figures, so none are reported.
    assert!(status.get("gpu_usage").is_none(), "{status}");

    let (code, result) = get(&host.base, "/training/result/e2e-1").await;
    assert_eq!(code, 200, "{result}");
    // Named from the store down, in KTRDR's form, never the host's absolute path.
    let shown = result["model_path"].as_str().expect("model_path");
    assert!(
        shown.starts_with(&format!("{}/", store_name(&host))),
        "{shown}"
    );
    assert_eq!(result["artifacts"]["model_dir"], shown);
    let model_path = resolve_shown(host.models.path(), shown);
    for file in [
        "model.safetensors",
        "config.json",
        "metrics.json",
        "features.json",
        "metadata.json",
    ] {
        assert!(model_path.join(file).is_file(), "{file}");
    }
    let tm = &result["training_metrics"];
    assert!(
        tm["epochs_trained"].as_u64() >= Some(1)
            && tm["history"].as_array().is_some_and(|h| !h.is_empty()),
        "{tm}"
    );
    for key in [
        "test_accuracy",
        "test_loss",
        "precision",
        "recall",
        "f1_score",
    ] {
        assert!(result["test_metrics"][key].is_number(), "{key}");
    }
    assert_eq!(result["data_summary"]["symbols"], json!(["AAPL"]));
    assert_eq!(result["data_summary"]["timeframes"], json!(["1d"]));
    assert!(result["model_info"]["parameters_count"].as_u64() > Some(1000));
    let model = LoadedModel::load(&model_path).expect("the saved model loads");
    assert!(model.n_features() > 0);

    let (_, sessions) = get(&host.base, "/training/sessions").await;
    assert_eq!(sessions["total_sessions"], 1);
    assert_eq!(sessions["sessions"][0]["session_id"], "e2e-1");
    // The operations API of host-service-base sees the same session.
    let (_, op) = get(&host.base, "/operations/e2e-1").await;
    assert_eq!(op["data"]["status"], "completed");

    let response = reqwest::Client::new()
        .delete(format!("{}/training/sessions/e2e-1", host.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 200);
    let (code, _) = get(&host.base, "/training/status/e2e-1").await;
    assert_eq!(code, 404);
    assert!(model_path.is_dir(), "deleting a session keeps its model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_within_a_batch_and_saves_a_loadable_checkpoint() {
    let host = start_host(2).await;
    let (code, _) = post(
        &host.base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(5000, true), "session_id": "long" }),
    )
    .await;
    assert_eq!(code, 200);
    let running = wait_status(&host.base, "long", |s| {
        s["progress"]["epoch"].as_u64() >= Some(2) || finished(s)
    })
    .await;
    assert_eq!(running["status"], "running", "{running}");
    assert!(running["metrics"]["current"].is_object(), "{running}");

    let stopped = stop_with_checkpoint(&host.base, "long").await;
    assert_eq!(
        (
            stopped["status"].as_str(),
            stopped["checkpoint_saved"].as_bool()
        ),
        (Some("stopped"), Some(true)),
        "{stopped}"
    );
    let (_, status) = get(&host.base, "/training/status/long").await;
    assert_eq!(status["status"], "stopped");
    assert_eq!(status["error"], Value::Null);

    let (code, result) = get(&host.base, "/training/result/long").await;
    assert_eq!(code, 200, "{result}");
    let model = LoadedModel::load(&resolve_shown(
        host.models.path(),
        result["model_path"].as_str().expect("path"),
    ))
    .expect("checkpoint loads");
    let probe = vec![0.0f32; model.n_features()];
    assert_eq!(model.predict(&probe).expect("predicts").len(), 1);

    let (code, again) = post(
        &host.base,
        "/training/stop",
        &json!({ "session_id": "long", "save_checkpoint": false }),
    )
    .await;
    assert_eq!(code, 409, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_session_limit_is_503_and_the_others_finish() {
    let host = start_host(4).await;
    for i in 0..4 {
        let (code, body) = post(
            &host.base,
            "/training/start",
            &json!({ "strategy_yaml": strategy(2, false), "session_id": format!("s{i}") }),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = post(
        &host.base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(2, false), "session_id": "s4" }),
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("limit")),
        "{body}"
    );
    for i in 0..4 {
        let status = wait_status(&host.base, &format!("s{i}"), finished).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
    let (code, _) = get(&host.base, "/training/status/s4").await;
    assert_eq!(code, 404, "the refused session was never created");
}

#[tokio::test]
async fn bad_strategies_and_overrides_name_the_key_and_start_nothing() {
    let host = start_host(2).await;
    let good = strategy(2, false);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "strategy_yaml": good.replace("    epochs: 2", "    epochs: 0") }),
            "model.training.epochs",
        ),
        (json!({ "strategy_yaml": "name: [unclosed" }), "line"),
        (
            json!({ "strategy_yaml": good.replace("train: 0.7", "train: 0.5") }),
            "training.data_split",
        ),
        (
            json!({ "strategy_yaml": good, "symbols": ["AAPL", "../x"] }),
            "symbols[1]",
        ),
        (
            json!({ "strategy_yaml": good, "timeframes": ["7m"] }),
            "timeframes[0]",
        ),
        (
            json!({ "strategy_yaml": good, "start_date": "yesterday" }),
            "start_date",
        ),
        (
            json!({ "strategy_yaml": good, "session_id": "../../etc" }),
            "session_id",
        ),
    ];
    for (body, key) in cases {
        let (code, answer) = post(&host.base, "/training/start", &body).await;
        assert_eq!(code, 400, "{key}: {answer}");
        let detail = answer["detail"].as_str().expect("FastAPI-style detail");
        assert!(detail.contains(key), "`{key}` not named in: {detail}");
    }
    // A body that does not fit the request model is FastAPI's 422 with its list, as
    // KTRDR's training host answers it.
    let malformed = [
        (
            json!({ "symbols": ["AAPL"] }),
            json!(["body", "strategy_yaml"]),
            "missing",
        ),
        (
            json!({ "strategy_yaml": good, "symbols": ["AAPL", 7] }),
            json!(["body", "symbols", 1]),
            "string_type",
        ),
    ];
    for (body, loc, kind) in malformed {
        let (code, answer) = post(&host.base, "/training/start", &body).await;
        assert_eq!(code, 422, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{answer}");
        assert_eq!(answer["detail"][0]["type"], kind, "{answer}");
        assert_eq!(answer["success"], false);
    }
    let (_, sessions) = get(&host.base, "/training/sessions").await;
    assert_eq!(sessions["total_sessions"], 0, "nothing was started");
}

#[tokio::test]
async fn unknown_duplicate_and_unfinished_sessions() {
    let host = start_host(2).await;
    for path in ["/training/status/nope", "/training/result/nope"] {
        let (code, answer) = get(&host.base, path).await;
        assert_eq!(code, 404, "{path}");
        assert!(
            answer["detail"]
                .as_str()
                .is_some_and(|d| d.contains("nope"))
        );
    }
    let (code, _) = post(
        &host.base,
        "/training/stop",
        &json!({ "session_id": "nope", "save_checkpoint": false }),
    )
    .await;
    assert_eq!(code, 404);

    let (code, _) = post(
        &host.base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(5000, true), "session_id": "dup" }),
    )
    .await;
    assert_eq!(code, 200);
    let (code, answer) = post(
        &host.base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(2, false), "session_id": "dup" }),
    )
    .await;
    assert_eq!(code, 409, "{answer}");
    let (code, answer) = get(&host.base, "/training/result/dup").await;
    assert_eq!(code, 400, "not finished: {answer}");
    let response = reqwest::Client::new()
        .delete(format!("{}/training/sessions/dup", host.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(
        response.status(),
        409,
        "a running session cannot be deleted"
    );
    let (code, _) = post(
        &host.base,
        "/training/stop",
        &json!({ "session_id": "dup", "save_checkpoint": false }),
    )
    .await;
    assert_eq!(code, 200);
}

/// Kills the child if a test fails before it exits.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_binary(models: &Path) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_training-host"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--max-sessions",
            "2",
            "--data-dir",
        ])
        .arg(repo().join("data"))
        .arg("--models-dir")
        .arg(models)
        .env("HOSTBRIDGE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // This host's callers share its file system: results carry absolute paths.
        .env("EXPOSE_MODEL_PATHS", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn training-host");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("exited before listening")
            .expect("log line");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["addr"].as_str().expect("addr").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Process(child), format!("http://{addr}"))
}

fn healthcheck(url: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_training-host"))
        .args(["healthcheck", "--url", url])
        .status()
        .expect("run healthcheck")
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_comes_back_with_the_running_session_failed_and_results_kept() {
    let models = tempfile::tempdir().expect("models");
    let (mut first, base) = start_binary(models.path());
    let (code, _) = post(
        &base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(2, false), "session_id": "done" }),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        wait_status(&base, "done", finished).await["status"],
        "completed"
    );
    let (code, _) = post(
        &base,
        "/training/start",
        &json!({ "strategy_yaml": strategy(5000, true), "session_id": "cut" }),
    )
    .await;
    assert_eq!(code, 200);
    wait_status(&base, "cut", |s| {
        s["status"] == "running" && s["progress"]["batch"].as_u64() >= Some(1)
    })
    .await;
    assert!(
        healthcheck(&base),
        "the healthcheck subcommand passes while it runs"
    );
    first.0.kill().expect("kill -9"); // no graceful shutdown: the process just dies
    first.0.wait().expect("reaped");
    assert!(!healthcheck(&base), "and fails once it is gone");

    let (_second, base) = start_binary(models.path());
    let (_, cut) = get(&base, "/training/status/cut").await;
    assert_eq!(cut["status"], "failed", "{cut}");
    assert_eq!(cut["error"], "interrupted by restart");
    let (_, done) = get(&base, "/training/status/done").await;
    assert_eq!(done["status"], "completed");
    let (code, result) = get(&base, "/training/result/done").await;
    assert_eq!(code, 200, "{result}");
    // Asked for (EXPOSE_MODEL_PATHS=true): the absolute path on this host.
    let shown = Path::new(result["model_path"].as_str().expect("path"));
    assert!(
        shown.is_absolute() && shown.starts_with(models.path()),
        "{}",
        shown.display()
    );
    assert!(shown.join("model.safetensors").is_file());
}

/// `strategy(epochs, long)` with `from` replaced by `to` (which must occur).
fn edited(epochs: u32, long: bool, from: &str, to: &str) -> String {
    let yaml = strategy(epochs, long);
    assert!(yaml.contains(from), "the shipped strategy lacks {from:?}");
    yaml.replace(from, to)
}

/// Waits for session `id` to complete and reads its result (which must answer 200).
async fn completed_result(base: &str, id: &str) -> Value {
    let status = wait_status(base, id, finished).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (code, result) = get(base, &format!("/training/result/{id}")).await;
    assert_eq!(code, 200, "{id}: {result}");
    result
}

/// Asserts that every key of `figures` is `null` (a missing figure, never a made-up 0).
fn assert_null(figures: &Value, keys: &[&str]) {
    for key in keys {
        assert_eq!(figures[key], Value::Null, "{key}: {figures}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_with_missing_figures_are_null_never_a_500() {
    let host = start_host(3).await;
    let no_validation =
        edited(2, false, "validation: 0.15", "validation: 0").replace("train: 0.7", "train: 0.85");
    let no_test = edited(2, false, "test: 0.15", "test: 0").replace("train: 0.7", "train: 0.85");
    // Batches of one row over four symbols: the first epoch takes seconds, so the stop
    // lands inside it.
    let first_epoch = edited(5000, true, "batch_size: 8", "batch_size: 1");
    for (id, yaml, symbols) in [
        ("no-val", no_validation, json!(null)),
        ("no-test", no_test, json!(null)),
        (
            "first-epoch",
            first_epoch,
            json!(["AAPL", "MSFT", "IBM", "GOOG"]),
        ),
    ] {
        let mut body = json!({ "strategy_yaml": yaml, "session_id": id });
        if !symbols.is_null() {
            body["symbols"] = symbols;
        }
        let (code, started) = post(&host.base, "/training/start", &body).await;
        assert_eq!(code, 200, "{id}: {started}");
    }
    wait_status(&host.base, "first-epoch", |s| {
        s["progress"]["batch"].as_u64() >= Some(1) || finished(s)
    })
    .await;
    let stopped = stop_with_checkpoint(&host.base, "first-epoch").await;
    assert_eq!(stopped["checkpoint_saved"], true, "{stopped}");

    let (code, result) = get(&host.base, "/training/result/first-epoch").await;
    assert_eq!(
        code, 200,
        "a checkpoint of no finished epoch reads back: {result}"
    );
    let tm = &result["training_metrics"];
    assert_eq!(tm["epochs_trained"], 0, "{tm}");
    assert_eq!(tm["history"], json!([]), "{tm}");
    assert_null(
        tm,
        &[
            "final_train_loss",
            "final_train_accuracy",
            "best_train_accuracy",
        ],
    );
    assert_null(
        tm,
        &["final_val_loss", "final_val_accuracy", "best_val_accuracy"],
    );
    assert!(
        result["test_metrics"]["test_accuracy"].is_number(),
        "{result}"
    );

    // No validation split: its figures are null, the others are there.
    let result = completed_result(&host.base, "no-val").await;
    let tm = &result["training_metrics"];
    assert!(tm["final_train_loss"].is_number(), "{tm}");
    assert_null(
        tm,
        &["final_val_loss", "final_val_accuracy", "best_val_accuracy"],
    );
    assert_eq!(result["data_summary"]["validation_samples"], 0, "{result}");
    assert!(
        result["test_metrics"]["test_accuracy"].is_number(),
        "{result}"
    );

    let result = completed_result(&host.base, "no-test").await;
    let test = &result["test_metrics"];
    assert_null(
        test,
        &[
            "test_accuracy",
            "test_loss",
            "precision",
            "recall",
            "f1_score",
        ],
    );
    assert!(
        test["message"]
            .as_str()
            .is_some_and(|m| m.contains("no test split")),
        "the result says why: {test}"
    );
    assert_eq!(result["data_summary"]["test_samples"], 0, "{result}");
    assert!(result["training_metrics"]["final_val_loss"].is_number());

    let (code, health) = get(&host.base, "/health").await;
    assert_eq!(code, 200, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_400_naming_the_key_and_the_host_keeps_serving() {
    let models = tempfile::tempdir().expect("models");
    // The binary, not the router in this test process: on a host without ceilings the
    // first case aborts the process on allocation.
    let (_host, base) = start_binary(models.path());
    let layers = |list: &str| edited(2, false, "hidden_layers: [50, 25]", list);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "strategy_yaml": layers("hidden_layers: [1000000000]") }),
            "model.architecture.hidden_layers[0]",
        ),
        (
            json!({ "strategy_yaml": layers("hidden_layers: [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]") }),
            "model.architecture.hidden_layers",
        ),
        (
            json!({ "strategy_yaml": layers("hidden_layers: [4096, 4096, 4096]") }),
            "model.architecture.hidden_layers",
        ),
        (
            json!({ "strategy_yaml": edited(2, false, "epochs: 2", "epochs: 1000000") }),
            "model.training.epochs",
        ),
        (
            json!({ "strategy_yaml": edited(2, false, "batch_size: 32", "batch_size: 100000000") }),
            "model.training.batch_size",
        ),
        (
            json!({ "strategy_yaml": edited(2, false, "lookback_periods: 2", "lookback_periods: 100000") }),
            "model.features.lookback_periods",
        ),
        (
            json!({
                "strategy_yaml": strategy(2, false),
                "symbols": (0..1000).map(|i| format!("S{i}")).collect::<Vec<_>>(),
            }),
            "symbols",
        ),
        (
            json!({ "strategy_yaml": strategy(2, false), "timeframes": vec!["1d"; 100] }),
            "timeframes",
        ),
        (
            json!({ "strategy_yaml": format!("{}#{}\n", strategy(2, false), "x".repeat(1 << 20)) }),
            "strategy_yaml",
        ),
    ];
    for (body, key) in cases {
        let (code, answer) = post(&base, "/training/start", &body).await;
        assert_eq!(code, 400, "{key}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], key, "{answer}");
        let detail = answer["detail"].as_str().expect("detail");
        assert!(
            detail.contains("at most"),
            "the ceiling is stated: {detail}"
        );
    }
    let (code, health) = get(&base, "/health").await;
    assert_eq!(code, 200, "{health}");
    let (_, sessions) = get(&base, "/training/sessions").await;
    assert_eq!(sessions["total_sessions"], 0, "nothing was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_range_of_bars_comes_from_the_request_the_strategy_or_the_data_and_says_which() {
    let host = start_host(2).await;
    let dated = edited(
        2,
        false,
        "  history_required: 200",
        "  history_required: 200\n  end_date: 2010-12-31",
    );
    for body in [
        json!({ "strategy_yaml": strategy(2, false), "session_id": "open" }),
        json!({ "strategy_yaml": dated, "session_id": "dated", "start_date": "2004-01-01" }),
    ] {
        let (code, started) = post(&host.base, "/training/start", &body).await;
        assert_eq!(code, 200, "{started}");
    }
    let (_, op) = get(&host.base, "/operations/dated").await;
    assert_eq!(
        op["data"]["metadata"]["date_range"],
        json!({ "start": "request", "end": "strategy" }),
        "{op}"
    );

    for (id, origin, first, last) in [
        (
            "open",
            json!({ "start": "data", "end": "data" }),
            "2000",
            "2013",
        ),
        (
            "dated",
            json!({ "start": "request", "end": "strategy" }),
            "2004",
            "2010",
        ),
    ] {
        let result = completed_result(&host.base, id).await;
        let summary = &result["data_summary"];
        assert_eq!(summary["date_range"], origin, "{summary}");
        let start = summary["start_date"].as_str().expect("start_date");
        let end = summary["end_date"].as_str().expect("end_date");
        assert!(start.starts_with(first), "{id} starts {start}");
        assert!(end.starts_with(last), "{id} ends {end}");
    }
}

/// The last component of the host's model store: the first part of a shown path.
fn store_name(host: &common::Host) -> String {
    host.models
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
