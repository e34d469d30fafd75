//! Test peers written by others: python-socketio and confluent-kafka clients run as
//! processes, and the Kafka-protocol broker `.ci/run` starts. Without a peer a test is
//! skipped with a printed reason; CI sets `CI_REQUIRE_KAFKA` / `CI_REQUIRE_PYTHON_PEERS`
//! so a broken setup fails instead of passing quietly.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::bins::workspace_root;

/// The test broker's address (`HOSTBRIDGE_TEST_KAFKA`), or `None` with a printed reason.
pub fn kafka_broker() -> Option<String> {
    match std::env::var("HOSTBRIDGE_TEST_KAFKA") {
        Ok(broker) if !broker.trim().is_empty() => Some(broker.trim().to_owned()),
        _ => {
            assert!(
                std::env::var("CI_REQUIRE_KAFKA").is_err(),
                "CI_REQUIRE_KAFKA is set but HOSTBRIDGE_TEST_KAFKA is not"
            );
            eprintln!("skipping: HOSTBRIDGE_TEST_KAFKA not set (start tansu, see .ci/run)");
            None
        }
    }
}

/// Whether python3 can import `module`, or `false` with a printed reason.
pub fn python_has(module: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("CI_REQUIRE_PYTHON_PEERS").is_err(),
            "CI_REQUIRE_PYTHON_PEERS is set but python3 cannot import {module}"
        );
        eprintln!("skipping: python3 cannot import {module} (see .ci/run)");
    }
    found
}

/// The python-socketio client script the gateway's tests drive.
pub fn socketio_client_script() -> PathBuf {
    workspace_root().join("api-gateway/tests/python/socketio_client.py")
}

/// The confluent-kafka script of event-stream's interop tests.
pub fn kafka_script() -> PathBuf {
    workspace_root().join("event-stream/tests/python/kafka_interop.py")
}

/// A Python peer whose stdout lines (JSON objects) are collected as they come; killed
/// when dropped.
#[derive(Debug)]
pub struct PythonPeer {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl PythonPeer {
    /// Runs `python3 script args…`.
    pub fn start(script: &PathBuf, args: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(value);
            }
        });
        Self { child, lines }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Polls (100 ms apart, at most `polls` times) until `done` accepts the lines so far.
    pub async fn wait_for(&self, polls: u32, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..polls {
            let lines = self.lines();
            if done(&lines) {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the python peer never got there: {:?}", self.lines());
    }

    /// Waits for the exit (bounded); its code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        for _ in 0..1200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the python peer never ended: {:?}", self.lines());
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
