//! Benchmark: the gateway in host mode, measured from outside on the real binaries.
//!
//! data-host (`serve --source local` on the sample store) and the gateway (host mode,
//! asking that data-host) run as their own release processes; a lean load generator in
//! this process (one keep-alive HTTP/1.1 connection per slot, like wrk) sends each row's
//! request back to back for a few seconds, at concurrency 1 and 64:
//!
//! - head-timestamp straight to data-host (`GET /data/head-timestamp`), through the
//!   gateway (`GET /api/v1/data/AAPL/1d/head-timestamp`: gateway → pool → data-host),
//!   and through the floor of a hop: a bare hyper proxy (a copy of this bench started
//!   as its own process) that forwards the same request over pooled connections and
//!   hands back data-host's bytes untouched — the least a second HTTP hop can cost;
//! - a month of daily bars straight from data-host (`POST /data/historical`) and from
//!   the gateway's own store (`GET /api/v1/data/AAPL/1d?start&end`).
//!
//! Rows are interleaved in rounds (each row reports its median round), and every row
//! reports the CPU time each process spent per request (from `/proc/<pid>/stat`): on a
//! saturated two-core box throughput is bounded by the sum of those, which is what
//! explains a ratio.
//!
//! Run: `cargo bench -p hostbridge-tests --bench gateway_hop [-- --secs 3 --rounds 3
//! --gateway-workers N]`

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hostbridge_tests::process::{Service, arg, sample_data};
use hostbridge_tests::stack;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Set in the copy of this bench that runs as the floor proxy: the upstream address.
const FLOOR_UPSTREAM: &str = "GATEWAY_HOP_FLOOR_UPSTREAM";

/// The month of daily bars the bars rows ask for (21 bars).
const BARS_START: &str = "2012-05-01";
const BARS_END: &str = "2012-06-01";

fn main() -> BenchResult<()> {
    if let Ok(upstream) = std::env::var(FLOOR_UPSTREAM) {
        return floor_proxy(upstream.parse()?);
    }
    let secs = number_arg("--secs", 3.0);
    let rounds = number_arg("--rounds", 3.0).max(1.0) as usize;

    let data_host = Service::start(
        "data-host",
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--source",
            "local",
            "--data-dir",
            arg(&sample_data()),
        ],
        &[],
    );
    // The gateway's own store: the same daily bars, in a directory it may write.
    let store = tempfile::tempdir()?;
    std::fs::copy(
        sample_data().join("AAPL_1d.csv"),
        store.path().join("AAPL_1d.csv"),
    )?;
    let models = tempfile::tempdir()?;
    let data_url = data_host.url();
    // `--gateway-workers N`: the gateway's tokio worker threads (tokio reads the variable;
    // absent or 0: one per core, as deployed).
    let workers = number_arg("--gateway-workers", 0.0) as usize;
    let workers = (workers > 0).then(|| workers.to_string());
    let mut gateway_env = vec![
        ("USE_IB_HOST_SERVICE", "true"),
        ("IB_HOST_SERVICE_URL", data_url.as_str()),
    ];
    if let Some(workers) = &workers {
        gateway_env.push(("TOKIO_WORKER_THREADS", workers.as_str()));
    }
    let gateway = stack::gateway(store.path(), models.path(), None, &gateway_env);
    let floor = FloorProcess::start(data_host.addr().parse()?)?;

    let data_addr: SocketAddr = data_host.addr().parse()?;
    let gateway_addr: SocketAddr = gateway.addr().parse()?;
    let head_direct = Call::get(data_addr, "/data/head-timestamp?symbol=AAPL&timeframe=1d");
    let rows = [
        Row::new(
            "head-timestamp",
            "straight to data-host",
            head_direct.clone(),
            None,
        ),
        Row::new(
            "head-timestamp",
            "bare hyper proxy (floor of a hop)",
            Call::get(floor.addr, head_direct.path),
            Some(("proxy", floor.child.id())),
        ),
        Row::new(
            "head-timestamp",
            "through the gateway",
            Call::get(gateway_addr, "/api/v1/data/AAPL/1d/head-timestamp"),
            Some(("gateway", gateway.pid())),
        ),
        Row::new(
            "bars (21 daily)",
            "straight to data-host",
            Call::post(
                data_addr,
                "/data/historical",
                format!(
                    r#"{{"symbol":"AAPL","timeframe":"1d","start":"{BARS_START}T00:00:00Z","end":"{BARS_END}T00:00:00Z"}}"#
                ),
            ),
            None,
        ),
        Row::new(
            "bars (21 daily)",
            "from the gateway's store",
            Call::get(
                gateway_addr,
                format!("/api/v1/data/AAPL/1d?start={BARS_START}&end={BARS_END}").leak(),
            ),
            Some(("gateway", gateway.pid())),
        ),
    ];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for row in &rows {
            let body = row.call.once().await?;
            if body.is_empty() {
                return Err(format!("{} {} answered nothing", row.what, row.path).into());
            }
        }
        println!(
            "# The gateway in host mode from outside: release binaries, {rounds} interleaved rounds of {secs} s per row; load generator: 2 tokio workers, one keep-alive connection per slot"
        );
        println!(
            "| request | path | connections | req/s | vs direct | p50 µs | p99 µs | CPU µs/req: load gen | hop | data-host |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for connections in [1, 64] {
            let mut runs: Vec<Vec<Measured>> = rows.iter().map(|_| Vec::new()).collect();
            for _ in 0..rounds {
                for (i, row) in rows.iter().enumerate() {
                    let cpu = Cpu::of(row.hop, data_host.pid());
                    let load = load(&row.call, connections, secs).await?;
                    runs[i].push(cpu.finish(load));
                }
            }
            let medians: Vec<&Measured> = runs
                .iter_mut()
                .map(|r| {
                    r.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
                    &r[r.len() / 2]
                })
                .collect();
            for (i, (row, m)) in rows.iter().zip(&medians).enumerate() {
                // The direct row of the same request is the first row of its group.
                let direct = rows
                    .iter()
                    .position(|r| r.what == row.what)
                    .map_or(i, |d| d);
                let ratio = m.rps() / medians[direct].rps();
                let hop = m
                    .hop_cpu
                    .map_or("–".to_owned(), |c| format!("{:.1}", c / m.requests as f64));
                println!(
                    "| {} | {} | {} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.1} | {} | {:.1} |",
                    row.what,
                    row.path,
                    connections,
                    m.rps(),
                    ratio,
                    m.pct(0.5),
                    m.pct(0.99),
                    m.load_cpu / m.requests as f64,
                    hop,
                    m.data_cpu / m.requests as f64,
                );
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    drop(floor);
    drop(gateway);
    drop(data_host);
    Ok(())
}

/// `-- NAME X` from the bench's arguments, else `default`.
fn number_arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|n| *n > 0.0)
        .unwrap_or(default)
}

/// One request, sent again and again.
#[derive(Clone)]
struct Call {
    addr: SocketAddr,
    method: Method,
    path: &'static str,
    body: Bytes,
}

impl Call {
    fn get(addr: SocketAddr, path: &'static str) -> Self {
        Self {
            addr,
            method: Method::GET,
            path,
            body: Bytes::new(),
        }
    }

    fn post(addr: SocketAddr, path: &'static str, body: String) -> Self {
        Self {
            addr,
            method: Method::POST,
            path,
            body: Bytes::from(body),
        }
    }

    fn request(&self) -> BenchResult<Request<Full<Bytes>>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.path)
            .header(hyper::header::HOST, "127.0.0.1");
        if !self.body.is_empty() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        Ok(request.body(Full::new(self.body.clone()))?)
    }

    /// One call on a fresh connection: the answer's body (checked for success).
    async fn once(&self) -> BenchResult<Bytes> {
        let mut sender = connect(self.addr).await?;
        let response = sender.send_request(self.request()?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("{} answered {status}: {body:?}", self.path).into());
        }
        Ok(body)
    }
}

/// A keep-alive HTTP/1.1 connection to `addr`.
async fn connect(
    addr: SocketAddr,
) -> BenchResult<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A row of the table.
struct Row {
    what: &'static str,
    path: &'static str,
    call: Call,
    /// The process between the load generator and data-host, if any.
    hop: Option<(&'static str, u32)>,
}

impl Row {
    fn new(
        what: &'static str,
        path: &'static str,
        call: Call,
        hop: Option<(&'static str, u32)>,
    ) -> Self {
        Self {
            what,
            path,
            call,
            hop,
        }
    }
}

/// What one run measured.
struct Measured {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    load_cpu: f64,
    hop_cpu: Option<f64>,
    data_cpu: f64,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    }
}

/// The latencies of `connections` connections sending `call` back to back for `secs`
/// (after a short warm-up that is not counted).
struct Load {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Requests answered between the CPU readings (warm-up included).
    total: usize,
}

async fn load(call: &Call, connections: usize, secs: f64) -> BenchResult<Load> {
    let run_for = Duration::from_secs_f64(secs);
    let start = Instant::now() + Duration::from_millis(300);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(call.addr).await?;
            let mut latencies = Vec::new();
            let mut total = 0usize;
            loop {
                let now = Instant::now();
                if now >= start + run_for {
                    break;
                }
                let response = sender.send_request(call.request()?).await?;
                let status = response.status();
                response.into_body().collect().await?;
                if !status.is_success() {
                    return Err(format!("{} answered {status}", call.path).into());
                }
                total += 1;
                if now >= start {
                    latencies.push(now.elapsed());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((latencies, total))
        }));
    }
    let mut latencies = Vec::new();
    let mut total = 0;
    for task in tasks {
        let (mine, count) = task.await??;
        latencies.extend(mine);
        total += count;
    }
    latencies.sort_unstable();
    Ok(Load {
        elapsed: run_for,
        latencies,
        total,
    })
}

/// CPU seconds (user + system) the processes of a row used, read before and after.
struct Cpu {
    hop: Option<u32>,
    data_host: u32,
    before: [f64; 3],
}

impl Cpu {
    fn of(hop: Option<(&'static str, u32)>, data_host: u32) -> Self {
        let hop = hop.map(|(_, pid)| pid);
        Self {
            hop,
            data_host,
            before: Self::read(hop, data_host),
        }
    }

    fn read(hop: Option<u32>, data_host: u32) -> [f64; 3] {
        [
            cpu_seconds("self"),
            hop.map_or(0.0, |p| cpu_seconds(&p.to_string())),
            cpu_seconds(&data_host.to_string()),
        ]
    }

    /// The run's figures, CPU per request counted over every request answered while
    /// the CPU was read (warm-up included), in microseconds.
    fn finish(self, load: Load) -> Measured {
        let after = Self::read(self.hop, self.data_host);
        let used = |i: usize| {
            (after[i] - self.before[i]) * 1e6 * load.latencies.len() as f64
                / load.total.max(1) as f64
        };
        Measured {
            requests: load.latencies.len(),
            elapsed: load.elapsed,
            load_cpu: used(0),
            hop_cpu: self.hop.map(|_| used(1)),
            data_cpu: used(2),
            latencies: load.latencies,
        }
    }
}

/// utime + stime of `/proc/{pid}/stat`, in seconds (0 where /proc cannot be read).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at its closing ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    // Linux reports these in USER_HZ, 100 on every mainstream build.
    ticks / 100.0
}

/// The floor proxy started as its own process (this bench binary again).
struct FloorProcess {
    child: Child,
    addr: SocketAddr,
}

impl FloorProcess {
    fn start(upstream: SocketAddr) -> BenchResult<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(FLOOR_UPSTREAM, upstream.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("the floor proxy said {line:?}"))?
            .parse()?;
        Ok(Self { child, addr })
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The floor of a hop: accept, forward the request line and body to `upstream` over a
/// pooled connection, hand back status and body untouched. Two tokio workers, as the
/// gateway has on this box.
fn floor_proxy(upstream: SocketAddr) -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let client = client.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let client = client.clone();
                    async move { Ok::<_, Infallible>(forward(&client, upstream, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let failed = |e: String| {
        let mut response = Response::new(Full::new(Bytes::from(e)));
        *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        response
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return failed("request body".into());
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{upstream}{path}").parse::<hyper::Uri>() else {
        return failed("uri".into());
    };
    let mut onward = Request::new(Full::new(body));
    *onward.method_mut() = parts.method;
    *onward.uri_mut() = uri;
    *onward.headers_mut() = parts.headers;
    match client.request(onward).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            match body.collect().await {
                Ok(bytes) => Response::from_parts(parts, Full::new(bytes.to_bytes())),
                Err(e) => failed(e.to_string()),
            }
        }
        Err(e) => failed(e.to_string()),
    }
}
