//! Commands in: the gateway consuming `data.load.requested` / `training.start.requested`
//! from the tansu broker, with commands produced here and by Python's confluent-kafka,
//! dead letters read back from `{topic}.dlq`, and the events of what they started read
//! from the gateway's bus.

use std::sync::Arc;
use std::time::Duration;

use api_gateway::commands::CommandSettings;
use api_gateway::{Gateway, GatewayConfig, GatewaySettings, ServiceMode};
use bytes::Bytes;
use data_host::local::LocalProvider;
use data_host::store::{Store, StoreFormat};
use event_stream::kafka::{
    ConsumerSettings, KafkaAdmin, KafkaConfig, KafkaReader, KafkaWriter, ProducerSettings,
};
use event_stream::memory::MemoryReader;
use event_stream::stream::RetryPolicy;
use event_stream::stream::dead_letter::header;
use event_stream::stream::producer::encode;
use event_stream::{AsyncWriter, Envelope, RawMessage};
use futures::StreamExt;
use host_service_base::CancellationToken;
use host_service_base::operations::Operations;
use serde_json::{Value, json};
use training_host::model::PathStyle;
use training_host::sessions::{SessionConfig, SessionManager};
use training_host::trainer::CandleTrainer;

use crate::support::{
    Dirs, Running, free_port, get, http, python_has, repo, strategy_yaml, test_broker,
    wait_terminal,
};

/// Every wait here: covers a group join on tansu (one 6 s session) several times over.
const WAIT: Duration = Duration::from_secs(90);

fn unique(label: &str) -> String {
    format!("gw-{label}-{}", uuid::Uuid::new_v4().simple())
}

async fn new_topic(config: &KafkaConfig, label: &str) -> String {
    let name = unique(label);
    KafkaAdmin::new(config)
        .expect("admin")
        .create_topic(&name, 3, 1, &[])
        .await
        .expect("topic");
    name
}

fn commands(config: &KafkaConfig, topic: &str, group: &str) -> CommandSettings {
    CommandSettings {
        group: group.to_owned(),
        session_timeout_ms: 6_000,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            jitter: true,
        },
        ..CommandSettings::new(config.clone(), topic)
    }
}

/// A gateway whose serve task can be awaited (its state file is free after).
struct Served {
    running: Running,
    gateway: Gateway,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start(settings: GatewaySettings) -> Self {
        let gateway = Gateway::build(settings).expect("gateway builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let serving = gateway.clone().serve(listener, shutdown.clone());
        let task = tokio::spawn(async move {
            serving.await.expect("the gateway serves");
        });
        Self {
            running: Running { base, shutdown },
            gateway,
            task,
        }
    }

    /// A gateway over `dirs` consuming `topic` in a group of its own.
    async fn consuming(dirs: &Dirs, config: &KafkaConfig, topic: &str) -> Self {
        Self::start(settings_with(dirs, commands(config, topic, &unique("g")))).await
    }

    fn base(&self) -> &str {
        &self.running.base
    }

    async fn stop(self) {
        self.running.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the gateway stops in time")
            .expect("serve task");
    }

    /// `events.commands.consumer` of the health answer.
    async fn consumer(&self) -> Value {
        let (_, health) = get(&http(), &format!("{}/api/v1/health", self.base())).await;
        health["events"]["commands"]["consumer"].clone()
    }

    /// Waits until the consumer's counters satisfy `done`.
    async fn until(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let consumer = self.consumer().await;
            if done(&consumer) {
                return consumer;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the commands consumer never got there: {consumer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the operation a command starts exists, then until it ends.
    async fn finished(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.gateway.operations().get(id).is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "operation {id} never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_terminal(&http(), self.base(), id).await
    }

    fn operations_of(&self, kind: &str) -> Vec<String> {
        let filter = host_service_base::operations::OperationFilter {
            operation_type: Some(kind.to_owned()),
            limit: Some(1000),
            ..Default::default()
        };
        self.gateway
            .operations()
            .list(&filter)
            .0
            .into_iter()
            .map(|op| op.operation_id)
            .collect()
    }
}

fn count(consumer: &Value, field: &str) -> u64 {
    consumer[field].as_u64().unwrap_or(0)
}

fn load_command(symbol: &str) -> Envelope {
    Envelope::new(
        "data.load.requested",
        "test",
        json!({"symbol": symbol, "timeframe": "1d", "mode": "local"}),
    )
    .expect("envelope")
}

async fn produce(config: &KafkaConfig, topic: &str, messages: Vec<RawMessage>) {
    let mut writer = KafkaWriter::new(config, ProducerSettings::default(), topic).expect("writer");
    for m in messages {
        AsyncWriter::write(&mut writer, m).await.expect("enqueue");
    }
    AsyncWriter::close(&mut writer).await.expect("delivered");
}

/// The envelopes of the gateway's bus with `subject` until one of type `last`.
async fn events_until(
    bus: &mut MemoryReader<String, Arc<Envelope>>,
    subject: &str,
    last: &str,
) -> Vec<Envelope> {
    let mut out = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, bus.next())
            .await
            .expect("an event in time")
            .expect("bus open")
            .expect("event");
        let envelope = (*message.value).clone();
        if envelope.subject.as_deref() == Some(subject) {
            let done = envelope.event_type == last;
            out.push(envelope);
            if done {
                return out;
            }
        }
    }
}

fn settings_with(dirs: &Dirs, commands: CommandSettings) -> GatewaySettings {
    GatewaySettings {
        commands: Some(commands),
        ..dirs.settings(GatewayConfig::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_from_python_starts_one_operation_whose_events_carry_its_correlation_id() {
    let Some(broker) = test_broker() else { return };
    if !python_has("confluent_kafka") {
        return;
    }
    let config = KafkaConfig::new(broker.clone());
    let topic = new_topic(&config, "py").await;
    let dirs = Dirs::sample();
    let gw = Served::consuming(&dirs, &config, &topic).await;
    let mut bus = gw.gateway.events().subscribe(CancellationToken::new());

    // The command as another service writes it: plain JSON, with the envelope headers.
    let id = uuid::Uuid::now_v7().to_string();
    let command = json!({
        "id": id, "type": "data.load.requested", "timestamp": "2026-12-03T10:00:00.000Z",
        "source": "scheduler", "correlation_id": "sched-42", "subject": "MSFT",
        "data": {"symbol": "MSFT", "timeframe": "1d", "mode": "local"},
    });
    let script = repo().join("event-stream/tests/python/kafka_interop.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(["produce", &broker, &topic, "MSFT"])
        .arg("type=data.load.requested")
        .arg(format!("id={id}"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(command.to_string().as_bytes())
            .expect("write");
    }
    assert!(child.wait().expect("python3 runs").success());

    let events = events_until(&mut bus, &id, "operation.completed").await;
    assert_eq!(events[0].event_type, "operation.started");
    assert!(
        events
            .iter()
            .all(|e| e.correlation_id.as_deref() == Some("sched-42")),
        "{events:?}"
    );
    let op = wait_terminal(&http(), gw.base(), &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["metadata"]["correlation_id"], "sched-42");
    assert_eq!(gw.operations_of("data_load"), std::slice::from_ref(&id));
    let consumer = gw.until(|c| count(c, "handled") == 1).await;
    assert_eq!(count(&consumer, "dead_lettered"), 0, "{consumer}");
    gw.stop().await;
}

async fn same_command_many_times(redis: Option<String>) {
    let Some(broker) = test_broker() else { return };
    let config = KafkaConfig::new(broker);
    let topic = new_topic(&config, "dup").await;
    let group = unique("g");
    let dirs = Dirs::sample();
    let settings = || {
        let mut c = commands(&config, &topic, &group);
        c.redis_url = redis.clone();
        settings_with(&dirs, c)
    };
    let command = load_command("MSFT");
    let id = command.id.to_string();

    let first = Served::start(settings()).await;
    produce(&config, &topic, vec![encode(command.clone()); 3]).await;
    let consumer = first
        .until(|c| count(c, "handled") + count(c, "duplicates") == 3)
        .await;
    // Copies handled at once are not in the dedup store yet (an id is remembered when
    // its message is done): the handler finds the operation and starts nothing.
    assert_eq!(count(&consumer, "dead_lettered"), 0, "{consumer}");
    wait_terminal(&http(), first.base(), &id).await;
    assert_eq!(first.operations_of("data_load"), std::slice::from_ref(&id));
    first.stop().await;

    // A new process (empty LRU) gets the command once more.
    let second = Served::start(settings()).await;
    produce(&config, &topic, vec![encode(command.clone())]).await;
    let consumer = second
        .until(|c| count(c, "handled") + count(c, "duplicates") == 1)
        .await;
    if redis.is_some() {
        assert_eq!(
            count(&consumer, "duplicates"),
            1,
            "Redis knew it: {consumer}"
        );
    } else {
        // Without Redis the handler finds the operation the command started.
        assert_eq!(count(&consumer, "handled"), 1, "{consumer}");
    }
    assert_eq!(
        count(&consumer, "received"),
        1,
        "only the new message: {consumer}"
    );
    assert_eq!(second.operations_of("data_load"), [id]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_command_four_times_across_a_restart_starts_one_operation_without_redis() {
    same_command_many_times(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_command_four_times_across_a_restart_starts_one_operation_with_redis() {
    let Ok(url) = std::env::var("HOSTBRIDGE_TEST_REDIS") else {
        assert!(
            std::env::var("CI_REQUIRE_REDIS").is_err(),
            "CI_REQUIRE_REDIS is set but HOSTBRIDGE_TEST_REDIS is not"
        );
        eprintln!("skipping: HOSTBRIDGE_TEST_REDIS not set (see .ci/run)");
        return;
    };
    same_command_many_times(Some(url)).await;
}

/// Reads `n` messages of `topic` from its start.
async fn read_topic(config: &KafkaConfig, topic: &str, n: usize) -> Vec<RawMessage> {
    let cancel = CancellationToken::new();
    let mut reader = KafkaReader::new(
        config,
        ConsumerSettings::new(unique("reader")).with_session_timeout_ms(6_000),
        &[topic],
        cancel.clone(),
    )
    .expect("reader");
    let mut out = Vec::new();
    while out.len() < n {
        let message = tokio::time::timeout(WAIT, reader.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("message");
        out.push(message);
    }
    cancel.cancel();
    while reader.next().await.is_some() {}
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_unknown_and_invalid_commands_are_dead_lettered_once_and_rejected_publicly() {
    let Some(broker) = test_broker() else { return };
    let config = KafkaConfig::new(broker);
    let topic = new_topic(&config, "bad").await;
    let group = unique("g");
    let dirs = Dirs::sample();
    let gw = Served::start(settings_with(&dirs, commands(&config, &topic, &group))).await;
    let mut bus = gw.gateway.events().subscribe(CancellationToken::new());

    let mut poison = RawMessage::new(Bytes::from_static(b"{\"id\": oops"));
    poison.key = Some(Bytes::from_static(b"x"));
    let unknown = Envelope::new("data.delete.requested", "test", json!({"symbol": "MSFT"}))
        .expect("envelope")
        .with_correlation_id(Some("c-unknown".to_owned()));
    let invalid = Envelope::new(
        "data.load.requested",
        "test",
        json!({"symbol": "MSFT", "timeframe": "7x"}),
    )
    .expect("envelope");
    let good = load_command("MSFT");
    // One partition key for all: they are read in this order.
    let keyed = |mut m: RawMessage| {
        m.key = Some(Bytes::from_static(b"x"));
        m
    };
    produce(
        &config,
        &topic,
        vec![
            poison,
            keyed(encode(unknown.clone())),
            keyed(encode(invalid.clone())),
            keyed(encode(good.clone())),
        ],
    )
    .await;

    let good_id = good.id.to_string();
    let consumer = gw
        .until(|c| count(c, "dead_lettered") == 3 && count(c, "handled") == 1)
        .await;
    assert_eq!(count(&consumer, "retried"), 0, "permanent: {consumer}");
    wait_terminal(&http(), gw.base(), &good_id).await;

    let letters = read_topic(&config, &format!("{topic}.dlq"), 3).await;
    let class = |m: &RawMessage| {
        m.headers
            .get_str(header::CLASS)
            .unwrap_or_default()
            .to_owned()
    };
    let mut classes: Vec<String> = letters.iter().map(class).collect();
    classes.sort();
    assert_eq!(
        classes,
        [
            "UndecodableMessage",
            "UnknownCommandType",
            "ValidationError"
        ]
    );
    for letter in &letters {
        let h = &letter.headers;
        assert_eq!(h.get_str(header::TOPIC), Some(topic.as_str()));
        assert_eq!(h.get_str(header::GROUP), Some(group.as_str()));
        assert!(
            h.get_str(header::OFFSET)
                .is_some_and(|o| o.parse::<i64>().is_ok())
        );
        assert!(
            h.get_str(header::PARTITION)
                .is_some_and(|p| p.parse::<i32>().is_ok())
        );
        assert!(h.get_str(header::MESSAGE).is_some_and(|m| !m.is_empty()));
    }
    let invalid_letter = letters
        .iter()
        .find(|m| class(m) == "ValidationError")
        .expect("the invalid command");
    let message = invalid_letter
        .headers
        .get_str(header::MESSAGE)
        .unwrap_or_default();
    assert!(message.starts_with("data.timeframe: "), "{message}");
    let invalid_id = invalid.id.to_string();
    assert_eq!(
        invalid_letter.headers.get_str(header::EVENT_ID),
        Some(invalid_id.as_str())
    );
    assert_eq!(invalid_letter.value, encode(invalid.clone()).value);

    // The requester learns of each: command.rejected, with the command's correlation.
    let mut rejected = Vec::new();
    while rejected.len() < 3 {
        let message = tokio::time::timeout(WAIT, bus.next())
            .await
            .expect("an event")
            .expect("open")
            .expect("event");
        if message.value.event_type == "command.rejected" {
            rejected.push((*message.value).clone());
        }
    }
    let unknown_id = unknown.id.to_string();
    let of_unknown = rejected
        .iter()
        .find(|e| e.subject.as_deref() == Some(unknown_id.as_str()))
        .expect("the unknown type's rejection");
    assert_eq!(of_unknown.correlation_id.as_deref(), Some("c-unknown"));
    assert_eq!(of_unknown.data["error_class"], "UnknownCommandType");
    assert_eq!(of_unknown.data["command_type"], "data.delete.requested");
    assert_eq!(of_unknown.data["dead_letter_topic"], format!("{topic}.dlq"));
    assert!(
        rejected
            .iter()
            .any(|e| e.data["error_class"] == "UndecodableMessage" && e.subject.is_none())
    );
    assert_eq!(gw.operations_of("data_load"), [good_id]);
    gw.stop().await;
}

/// A training-host over the sample store, on `port`.
async fn training_host_on(dirs: &Dirs, models: &std::path::Path, port: u16) -> Running {
    let sessions = SessionManager::new(
        Operations::in_memory(),
        Arc::new(LocalProvider::new(Store::new(
            dirs.data.path(),
            StoreFormat::Csv,
        ))),
        Arc::new(CandleTrainer::default()),
        SessionConfig {
            max_sessions: 4,
            models_dir: models.to_path_buf(),
            model_paths: PathStyle::Relative,
        },
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the reserved port");
    let shutdown = CancellationToken::new();
    tokio::spawn(training_host::service::serve(
        listener,
        sessions,
        4,
        shutdown.clone(),
    ));
    Running {
        base: format!("http://127.0.0.1:{port}"),
        shutdown,
    }
}

fn train_command() -> Envelope {
    Envelope::new(
        "training.start.requested",
        "test",
        json!({"strategy_yaml": strategy_yaml(2)}),
    )
    .expect("envelope")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_host_that_is_down_is_retried_until_it_returns_and_past_the_budget_dead_lettered()
 {
    let Some(broker) = test_broker() else { return };
    let config = KafkaConfig::new(broker);
    let dirs = Dirs::sample();
    let host_models = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let host_url = format!("http://127.0.0.1:{port}");
    let gateway_config = GatewayConfig {
        training: ServiceMode::Host(vec![host_url.parse().expect("url")]),
        ..GatewayConfig::default()
    };

    // A generous budget: the host comes back within it.
    let topic = new_topic(&config, "transient").await;
    let mut patient = commands(&config, &topic, &unique("g"));
    patient.retry = RetryPolicy {
        max_attempts: 40,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
        jitter: true,
    };
    let gw = Served::start(GatewaySettings {
        commands: Some(patient),
        ..dirs.settings(gateway_config.clone())
    })
    .await;
    let command = train_command();
    let id = command.id.to_string();
    produce(&config, &topic, vec![encode(command)]).await;
    gw.until(|c| count(c, "retried") >= 2).await;
    assert!(
        gw.gateway.operations().get(&id).is_none(),
        "nothing started yet"
    );
    let host = training_host_on(&dirs, host_models.path(), port).await;
    let consumer = gw.until(|c| count(c, "handled") == 1).await;
    assert_eq!(count(&consumer, "dead_lettered"), 0, "{consumer}");
    let op = wait_terminal(&http(), gw.base(), &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    gw.stop().await;
    drop(host);

    // A small budget and no host: dead-lettered as exhausted, and rejected publicly.
    let topic = new_topic(&config, "exhausted").await;
    let dirs = Dirs::sample();
    let gw = Served::start(GatewaySettings {
        commands: Some(commands(&config, &topic, &unique("g"))),
        ..dirs.settings(GatewayConfig {
            training: ServiceMode::Host(vec![
                format!("http://127.0.0.1:{}", free_port())
                    .parse()
                    .expect("url"),
            ]),
            ..GatewayConfig::default()
        })
    })
    .await;
    let mut bus = gw.gateway.events().subscribe(CancellationToken::new());
    let command = train_command();
    let id = command.id.to_string();
    produce(&config, &topic, vec![encode(command)]).await;
    let consumer = gw.until(|c| count(c, "dead_lettered") == 1).await;
    assert_eq!(count(&consumer, "retried"), 2, "3 attempts: {consumer}");
    let letter = read_topic(&config, &format!("{topic}.dlq"), 1).await;
    let h = &letter[0].headers;
    assert_eq!(h.get_str(header::CLASS), Some("RetriesExhausted"));
    assert_eq!(h.get_str(header::ATTEMPTS), Some("3"));
    assert!(
        h.get_str(header::MESSAGE)
            .is_some_and(|m| m.contains("training-host")),
        "{:?}",
        h.get_str(header::MESSAGE)
    );
    let rejected = events_until(&mut bus, &id, "command.rejected").await;
    assert_eq!(
        rejected.last().map(|e| e.data["attempts"].clone()),
        Some(json!(3))
    );
    assert!(gw.gateway.operations().get(&id).is_none());
    gw.stop().await;
}

/// Runs the `hostbridge` binary with `args` (and the broker in the environment).
async fn cli(broker: &str, args: Vec<String>) -> std::process::Output {
    let broker = broker.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::cli_events::BIN)
            .args(&args)
            .env("KAFKA_BOOTSTRAP_SERVERS", broker)
            .env_remove("KAFKA_COMMANDS_TOPIC")
            .output()
            .expect("hostbridge runs")
    })
    .await
    .expect("cli task")
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_commands_and_lists_shows_and_replays_dead_letters() {
    let Some(broker) = test_broker() else { return };
    let config = KafkaConfig::new(broker.clone());
    let topic = new_topic(&config, "cli").await;
    let dirs = Dirs::sample();
    let gw = Served::consuming(&dirs, &config, &topic).await;

    // A load, with the correlation id the requester chose.
    let sent = cli(
        &broker,
        words(&[
            "--json",
            "commands",
            "send",
            "load",
            "MSFT",
            "1d",
            "--mode",
            "local",
            "--correlation-id",
            "cli-1",
            "--topic",
            &topic,
        ]),
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    let answer = &json_lines(&sent)[0];
    assert_eq!(answer["correlation_id"], "cli-1");
    let load_id = answer["operation_id"].as_str().expect("id").to_owned();
    let op = gw.finished(&load_id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["metadata"]["correlation_id"], "cli-1");

    // A training of a strategy the gateway does not have: dead-lettered.
    let sent = cli(
        &broker,
        words(&[
            "--json",
            "commands",
            "send",
            "train",
            "no_such_strategy",
            "--topic",
            &topic,
        ]),
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    let train_id = json_lines(&sent)[0]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    gw.until(|c| count(c, "dead_lettered") == 1).await;

    let listed = cli(
        &broker,
        words(&["--json", "dlq", "list", "--topic", &topic, "--idle", "2s"]),
    )
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let letters = json_lines(&listed);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["dead_letter"]["event_id"], train_id.as_str());
    assert_eq!(letters[0]["dead_letter"]["class"], "NotFound");
    let at = letters[0]["at"].as_str().expect("at").to_owned();

    let shown = cli(
        &broker,
        words(&[
            "--json", "dlq", "show", &at, "--topic", &topic, "--idle", "2s",
        ]),
    )
    .await;
    assert!(shown.status.success(), "{shown:?}");
    let shown = &json_lines(&shown)[0];
    assert_eq!(shown["headers"]["__connect.errors.topic"], topic.as_str());
    assert_eq!(shown["value"]["data"]["strategy_name"], "no_such_strategy");

    // The fix: the same command with a strategy the gateway can train.
    let mut fixed = shown["value"].clone();
    fixed["data"] = json!({"strategy_yaml": strategy_yaml(2)});
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), fixed.to_string()).expect("write");
    let replayed = cli(
        &broker,
        words(&[
            "dlq",
            "replay",
            &at,
            "--topic",
            &topic,
            "--idle",
            "2s",
            "--value-file",
            &file.path().display().to_string(),
        ]),
    )
    .await;
    assert!(replayed.status.success(), "{replayed:?}");
    let op = gw.finished(&train_id).await;
    assert_eq!(op["status"], "completed", "the replayed command ran: {op}");

    // Bad input is named before anything is sent.
    let bad = cli(
        &broker,
        words(&["commands", "send", "load", "MSFT", "7x", "--topic", &topic]),
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("timeframe"),
        "{bad:?}"
    );
    let bad = cli(
        &broker,
        words(&["dlq", "show", "nowhere", "--topic", &topic]),
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("PARTITION/OFFSET"),
        "{bad:?}"
    );
    gw.stop().await;
}

/// A child process killed (and reaped) when dropped, a failing test included.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A redis-server of the test's own on a free port (so it can be stopped mid-run);
/// `None` with a printed reason without `redis-server`, a failure under
/// `CI_REQUIRE_REDIS`.
fn own_redis(port: u16) -> Option<Killed> {
    let bin = std::env::var("HOSTBRIDGE_REDIS_BIN").unwrap_or_else(|_| "redis-server".into());
    let child = std::process::Command::new(&bin)
        .args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
        ])
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var("CI_REQUIRE_REDIS").is_err(),
                "CI_REQUIRE_REDIS is set but `{bin}` does not start: {e}"
            );
            eprintln!("skipping: `{bin}` does not start ({e})");
            return None;
        }
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Killed(child));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server did not listen on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_closed_visibly_in_health_and_metrics_and_recovers() {
    let Some(broker) = test_broker() else { return };
    let port = free_port();
    let Some(redis) = own_redis(port) else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let topic = new_topic(&config, "redis").await;
    let dirs = Dirs::sample().with_ib().await;
    let mut settings = commands(&config, &topic, &unique("g"));
    settings.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    settings.on_store_failure = event_stream::stream::StoreFailure::Closed;
    let gw = Served::start(settings_with(&dirs, settings)).await;

    let first = load_command("MSFT");
    produce(&config, &topic, vec![encode(first.clone())]).await;
    gw.finished(&first.id.to_string()).await;

    drop(redis);
    let waiting = load_command("IBM");
    let waiting_id = waiting.id.to_string();
    produce(&config, &topic, vec![encode(waiting)]).await;
    // Fail-closed: the command waits, uncommitted, and the gateway says why.
    let deadline = tokio::time::Instant::now() + WAIT;
    let health = loop {
        let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base())).await;
        if health["events"]["commands"]["dedup"]["store_errors"].as_u64() >= Some(2) {
            break health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no store error seen: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dedup = &health["events"]["commands"]["dedup"];
    assert_eq!(dedup["store"], "redis", "{health}");
    assert_eq!(dedup["store_up"], false, "{health}");
    assert_eq!(dedup["on_store_failure"], "closed");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(gw.gateway.operations().get(&waiting_id).is_none());
    let metrics = crate::support::text(&format!("{}/metrics", gw.base())).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("stream_dedup_store_errors_total") && l.contains("redis")),
        "{metrics}"
    );

    // Redis back on the same port: the command goes through, health recovers.
    let _redis = own_redis(port).expect("redis again");
    gw.finished(&waiting_id).await;
    let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base())).await;
    assert_eq!(
        health["events"]["commands"]["dedup"]["store_up"], true,
        "{health}"
    );
    assert_eq!(health["status"], "healthy", "{health}");
    gw.stop().await;
}
