//! Training through the gateway: in-process (fallback) and on training-host (host
//! mode), progress mirrored into the gateway operation, a cancel reaching the session,
//! a pool of training-hosts surviving the loss of one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use api_gateway::{GatewayConfig, ServiceMode};
use data_host::local::LocalProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::CancellationToken;
use host_service_base::operations::{OperationFilter, Operations, OperationsConfig};
use serde_json::{Value, json};
use training_host::model::PathStyle;
use training_host::sessions::{SessionConfig, SessionManager};
use training_host::trainer::CandleTrainer;

use crate::support::{
    Dirs, Running, eventually, gateway, get, http, post, strategy_yaml, wait_for, wait_terminal,
};

/// A training-host router over `data_dir` on 127.0.0.1:0.
pub(crate) async fn training_host(data_dir: &Path, models_dir: &Path) -> Running {
    let sessions = SessionManager::new(
        Operations::in_memory(),
        Arc::new(LocalProvider::new(Store::new(data_dir, StoreFormat::Csv))),
        Arc::new(CandleTrainer::default()),
        SessionConfig {
            max_sessions: 4,
            models_dir: models_dir.to_path_buf(),
            model_paths: PathStyle::Relative,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    tokio::spawn(training_host::service::serve(
        listener,
        sessions,
        4,
        shutdown.clone(),
    ));
    Running { base, shutdown }
}

/// One training-host (its own models dir) over the sample store, and a gateway sending
/// training to it.
async fn gateway_on_training_host(dirs: &Dirs) -> (Running, tempfile::TempDir, Running) {
    let host_models = tempfile::tempdir().expect("tempdir");
    let host = training_host(dirs.data.path(), host_models.path()).await;
    let config = GatewayConfig {
        training: ServiceMode::Host(vec![host.base.parse().expect("url")]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    (host, host_models, gw)
}

pub(crate) async fn start_training(base: &str, body: &Value) -> (String, Value) {
    let (status, answer) = post(&http(), &format!("{base}/api/v1/trainings/start"), body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["success"], true);
    let id = answer["task_id"].as_str().expect("task id").to_owned();
    (id, answer)
}

/// The trained model's directory, from the result's `model_path` (relative to the
/// store's parent unless absolute paths are asked for).
fn model_dir(models: &Path, op: &Value) -> std::path::PathBuf {
    let shown = op["result_summary"]["model_path"]
        .as_str()
        .expect("model path");
    assert!(
        !Path::new(shown).is_absolute(),
        "no server path by default: {shown}"
    );
    training_host::model::resolve_shown(models, shown)
}

fn assert_trained(op: &Value, models: &Path) {
    assert_eq!(op["status"], "completed", "{op}");
    let r = &op["result_summary"];
    assert_eq!(r["training_metrics"]["epochs_trained"], 3, "{r}");
    let accuracy = r["test_metrics"]["test_accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!((0.0..=1.0).contains(&accuracy), "{r}");
    let model = model_dir(models, op);
    assert!(model.join("config.json").is_file(), "{}", model.display());
    assert_eq!(op["progress"]["percentage"], 100.0);
}

#[tokio::test]
async fn fallback_training_runs_in_process_and_mirrors_progress() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let (id, answer) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    assert_eq!(answer["data"]["mode"], "local");
    assert_eq!(answer["data"]["instance"], "in-process");
    let op = wait_terminal(&http(), &gw.base, &id).await;
    // The model lands in the gateway's models dir.
    assert_trained(&op, dirs.models.path());
    assert_eq!(op["operation_type"], "training");
    assert_eq!(op["progress"]["steps_total"], 3, "{op}");
}

#[tokio::test]
async fn host_mode_training_runs_on_training_host() {
    let dirs = Dirs::sample();
    let (host, host_models, gw) = gateway_on_training_host(&dirs).await;
    let (id, answer) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    assert_eq!(answer["data"]["mode"], "host");
    let op = wait_terminal(&http(), &gw.base, &id).await;
    // Trained on the host, into its models dir.
    assert_trained(&op, host_models.path());
    // The host knows the session under the task id.
    let (status, session) = get(&http(), &format!("{}/training/status/{id}", host.base)).await;
    assert_eq!(status, 200);
    assert_eq!(session["status"], "completed", "{session}");
}

#[tokio::test]
async fn cancelling_at_the_gateway_stops_the_host_session() {
    let dirs = Dirs::sample();
    let (host, _host_models, gw) = gateway_on_training_host(&dirs).await;
    let (id, _) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(10_000)})).await;
    wait_for(&http(), &gw.base, &id, |op| {
        op["progress"]["context"]["batch"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let response = http()
        .delete(format!("{}/api/v1/operations/{id}", gw.base))
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status().as_u16(), 200);
    let mut session = Value::Null;
    for _ in 0..500 {
        let (_, body) = get(&http(), &format!("{}/training/status/{id}", host.base)).await;
        if body["status"] == "stopped" {
            session = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        session["status"], "stopped",
        "the host session stopped: {session}"
    );
    let (_, op) = get(&http(), &format!("{}/api/v1/operations/{id}", gw.base)).await;
    assert_eq!(op["data"]["status"], "cancelled", "{op}");
}

#[tokio::test]
async fn a_pool_sends_new_sessions_to_the_instance_still_alive() {
    let dirs = Dirs::sample();
    let models_a = tempfile::tempdir().expect("tempdir");
    let models_b = tempfile::tempdir().expect("tempdir");
    let a = training_host(dirs.data.path(), models_a.path()).await;
    let b = training_host(dirs.data.path(), models_b.path()).await;
    let config = GatewayConfig {
        training: ServiceMode::Host(vec![
            a.base.parse().expect("url"),
            b.base.parse().expect("url"),
        ]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    let b_url = format!("{}/", b.base);
    drop(a); // Instance A dies.
    for _ in 0..4 {
        let (id, answer) =
            start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
        assert_eq!(answer["data"]["instance"], b_url, "{answer}");
        let op = wait_terminal(&http(), &gw.base, &id).await;
        assert_trained(&op, models_b.path());
    }
    let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    let training = &health["services"]["training"];
    assert_eq!(
        training["healthy"], true,
        "one instance is enough: {health}"
    );
    let instances = training["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 2);
    assert!(instances.iter().any(|i| i["healthy"] == false), "{health}");

    // With both gone, a start fails fast with 503 naming training-host; nothing starts.
    drop(b);
    let mut last = (0, Value::Null);
    for _ in 0..100 {
        last = post(
            &http(),
            &format!("{}/api/v1/trainings/start", gw.base),
            &json!({"strategy_yaml": strategy_yaml(3)}),
        )
        .await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert!(
        last.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("training-host"),
        "{}",
        last.1
    );
}

#[tokio::test]
async fn a_training_operation_streams_its_progress_as_server_sent_events() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let (id, _) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    let response = http()
        .get(format!("{}/api/v1/operations/{id}/events", gw.base))
        .send()
        .await
        .expect("events");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream"))
    );
    // The stream ends after the terminal event, so the whole body can be read.
    let body = response.text().await.expect("stream");
    let mut events = Vec::new();
    let (mut kind, mut seq) = (String::new(), 0u64);
    for line in body.lines() {
        if let Some(k) = line.strip_prefix("event:") {
            kind = k.trim().to_owned();
        } else if let Some(s) = line.strip_prefix("id:") {
            seq = s.trim().parse().expect("numeric id");
        } else if let Some(data) = line.strip_prefix("data:") {
            let op: Value = serde_json::from_str(data.trim()).expect("operation JSON");
            events.push((kind.clone(), seq, op));
        }
    }
    assert!(events.len() >= 3, "{body}");
    assert_eq!(events[0].0, "snapshot");
    assert!(events.iter().any(|(k, _, _)| k == "progress"), "{body}");
    let (last_kind, _, last) = events.last().expect("events");
    assert_eq!(last_kind, "terminal");
    assert_eq!(last["status"], "completed", "{last}");
    assert!(
        events.windows(2).all(|w| w[0].1 < w[1].1),
        "ids strictly increase"
    );
    assert!(
        events
            .iter()
            .filter_map(|(_, _, op)| op["progress"]["context"]["epoch"].as_u64())
            .any(|epoch| epoch >= 1),
        "progress carries the epoch"
    );
}

#[tokio::test]
async fn finished_trainings_are_forgotten_after_the_retention_in_both_registries() {
    let dirs = Dirs::sample();
    let mut settings = dirs.settings(GatewayConfig::default());
    settings.operations_retention = Duration::from_millis(500);
    let state = settings.state.clone().expect("state file");
    let (gw, gateway) = gateway(settings).await;
    let (id, _) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(2)})).await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    let api_gateway::training::Backend::Local(sessions) = gateway.training().backend() else {
        panic!("fallback mode trains in process");
    };
    let session = op["metadata"]["session_id"]
        .as_str()
        .or_else(|| op["result_summary"]["session_id"].as_str())
        .map(str::to_owned);

    // Nothing but the running service prunes here.
    let url = format!("{}/api/v1/operations/{id}", gw.base);
    eventually("the finished operation to be pruned", || async {
        let (status, _) = get(&http(), &url).await;
        (status == 404).then_some(())
    })
    .await;
    let (_, listed) = get(&http(), &format!("{}/api/v1/operations", gw.base)).await;
    assert!(!listed.to_string().contains(&id), "{listed}");
    eventually("the in-process session to be pruned", || async {
        let (listed, _, _) = sessions.operations().list(&OperationFilter::default());
        listed.is_empty().then_some(())
    })
    .await;
    if let Some(session) = session {
        assert!(sessions.operations().get(&session).is_none());
    }

    // The state file forgot it too: a gateway opened on it does not bring it back.
    drop(gw);
    drop(gateway);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reopened = Operations::open(OperationsConfig::persistent(&state)).expect("state reopens");
    assert!(reopened.get(&id).is_none());
}
