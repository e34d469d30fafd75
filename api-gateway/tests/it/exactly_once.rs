//! The rule against double work, end to end: a training start is sent to another
//! training-host only when it provably never took effect on the first. A TCP proxy in
//! front of a real training-host forwards the start and drops its answer, then (in one
//! case) stops accepting connections, as an instance that dies right after starting.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use api_gateway::{GatewayConfig, ServiceMode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::{Dirs, Running, gateway, get, http, strategy_yaml, wait_terminal};
use crate::training::{start_training, training_host};

/// What the proxy does with the next training start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward everything both ways.
    PassThrough,
    /// Forward the start, wait for the host's answer, drop it (close the client's
    /// connection), then pass through again.
    DropStartAnswer,
    /// As `DropStartAnswer`, then stop accepting and cut every connection: the
    /// instance is unreachable from then on.
    DropStartAnswerThenDie,
    /// Read the start and hang up without forwarding it, then die as above: from the
    /// gateway it looks exactly like `DropStartAnswerThenDie`, but nothing started.
    SwallowStartThenDie,
}

/// A TCP proxy to `upstream` on a fixed loopback address.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Cancels the accept loop and every connection (the instance "dies").
    alive: Arc<Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Self {
            addr: listener.local_addr().expect("addr"),
            upstream,
            mode: Arc::new(Mutex::new(Mode::PassThrough)),
            alive: Arc::new(Mutex::new(CancellationToken::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Listens again on the same address, passing everything through.
    async fn revive(&self) {
        self.set(Mode::PassThrough);
        *self.alive.lock().expect("alive") = CancellationToken::new();
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let alive = self.alive.lock().expect("alive").clone();
        let (mode, upstream, all) = (self.mode.clone(), self.upstream, self.alive.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    () = alive.cancelled() => return, // the listener closes here
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(_) => return,
                    },
                };
                let (mode, all, alive) = (mode.clone(), all.clone(), alive.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = alive.cancelled() => {} // dropping both sockets cuts them
                        () = connection(client, upstream, mode, all) => {}
                    }
                });
            }
        });
    }
}

/// One client connection: request by request, so a start can be singled out.
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    alive: Arc<Mutex<CancellationToken>>,
) {
    let Ok(mut host) = TcpStream::connect(upstream).await else {
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // The gateway's requests are small: one read holds a whole request.
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let request = &buf[..n];
        let is_start = request.starts_with(b"POST /training/start");
        let current = *mode.lock().expect("mode");
        if is_start && current == Mode::SwallowStartThenDie {
            alive.lock().expect("alive").cancel();
            return;
        }
        if host.write_all(request).await.is_err() {
            return;
        }
        let mut answer = vec![0u8; 256 * 1024];
        let Ok(m) = host.read(&mut answer).await else {
            return;
        };
        if is_start && current != Mode::PassThrough {
            // The host started the session; its answer never reaches the gateway.
            if current == Mode::DropStartAnswerThenDie {
                alive.lock().expect("alive").cancel();
            } else {
                *mode.lock().expect("mode") = Mode::PassThrough;
            }
            return; // closes the client's connection without an answer
        }
        if m == 0 || client.write_all(&answer[..m]).await.is_err() {
            return;
        }
        // A longer answer (status, result) arrives in more reads: pass them on until the
        // host pauses, which it does once the answer is complete.
        loop {
            let more =
                tokio::time::timeout(std::time::Duration::from_millis(20), host.read(&mut answer))
                    .await;
            match more {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(k)) => {
                    if client.write_all(&answer[..k]).await.is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
    }
}

async fn sessions_on(base: &str) -> Vec<Value> {
    let (status, body) = get(&http(), &format!("{base}/training/sessions")).await;
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().cloned().unwrap_or_default()
}

/// Two training-hosts, A behind the proxy and B direct, and a gateway pooling [A, B]
/// (the first start tries A first).
async fn two_hosts(dirs: &Dirs) -> (Running, Proxy, Running, Running, [tempfile::TempDir; 2]) {
    let models = [
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    ];
    let a = training_host(dirs.data.path(), models[0].path()).await;
    let b = training_host(dirs.data.path(), models[1].path()).await;
    let proxy = Proxy::start(a.base.trim_start_matches("http://").parse().expect("addr")).await;
    let config = GatewayConfig {
        training: ServiceMode::Host(vec![
            proxy.base().parse().expect("url"),
            b.base.parse().expect("url"),
        ]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    (a, proxy, b, gw, models)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_start_answer_is_recognised_on_the_same_instance() {
    let dirs = Dirs::sample();
    let (a, proxy, b, gw, _models) = two_hosts(&dirs).await;
    proxy.set(Mode::DropStartAnswer);

    let (id, answer) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    assert_eq!(
        answer["data"]["instance"],
        format!("{}/", proxy.base()),
        "{answer}"
    );
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(op["metadata"]["start_confirmed"], true, "{op}");

    let on_a = sessions_on(&a.base).await;
    assert_eq!(on_a.len(), 1, "the session ran once, on A: {on_a:?}");
    assert!(sessions_on(&b.base).await.is_empty(), "and never on B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_instance_dies_after_it_is_not_run_again_elsewhere() {
    let dirs = Dirs::sample();
    let (a, proxy, b, gw, _models) = two_hosts(&dirs).await;
    proxy.set(Mode::DropStartAnswerThenDie);

    // A started the session, its answer was lost, and A is unreachable: the outcome is
    // unknown. The gateway places the session on A, unconfirmed, and does not start it
    // on B.
    let (id, answer) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    assert_eq!(
        answer["data"]["instance"],
        format!("{}/", proxy.base()),
        "{answer}"
    );
    let url = format!("{}/api/v1/operations/{id}", gw.base);
    let (_, op) = get(&http(), &url).await;
    assert_eq!(op["data"]["metadata"]["start_confirmed"], false, "{op}");
    assert_eq!(op["data"]["status"], "running", "{op}");
    assert!(
        op["data"]["progress"]["current_step"] == "start not confirmed"
            || op["data"]["warnings"].to_string().contains("not confirmed"),
        "{op}"
    );
    assert!(
        sessions_on(&b.base).await.is_empty(),
        "nothing started on B"
    );
    assert_eq!(sessions_on(&a.base).await.len(), 1, "A runs it");

    // While A stays unreachable, new work provably never reaches it and goes to B.
    let (other, answer) =
        start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    assert_eq!(
        answer["data"]["instance"],
        format!("{}/", b.base),
        "{answer}"
    );
    let done = wait_terminal(&http(), &gw.base, &other).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(sessions_on(&a.base).await.len(), 1, "A got nothing more");

    // A answers again: the gateway finds the session there and follows it to the end.
    proxy.revive().await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "completed", "{op}");
    assert_eq!(
        op["result_summary"]["instance"],
        format!("{}/", proxy.base()),
        "{op}"
    );
    let on_b = sessions_on(&b.base).await;
    assert_eq!(on_b.len(), 1, "B ran only the second training: {on_b:?}");
    assert_eq!(on_b[0]["session_id"], other.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_start_the_instance_never_got_fails_saying_so() {
    let dirs = Dirs::sample();
    let (a, proxy, b, gw, _models) = two_hosts(&dirs).await;
    proxy.set(Mode::SwallowStartThenDie);
    let (id, _) = start_training(&gw.base, &json!({"strategy_yaml": strategy_yaml(3)})).await;
    let (_, op) = get(&http(), &format!("{}/api/v1/operations/{id}", gw.base)).await;
    assert_eq!(op["data"]["metadata"]["start_confirmed"], false, "{op}");
    assert!(sessions_on(&b.base).await.is_empty(), "not started on B");

    // When A answers again it does not know the session: the start never took effect.
    proxy.revive().await;
    let op = wait_terminal(&http(), &gw.base, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let why = op["error_message"].as_str().unwrap_or_default();
    assert!(why.contains("never took effect"), "{why}");
    assert!(sessions_on(&a.base).await.is_empty(), "nothing ran on A");
    assert!(sessions_on(&b.base).await.is_empty(), "nor on B");
}
