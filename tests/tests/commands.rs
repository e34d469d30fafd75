//! The commands consumer of the real `api-gateway` binary against the tansu broker:
//! killed with SIGKILL while a batch of commands is being handled, then started again on
//! the same state, every command of the batch has exactly one operation — none missing
//! (its offset was not committed, so it is read again), none doubled (the operation
//! carries the command's id, so a command read again starts nothing).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use event_stream::kafka::{KafkaAdmin, KafkaConfig, KafkaWriter, ProducerSettings};
use event_stream::stream::producer::encode;
use event_stream::{AsyncWriter, Envelope};
use hostbridge_tests::peers::kafka_broker;
use hostbridge_tests::process::{Service, sample_data};
use hostbridge_tests::stack::{gateway, get};
use serde_json::{Value, json};

const BATCH: usize = 60;

/// The data_load operations the gateway holds.
async fn load_operations(gw: &Service) -> Vec<Value> {
    let (status, body) = get(&format!(
        "{}/api/v1/operations?operation_type=data_load&limit=1000",
        gw.url()
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_batch_ends_with_one_operation_per_command() {
    let Some(broker) = kafka_broker() else { return };
    let config = KafkaConfig::new(broker.clone());
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let topic = format!("e2e-commands-{unique}");
    KafkaAdmin::new(&config)
        .expect("admin")
        .create_topic(&topic, 3, 1, &[])
        .await
        .expect("topic");
    let group = format!("e2e-gateway-{unique}");
    let models = tempfile::tempdir().expect("tempdir");
    let env = [
        ("KAFKA_BOOTSTRAP_SERVERS", broker.as_str()),
        ("KAFKA_COMMANDS_TOPIC", topic.as_str()),
        ("KAFKA_CONSUMER_GROUP", group.as_str()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("COMMANDS_CONCURRENCY", "4"),
        ("EVENT_MODE", "off"),
    ];
    let store = sample_data();

    // Local loads of distinct series: each is quick and none waits for another.
    let commands: Vec<Envelope> = (0..BATCH)
        .map(|i| {
            Envelope::new(
                "data.load.requested",
                "e2e",
                json!({"symbol": format!("E2E{i}"), "timeframe": "1d", "mode": "local"}),
            )
            .expect("envelope")
            .with_correlation_id(Some(format!("batch-{i}")))
        })
        .collect();
    let mut gw = gateway(&store, models.path(), None, &env);
    let mut writer = KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("w");
    for c in &commands {
        AsyncWriter::write(&mut writer, encode(c.clone()))
            .await
            .expect("enqueue");
    }
    AsyncWriter::close(&mut writer).await.expect("delivered");

    // Killed once handling is under way, before the batch is through.
    let started = Instant::now();
    let seen = loop {
        let n = load_operations(&gw).await.len();
        if n >= 3 {
            break n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no command handled in 90 s:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    gw.kill();
    assert!(
        seen < BATCH,
        "the batch was through before the kill ({seen})"
    );

    let gw = gateway(&store, models.path(), None, &env);
    let started = Instant::now();
    let operations = loop {
        let ops = load_operations(&gw).await;
        if ops.len() >= BATCH {
            break ops;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} of {BATCH} operations after the restart:\n{}",
            ops.len(),
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let the restarted consumer finish what it re-reads: nothing more may appear.
    let (_, health) = get(&format!("{}/api/v1/health", gw.url())).await;
    let received = health["events"]["commands"]["consumer"]["received"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let operations_after = load_operations(&gw).await;
    assert_eq!(operations_after.len(), operations.len());

    let ids: Vec<&str> = operations
        .iter()
        .filter_map(|op| op["operation_id"].as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an operation twice: {ids:?}");
    let expected: HashSet<String> = commands.iter().map(|c| c.id.to_string()).collect();
    let got: HashSet<String> = unique.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(got, expected, "one operation per command, none missing");
    for op in &operations {
        let id = op["operation_id"].as_str().unwrap_or_default();
        let i = commands
            .iter()
            .position(|c| c.id.to_string() == id)
            .expect("a command's id");
        let (_, full) = get(&format!("{}/api/v1/operations/{id}", gw.url())).await;
        assert_eq!(
            full["data"]["metadata"]["correlation_id"],
            format!("batch-{i}"),
            "{full}"
        );
    }
    println!(
        "killed after {seen} of {BATCH} operations; the restarted consumer read {received} command(s)"
    );
}
