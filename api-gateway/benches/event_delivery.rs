//! Benchmark: how fast, and at what cost, the gateway's events reach their readers.
//!
//! 1. Delivery latency, p50/p95/p99 over 1,000 `operation.progress` envelopes, from an
//!    operation's change to its reader. The gateway runs in-process (Socket.IO mode,
//!    no progress throttle); the bench makes 50 warm-up + 1,000 progress changes of
//!    one operation, one every 2 ms, each stamping its own send time (UNIX ns) into
//!    `data.progress.context.sent_ns`; the reader takes its clock on arrival (same
//!    machine, same CLOCK_REALTIME). Readers, side by side in one run:
//!    - a python-socketio client (`benches/python/sio_latency_client.py`, websocket
//!      transport only) on the gateway's `/socket.io/`;
//!    - the same client on a python-socketio `AsyncServer` under uvicorn
//!      (`benches/python/sio_envelope_server.py`) emitting copies of the gateway's own
//!      envelope, stamped and emitted at the same pace: the comparison of issue 11.
//!      Three runs of each, alternating, and each pooled: the tails vary from run to
//!      run (a server that leaves Nagle on loses 40 ms to delayed ACKs in some runs);
//!    - a Kafka consumer (the crate's `KafkaReader`) on the events topic, gateway in
//!      `both` mode, with the default producer linger (10 ms) and with linger 0, each
//!      with the consumer's defaults and with `fetch.wait.max.ms` 10 (a broker that
//!      holds a waiting fetch to its deadline adds up to that wait), when
//!      `HOSTBRIDGE_BENCH_KAFKA` (or `HOSTBRIDGE_TEST_KAFKA`) names a broker; the topic
//!      is created first and measuring starts once a warm-up event came through.
//! 2. 1,000 concurrent Socket.IO clients on one gateway: the `hostbridge serve` binary
//!    cargo builds for this bench (`CARGO_BIN_EXE_hostbridge`, same profile) runs as
//!    its own process, so its VmRSS is its own; 1,000 engine.io v4 websocket clients
//!    (tokio-tungstenite) connect from this process. Memory per client = RSS growth
//!    over the connects / 1,000. Then local data loads (`POST /api/v1/data/load`) make
//!    the gateway publish; per event: publish → last of the 1,000 clients (publish =
//!    the envelope's timestamp, which has millisecond resolution and is truncated, so
//!    this reads up to 1 ms high), first → last client (exact), publish → median
//!    client.
//!
//! Run: `cargo bench -p api-gateway --bench event_delivery`. Needs python3 with
//! python-socketio[client], websocket-client and uvicorn (rows that need them are
//! skipped with the reason otherwise), and an open-file limit above 2,100 (both ends of
//! 1,000 sockets; `ulimit -n 4096`). Everything runs on one machine: the clients
//! compete with the server for the same cores.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api_gateway::events::config::KafkaSinkSettings;
use api_gateway::events::{EventMode, EventSettings};
use api_gateway::{Gateway, GatewayConfig, GatewaySettings};
use event_stream::kafka::{
    ConsumerSettings, KafkaAdmin, KafkaConfig, KafkaReader, ProducerSettings,
};
use futures::{SinkExt, StreamExt};
use host_service_base::CancellationToken;
use host_service_base::operations::{OperationHandle, Operations};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

/// Measured events per latency row.
const EVENTS: usize = 1_000;
/// Events sent (and not counted) before them.
const WARMUP: usize = 50;
/// Gap between two changes.
const PACE: Duration = Duration::from_millis(2);
/// Runs of each Socket.IO server (their tails vary from run to run).
const ROUNDS: usize = 3;
/// Socket.IO clients on one gateway.
const CLIENTS: usize = 1_000;
/// Events to time across the clients (at least).
const FANOUT_EVENTS: u64 = 50;
/// Clients connecting at once.
const CONNECTING: usize = 50;
const PROGRESS: &str = "operation.progress";

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// p50/p95/p99/max of a sample, in milliseconds.
struct Pcts {
    n: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Pcts {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let rank = ((p / 100.0) * (ms.len().saturating_sub(1)) as f64).round() as usize;
            ms.get(rank).copied().unwrap_or(f64::NAN)
        };
        Self {
            n: ms.len(),
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            self.n, self.p50, self.p95, self.p99, self.max
        )
    }
}

/// A child process killed (and reaped) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python helper from `benches/python/` and its stdout, one JSON object per line.
struct Helper {
    _process: Process,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Helper {
    fn start(script: &str, args: &[String]) -> Result<Self> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/python")
            .join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("python3 {}: {e}", path.display()))?;
        let stdout = child.stdout.take().ok_or("python helper without stdout")?;
        Ok(Self {
            _process: Process(child),
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line as JSON (blocking).
    fn next(&mut self) -> Result<Value> {
        let line = self
            .lines
            .next()
            .ok_or("the python helper exited early (its error is above)")??;
        Ok(serde_json::from_str(&line)?)
    }
}

/// Why the python rows cannot run, if they cannot.
fn python_missing() -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import socketio, websocket, uvicorn"])
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(status) if status.success() => None,
        Ok(_) => Some("python3 lacks python-socketio[client], websocket-client or uvicorn".into()),
        Err(e) => Some(format!("no python3: {e}")),
    }
}

/// The latency client, connected to `url` and waiting for events.
fn latency_client(url: &str) -> Result<Helper> {
    let mut client = Helper::start(
        "sio_latency_client.py",
        &[
            "--url".into(),
            url.into(),
            "--count".into(),
            EVENTS.to_string(),
            "--warmup".into(),
            WARMUP.to_string(),
        ],
    )?;
    let first = client.next()?;
    if first["connected"] != true {
        return Err(format!("the client did not connect: {first}").into());
    }
    Ok(client)
}

/// The latencies (ms) the client reports once it has them all.
fn latencies(client: &mut Helper) -> Result<Vec<f64>> {
    let report = client.next()?;
    let ms: Vec<f64> = report["latencies_ms"]
        .as_array()
        .ok_or_else(|| format!("no latencies in {report}"))?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    if ms.len() < EVENTS {
        return Err(format!("the client got {} of {EVENTS} events in time", ms.len()).into());
    }
    Ok(ms)
}

/// An empty store and model directory.
struct Dirs {
    data: tempfile::TempDir,
    models: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Result<Self> {
        Ok(Self {
            data: tempfile::tempdir()?,
            models: tempfile::tempdir()?,
        })
    }

    /// With a copy of the sample store (`data/*.csv`).
    fn sample() -> Result<Self> {
        let dirs = Self::new()?;
        for entry in std::fs::read_dir(repo().join("data"))? {
            let path = entry?.path();
            if let Some(name) = path
                .file_name()
                .filter(|_| path.extension() == Some("csv".as_ref()))
            {
                std::fs::copy(&path, dirs.data.path().join(name))?;
            }
        }
        Ok(dirs)
    }
}

/// An in-process gateway on 127.0.0.1:0; dropping it shuts it down.
struct Running {
    gateway: Gateway,
    base: String,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start_gateway(dirs: &Dirs, events: EventSettings) -> Result<Running> {
    let settings = GatewaySettings {
        strategies_dir: repo().join("strategies"),
        state: Some(dirs.models.path().join("gateway-operations.redb")),
        events,
        ..GatewaySettings::new(
            GatewayConfig::default(),
            dirs.data.path().to_path_buf(),
            dirs.models.path().to_path_buf(),
        )
    };
    let gateway = Gateway::build(settings)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.clone().serve(listener, shutdown.clone()));
    Ok(Running {
        gateway,
        base,
        shutdown,
    })
}

/// `n` progress changes of `op`, one per [`PACE`], each stamped with its send time.
async fn drive(op: OperationHandle, n: usize) {
    let mut tick = tokio::time::interval(PACE);
    for i in 0..n {
        tick.tick().await;
        op.progress(|p| {
            p.steps_completed = i as u64;
            p.context = json!({"sent_ns": now_ns()});
        });
    }
    op.complete(json!({}));
}

fn started(ops: &Operations, kind: &str) -> OperationHandle {
    let op = ops.create(kind, json!({}));
    op.start();
    op
}

/// Socket.IO latency rows: the gateway, then python-socketio with the gateway's envelope.
/// One round: (gateway latencies, python-socketio latencies, envelope bytes).
fn socketio_pair(servers: &tokio::runtime::Runtime) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    let dirs = Dirs::new()?;
    let events = EventSettings {
        mode: EventMode::SocketIo,
        progress_interval: Duration::ZERO,
        ..EventSettings::default()
    };
    let gw = servers.block_on(start_gateway(&dirs, events))?;
    // One envelope as the gateway sends it: the python server's template.
    let mut feed = gw.gateway.events().subscribe(gw.shutdown.child_token());
    let template = servers.spawn(async move {
        while let Some(Ok(message)) = feed.next().await {
            if message.value.event_type == PROGRESS {
                return Some(message.value.to_json());
            }
        }
        None
    });
    let mut client = latency_client(&gw.base)?;
    servers.block_on(drive(
        started(gw.gateway.operations(), "bench"),
        WARMUP + EVENTS,
    ));
    let ours = latencies(&mut client)?;
    let template = servers
        .block_on(template)?
        .ok_or("the gateway published no progress")?;
    drop(gw);

    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &template)?;
    let mut server = Helper::start(
        "sio_envelope_server.py",
        &[
            "--template".into(),
            file.path().display().to_string(),
            "--count".into(),
            EVENTS.to_string(),
            "--warmup".into(),
            WARMUP.to_string(),
            "--interval-ms".into(),
            format!("{}", PACE.as_secs_f64() * 1e3),
        ],
    )?;
    let port = server.next()?["port"]
        .as_u64()
        .ok_or("the python server did not say its port")?;
    let mut client = latency_client(&format!("http://127.0.0.1:{port}"))?;
    let theirs = latencies(&mut client)?;
    Ok((ours, theirs, template.len()))
}

const OURS: &str = "hostbridge gateway → python-socketio client";
const THEIRS: &str = "python-socketio server (uvicorn) → same client";

/// [`ROUNDS`] rounds of both Socket.IO servers, then each pooled over the rounds.
fn socketio_rows(
    servers: &tokio::runtime::Runtime,
    rows: &mut Vec<(String, Pcts)>,
) -> Result<(Pcts, Pcts)> {
    let (mut all_ours, mut all_theirs) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (ours, theirs, bytes) = socketio_pair(servers)?;
        if round == 1 {
            println!(
                "envelope: {bytes} bytes of JSON as the gateway writes it (python-socketio's json.dumps adds spaces); {ROUNDS} runs of each server, alternating\n"
            );
        }
        rows.push((format!("{OURS}, run {round}"), Pcts::of(ours.clone())));
        rows.push((format!("{THEIRS}, run {round}"), Pcts::of(theirs.clone())));
        all_ours.extend(ours);
        all_theirs.extend(theirs);
    }
    rows.push((format!("{OURS}, all runs"), Pcts::of(all_ours.clone())));
    rows.push((format!("{THEIRS}, all runs"), Pcts::of(all_theirs.clone())));
    Ok((Pcts::of(all_ours), Pcts::of(all_theirs)))
}

/// What the Kafka consumer saw: subject, type, sent_ns, received_ns.
type Seen = (String, String, i64, i64);

/// Kafka row: gateway in `both` mode with `linger_ms`, read by a `KafkaReader` (with
/// librdkafka's `fetch.wait.max.ms` unless `fetch_wait_ms` sets it).
async fn kafka_row(bootstrap: &str, linger_ms: u32, fetch_wait_ms: Option<u32>) -> Result<Pcts> {
    let config = KafkaConfig::new(bootstrap).with_client_id("hostbridge-bench");
    let topic = format!("bench-events-{}", uuid::Uuid::new_v4().simple());
    KafkaAdmin::new(&config)?
        .create_topic(&topic, 1, 1, &[])
        .await?;
    let dirs = Dirs::new()?;
    let events = EventSettings {
        mode: EventMode::Both,
        kafka: Some(KafkaSinkSettings {
            config: config.clone(),
            // What `EventSettings::from_env` gives the gateway's producer.
            producer: ProducerSettings {
                linger_ms,
                flush_timeout: Duration::from_secs(5),
                message_timeout_ms: 10_000,
                ..ProducerSettings::default()
            },
            topic: topic.clone(),
        }),
        progress_interval: Duration::ZERO,
        ..EventSettings::default()
    };
    let gw = start_gateway(&dirs, events).await?;
    let cancel = CancellationToken::new();
    let group = ConsumerSettings::new(format!("bench-{}", uuid::Uuid::new_v4().simple()))
        .with_session_timeout_ms(6000);
    let consumer_config = match fetch_wait_ms {
        Some(ms) => config
            .clone()
            .with_property("fetch.wait.max.ms", ms.to_string()),
        None => config.clone(),
    };
    let mut reader = KafkaReader::new(&consumer_config, group, &[topic.as_str()], cancel.clone())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    let consumer = tokio::spawn(async move {
        while let Some(Ok(message)) = reader.next().await {
            let received = now_ns();
            let Ok(env) = serde_json::from_slice::<Value>(&message.value) else {
                continue;
            };
            let sent = env["data"]["progress"]["context"]["sent_ns"]
                .as_i64()
                .unwrap_or(0);
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let _ = tx.send((text(&env["subject"]), text(&env["type"]), sent, received));
        }
        let _ = reader.close().await;
    });

    // A consumer that joined before the topic had data may wait for a metadata
    // refresh: measure only once one event has come through.
    let warm = started(gw.gateway.operations(), "bench-warmup");
    let deadline = Instant::now() + Duration::from_secs(60);
    'warm: loop {
        if Instant::now() > deadline {
            return Err("no event reached the Kafka consumer within 60 s".into());
        }
        warm.progress(|p| p.context = json!({"sent_ns": now_ns()}));
        let wait = tokio::time::sleep(Duration::from_millis(250));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                seen = rx.recv() => match seen {
                    Some((subject, ..)) if subject == warm.id() => break 'warm,
                    Some(_) => {}
                    None => return Err("the Kafka consumer stopped".into()),
                },
            }
        }
    }
    warm.complete(json!({}));

    let op = started(gw.gateway.operations(), "bench");
    let id = op.id().to_owned();
    let driver = tokio::spawn(drive(op, WARMUP + EVENTS));
    let mut skipped = 0;
    let mut ms = Vec::with_capacity(EVENTS);
    while ms.len() < EVENTS {
        let seen = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        let Ok(Some((subject, kind, sent, received))) = seen else {
            return Err(format!("the consumer got {} of {EVENTS} events", ms.len()).into());
        };
        if subject != id || kind != PROGRESS {
            continue;
        }
        if skipped < WARMUP {
            skipped += 1;
        } else {
            ms.push((received - sent) as f64 / 1e6);
        }
    }
    driver.await?;
    cancel.cancel();
    let _ = consumer.await;
    Ok(Pcts::of(ms))
}

fn latency_section(servers: &tokio::runtime::Runtime) {
    println!(
        "## Delivery latency: operation change → reader, {EVENTS} `{PROGRESS}` events (after {WARMUP} warm-up), one per {} ms, ms\n",
        PACE.as_millis()
    );
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut pooled = None;
    match python_missing() {
        Some(why) => notes.push(format!("Socket.IO rows skipped: {why}")),
        None => match socketio_rows(servers, &mut rows) {
            Ok(both) => pooled = Some(both),
            Err(e) => notes.push(format!("Socket.IO rows failed: {e}")),
        },
    }
    let broker = std::env::var("HOSTBRIDGE_BENCH_KAFKA")
        .or_else(|_| std::env::var("HOSTBRIDGE_TEST_KAFKA"))
        .ok();
    match &broker {
        None => notes.push(
            "Kafka rows skipped: set HOSTBRIDGE_BENCH_KAFKA=host:port (or HOSTBRIDGE_TEST_KAFKA) of a broker".into(),
        ),
        Some(bootstrap) => {
            for (linger, fetch_wait) in [(10, None), (0, None), (10, Some(10)), (0, Some(10))] {
                let consumer = fetch_wait.map_or("consumer defaults".to_owned(), |ms| {
                    format!("consumer fetch.wait.max.ms {ms}")
                });
                let name = format!(
                    "hostbridge gateway → Kafka consumer (KafkaReader), producer linger {linger} ms, {consumer}"
                );
                match servers.block_on(kafka_row(bootstrap, linger, fetch_wait)) {
                    Ok(p) => rows.push((name, p)),
                    Err(e) => notes.push(format!("{name}: failed: {e}")),
                }
            }
        }
    }
    println!("| reader | events | p50 | p95 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, p) in &rows {
        println!("{}", p.row(label));
    }
    println!();
    if let Some((ours, theirs)) = pooled {
        println!(
            "python-socketio / hostbridge, all runs: {:.2}x at p50, {:.2}x at p95, {:.2}x at p99; goal p95 ≤ 1 ms: {}",
            theirs.p50 / ours.p50,
            theirs.p95 / ours.p95,
            theirs.p99 / ours.p99,
            if ours.p95 <= 1.0 { "met" } else { "not met" }
        );
    }
    if broker.is_some() {
        println!(
            "Kafka: the gateway's sink hands each envelope to librdkafka at once; the producer waits up to linger.ms (KAFKA_PRODUCER_LINGER_MS, default 10) to fill a batch, and the consumer's fetch waits on the broker up to fetch.wait.max.ms (librdkafka default 500) for data: a broker that answers a waiting fetch only when it times out shows that wait, not the gateway's."
        );
    }
    for note in notes {
        println!("{note}");
    }
}

/// The `hostbridge serve` process; killed when dropped.
struct GatewayProcess {
    process: Process,
    addr: String,
}

fn spawn_gateway(dirs: &Dirs) -> Result<GatewayProcess> {
    let bin = env!("CARGO_BIN_EXE_hostbridge");
    let path = |p: &Path| p.display().to_string();
    let mut command = Command::new(bin);
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(path(dirs.data.path()))
        .arg("--models-dir")
        .arg(path(dirs.models.path()))
        .arg("--strategies-dir")
        .arg(path(&repo().join("strategies")))
        .env("HOSTBRIDGE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("EVENT_MODE", "socketio")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Only what is set here: nothing leaks in from the caller's environment.
    for var in [
        "USE_IB_HOST_SERVICE",
        "USE_TRAINING_HOST_SERVICE",
        "IB_HOST_SERVICE_URL",
        "TRAINING_HOST_SERVICE_URL",
        "HOSTBRIDGE_API_KEY",
        "EVENT_PROGRESS_PER_SECOND",
    ] {
        command.env_remove(var);
    }
    let mut process = Process(command.spawn().map_err(|e| format!("{bin}: {e}"))?);
    let stderr = process.0.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .ok_or("hostbridge serve exited before listening")??;
        if let Ok(entry) = serde_json::from_str::<Value>(&line)
            && let Some(addr) = entry["fields"]["addr"].as_str()
        {
            break addr.to_owned();
        }
    };
    // Keep draining so the gateway never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(std::result::Result::ok).for_each(drop));
    Ok(GatewayProcess { process, addr })
}

/// VmRSS of `pid`, KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/PID/status".into())
}

/// The soft open-file limit of this process (the gateway inherits it).
fn open_files_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One engine.io v4 / Socket.IO v5 client over websocket, recording every event frame
/// (`42[...]`) with its arrival time until `stop` fires.
async fn sio_client(
    addr: String,
    connecting: Arc<tokio::sync::Semaphore>,
    counted: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> Result<Vec<(i64, Utf8Bytes)>, String> {
    // Held until this client has joined: a bounded number of handshakes at a time.
    let mut permit = Some(
        connecting
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?,
    );
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| format!("websocket: {e}"))?;
    let mut got = Vec::new();
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => break,
            frame = ws.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
        };
        let at = now_ns();
        if text.starts_with("42") {
            got.push((at, text));
        } else if text.as_str() == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|e| e.to_string())?;
        } else if text.starts_with('0') {
            // engine.io open: join the default namespace.
            ws.send(Message::text("40"))
                .await
                .map_err(|e| e.to_string())?;
        } else if text.starts_with("40") && permit.take().is_some() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = ws.close(None).await;
    Ok(got)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value> {
    Ok(http.get(url).send().await?.json().await?)
}

/// Starts a local load and waits for its end.
async fn load(http: &reqwest::Client, base: &str) -> Result<()> {
    let answer: Value = http
        .post(format!("{base}/api/v1/data/load"))
        .json(&json!({"symbol": "MSFT", "timeframe": "1d", "mode": "local"}))
        .send()
        .await?
        .json()
        .await?;
    let id = answer["data"]["operation_id"]
        .as_str()
        .ok_or_else(|| format!("no operation id in {answer}"))?;
    for _ in 0..600 {
        let op = get_json(http, &format!("{base}/api/v1/operations/{id}")).await?;
        if matches!(
            op["data"]["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("load {id} did not end within 12 s").into())
}

/// Envelopes the gateway has published so far (`/api/v1/health`).
async fn published(http: &reqwest::Client, base: &str) -> Result<u64> {
    let health = get_json(http, &format!("{base}/api/v1/health")).await?;
    Ok(health["events"]["published"].as_u64().unwrap_or(0))
}

/// Per event (by envelope id): publish time and every client's arrival time.
struct Fanout {
    publish_ns: i64,
    arrivals: Vec<i64>,
}

fn collate(clients: Vec<Vec<(i64, Utf8Bytes)>>) -> HashMap<String, Fanout> {
    let mut events: HashMap<String, Fanout> = HashMap::new();
    for (at, frame) in clients.into_iter().flatten() {
        let Ok((_, env)) = serde_json::from_str::<(String, Value)>(&frame[2..]) else {
            continue;
        };
        let (Some(id), Some(ts)) = (env["id"].as_str(), env["timestamp"].as_str()) else {
            continue;
        };
        let publish_ns = chrono::DateTime::parse_from_rfc3339(ts)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(at);
        events
            .entry(id.to_owned())
            .or_insert_with(|| Fanout {
                publish_ns,
                arrivals: Vec::new(),
            })
            .arrivals
            .push(at);
    }
    events
}

struct FanoutRun {
    rss_start: u64,
    rss_connected: u64,
    rss_after: u64,
    connect_time: Duration,
    loads: usize,
    events: HashMap<String, Fanout>,
}

async fn fanout_run(gw: &GatewayProcess) -> Result<FanoutRun> {
    let base = format!("http://{}", gw.addr);
    let pid = gw.process.0.id();
    let http = reqwest::Client::new();
    // The first load initialises what the gateway builds lazily: not per-client memory.
    load(&http, &base).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_start = rss_kib(pid)?;

    let connecting = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let joined = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(sio_client(
                gw.addr.clone(),
                connecting.clone(),
                joined.clone(),
                stop.clone(),
            ))
        })
        .collect();
    while joined.load(Ordering::Relaxed) < CLIENTS {
        if started.elapsed() > Duration::from_secs(120) {
            stop.cancel();
            return Err(format!(
                "{} of {CLIENTS} clients joined within 120 s",
                joined.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = rss_kib(pid)?;

    // Loads until enough events have gone out (a load publishes a few), then a pause
    // for the last fan-out to finish.
    let mut loads = 0;
    let before = published(&http, &base).await?;
    while loads < 200 && published(&http, &base).await? < before + FANOUT_EVENTS {
        load(&http, &base).await?;
        loads += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid)?;
    stop.cancel();
    let mut frames = Vec::with_capacity(CLIENTS);
    for client in clients {
        frames.push(client.await??);
    }
    Ok(FanoutRun {
        rss_start,
        rss_connected,
        rss_after,
        connect_time,
        loads,
        events: collate(frames),
    })
}

fn fanout_section(runtime: &tokio::runtime::Runtime) -> Result<()> {
    println!(
        "\n## {CLIENTS} concurrent Socket.IO clients on one gateway process (`hostbridge serve`, EVENT_MODE=socketio)\n"
    );
    let needed = 2 * CLIENTS as u64 + 100;
    match open_files_limit() {
        Some(limit) if limit < needed => {
            println!(
                "skipped: the open-file limit is {limit}; {needed} are needed (both ends of {CLIENTS} sockets): `ulimit -n 4096` first"
            );
            return Ok(());
        }
        _ => {}
    }
    let dirs = Dirs::sample()?;
    let gw = spawn_gateway(&dirs)?;
    let run = runtime.block_on(fanout_run(&gw))?;
    drop(gw);

    let kib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    println!(
        "| gateway RSS | before clients | {CLIENTS} connected | after the events | per client |"
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| VmRSS | {} | {} | {} | {:.1} KiB |",
        kib(run.rss_start),
        kib(run.rss_connected),
        kib(run.rss_after),
        run.rss_connected.saturating_sub(run.rss_start) as f64 / CLIENTS as f64
    );
    println!(
        "\n{CLIENTS} clients joined in {:.2} s ({CONNECTING} handshakes at a time).\n",
        run.connect_time.as_secs_f64()
    );

    let mut events: Vec<&Fanout> = run.events.values().collect();
    events.sort_by_key(|e| e.publish_ns);
    let complete = events
        .iter()
        .filter(|e| e.arrivals.len() == CLIENTS)
        .count();
    let ms = |ns: i64| ns as f64 / 1e6;
    let mut last = Vec::new();
    let mut spread = Vec::new();
    let mut median = Vec::new();
    for e in &events {
        let mut a = e.arrivals.clone();
        a.sort_unstable();
        let (Some(&first), Some(&latest)) = (a.first(), a.last()) else {
            continue;
        };
        last.push(ms(latest - e.publish_ns));
        spread.push(ms(latest - first));
        median.push(ms(a[a.len() / 2] - e.publish_ns));
    }
    println!(
        "{} events from {} local loads (started, progress, completed), {complete} of them reached all {CLIENTS} clients; ms over the events:\n",
        events.len(),
        run.loads
    );
    println!("| per event | events | p50 | p95 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        Pcts::of(last).row("publish → last client (fan-out; publish time at 1 ms resolution)")
    );
    println!("{}", Pcts::of(spread).row("first → last client"));
    println!("{}", Pcts::of(median).row("publish → median client"));
    Ok(())
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let build = if cfg!(debug_assertions) {
        "DEBUG build: not representative"
    } else {
        "optimized build"
    };
    println!("# Event delivery ({build}, loopback, one machine)\n");
    latency_section(&runtime);
    fanout_section(&runtime)
}
