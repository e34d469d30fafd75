//! `hostbridge events archive` as a process against the tansu broker: killed with
//! SIGKILL mid-stream and started again, the day files hold every event exactly once.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use event_stream::kafka::{KafkaAdmin, KafkaConfig, KafkaWriter, ProducerSettings};
use event_stream::stream::producer::encode;
use event_stream::{AsyncWriter, Envelope};
use serde_json::json;

use crate::cli_events::BIN;
use crate::support::test_broker;

fn archiver(broker: &str, topic: &str, group: &str, dir: &Path, idle_exit: bool) -> Child {
    let mut command = Command::new(BIN);
    command
        .args([
            "events", "archive", "--topic", topic, "--group", group, "--to",
        ])
        .arg(dir)
        .env("KAFKA_BOOTSTRAP_SERVERS", broker)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if idle_exit {
        command.args(["--idle-exit", "3s"]);
    }
    command.spawn().expect("hostbridge starts")
}

/// Every archived line's id, over all day files.
fn archived(dir: &Path) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        ids.extend(
            text.lines()
                .filter_map(|l| Envelope::from_json(l.as_bytes()).ok())
                .map(|e| e.id),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_and_restarted_the_archive_holds_every_event_once() {
    let Some(broker) = test_broker() else { return };
    let config = KafkaConfig::new(broker.clone());
    let topic = format!("gw-archive-{}", uuid::Uuid::new_v4().simple());
    KafkaAdmin::new(&config)
        .expect("admin")
        .create_topic(&topic, 3, 1, &[])
        .await
        .expect("topic");
    let group = format!("archive-{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().expect("tempdir");

    // 600 events over two days, written while the first archiver runs.
    let mut events = Vec::new();
    for i in 0..600 {
        let mut e = Envelope::new("operation.progress", "test", json!({"i": i}))
            .expect("envelope")
            .with_subject(format!("op-{}", i % 7));
        let day = if i % 2 == 0 {
            "2026-12-01"
        } else {
            "2026-12-02"
        };
        e.timestamp = format!("{day}T10:00:00.000Z").parse().expect("time");
        events.push(e);
    }
    let mut first = archiver(&broker, &topic, &group, dir.path(), false);
    let mut writer = KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("w");
    for e in &events {
        AsyncWriter::write(&mut writer, encode(e.clone()))
            .await
            .expect("enqueue");
    }
    AsyncWriter::close(&mut writer).await.expect("delivered");

    // Killed once some (not all) are on disk: whatever was handled but not committed
    // is read again by the next run.
    let mut polls = 0;
    while archived(dir.path()).len() < 150 {
        polls += 1;
        assert!(polls < 1800, "the archiver wrote nothing in 90 s");
        assert!(
            first.try_wait().expect("status").is_none(),
            "the archiver died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let before = archived(dir.path()).len();
    assert!(before < 600, "killed too late to test anything ({before})");

    let second = archiver(&broker, &topic, &group, dir.path(), true);
    let output = tokio::task::spawn_blocking(move || second.wait_with_output())
        .await
        .expect("task")
        .expect("the second archiver ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let ids = archived(dir.path());
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a line written twice");
    let expected: HashSet<_> = events.iter().map(|e| &e.id).collect();
    assert_eq!(unique, expected, "every event, none missing");
    // Each day has its own file.
    for day in ["2026-12-01", "2026-12-02"] {
        let lines = std::fs::read_to_string(dir.path().join(format!("{day}.ndjson")))
            .expect("day file")
            .lines()
            .count();
        assert_eq!(lines, 300, "{day}");
    }
    println!("killed at {before} of 600; the restart said: {stderr}");
}
