//! `hostbridge events tail`: the real binary against a gateway on 127.0.0.1:0, printing
//! what the gateway's SSE stream carries.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use api_gateway::GatewayConfig;
use serde_json::{Value, json};

use data_host::sim::SimHandle;

use crate::support::{Dirs, Running, gateway, http, post, simulator, wait_terminal};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_hostbridge");

/// Longest wait for one line of the tail.
const LINE_WAIT: Duration = Duration::from_secs(30);

/// `hostbridge --url BASE ARGS…` with stdout read line by line on a thread.
fn spawn(base: &str, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("--url")
        .arg(base)
        .args(args)
        .env_remove("HOSTBRIDGE_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hostbridge starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Sends SIGINT (what Ctrl-C sends) and returns the exit status and stderr.
fn interrupt(mut child: Child) -> (std::process::ExitStatus, String) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("exits");
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    (status, stderr)
}

pub(crate) async fn start(base: &str, body: Value) -> String {
    let (status, answer) = post(&http(), &format!("{base}/api/v1/data/load"), &body).await;
    assert_eq!(status, 202, "{answer}");
    answer["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn local_load() -> Value {
    json!({"symbol": "MSFT", "timeframe": "1d", "mode": "local"})
}

/// Two 30-day segments from the simulator: a load that runs long enough to report
/// progress.
pub(crate) fn ib_load() -> Value {
    json!({"symbol": "AAPL", "timeframe": "1h", "mode": "full",
           "start_date": "2025-01-01T00:00:00Z", "end_date": "2025-03-01T00:00:00Z"})
}

/// A gateway on an empty store whose IB provider is the simulator answering after
/// `delay`; the simulator and the directories live as long as it.
pub(crate) struct SimGateway {
    pub(crate) gw: Running,
    _sim: SimHandle,
    _dirs: Dirs,
}

pub(crate) async fn sim_gateway(delay: Duration, client_id: i32) -> SimGateway {
    let sim = simulator(delay).await;
    let dirs = Dirs::empty();
    let mut settings = dirs.settings(GatewayConfig::default());
    settings.ib = data_host::ib::IbConfig::new(sim.addr(), client_id);
    let (gw, _) = gateway(settings).await;
    SimGateway {
        gw,
        _sim: sim,
        _dirs: dirs,
    }
}

/// Runs quick loads until the tail prints something: from then on it is subscribed.
async fn until_subscribed(base: &str, lines: &Receiver<String>) {
    for _ in 0..50 {
        let id = start(base, local_load()).await;
        wait_terminal(&http(), base, &id).await;
        match lines.recv_timeout(Duration::from_millis(500)) {
            Ok(_) => {
                while lines.recv_timeout(Duration::from_millis(200)).is_ok() {}
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("the tail exited"),
        }
    }
    panic!("the tail never printed an event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_json_prints_a_loads_envelopes_in_order_and_ends_on_ctrl_c() {
    let SimGateway { gw, .. } = &sim_gateway(Duration::from_millis(300), 21).await;
    let (child, lines) = spawn(
        &gw.base,
        &["events", "tail", "--json", "--type", "operation."],
    );
    until_subscribed(&gw.base, &lines).await;

    let id = start(&gw.base, ib_load()).await;
    let mut types = Vec::new();
    loop {
        let line = lines.recv_timeout(LINE_WAIT).expect("an event line");
        let env: Value = serde_json::from_str(&line).expect("one envelope per line");
        let event_type = env["type"].as_str().expect("type").to_owned();
        assert!(event_type.starts_with("operation."), "filtered: {line}");
        if env["subject"] != id.as_str() {
            continue;
        }
        assert_eq!(env["source"], "api-gateway");
        types.push(event_type.clone());
        if event_type == "operation.completed" {
            break;
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("operation.started"));
    assert!(
        types.iter().any(|t| t == "operation.progress"),
        "progress in between: {types:?}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("operation.completed")
    );

    let (status, stderr) = interrupt(child);
    assert!(
        status.success(),
        "Ctrl-C ends it cleanly: {status:?} {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_prints_one_readable_line_per_event() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let (child, lines) = spawn(&gw.base, &["events", "tail"]);
    until_subscribed(&gw.base, &lines).await;
    let id = start(&gw.base, local_load()).await;
    let line = loop {
        let line = lines.recv_timeout(LINE_WAIT).expect("an event line");
        if line.contains(&id) && line.contains("operation.completed") {
            break line;
        }
    };
    assert!(line.contains(" data_load completed"), "{line}");
    assert!(
        line.starts_with("20") && line.contains('Z'),
        "timestamp first: {line}"
    );
    interrupt(child);
}

#[tokio::test]
async fn events_tail_names_a_gateway_that_does_not_answer() {
    let out = Command::new(BIN)
        .args(["--url", "http://127.0.0.1:9", "events", "tail"])
        .output()
        .expect("hostbridge runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http://127.0.0.1:9"), "{stderr}");
}
