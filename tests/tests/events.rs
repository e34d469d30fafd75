//! Events out of the real gateway binary with `EVENT_MODE=both`, in host mode (real
//! data-host and training-host processes) and in fallback mode: a load, a training and
//! a cancelled training, read back in the same order by every sink — the SSE stream, a
//! python-socketio client, and a Kafka consumer (confluent-kafka in host mode, the
//! crate's own reader in fallback mode).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use event_stream::kafka::{ConsumerSettings, KafkaConfig, KafkaReader};
use futures::StreamExt;
use hostbridge_tests::peers::{
    PythonPeer, kafka_broker, kafka_script, python_has, socketio_client_script,
};
use hostbridge_tests::process::Service;
use hostbridge_tests::stack::{
    data_host, gateway, get, sim, start_long_training, store_with_hourly_sample, terminal,
    train_body, training_host, wait_op,
};
use serde_json::{Value, json};

/// The symbol the flows load (daily bars of 2012, in the sample data).
const LOADED: &str = "MSFT";

/// Envelopes from the SSE stream, collected by a background task.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<Value>>>);

impl Collected {
    fn all(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Opens `/api/v1/events` and collects every envelope until the test ends.
async fn follow_sse(gw: &Service) -> Collected {
    let mut response = reqwest::get(format!("{}/api/v1/events", gw.url()))
        .await
        .expect("events stream");
    assert_eq!(response.status(), 200);
    let collected = Collected::default();
    let sink = collected.clone();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(envelope) = serde_json::from_str::<Value>(data.trim())
                {
                    sink.0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(envelope);
                }
            }
        }
    });
    collected
}

/// A python-socketio client connected to the gateway.
async fn socketio_client(gw: &Service) -> PythonPeer {
    let client = PythonPeer::start(
        &socketio_client_script(),
        // Polling, then the upgrade to WebSocket, as browsers connect.
        &["--url", &gw.url(), "--timeout", "600"],
    );
    client
        .wait_for(300, |lines| lines.iter().any(|l| l["connected"] == true))
        .await;
    client
}

/// The three operations every mode runs; their ids.
struct Flows {
    load: String,
    training: String,
    cancelled: String,
}

async fn start(gw: &Service, path: &str, correlation: &str, body: &Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/{path}", gw.url()))
        .header("X-Correlation-ID", correlation)
        .json(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 202, "{path}");
    let answer: Value = response.json().await.expect("JSON");
    answer["data"]["operation_id"]
        .as_str()
        .expect("operation id")
        .to_owned()
}

async fn run_flows(gw: &Service) -> Flows {
    let load = start(
        gw,
        "data/load",
        "e2e-load",
        // Not the AAPL 1h the training reads (already in the store in host mode): a load
        // that merges new bars, so it announces `data.loaded`.
        &json!({"symbol": LOADED, "timeframe": "1d", "mode": "full",
            "start_date": "2012-01-01T00:00:00Z", "end_date": "2013-01-01T00:00:00Z"}),
    )
    .await;
    let op = wait_op(gw, &load, terminal).await;
    assert_eq!(op["status"], "completed", "{op}\n{}", gw.log());
    assert!(
        op["result_summary"]["bars_added"].as_u64() > Some(0),
        "the load merges bars: {op}"
    );

    let training = start(gw, "trainings/start", "e2e-train", &train_body(3)).await;
    let op = wait_op(gw, &training, terminal).await;
    assert_eq!(op["status"], "completed", "{op}\n{}", gw.log());

    let cancelled = start_long_training(gw).await;
    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/operations/{cancelled}", gw.url()))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 200);
    let op = wait_op(gw, &cancelled, terminal).await;
    assert_eq!(op["status"], "cancelled", "{op}");
    Flows {
        load,
        training,
        cancelled,
    }
}

/// Waits until the Kafka sink delivered everything published; returns that count.
async fn kafka_settled(gw: &Service) -> u64 {
    let mut health = Value::Null;
    for _ in 0..600 {
        health = get(&format!("{}/api/v1/health", gw.url())).await.1;
        let events = &health["events"];
        let kafka = &events["sinks"]["kafka"];
        if kafka["queued"] == 0 && kafka["delivered"] == events["published"] {
            assert_eq!(kafka["dropped"], 0, "{health}");
            return kafka["delivered"].as_u64().expect("delivered");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the kafka sink never caught up: {health}");
}

/// Ids of the envelopes of each subject, in order.
fn by_subject(envelopes: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for env in envelopes {
        if let (Some(subject), Some(id)) = (env["subject"].as_str(), env["id"].as_str()) {
            map.entry(subject.to_owned())
                .or_default()
                .push(id.to_owned());
        }
    }
    map
}

fn types_of<'a>(envelopes: &'a [Value], subject: &str) -> Vec<&'a str> {
    envelopes
        .iter()
        .filter(|e| e["subject"] == subject)
        .filter_map(|e| e["type"].as_str())
        .collect()
}

/// What every sink must show of the three flows.
fn check_flows(sink: &str, envelopes: &[Value], flows: &Flows) {
    let load = types_of(envelopes, &flows.load);
    assert_eq!(load.first(), Some(&"operation.started"), "{sink}: {load:?}");
    assert_eq!(
        load.last(),
        Some(&"operation.completed"),
        "{sink}: {load:?}"
    );
    assert!(
        load[1..load.len() - 1]
            .iter()
            .all(|t| *t == "operation.progress"),
        "{sink}: {load:?}"
    );
    let loaded: Vec<&Value> = envelopes
        .iter()
        .filter(|e| e["type"] == "data.loaded" && e["data"]["operation_id"] == flows.load.as_str())
        .collect();
    assert_eq!(loaded.len(), 1, "{sink}");
    assert_eq!(loaded[0]["subject"], LOADED, "{sink}");
    assert!(loaded[0]["data"]["bars_added"].as_u64() > Some(0), "{sink}");
    for env in envelopes
        .iter()
        .filter(|e| e["subject"] == flows.load.as_str())
    {
        assert_eq!(env["correlation_id"], "e2e-load", "{sink}: {env}");
    }

    let training = types_of(envelopes, &flows.training);
    assert_eq!(
        training.first(),
        Some(&"operation.started"),
        "{sink}: {training:?}"
    );
    assert_eq!(
        training.last(),
        Some(&"operation.completed"),
        "{sink}: {training:?}"
    );
    // Every epoch once and in order. Those the progress samples did not show come
    // last, from the result's history, marked backfilled; live ones never follow them.
    let epochs: Vec<(u64, bool)> = envelopes
        .iter()
        .filter(|e| e["type"] == "training.epoch" && e["subject"] == flows.training.as_str())
        .filter_map(|e| {
            Some((
                e["data"]["epoch"].as_u64()?,
                e["data"]["backfilled"] == true,
            ))
        })
        .collect();
    let numbers: Vec<u64> = epochs.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 3], "{sink}: {epochs:?}");
    let flags: Vec<bool> = epochs.iter().map(|(_, b)| *b).collect();
    assert!(flags.windows(2).all(|w| w[0] <= w[1]), "{sink}: {epochs:?}");
    assert!(
        envelopes
            .iter()
            .filter(|e| e["subject"] == flows.training.as_str())
            .all(|e| e["correlation_id"] == "e2e-train"),
        "{sink}"
    );

    let cancelled = types_of(envelopes, &flows.cancelled);
    assert_eq!(
        cancelled.first(),
        Some(&"operation.started"),
        "{sink}: {cancelled:?}"
    );
    assert_eq!(
        cancelled.last(),
        Some(&"operation.cancelled"),
        "{sink}: {cancelled:?}"
    );
}

/// Every sink holds the same envelopes per subject, in the same order.
fn same_per_subject(a: (&str, &[Value]), b: (&str, &[Value]), flows: &Flows) {
    let (ma, mb) = (by_subject(a.1), by_subject(b.1));
    for subject in [&flows.load, &flows.training, &flows.cancelled, LOADED] {
        assert_eq!(
            ma.get(subject),
            mb.get(subject),
            "{} and {} differ on {subject}",
            a.0,
            b.0
        );
    }
}

/// What the SSE stream and a Socket.IO client saw of the flows, checked, and how many
/// events the Kafka sink delivered.
struct Observed {
    flows: Flows,
    delivered: u64,
    from_sse: Vec<Value>,
    from_socketio: Vec<Value>,
}

/// Connects the SSE and Socket.IO readers, runs the flows, waits for the Kafka sink.
async fn observe(gw: &Service) -> Observed {
    let sse = follow_sse(gw).await;
    let socketio = socketio_client(gw).await;
    let flows = run_flows(gw).await;
    let delivered = kafka_settled(gw).await;

    let from_sse = sse.all();
    check_flows("sse", &from_sse, &flows);
    let from_socketio: Vec<Value> = socketio
        .wait_for(600, |lines| {
            lines.iter().any(|l| {
                l["event"] == "operation.cancelled"
                    && l["data"]["subject"] == flows.cancelled.as_str()
            })
        })
        .await
        .into_iter()
        .filter(|l| l["event"].is_string())
        .map(|l| {
            assert_eq!(l["event"], l["data"]["type"], "event name = type");
            l["data"].clone()
        })
        .collect();
    check_flows("socket.io", &from_socketio, &flows);
    Observed {
        flows,
        delivered,
        from_sse,
        from_socketio,
    }
}

fn topic() -> String {
    format!(
        "e2e-events-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

fn event_env<'a>(broker: &'a str, topic: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("EVENT_MODE", "both"),
        ("KAFKA_BOOTSTRAP_SERVERS", broker),
        ("KAFKA_EVENTS_TOPIC", topic),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_mode_publishes_every_flow_to_sse_socketio_and_kafka_alike() {
    let Some(broker) = kafka_broker() else { return };
    if !python_has("socketio") || !python_has("confluent_kafka") {
        return;
    }
    let store = store_with_hourly_sample();
    let host_models = tempfile::tempdir().expect("tempdir");
    let gateway_models = tempfile::tempdir().expect("tempdir");
    let sim = sim("0s");
    let data = data_host(&sim, "41");
    let training = training_host(store.path(), host_models.path());
    let topic = topic();
    let mut env = event_env(&broker, &topic);
    let (data_url, training_url) = (data.url(), training.url());
    env.extend([
        ("USE_IB_HOST_SERVICE", "true"),
        ("IB_HOST_SERVICE_URL", data_url.as_str()),
        ("USE_TRAINING_HOST_SERVICE", "true"),
        ("TRAINING_HOST_SERVICE_URL", training_url.as_str()),
    ]);
    let gw = gateway(store.path(), gateway_models.path(), None, &env);
    let Observed {
        flows,
        delivered,
        from_sse,
        from_socketio,
    } = observe(&gw).await;

    // confluent-kafka reads everything the sink delivered, from the beginning.
    let count = delivered.to_string();
    let mut consumer = PythonPeer::start(
        &kafka_script(),
        &["consume", &broker, &topic, "e2e-python", &count, "120"],
    );
    assert_eq!(
        consumer.exit_code().await,
        Some(0),
        "{:?}",
        consumer.lines()
    );
    let records = consumer.lines();
    for record in &records {
        assert_eq!(record["key"], record["value"]["subject"], "key = subject");
        assert_eq!(record["headers"]["type"], record["value"]["type"]);
        assert_eq!(record["headers"]["id"], record["value"]["id"]);
    }
    let from_kafka: Vec<Value> = records.iter().map(|r| r["value"].clone()).collect();
    check_flows("kafka", &from_kafka, &flows);

    same_per_subject(("sse", &from_sse), ("socket.io", &from_socketio), &flows);
    same_per_subject(("sse", &from_sse), ("kafka", &from_kafka), &flows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_mode_publishes_the_same_flows_read_by_the_crates_kafka_reader() {
    let Some(broker) = kafka_broker() else { return };
    if !python_has("socketio") {
        return;
    }
    let store = store_with_hourly_sample();
    let models = tempfile::tempdir().expect("tempdir");
    let sim = sim("0s");
    let topic = topic();
    let mut env = event_env(&broker, &topic);
    env.extend([
        ("USE_IB_HOST_SERVICE", "false"),
        ("USE_TRAINING_HOST_SERVICE", "false"),
    ]);
    let gw = gateway(store.path(), models.path(), Some(&sim), &env);
    let Observed {
        flows,
        delivered,
        from_sse,
        from_socketio,
    } = observe(&gw).await;

    let cancel = tokio_util::sync::CancellationToken::new();
    let group = ConsumerSettings::new("e2e-rust").with_session_timeout_ms(6000);
    let mut reader = KafkaReader::new(
        &KafkaConfig::new(broker.as_str()),
        group,
        &[topic.as_str()],
        cancel.clone(),
    )
    .expect("reader");
    let mut from_kafka = Vec::new();
    while (from_kafka.len() as u64) < delivered {
        let message = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .expect("a message within 60 s")
            .expect("open")
            .expect("ok");
        from_kafka.push(serde_json::from_slice::<Value>(&message.value).expect("JSON"));
    }
    cancel.cancel();
    check_flows("kafka", &from_kafka, &flows);
    same_per_subject(("sse", &from_sse), ("socket.io", &from_socketio), &flows);
    same_per_subject(("sse", &from_sse), ("kafka", &from_kafka), &flows);
}

#[test]
fn bad_event_settings_stop_start_up_naming_the_variable() {
    let store = tempfile::tempdir().expect("tempdir");
    for (env, variable) in [
        (vec![("EVENT_MODE", "carrier-pigeon")], "EVENT_MODE"),
        (vec![("EVENT_MODE", "kafka")], "KAFKA_BOOTSTRAP_SERVERS"),
        (
            vec![
                ("EVENT_MODE", "both"),
                ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                ("KAFKA_PRODUCER_LINGER_MS", "soon"),
            ],
            "KAFKA_PRODUCER_LINGER_MS",
        ),
    ] {
        let mut child = std::process::Command::new(hostbridge_tests::bins::binary("api-gateway"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(store.path())
            .args(["--models-dir"])
            .arg(store.path())
            .env_remove("KAFKA_BOOTSTRAP_SERVERS")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("api-gateway runs");
        let mut status = None;
        for _ in 0..200 {
            if let Some(done) = child.try_wait().expect("wait") {
                status = Some(done);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let Some(status) = status else {
            let _ = child.kill();
            panic!("{env:?}: the gateway started anyway");
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert!(!status.success(), "{env:?}");
        assert!(stderr.contains(variable), "{env:?}: {stderr}");
    }
}
