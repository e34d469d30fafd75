//! `hostbridge topics`: the real binary applies the catalogue on the tansu broker
//! (names prefixed per test: the broker is shared), reports a topic that differs
//! without changing it, and names a broker that does not answer. Lag figures are
//! tested on rdkafka's MockCluster in event-stream (tansu's end offsets are wrong).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use event_stream::kafka::{KafkaAdmin, KafkaConfig, TopicCreation};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hostbridge");

/// `hostbridge topics ARGS… --bootstrap-servers BROKER` with catalogue names under
/// `prefix`.
fn topics(broker: &str, prefix: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(BIN)
        .arg("topics")
        .args(args)
        .args(["--bootstrap-servers", broker])
        .args(["--events-topic", &format!("{prefix}.events")])
        .args(["--commands-topic", &format!("{prefix}.commands")])
        .args(["--market-data-topic", &format!("{prefix}.market-data")])
        .env_remove("KAFKA_EVENTS_TOPIC")
        .env_remove("KAFKA_COMMANDS_TOPIC")
        .output()
        .expect("hostbridge runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON on stdout ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_owned(),
                t["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

fn prefix() -> String {
    format!("tp-{}", uuid::Uuid::new_v4().simple())
}

#[test]
fn setup_twice_creates_then_finds_everything_ok() {
    let Some(broker) = crate::support::test_broker() else {
        return;
    };
    let p = prefix();
    let names = [
        format!("{p}.events"),
        format!("{p}.commands"),
        format!("{p}.commands.dlq"),
        format!("{p}.market-data"),
    ];
    let first = topics(&broker, &p, &["setup", "--json"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let report = json_of(&first);
    let created: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), "created".to_owned()))
        .collect();
    assert_eq!(statuses(&report), created);
    assert_eq!(report["topics"][0]["partitions"], 6);
    assert_eq!(report["topics"][3]["retention_ms"], 86_400_000u64);

    let second = topics(&broker, &p, &["setup", "--json"]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let ok: Vec<(String, String)> = names.iter().map(|n| (n.clone(), "ok".to_owned())).collect();
    assert_eq!(
        statuses(&json_of(&second)),
        ok,
        "the second run changes nothing"
    );

    let listed = json_of(&topics(&broker, &p, &["list", "--json"]));
    let dlq = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["name"] == names[2].as_str())
        .expect("the dlq is listed");
    assert_eq!(dlq["partitions"], 1);
    assert_eq!(dlq["catalogue"]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_other_partitions_is_reported_and_left_alone() {
    let Some(broker) = crate::support::test_broker() else {
        return;
    };
    let p = prefix();
    let events = format!("{p}.events");
    let admin = KafkaAdmin::new(&KafkaConfig::new(broker.as_str()))
        .expect("admin")
        .with_timeout(Duration::from_secs(30));
    let created = admin
        .create_topic(&events, 2, 1, &[("retention.ms", "604800000")])
        .await
        .expect("pre-create");
    assert_eq!(created, TopicCreation::Created);

    let out = topics(&broker, &p, &["setup"]);
    assert_eq!(out.status.code(), Some(3), "differs → exit 3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("DIFFERS: partitions 2 (catalogue: 6)"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{events} (partitions 2 (catalogue: 6))")),
        "names the topic: {stderr}"
    );
    // The rest of the catalogue was still created.
    assert!(stdout.contains(&format!("{p}.commands.dlq")), "{stdout}");

    let info = admin
        .describe_topic(&events)
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(info.partitions, 2, "setup never changes a topic");

    let out = topics(&broker, &p, &["describe", &events]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("partitions   2\n"), "{text}");
    assert!(
        text.contains("catalogue    DIFFERS: partitions 2 (catalogue: 6)"),
        "{text}"
    );

    let out = topics(&broker, &p, &["list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{events} ")))
        .unwrap_or_else(|| panic!("{events} listed: {text}"));
    assert!(row.contains("DIFFERS"), "{row}");
}

#[test]
fn describe_of_an_unknown_topic_fails_naming_it() {
    let Some(broker) = crate::support::test_broker() else {
        return;
    };
    let p = prefix();
    let out = topics(&broker, &p, &["describe", &format!("{p}.nothing")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("topic {p}.nothing does not exist on {broker}")),
        "{stderr}"
    );
}

#[test]
fn lag_of_a_group_without_commits_is_empty() {
    let Some(broker) = crate::support::test_broker() else {
        return;
    };
    let p = prefix();
    let out = topics(&broker, &p, &["lag", &format!("{p}-group"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lag = json_of(&out);
    assert_eq!(lag["total_lag"], 0);
    assert_eq!(lag["partitions"], serde_json::json!([]));
}

#[test]
fn a_broker_that_does_not_answer_is_named_within_the_timeout() {
    let began = Instant::now();
    let out = topics("127.0.0.1:9", "unused", &["list", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach Kafka at 127.0.0.1:9"),
        "{stderr}"
    );
    // Bounded by --timeout, not by librdkafka's own retries (the outer `timeout` would
    // end a hang at 120 s).
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "{:?}",
        began.elapsed()
    );
}
