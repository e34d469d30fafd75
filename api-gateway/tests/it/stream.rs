//! `hostbridge stream`: the real binary replays the bundled bars into an NDJSON file
//! and into Kafka (when a broker is given), and tails them back in order.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hostbridge");

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn hostbridge(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("DATA_DIR", data_dir())
        .output()
        .expect("hostbridge runs")
}

/// The `data.timestamp` of each tailed line, in order.
fn bar_times(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let json = line.splitn(3, ' ').nth(2).expect("position key value");
            let env: serde_json::Value = serde_json::from_str(json).expect("an envelope");
            assert_eq!(env["type"], "market.bar");
            assert_eq!(env["subject"], "AAPL");
            env["data"]["timestamp"]
                .as_str()
                .expect("bar time")
                .to_owned()
        })
        .collect()
}

/// The tail printed every stored AAPL 1m bar, in the store's order.
fn assert_all_bars_in_order(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times = bar_times(&out.stdout);
    assert_eq!(times.len(), 2382);
    assert_eq!(times[..5], stored_times(5)[..]);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "in bar order");
}

fn stored_times(limit: usize) -> Vec<String> {
    std::fs::read_to_string(data_dir().join("AAPL_1m.csv"))
        .expect("sample bars")
        .lines()
        .skip(1)
        .take(limit)
        .map(|l| l.split(',').next().expect("time").to_owned())
        .collect()
}

#[test]
fn replay_to_a_file_and_tail_it_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("md.ndjson");
    let file = file.to_str().expect("utf8 path");
    let out = hostbridge(&[
        "stream", "replay", "AAPL", "1m", "--to", "file", "--file", file,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("replayed 2382 of 2382 bars"));
    let out = hostbridge(&["stream", "tail", "--from", "file", "--file", file]);
    assert_all_bars_in_order(&out);
}

#[test]
fn bad_flags_are_named() {
    for (args, expect) in [
        (vec!["stream", "replay", "AAPL", "7x"], "TIMEFRAME"),
        (vec!["stream", "replay", "../etc", "1d"], "SYMBOL"),
        (
            vec!["stream", "replay", "AAPL", "1d", "--start", "yesterday"],
            "--start",
        ),
        (
            vec!["stream", "replay", "AAPL", "1d", "--to", "kafka"],
            "KAFKA_BOOTSTRAP_SERVERS",
        ),
        (vec!["stream", "replay", "AAPL", "1d", "--speed=0"], "speed"),
        (
            vec![
                "stream",
                "tail",
                "--from",
                "file",
                "--file",
                "/nonexistent/x",
            ],
            "/nonexistent/x",
        ),
    ] {
        let out = hostbridge(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn replay_to_kafka_and_tail_it_back_in_order() {
    let Some(broker) = crate::support::test_broker() else {
        return;
    };
    let topic = format!("md-test-{}", uuid::Uuid::new_v4().simple());
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", &broker)
            .env("DATA_DIR", data_dir())
            .output()
            .expect("hostbridge runs")
    };
    let out = run(&[
        "stream", "replay", "AAPL", "1m", "--to", "kafka", "--topic", &topic,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "stream", "tail", "--from", "kafka", "--topic", &topic, "--limit", "2382",
    ]);
    assert_all_bars_in_order(&out);
}
