//! Does persisting operations stall the runtime? The real `Server` scaffold with a
//! persistent operations registry (redb in a temp dir under target/) on 127.0.0.1:0;
//! 50 operations report progress every millisecond for a few seconds while a separate
//! thread measures `GET /health` with reqwest, one request every 2 ms (a request held
//! up by a stall also counts the requests it kept from being sent). Rows, each with
//! progress persisted at the default interval (1 s) and at every update (0):
//!
//! - idle: no operations;
//! - before: what the registry did up to issue 15, reproduced here: the state is kept
//!   by an in-memory registry and every due write is a redb commit run inline on the
//!   async task that reported it (the old `Shared::persist`);
//! - after: the registry as it is: writes are queued for the store's writer thread,
//!   which coalesces them; status changes wait for their commit off the worker.
//!
//! `cargo bench -p host-service-base --bench progress_burst` (`-- --secs N` per row).
//! The target of issue 15: p99 of `/health` under 5 ms during the burst.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use host_service_base::CancellationToken;
use host_service_base::operations::{OperationHandle, Operations, OperationsConfig};
use host_service_base::server::{Server, ServerConfig};
use redb::{Database, TableDefinition};
use serde_json::json;

const OPERATIONS: usize = 50;
/// How often each operation reports progress.
const REPORT_EVERY: Duration = Duration::from_millis(1);
/// How often the probe asks for `/health`.
const PROBE_EVERY: Duration = Duration::from_millis(2);
/// The registry's table, as `operations/store.rs` defines it.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("operations");

/// How the burst persists.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Idle,
    Inline,
    Writer,
}

struct Row {
    load: &'static str,
    interval: &'static str,
    updates: u64,
    commits: u64,
    /// Answers the probe got (the percentiles also count the requests a slow one held
    /// up).
    answers: usize,
    latencies: Vec<Duration>,
}

impl Row {
    fn ms(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// The old write path: one redb commit of the whole state, on the calling thread.
fn commit_inline(db: &Database, handle: &OperationHandle) {
    let info = handle.info();
    let json = serde_json::to_vec(&info).expect("json");
    let txn = db.begin_write().expect("begin");
    txn.open_table(TABLE)
        .expect("table")
        .insert(info.operation_id.as_str(), json.as_slice())
        .expect("insert");
    txn.commit().expect("commit");
}

/// One operation of the burst: start, progress every [`REPORT_EVERY`] until `until`,
/// complete. With `inline`, each due write is committed right here, as before.
async fn operation(
    ops: Operations,
    inline: Option<(Arc<Database>, Duration, Arc<AtomicU64>)>,
    until: Instant,
    updates: Arc<AtomicU64>,
) {
    let op = ops.create("burst", json!({}));
    let commit = |op: &OperationHandle| {
        if let Some((db, _, commits)) = &inline {
            commit_inline(db, op);
            commits.fetch_add(1, Ordering::Relaxed);
        }
    };
    commit(&op);
    op.start();
    commit(&op);
    let mut last_commit = Instant::now();
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    let mut n = 0u64;
    while Instant::now() < until {
        ticker.tick().await;
        n += 1;
        op.progress(|p| {
            p.items_processed = n;
            p.message = Some(format!("update {n}"));
        });
        updates.fetch_add(1, Ordering::Relaxed);
        if let Some((_, interval, _)) = &inline
            && last_commit.elapsed() >= *interval
        {
            commit(&op);
            last_commit = Instant::now();
        }
    }
    op.complete(json!({"updates": n}));
    commit(&op);
}

/// `GET /health` every [`PROBE_EVERY`] for `secs`, from its own thread and runtime, so
/// that what it measures is the server's delay, not its own.
fn probe(addr: SocketAddr, run_for: Duration) -> std::thread::JoinHandle<(usize, Vec<Duration>)> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("probe runtime");
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let url = format!("http://{addr}/health");
            // One request first, so the row does not pay for the connection.
            client.get(&url).send().await.expect("warm-up");
            let end = Instant::now() + run_for;
            let mut ticker = tokio::time::interval(PROBE_EVERY);
            // After a stall the next request goes when it can, not in a catch-up burst:
            // the requests the stall held up are counted below instead.
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut latencies = Vec::new();
            let mut answers = 0;
            while Instant::now() < end {
                ticker.tick().await;
                let start = Instant::now();
                let response = client.get(&url).send().await.expect("health");
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.bytes().await.expect("body");
                let took = start.elapsed();
                answers += 1;
                latencies.push(took);
                // No coordinated omission: the requests that would have been sent every
                // PROBE_EVERY while this one waited would have waited too, a little less
                // each (HdrHistogram's recordValueWithExpectedInterval).
                let mut held = took;
                while held > PROBE_EVERY {
                    held -= PROBE_EVERY;
                    latencies.push(held);
                }
            }
            latencies.sort_unstable();
            (answers, latencies)
        })
    })
}

async fn row(path: Mode, interval: Duration, run_for: Duration, dir: &Path) -> Row {
    let store = dir.join(format!("{}.redb", unique_name()));
    let config = OperationsConfig {
        progress_persist_interval: interval,
        ..OperationsConfig::persistent(&store)
    };
    // The server's own registry is persistent in every row, as services run it; the
    // old path keeps its states in memory and commits them itself to `inline.redb`.
    let ops = Operations::open(config).expect("registry");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let server = Server::new(ServerConfig::new("bench"), Router::new()).operations(ops.clone());
    let served = tokio::spawn(server.serve(listener, shutdown.clone()));

    let probe = probe(addr, run_for);
    let until = Instant::now() + run_for;
    let updates = Arc::new(AtomicU64::new(0));
    let commits = Arc::new(AtomicU64::new(0));
    let commits_before = ops.store_commits().unwrap_or(0);
    let mut tasks = Vec::new();
    if path != Mode::Idle {
        let inline = (path == Mode::Inline).then(|| {
            let db = Database::create(dir.join(format!("inline-{}.redb", unique_name())))
                .expect("inline store");
            (Arc::new(db), interval, commits.clone())
        });
        let work = if inline.is_some() {
            Operations::in_memory()
        } else {
            ops.clone()
        };
        for _ in 0..OPERATIONS {
            tasks.push(tokio::spawn(operation(
                work.clone(),
                inline.clone(),
                until,
                updates.clone(),
            )));
        }
    }
    for task in tasks {
        task.await.expect("operation task");
    }
    let (answers, latencies) = probe.join().expect("probe thread");
    let commits = match path {
        Mode::Inline => commits.load(Ordering::Relaxed),
        _ => ops.store_commits().unwrap_or(0) - commits_before,
    };
    shutdown.cancel();
    let _ = served.await;
    Row {
        load: match path {
            Mode::Idle => "idle",
            Mode::Inline => "burst, before (inline commits)",
            Mode::Writer => "burst, after (writer thread)",
        },
        interval: match (path, interval.is_zero()) {
            (Mode::Idle, _) => "-",
            (_, true) => "every update",
            (_, false) => "1 s (default)",
        },
        updates: updates.load(Ordering::Relaxed),
        commits,
        answers,
        latencies,
    }
}

/// A file name no other row uses.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("ops-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn main() {
    let secs = support::secs_arg(3.0);
    let run_for = Duration::from_secs_f64(secs);
    // On the real disk (target/tmp), not a tmpfs where an fsync costs nothing.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let runtime = support::two_worker_runtime();
    runtime.block_on(async move {
        println!(
            "# GET /health while {OPERATIONS} operations report progress every {} ms ({secs} s per row, 2 tokio workers, redb on {})",
            REPORT_EVERY.as_millis(),
            dir.path().display()
        );
        println!(
            "| load | progress persisted | progress updates | commits | /health answers | p50 ms | p99 ms | max ms |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        let mut rows = vec![row(Mode::Idle, Duration::from_secs(1), run_for, dir.path()).await];
        for interval in [Duration::from_secs(1), Duration::ZERO] {
            for path in [Mode::Inline, Mode::Writer] {
                rows.push(row(path, interval, run_for, dir.path()).await);
            }
        }
        for row in &rows {
            println!(
                "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                row.load,
                row.interval,
                row.updates,
                row.commits,
                row.answers,
                row.ms(0.5),
                row.ms(0.99),
                row.ms(1.0)
            );
        }
    });
}
