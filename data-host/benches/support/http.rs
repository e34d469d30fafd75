//! Benchmarks that time real servers from outside: start a binary (or the Python peer),
//! fetch one large answer while sampling the server's resident memory, take medians.
//! Shared by data-host's json_contract and the gateway's bars_json benches (the latter
//! includes this file by path).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A server process, killed when the bench ends however it ends.
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a hostbridge binary that logs JSON (its `listening` line names the address).
pub(crate) fn start_logged(name: &'static str, mut command: Command) -> BenchResult<Server> {
    let mut child = command
        .env("HOSTBRIDGE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().ok_or("the server exited before listening")??;
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["addr"]
                .as_str()
                .ok_or("no addr")?
                .to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Server {
        name,
        child,
        base: format!("http://{addr}"),
    })
}

/// The FastAPI + pandas peer (`data-host/benches/python/pandas_host.py`) serving the
/// bars of `csv`, or why it cannot run here.
pub(crate) fn start_pandas_host(name: &'static str, csv: &Path) -> Result<Server, String> {
    let check = Command::new("python3")
        .args(["-c", "import fastapi, uvicorn, pandas"])
        .output()
        .map_err(|e| format!("no python3 ({e})"))?;
    if !check.status.success() {
        return Err(
            "python3 lacks fastapi, uvicorn or pandas (pip install fastapi uvicorn pandas)".into(),
        );
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data-host/benches/python/pandas_host.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(csv)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let port = line
        .trim()
        .strip_prefix("listening ")
        .ok_or_else(|| format!("pandas host said {line:?}"))?
        .to_owned();
    Ok(Server {
        name,
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

/// Resident set size of a process, bytes (Linux).
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One answer fetched whole.
pub(crate) struct Fetch {
    pub(crate) first_byte: Duration,
    pub(crate) last_byte: Duration,
    pub(crate) body: Vec<u8>,
    /// Peak resident memory of the server while answering, above where it started.
    pub(crate) rss_growth: u64,
}

/// Sends `request` and reads the answer to its last byte, sampling the RSS of process
/// `pid` every 2 ms meanwhile.
pub(crate) async fn fetch(pid: u32, request: reqwest::RequestBuilder) -> BenchResult<Fetch> {
    let baseline = rss_bytes(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let t = Instant::now();
    let answer = async {
        let mut response = request.send().await?.error_for_status()?;
        let mut body = Vec::new();
        let mut first_byte = None;
        while let Some(chunk) = response.chunk().await? {
            first_byte.get_or_insert_with(|| t.elapsed());
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>((first_byte, body))
    }
    .await;
    let last_byte = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let (first_byte, body) = answer?;
    Ok(Fetch {
        first_byte: first_byte.unwrap_or(last_byte),
        last_byte,
        body,
        rss_growth: peak.load(Ordering::Relaxed).saturating_sub(baseline),
    })
}

/// Fetches until the server answers (a freshly started one may not accept yet), for at
/// most two minutes.
pub(crate) async fn first_answer(
    pid: u32,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> BenchResult<Fetch> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match fetch(pid, request()).await {
            Ok(answer) => return Ok(answer),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Median fetch figures of `runs` fetches (memory: the largest growth seen).
pub(crate) struct Measured {
    pub(crate) first_byte: Duration,
    pub(crate) last_byte: Duration,
    pub(crate) bytes: usize,
    pub(crate) rss_growth: u64,
}

pub(crate) async fn measure(
    pid: u32,
    runs: usize,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> BenchResult<Measured> {
    let (mut first, mut last, mut growth, mut bytes) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..runs {
        let f = fetch(pid, request()).await?;
        first.push(f.first_byte);
        last.push(f.last_byte);
        growth = growth.max(f.rss_growth);
        bytes = f.body.len();
    }
    Ok(Measured {
        first_byte: median(first),
        last_byte: median(last),
        bytes,
        rss_growth: growth,
    })
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The first difference between two texts, with context, or None when they are equal.
pub(crate) fn first_difference(ours: &str, theirs: &str) -> Option<String> {
    if ours == theirs {
        return None;
    }
    let at = ours
        .bytes()
        .zip(theirs.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let window = |s: &str| {
        let from = at.saturating_sub(60);
        s.get(from..(at + 60).min(s.len()))
            .unwrap_or_default()
            .to_owned()
    };
    Some(format!(
        "at byte {at}:\n  ours:   {}\n  theirs: {}",
        window(ours),
        window(theirs)
    ))
}

/// Prints the side-by-side table of the servers' figures and, for two, the ratios.
pub(crate) fn print_table(title: &str, rows: &[(&str, &Measured)]) {
    println!("{title}\n");
    println!("| server | first byte | last byte | answer | RSS growth while serving (max) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, m) in rows {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} MB | {:.1} MB |",
            m.first_byte.as_secs_f64() * 1e3,
            m.last_byte.as_secs_f64() * 1e3,
            m.bytes as f64 / 1e6,
            m.rss_growth as f64 / 1e6,
        );
    }
    if let [(_, ours), (_, theirs)] = rows {
        println!(
            "\nanswer fetched {:.1}x faster (last byte), first byte {:.0}x sooner; size {:.3}x of the Python answer",
            theirs.last_byte.as_secs_f64() / ours.last_byte.as_secs_f64(),
            theirs.first_byte.as_secs_f64() / ours.first_byte.as_secs_f64(),
            ours.bytes as f64 / theirs.bytes as f64,
        );
    }
}

/// `[ROWS] [--runs N]` from the command line (defaults: 1,000,000 rows, 5 runs).
pub(crate) fn rows_and_runs() -> (usize, usize) {
    let mut args = std::env::args().skip(1);
    let (mut rows, mut runs) = (1_000_000, 5);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            other => rows = other.parse().unwrap_or(rows),
        }
    }
    (rows, runs)
}
