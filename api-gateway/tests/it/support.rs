//! Shared helpers: sample data, a simulator, hosts and the gateway on ephemeral ports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api_gateway::{Gateway, GatewayConfig, GatewaySettings};
use data_host::ib::{IbConfig, IbProvider};
use data_host::provider::DataProvider;
use data_host::sim::{SimConfig, SimHandle, Simulator, StoreBarSource};
use data_host::store::{Store, StoreFormat};
use host_service_base::CancellationToken;
use serde_json::Value;

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A private copy of the sample store.
pub(crate) fn sample_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(repo().join("data")).expect("sample data") {
        let entry = entry.expect("entry");
        if entry.path().extension().is_some_and(|e| e == "csv") {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
    }
    dir
}

/// The IB Gateway simulator serving the sample bars, answering after `delay`.
pub(crate) async fn simulator(delay: Duration) -> SimHandle {
    simulator_at("127.0.0.1:0".parse().expect("addr"), delay).await
}

/// [`simulator`] on a given address (an IB Gateway coming back where it was).
pub(crate) async fn simulator_at(addr: std::net::SocketAddr, delay: Duration) -> SimHandle {
    let source = StoreBarSource::new(Store::new(repo().join("data"), StoreFormat::Csv));
    let mut config = SimConfig::new(Arc::new(source));
    config.response_delay = delay;
    Simulator::bind(addr, config)
        .await
        .expect("simulator binds")
}

/// A running server; dropping it shuts it down.
pub(crate) struct Running {
    pub(crate) base: String,
    pub(crate) shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// data-host (its real router) over `provider`.
pub(crate) async fn data_host_over(provider: Arc<dyn DataProvider>) -> Running {
    let (listener, base) = listener().await;
    let shutdown = CancellationToken::new();
    tokio::spawn(data_host::service::serve(
        listener,
        provider,
        Duration::from_secs(60),
        shutdown.clone(),
    ));
    Running { base, shutdown }
}

/// data-host over the IB provider talking to `sim`.
pub(crate) async fn data_host(sim: &SimHandle, client_id: i32) -> Running {
    let host = data_host_over(Arc::new(IbProvider::new(IbConfig::new(
        sim.addr(),
        client_id,
    ))))
    .await;
    // Ready once its IB link is up, as a container healthcheck would wait: a gateway
    // probing it earlier rightly finds it not ready.
    let ready = format!("{}/ready", host.base);
    eventually("data-host ready (connected to the simulator)", || async {
        let answer = reqwest::get(&ready).await.ok()?;
        answer.status().is_success().then_some(())
    })
    .await;
    host
}

/// The directories a gateway works in.
pub(crate) struct Dirs {
    pub(crate) data: tempfile::TempDir,
    pub(crate) models: tempfile::TempDir,
    /// The IB Gateway the in-process provider talks to, when the test has one.
    ib: Option<SimHandle>,
}

impl Dirs {
    /// An empty store.
    pub(crate) fn empty() -> Self {
        Self {
            data: tempfile::tempdir().expect("tempdir"),
            models: tempfile::tempdir().expect("tempdir"),
            ib: None,
        }
    }

    /// A copy of the sample store.
    pub(crate) fn sample() -> Self {
        Self {
            data: sample_copy(),
            models: tempfile::tempdir().expect("tempdir"),
            ib: None,
        }
    }

    /// With an IB Gateway simulator for the in-process provider, so the in-process
    /// data service is healthy (without one it reports its IB link down).
    pub(crate) async fn with_ib(mut self) -> Self {
        self.ib = Some(simulator(Duration::ZERO).await);
        self
    }

    /// Gateway settings over these directories.
    pub(crate) fn settings(&self, config: GatewayConfig) -> GatewaySettings {
        GatewaySettings {
            strategies_dir: repo().join("strategies"),
            state: Some(self.models.path().join("gateway-operations.redb")),
            // Nothing listens here unless the test has a simulator.
            ib: IbConfig::new(
                self.ib
                    .as_ref()
                    .map_or_else(|| "127.0.0.1:9".parse().expect("addr"), SimHandle::addr),
                1,
            ),
            ..GatewaySettings::new(
                config,
                self.data.path().to_path_buf(),
                self.models.path().to_path_buf(),
            )
        }
    }
}

/// The gateway built from `settings`, serving on 127.0.0.1:0.
pub(crate) async fn gateway(settings: GatewaySettings) -> (Running, Gateway) {
    let gateway = Gateway::build(settings).expect("gateway builds");
    let (listener, base) = listener().await;
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.clone().serve(listener, shutdown.clone()));
    (Running { base, shutdown }, gateway)
}

/// One HTTP client per test, as a backend would hold.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET → (status, JSON body).
pub(crate) async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GET → the body as text.
pub(crate) async fn text(url: &str) -> String {
    http()
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text")
}

/// POST JSON → (status, JSON body).
pub(crate) async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let response = http.post(url).json(body).send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the operation until it is terminal (bounded by a number of polls, not time).
pub(crate) async fn wait_terminal(http: &reqwest::Client, base: &str, id: &str) -> Value {
    for _ in 0..6000 {
        let (status, body) = get(http, &format!("{base}/api/v1/operations/{id}")).await;
        assert_eq!(status, 200, "{body}");
        let state = body["data"]["status"].as_str().unwrap_or_default();
        if matches!(state, "completed" | "failed" | "cancelled") {
            return body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("operation {id} never ended");
}

/// Polls until `check` accepts the operation (bounded).
pub(crate) async fn wait_for(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..6000 {
        let (_, body) = get(http, &format!("{base}/api/v1/operations/{id}")).await;
        if check(&body["data"]) {
            return body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("operation {id} never reached the expected state");
}

/// Polls `check` every 20 ms until it gives a value; panics naming `what` after 30 s.
pub(crate) async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..1500 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("waited 30 s for {what}");
}

/// The shipped strategy with `epochs` epochs (and early stopping off).
pub(crate) fn strategy_yaml(epochs: u32) -> String {
    let yaml = std::fs::read_to_string(repo().join("strategies/rsi_macd_mlp.yaml"))
        .expect("shipped strategy");
    assert!(yaml.contains("    epochs: 100") && yaml.contains("      enabled: true"));
    yaml.replace("    epochs: 100", &format!("    epochs: {epochs}"))
        .replace("      enabled: true", "      enabled: false")
}

/// The Kafka-protocol test broker (`HOSTBRIDGE_TEST_KAFKA`), or `None` with a printed
/// reason; with `CI_REQUIRE_KAFKA` set a missing broker fails the test instead.
pub(crate) fn test_broker() -> Option<String> {
    match std::env::var("HOSTBRIDGE_TEST_KAFKA") {
        Ok(broker) if !broker.trim().is_empty() => Some(broker),
        _ => {
            assert!(
                std::env::var("CI_REQUIRE_KAFKA").is_err(),
                "CI_REQUIRE_KAFKA is set but HOSTBRIDGE_TEST_KAFKA is not"
            );
            eprintln!(
                "skipping: HOSTBRIDGE_TEST_KAFKA not set (start the tansu broker, see .ci/run)"
            );
            None
        }
    }
}

/// Whether python3 can import `module` (a Python peer of a test); without it the test
/// is skipped with a printed reason, or fails when `CI_REQUIRE_PYTHON_PEERS` is set.
pub(crate) fn python_has(module: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("CI_REQUIRE_PYTHON_PEERS").is_err(),
            "CI_REQUIRE_PYTHON_PEERS is set but python3 cannot import {module}"
        );
        eprintln!("skipping: python3 cannot import {module} (pip install it, see .ci/run)");
    }
    found
}

/// A tansu broker of a test's own, reached only through a TCP proxy the test can cut
/// and restore: to its clients that is the broker going away and coming back. (A
/// restarted tansu on memory storage would come back empty, a different cluster; the
/// cut keeps its topics, like a real broker's restart or a network outage.) `None` with
/// a printed reason without `HOSTBRIDGE_TANSU_BIN`; with `CI_REQUIRE_KAFKA` set that
/// fails the test instead.
pub(crate) struct OwnBroker {
    child: std::process::Child,
    proxy_port: u16,
    broker_port: u16,
    proxy: Option<CancellationToken>,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl OwnBroker {
    pub(crate) async fn start() -> Option<Self> {
        let mut broker = Self::start_cut().await?;
        broker.restore().await;
        Some(broker)
    }

    /// Starts the broker with the way to it cut: clients cannot reach it until
    /// [`OwnBroker::restore`].
    pub(crate) async fn start_cut() -> Option<Self> {
        let Some(bin) = std::env::var_os("HOSTBRIDGE_TANSU_BIN") else {
            assert!(
                std::env::var("CI_REQUIRE_KAFKA").is_err(),
                "CI_REQUIRE_KAFKA is set but HOSTBRIDGE_TANSU_BIN is not"
            );
            eprintln!("skipping: HOSTBRIDGE_TANSU_BIN not set (see .ci/run)");
            return None;
        };
        let (broker_port, proxy_port) = (free_port(), free_port());
        let child = std::process::Command::new(bin)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{broker_port}")])
            // Clients are told to come back through the proxy, so every connection
            // (not only the bootstrap one) crosses it.
            .args([
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{proxy_port}"),
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tansu starts");
        let broker = Self {
            child,
            proxy_port,
            broker_port,
            proxy: None,
        };
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", broker_port))
                .await
                .is_ok()
            {
                return Some(broker);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tansu did not listen on {broker_port}");
    }

    /// The address clients use.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.proxy_port)
    }

    /// Cuts every connection and refuses new ones.
    pub(crate) fn cut(&mut self) {
        if let Some(stop) = self.proxy.take() {
            stop.cancel();
        }
    }

    /// Lets clients through again.
    pub(crate) async fn restore(&mut self) {
        self.cut();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.proxy_port))
            .await
            .expect("the proxy port again");
        let stop = CancellationToken::new();
        let (token, upstream) = (stop.clone(), self.broker_port);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        self.proxy = Some(stop);
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.cut();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
