//! The Socket.IO sink, read by real python-socketio clients: everything for a client
//! that asked for nothing, one operation's events for a client subscribed to it, and
//! refusal without the API key.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use api_gateway::GatewayConfig;
use api_gateway::events::EventSettings;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{Dirs, gateway, http, post, python_has, repo, strategy_yaml};

/// One python-socketio client process; killed when dropped.
struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line it printed so far.
    seen: Vec<Value>,
}

impl Client {
    async fn start(base: &str, extra: &[&str]) -> Self {
        let script = repo().join("api-gateway/tests/python/socketio_client.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--url", base, "--timeout", "120"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        // A thread reads the pipe, so the test's runtime never blocks on it.
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line, as JSON.
    async fn next(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.recv())
            .await
            .expect("the client prints within 60 s")?;
        let value: Value = serde_json::from_str(&line).expect("a JSON line");
        self.seen.push(value.clone());
        Some(value)
    }

    /// Reads until a line satisfies `done`; returns it.
    async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Value {
        while let Some(line) = self.next().await {
            if done(&line) {
                return line;
            }
        }
        panic!("the client ended first: {:?}", self.seen);
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("stdin");
        self.stdin.flush().expect("flush");
    }

    /// Waits for the process to end; its exit code.
    async fn exit_code(mut self) -> Option<i32> {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the client did not end");
    }

    /// The events it received, in order.
    fn events(&self) -> Vec<(String, Value)> {
        self.seen
            .iter()
            .filter_map(|line| Some((line["event"].as_str()?.to_owned(), line["data"].clone())))
            .collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_completion_of(line: &Value, id: &str) -> bool {
    line["event"] == "operation.completed" && line["data"]["subject"] == id
}

fn socketio_settings(dirs: &Dirs, config: GatewayConfig) -> api_gateway::GatewaySettings {
    api_gateway::GatewaySettings {
        events: EventSettings::default(),
        ..dirs.settings(config)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_everything_and_a_subscriber_only_its_operation() {
    if !python_has("socketio") {
        return;
    }
    let dirs = Dirs::sample();
    let (gw, _) = gateway(socketio_settings(&dirs, GatewayConfig::default())).await;
    let mut everything = Client::start(&gw.base, &[]).await;
    let mut subscriber = Client::start(&gw.base, &["--websocket-only"]).await;
    everything.until(|l| l["connected"] == true).await;
    subscriber.until(|l| l["connected"] == true).await;

    let (status, answer) = post(
        &http(),
        &format!("{}/api/v1/trainings/start", gw.base),
        &json!({"strategy_yaml": strategy_yaml(20)}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let training = answer["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    subscriber.send(&format!("subscribe {training}"));
    let ack = subscriber.until(|l| l.get("ack").is_some()).await;
    assert_eq!(ack["ack"], json!({"ok": true, "subscribed": [training]}));
    let acked_at = subscriber.seen.len();

    // A second operation the subscriber did not ask for.
    let (status, answer) = post(
        &http(),
        &format!("{}/api/v1/data/load", gw.base),
        &json!({"symbol": "MSFT", "timeframe": "1d", "mode": "local"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let load = answer["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();

    subscriber.until(|l| is_completion_of(l, &training)).await;
    everything.until(|l| is_completion_of(l, &training)).await;
    if !everything.seen.iter().any(|l| is_completion_of(l, &load)) {
        everything.until(|l| is_completion_of(l, &load)).await;
    }

    // The subscriber: after its ack, the training's events and nothing else.
    let after: Vec<&Value> = subscriber.seen[acked_at..]
        .iter()
        .filter(|l| l.get("event").is_some())
        .collect();
    assert!(!after.is_empty());
    for line in &after {
        assert_eq!(line["data"]["subject"], training.as_str(), "{line}");
    }
    assert!(
        after.iter().any(|l| l["event"] == "training.epoch"),
        "epochs reach the room"
    );

    // Everything: both operations, each in order, event name = envelope type.
    let events = everything.events();
    for (name, env) in &events {
        assert_eq!(&env["type"], name.as_str());
        assert_eq!(env["source"], "api-gateway");
    }
    for id in [&training, &load] {
        let mine: Vec<&str> = events
            .iter()
            .filter(|(name, env)| env["subject"] == id.as_str() && name.starts_with("operation."))
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(mine.first(), Some(&"operation.started"), "{mine:?}");
        assert_eq!(mine.last(), Some(&"operation.completed"), "{mine:?}");
    }
    let epochs: Vec<u64> = events
        .iter()
        .filter(|(name, env)| name == "training.epoch" && env["subject"] == training.as_str())
        .filter_map(|(_, env)| env["data"]["epoch"].as_u64())
        .collect();
    assert!(!epochs.is_empty(), "training.epoch events");
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");

    // Health counts both clients.
    let (_, health) = crate::support::get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    let sink = &health["events"]["sinks"]["socketio"];
    assert_eq!(sink["clients"], 2, "{health}");
    assert_eq!(sink["connected"], true);
    assert_eq!(health["events"]["mode"], "socketio");

    subscriber.send("unsubscribe");
    let ack = subscriber.until(|l| l.get("ack").is_some()).await;
    assert_eq!(ack["ack"], json!({"ok": true, "subscribed": []}));
    subscriber.send("subscribe");
    let ack = subscriber.until(|l| l.get("ack").is_some()).await;
    assert_eq!(ack["ack"]["ok"], false, "{ack}");
    assert_eq!(ack["ack"]["error"]["field"], "operation_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_key_a_client_without_it_is_refused() {
    if !python_has("socketio") {
        return;
    }
    let dirs = Dirs::empty();
    let config = GatewayConfig {
        api_key: Some("sesame".to_owned()),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(socketio_settings(&dirs, config)).await;

    let mut anonymous = Client::start(&gw.base, &[]).await;
    let refused = anonymous.until(|l| l.get("refused").is_some()).await;
    assert!(
        refused["refused"]
            .as_str()
            .is_some_and(|m| m.contains("API key")),
        "{refused}"
    );
    let mut wrong = Client::start(&gw.base, &["--api-key", "guess"]).await;
    let refused = wrong.until(|l| l.get("refused").is_some()).await;
    assert!(
        refused["refused"]
            .as_str()
            .is_some_and(|m| m.contains("wrong")),
        "{refused}"
    );
    assert_eq!(
        anonymous.exit_code().await,
        Some(3),
        "refused clients exit 3"
    );

    for args in [["--api-key", "sesame"], ["--auth-key", "sesame"]] {
        let mut client = Client::start(&gw.base, &args).await;
        client.until(|l| l["connected"] == true).await;
    }
    let (_, health) = crate::support::get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(
        health["events"]["sinks"]["socketio"]["refused"], 2,
        "{health}"
    );
}
