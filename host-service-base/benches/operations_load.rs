//! Does serving many running operations hold memory per request? The real `Server`
//! scaffold with a persistent registry on 127.0.0.1:0 runs 100 operations, each
//! reporting progress every 10 ms; meanwhile 100 SSE clients follow one operation each
//! (`GET /operations/{id}/events`) and 8 keep-alive clients list them all
//! (`GET /operations?limit=1000`) back to back.
//!
//! A counting global allocator reads the heap: live bytes after a warm-up, after a
//! first batch of list requests and after a second as large. Flat means the live heap
//! does not grow with the number of requests served (what a request allocates is
//! freed when it is answered); the table also shows what one list answer allocates
//! while it is built, and the resident set size at each point.
//!
//! `cargo bench -p host-service-base --bench operations_load [-- --requests N]`

mod support;

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use host_service_base::CancellationToken;
use host_service_base::operations::{OperationHandle, Operations, OperationsConfig};
use host_service_base::server::{Server, ServerConfig};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

const OPERATIONS: usize = 100;
const LISTERS: usize = 8;
const REPORT_EVERY: Duration = Duration::from_millis(10);

// Every allocation counted (stats_alloc wraps the system allocator).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes currently allocated on the heap, and bytes ever allocated (stats_alloc folds a
/// realloc's growth or shrink into these two counts).
fn heap() -> (i64, u64) {
    let stats = GLOBAL.stats();
    (
        stats.bytes_allocated as i64 - stats.bytes_deallocated as i64,
        stats.bytes_allocated as u64,
    )
}

/// Resident set size of this process, bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One operation reporting progress until `stop`.
async fn operation(op: OperationHandle, stop: CancellationToken) {
    op.start();
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    let mut n = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        n += 1;
        op.progress(|p| {
            p.items_processed = n;
            p.percentage = (n % 100) as f64;
            p.message = Some(format!("step {n}"));
        });
    }
}

/// Follows one operation's SSE stream, counting the bytes of its events, until `stop`.
async fn follow(url: String, stop: CancellationToken, bytes: Arc<AtomicU64>) {
    let client = reqwest::Client::new();
    let Ok(response) = client.get(&url).send().await else {
        return;
    };
    let mut body = response.bytes_stream();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            chunk = body.next() => match chunk {
                Some(Ok(chunk)) => {
                    bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                _ => break,
            },
        }
    }
}

/// `requests` list requests over [`LISTERS`] keep-alive clients; the answer's size.
async fn list(client: &reqwest::Client, addr: SocketAddr, requests: usize) -> (Duration, usize) {
    let url = format!("http://{addr}/operations?limit=1000");
    let size = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..LISTERS)
        .map(|_| {
            let (client, url, size) = (client.clone(), url.clone(), size.clone());
            tokio::spawn(async move {
                for _ in 0..requests / LISTERS {
                    let response = client.get(&url).send().await.expect("list");
                    assert!(response.status().is_success(), "{}", response.status());
                    let body = response.bytes().await.expect("body");
                    size.store(body.len(), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("lister");
    }
    (started.elapsed(), size.load(Ordering::Relaxed))
}

struct Point {
    name: &'static str,
    requests: usize,
    live: i64,
    rss: usize,
}

fn main() {
    let requests = support::count_arg("--requests", 5_000);
    let runtime = support::two_worker_runtime();
    runtime.block_on(async move {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_writer(std::io::sink)
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let ops = Operations::open(OperationsConfig::persistent(dir.path().join("ops.redb")))
            .expect("registry");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        // The operations routes as services mount them, drained at shutdown.
        let routes = host_service_base::operations::router(ops.clone());
        let server = Server::new(ServerConfig::new("bench"), routes).operations(ops.clone());
        let served = tokio::spawn(server.serve(listener, shutdown.clone()));

        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut ids = Vec::new();
        for i in 0..OPERATIONS {
            let op = ops.create("bench", json!({ "index": i }));
            ids.push(op.id().to_owned());
            tasks.push(tokio::spawn(operation(op, stop.clone())));
        }
        let sse_bytes = Arc::new(AtomicU64::new(0));
        for id in &ids {
            tasks.push(tokio::spawn(follow(
                format!("http://{addr}/operations/{id}/events"),
                stop.clone(),
                sse_bytes.clone(),
            )));
        }
        let client = reqwest::Client::new();
        // Warm-up: connections, caches, the allocator's arenas.
        let (_, answer) = list(&client, addr, 400).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let mut points = vec![Point {
            name: "after warm-up",
            requests: 0,
            live: heap().0,
            rss: rss(),
        }];
        let before = heap().1;
        let (first, _) = list(&client, addr, requests).await;
        let allocated = heap().1 - before;
        points.push(Point {
            name: "after a first batch",
            requests,
            live: heap().0,
            rss: rss(),
        });
        let (second, _) = list(&client, addr, requests).await;
        points.push(Point {
            name: "after a second batch",
            requests: 2 * requests,
            live: heap().0,
            rss: rss(),
        });
        let sse_seen = sse_bytes.load(Ordering::Relaxed);

        println!(
            "# {OPERATIONS} running operations (progress every {} ms), {OPERATIONS} SSE followers, list answers of {:.1} KB from {LISTERS} clients",
            REPORT_EVERY.as_millis(),
            answer as f64 / 1e3
        );
        println!("| point | list requests served | live heap | RSS |");
        println!("|---|---:|---:|---:|");
        for p in &points {
            println!(
                "| {} | {} | {:.2} MB | {:.1} MB |",
                p.name,
                p.requests,
                p.live as f64 / 1e6,
                p.rss as f64 / 1e6
            );
        }
        let growth = |a: &Point, b: &Point| (b.live as f64 - a.live as f64) / requests as f64;
        println!(
            "\nlive heap change per list request: first batch {:+.1} B, second batch {:+.1} B",
            growth(&points[0], &points[1]),
            growth(&points[1], &points[2])
        );
        println!(
            "allocated while serving (all threads, incl. progress and SSE): {:.1} KB per list request; list throughput {:.0} and {:.0} req/s; SSE bytes received {:.1} MB",
            allocated as f64 / requests as f64 / 1e3,
            requests as f64 / first.as_secs_f64(),
            requests as f64 / second.as_secs_f64(),
            sse_seen as f64 / 1e6
        );

        stop.cancel();
        for task in tasks {
            let _ = task.await;
        }
        shutdown.cancel();
        let _ = served.await;
    });
}
