//! Helpers of the Kafka integration tests: finding the test broker (or skipping, except
//! in CI), unique names, bounded waits on a reader, and the Python interop script.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use event_stream::kafka::{ConsumerSettings, KafkaAdmin, KafkaConfig, TopicCreation};
use event_stream::{AsyncReader, RawMessage};
use futures::StreamExt;

/// The longest any single wait in these tests may take before the test fails: covers a
/// group join on the tansu broker (one 6 s session timeout) several times over.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The tansu broker completes a group join only after a session timeout: keep it short.
pub(crate) const SESSION_TIMEOUT_MS: u32 = 6_000;

fn required() -> bool {
    std::env::var("CI_REQUIRE_KAFKA").is_ok_and(|v| v == "1")
}

/// Skips (returns `None`) when the environment lacks what a test needs, unless CI
/// requires it, where a skip would hide a broken setup.
fn skip<T>(reason: &str) -> Option<T> {
    assert!(!required(), "CI_REQUIRE_KAFKA=1 but {reason}");
    println!("skipping: {reason}");
    None
}

/// The test broker's address from `HOSTBRIDGE_TEST_KAFKA`.
pub(crate) fn broker() -> Option<String> {
    match std::env::var("HOSTBRIDGE_TEST_KAFKA") {
        Ok(address) if !address.trim().is_empty() => Some(address.trim().to_owned()),
        _ => skip("HOSTBRIDGE_TEST_KAFKA not set (start the tansu broker, see .ci/run)"),
    }
}

/// `Some(())` when `python3` can import confluent_kafka.
pub(crate) fn python_kafka() -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(())
    } else {
        skip("python3 cannot import confluent_kafka (pip install confluent-kafka)")
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub(crate) fn unique(label: &str) -> String {
    format!("es-{label}-{}", uuid::Uuid::new_v4().simple())
}

pub(crate) fn consumer(group: &str) -> ConsumerSettings {
    ConsumerSettings::new(group).with_session_timeout_ms(SESSION_TIMEOUT_MS)
}

/// Creates a fresh topic with `partitions` partitions.
pub(crate) async fn topic(config: &KafkaConfig, label: &str, partitions: i32) -> String {
    let name = unique(label);
    let admin = KafkaAdmin::new(config).expect("admin client");
    let created = tokio::time::timeout(WAIT, admin.create_topic(&name, partitions, 1, &[]))
        .await
        .expect("create_topic within the wait")
        .expect("create_topic");
    assert_eq!(created, TopicCreation::Created);
    name
}

/// The next message of `reader`, failing the test if none arrives in time.
pub(crate) async fn next<R: AsyncReader<Bytes, Bytes>>(reader: &mut R) -> RawMessage {
    tokio::time::timeout(WAIT, reader.next())
        .await
        .expect("a message within the wait")
        .expect("the stream has not ended")
        .expect("a message, not an error")
}

/// `count` messages of `reader`, each acknowledged.
pub(crate) async fn read_acking<R: AsyncReader<Bytes, Bytes>>(
    reader: &mut R,
    count: usize,
) -> Vec<RawMessage> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let message = next(reader).await;
        let position = message
            .position
            .clone()
            .expect("kafka messages have a position");
        reader.ack(&position).expect("ack");
        out.push(message);
    }
    out
}

/// Waits for the stream to end (after its token was cancelled).
pub(crate) async fn drain_to_end<R: AsyncReader<Bytes, Bytes>>(reader: &mut R) {
    let rest = tokio::time::timeout(WAIT, reader.next())
        .await
        .expect("the stream ends promptly after cancel");
    assert!(rest.is_none(), "no item after cancel: {rest:?}");
}

pub(crate) fn text(bytes: &Bytes) -> &str {
    std::str::from_utf8(bytes).expect("utf-8 payload")
}

/// Runs the interop script with `args`, feeding `stdin`, on the blocking pool.
pub(crate) async fn python(args: Vec<String>, stdin: Vec<u8>) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_interop.py");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(&stdin).expect("write the script's stdin");
        }
        child.wait_with_output().expect("python3 runs")
    })
    .await
    .expect("python task")
}
