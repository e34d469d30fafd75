//! What one host call costs the caller: the same GET with a query (the gateway's
//! head-timestamp call to data-host) on a bare hyper server, through `HostClient`,
//! through plain reqwest (what `HostClient` was built on before) and through hyper's
//! pooled client alone (the floor), 64 calls in flight, interleaved rounds. Each row
//! prints calls per second and this process's CPU per call (client and server both:
//! the server is the same in every row, so differences are the client's).
//!
//! `cargo bench -p host-service-base --bench client_cost` (`-- --calls N` per row,
//! `--rounds N`, `--concurrency N`).

mod support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use host_service_base::HostClient;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// data-host's head-timestamp answer.
const ANSWER: &[u8] = br#"{"success":true,"timestamp":"2000-03-01T00:00:00+00:00","error":null}"#;
const PATH: &str = "/data/head-timestamp";

/// This process's CPU seconds (user + system) from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 (11 and 12 after the state field).
    (ticks(11).expect("utime") + ticks(12).expect("stime")) / 100.0
}

struct Row {
    rate: f64,
    cpu_us: f64,
}

/// `calls` calls, `concurrency` in flight.
async fn run<F, Fut>(calls: usize, concurrency: usize, call: F) -> Row
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let left = Arc::new(AtomicUsize::new(calls));
    let cpu = cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = Arc::clone(&call);
            let left = Arc::clone(&left);
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    call().await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let wall = started.elapsed().as_secs_f64();
    Row {
        rate: calls as f64 / wall,
        cpu_us: (cpu_seconds() - cpu) * 1e6 / calls as f64,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let calls = support::count_arg("--calls", 50_000);
    let rounds = support::count_arg("--rounds", 3);
    let concurrency = support::count_arg("--concurrency", 64);
    support::two_worker_runtime().block_on(async move {
        let addr = support::bare_hyper(Bytes::from_static(ANSWER)).await;
        let base = format!("http://{addr}");
        let url = format!("{base}{PATH}?symbol=AAPL&timeframe=1d");

        let host = HostClient::new("bench", &base).expect("client");
        let reqwest = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("reqwest");
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(tcp);
        let uri: hyper::Uri = url.parse().expect("uri");

        let names = [
            "HostClient (hyper underneath)",
            "reqwest (HostClient's former base)",
            "hyper-util pooled client (floor)",
        ];
        let mut rates = [Vec::new(), Vec::new(), Vec::new()];
        let mut cpus = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..rounds {
            for (i, rates) in rates.iter_mut().enumerate() {
                let row = match i {
                    0 => {
                        let host = host.clone();
                        run(calls, concurrency, move || {
                            let host = host.clone();
                            async move {
                                let answer = host
                                    .get(PATH)
                                    .query(&[("symbol", "AAPL"), ("timeframe", "1d")])
                                    .send_bytes()
                                    .await
                                    .expect("HostClient call");
                                assert_eq!(answer.body.len(), ANSWER.len());
                            }
                        })
                        .await
                    }
                    1 => {
                        let (client, url) = (reqwest.clone(), url.clone());
                        run(calls, concurrency, move || {
                            let (client, url) = (client.clone(), url.clone());
                            async move {
                                let body = client
                                    .get(&url)
                                    .send()
                                    .await
                                    .expect("reqwest call")
                                    .bytes()
                                    .await
                                    .expect("reqwest body");
                                assert_eq!(body.len(), ANSWER.len());
                            }
                        })
                        .await
                    }
                    _ => {
                        let (client, uri) = (hyper.clone(), uri.clone());
                        run(calls, concurrency, move || {
                            let (client, uri) = (client.clone(), uri.clone());
                            async move {
                                let mut request = Request::new(Full::new(Bytes::new()));
                                *request.uri_mut() = uri;
                                let body = client
                                    .request(request)
                                    .await
                                    .expect("hyper call")
                                    .into_body()
                                    .collect()
                                    .await
                                    .expect("hyper body")
                                    .to_bytes();
                                assert_eq!(body.len(), ANSWER.len());
                            }
                        })
                        .await
                    }
                };
                rates.push(row.rate);
                cpus[i].push(row.cpu_us);
            }
        }
        let rate: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
        let cpu: Vec<f64> = cpus.iter_mut().map(|c| median(c)).collect();
        println!(
            "GET {PATH}?query on loopback, {concurrency} in flight, {calls} calls per row, \
             median of {rounds} interleaved rounds\n"
        );
        println!("| client | calls/s | CPU µs/call | vs floor (CPU) |");
        println!("|---|---:|---:|---:|");
        for i in 0..3 {
            println!(
                "| {} | {:.0} | {:.1} | {:.2}x |",
                names[i],
                rate[i],
                cpu[i],
                cpu[i] / cpu[2]
            );
        }
    });
}
