//! The `data-host` binary itself: starts on the bundled sample data, answers, passes
//! its own healthcheck, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::sample_dir;

const BIN: &str = env!("CARGO_BIN_EXE_data-host");

/// Kills the child if a test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `data-host serve` on port 0 and reads its address from the JSON log.
fn start_binary() -> (Guard, String) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--source",
            "local",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(sample_dir())
        .env("HOSTBRIDGE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn data-host");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("data-host exited before listening")
            .expect("read log");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["addr"]
                .as_str()
                .expect("addr field")
                .to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Guard(child), format!("http://{addr}"))
}

fn healthcheck(url: &str) -> bool {
    Command::new(BIN)
        .args(["healthcheck", "--url", url])
        .status()
        .expect("run healthcheck")
        .success()
}

#[test]
fn serves_sample_data_passes_healthcheck_and_stops_on_sigterm() {
    let (mut guard, base) = start_binary();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let answer: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/data/historical"))
            .json(&serde_json::json!({ "symbol": "FB", "timeframe": "1d", "start": "2012-05-18", "end": "2012-06-01" }))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json")
    });
    assert_eq!(
        (answer["success"].as_bool(), answer["rows"].as_u64()),
        (Some(true), Some(9)),
        "{answer}"
    );
    assert!(healthcheck(&base));

    let pid = guard.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = guard.0.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.expect("data-host exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status}");
    assert!(
        !healthcheck(&base),
        "healthcheck fails once the service is gone"
    );
}
