//! Operations registry tests: a real registry (in memory or on a redb file in a temp
//! dir) and, for the API, a real axum server on 127.0.0.1:0 talked to with reqwest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use host_service_base::operations::{
    CancelError, EventStream, OperationEvent, OperationEventKind, OperationFilter,
    OperationProgress, OperationStatus, Operations, OperationsConfig, router,
};
use serde_json::{Value, json};

/// Keeps a broken test from hanging; never part of an assertion.
const GUARD: Duration = Duration::from_secs(20);

async fn next_event(stream: &mut EventStream) -> Option<OperationEvent> {
    tokio::time::timeout(GUARD, stream.next())
        .await
        .expect("event stream stalled")
}

fn config(dir: &tempfile::TempDir) -> OperationsConfig {
    OperationsConfig::persistent(dir.path().join("ops/operations.redb"))
}

#[tokio::test]
async fn create_start_progress_complete() {
    let ops = Operations::in_memory();
    let op = ops.create("data_load", json!({"symbol": "AAPL", "timeframe": "1h"}));
    let info = ops.get(op.id()).expect("created");
    assert_eq!(info.status, OperationStatus::Pending);
    assert!(info.operation_id.starts_with("op_data_load_"));
    assert_eq!(info.duration_seconds(), None);

    assert!(op.start());
    assert!(!op.start(), "start twice is a no-op");
    assert!(op.progress(|p| {
        p.percentage = 140.0;
        p.current_step = Some("segment 1/2".into());
        p.items_processed = 10;
    }));
    let info = ops.get(op.id()).expect("exists");
    assert_eq!(info.status, OperationStatus::Running);
    assert_eq!(info.progress.percentage, 100.0, "clamped");
    assert_eq!(info.summary().symbol.as_deref(), Some("AAPL"));
    assert!(op.warn("gap in data"));

    assert!(op.complete(json!({"rows": 42})));
    let info = ops.get(op.id()).expect("exists");
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.result_summary, Some(json!({"rows": 42})));
    assert_eq!(info.warnings, ["gap in data"]);
    assert!(info.started_at.is_some() && info.completed_at >= info.started_at);
    assert!(info.duration_seconds().is_some_and(|d| d >= 0.0));
    assert!(!op.fail("late"), "terminal states never change");
    assert_eq!(
        ops.get(op.id()).map(|i| i.status),
        Some(OperationStatus::Completed)
    );
}

#[tokio::test]
async fn fail_records_the_message() {
    let ops = Operations::in_memory();
    let op = ops.create("training", Value::Null);
    op.start();
    assert!(op.fail("out of memory"));
    let info = ops.get(op.id()).expect("exists");
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("out of memory"));
    assert_eq!(info.metadata, json!({}));
    assert!(info.completed_at.is_some());
}

#[tokio::test]
async fn cancel_fires_the_token_and_wins_over_complete() {
    let ops = Operations::in_memory();
    let op = ops.create("training", json!({}));
    let token = op.token();
    op.start();
    let info = ops
        .cancel(op.id(), Some("user pressed stop".into()))
        .expect("cancel");
    assert!(token.is_cancelled());
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.error_message.as_deref(), Some("user pressed stop"));
    assert!(info.completed_at.is_some());

    assert!(!op.complete(json!({"late": true})));
    assert!(!op.progress(|p| p.percentage = 50.0));
    let info = ops.get(op.id()).expect("exists");
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.result_summary, None);

    assert_eq!(
        ops.cancel(op.id(), None),
        Err(CancelError::AlreadyFinished {
            operation_id: op.id().to_owned(),
            status: OperationStatus::Cancelled
        })
    );
    assert!(matches!(
        ops.cancel("op_nope", None),
        Err(CancelError::NotFound { .. })
    ));
}

#[tokio::test]
async fn spawned_task_stops_when_cancelled() {
    let ops = Operations::in_memory();
    let exited = Arc::new(AtomicBool::new(false));
    let flag = exited.clone();
    let op = ops.spawn("training", json!({}), move |op| async move {
        let token = op.token();
        let mut batch = 0u64;
        while !token.is_cancelled() {
            batch += 1;
            op.progress(|p| p.items_processed = batch);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        flag.store(true, Ordering::SeqCst);
        Ok(json!({"batches": batch}))
    });
    assert_eq!(op.status(), OperationStatus::Running);
    tokio::time::sleep(Duration::from_millis(20)).await;
    ops.cancel(op.id(), None).expect("cancel");
    assert!(ops.wait_idle_for(GUARD).await, "task ended");
    assert!(exited.load(Ordering::SeqCst));
    let info = ops.get(op.id()).expect("exists");
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.error_message.as_deref(), Some("cancelled by user"));
    assert_eq!(
        info.result_summary, None,
        "the Ok result of a cancelled task is dropped"
    );
}

#[tokio::test]
async fn spawned_task_outcomes_set_the_status() {
    let ops = Operations::in_memory();
    let ok = ops.spawn("a", json!({}), |_| async { Ok(json!({"n": 1})) });
    let err = ops.spawn("a", json!({}), |_| async { Err("no data".to_owned()) });
    let panicked = ops.spawn("a", json!({}), |_| async {
        if true {
            panic!("boom");
        }
        Ok(Value::Null)
    });
    let token_only = ops.spawn("a", json!({}), |op| async move {
        op.token().cancel();
        Ok(Value::Null)
    });
    assert!(ops.wait_idle_for(GUARD).await);
    let status = |h: &host_service_base::operations::OperationHandle| h.info();
    assert_eq!(status(&ok).status, OperationStatus::Completed);
    assert_eq!(status(&ok).progress.percentage, 100.0);
    assert_eq!(status(&err).error_message.as_deref(), Some("no data"));
    assert_eq!(status(&panicked).status, OperationStatus::Failed);
    assert_eq!(status(&token_only).status, OperationStatus::Cancelled);
}

#[tokio::test]
async fn cancel_all_cancels_only_active_operations() {
    let ops = Operations::in_memory();
    let a = ops.create("x", json!({}));
    let b = ops.create("x", json!({}));
    b.start();
    let c = ops.create("x", json!({}));
    c.complete(json!({}));
    assert_eq!(ops.cancel_all("shutting down"), 2);
    assert!(a.token().is_cancelled() && b.token().is_cancelled());
    assert_eq!(b.info().error_message.as_deref(), Some("shutting down"));
    assert_eq!(c.status(), OperationStatus::Completed);
    assert_eq!(ops.active_count(), 0);
}

#[tokio::test]
async fn interrupt_all_fails_only_active_operations_and_fires_their_tokens() {
    let ops = Operations::in_memory();
    let a = ops.create("x", json!({}));
    let b = ops.create("x", json!({}));
    b.start();
    let c = ops.create("x", json!({}));
    c.complete(json!({}));
    assert_eq!(ops.interrupt_all("service shut down"), 2);
    for active in [&a, &b] {
        assert!(active.token().is_cancelled());
        let info = active.info();
        assert_eq!(info.status, OperationStatus::Failed);
        assert_eq!(info.error_message.as_deref(), Some("service shut down"));
        assert!(info.completed_at.is_some());
    }
    // Work that notices the token afterwards cannot turn it into `cancelled`.
    assert!(!b.mark_cancelled("late"));
    assert_eq!(b.status(), OperationStatus::Failed);
    assert_eq!(c.status(), OperationStatus::Completed);
    assert_eq!(ops.active_count(), 0);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (done_json, failed_json, running_id) = {
        let ops = Operations::open(config(&dir)).expect("open");
        let done = ops.create(
            "data_load",
            json!({"symbol": "MSFT", "parameters": {"k": 1}}),
        );
        done.start();
        done.progress(|p| p.current_step = Some("last".into()));
        done.warn("w1");
        done.complete(json!({"rows": 1234, "segments": [1, 2]}));
        let failed = ops.create("training", json!({}));
        failed.start();
        failed.fail("diverged");
        let running = ops.create("training", json!({"symbol": "AAPL"}));
        running.start();
        let as_json = |id: &str| serde_json::to_value(ops.get(id).expect("exists")).expect("json");
        (
            as_json(done.id()),
            as_json(failed.id()),
            running.id().to_owned(),
        )
    }; // registry and handles dropped: the store is closed

    let ops = Operations::open(config(&dir)).expect("reopen");
    let id_of = |v: &Value| v["operation_id"].as_str().expect("id").to_owned();
    let reloaded = |id: &str| serde_json::to_value(ops.get(id).expect("reloaded")).expect("json");
    assert_eq!(reloaded(&id_of(&done_json)), done_json);
    assert_eq!(reloaded(&id_of(&failed_json)), failed_json);
    let running = ops.get(&running_id).expect("reloaded");
    assert_eq!(running.status, OperationStatus::Failed);
    assert_eq!(
        running.error_message.as_deref(),
        Some("interrupted by restart")
    );
    assert!(running.completed_at.is_some());
    assert_eq!(ops.interrupted_at_open(), std::slice::from_ref(&running_id));
    drop(ops);

    // The recovery was written back: a third open sees the same failed state, and
    // finds nothing newly interrupted.
    let ops = Operations::open(config(&dir)).expect("third open");
    let again = ops.get(&running_id).expect("still there");
    assert_eq!(again, running);
    assert!(ops.interrupted_at_open().is_empty());
}

#[tokio::test]
async fn a_second_registry_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Operations::open(config(&dir)).expect("open");
    assert!(Operations::open(config(&dir)).is_err());
}

#[tokio::test]
async fn progress_is_persisted_only_when_the_interval_allows() {
    for (interval, expected) in [(Duration::from_secs(3600), 0.0), (Duration::ZERO, 30.0)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = OperationsConfig {
            progress_persist_interval: interval,
            ..config(&dir)
        };
        let id = {
            let ops = Operations::open(cfg.clone()).expect("open");
            let op = ops.create("x", json!({}));
            op.start(); // written through; starts the progress interval
            op.set_progress(OperationProgress {
                percentage: 30.0,
                ..OperationProgress::default()
            });
            assert_eq!(
                op.info().progress.percentage,
                30.0,
                "memory is always current"
            );
            op.id().to_owned()
        };
        let ops = Operations::open(cfg).expect("reopen");
        let info = ops.get(&id).expect("reloaded");
        assert_eq!(info.progress.percentage, expected, "interval {interval:?}");
    }
}

#[tokio::test]
async fn concurrent_writers_never_leave_a_stale_state_in_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = OperationsConfig {
        progress_persist_interval: Duration::ZERO, // every progress update is written
        ..config(&dir)
    };
    let (id, final_state) = {
        let ops = Operations::open(cfg.clone()).expect("open");
        let op = ops.create("x", json!({}));
        op.start();
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let op = op.clone();
                scope.spawn(move || {
                    for i in 0..50u64 {
                        op.progress(|p| p.items_processed = t * 1000 + i);
                    }
                });
            }
            let ops = ops.clone();
            let id = op.id().to_owned();
            scope.spawn(move || ops.cancel(&id, Some("stop".into())));
        });
        assert_eq!(op.status(), OperationStatus::Cancelled);
        let final_state = serde_json::to_value(op.info()).expect("json");
        (op.id().to_owned(), final_state)
    };
    let ops = Operations::open(cfg).expect("reopen");
    let stored = serde_json::to_value(ops.get(&id).expect("stored")).expect("json");
    assert_eq!(
        stored, final_state,
        "the store holds the final (cancelled) state"
    );
}

/// A burst of writers on a multi-threaded runtime (as services run): 50 operations
/// report progress as fast as they can with every update asking to be written, half
/// then complete and half stop where they are. The store's writer coalesces the burst;
/// none of the 50 may lose its final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_progress_writers_loses_no_final_state() {
    const OPERATIONS: u64 = 50;
    const UPDATES: u64 = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = OperationsConfig {
        progress_persist_interval: Duration::ZERO,
        ..config(&dir)
    };
    let finals: Vec<(String, Value)> = {
        let ops = Operations::open(cfg.clone()).expect("open");
        let mut tasks = Vec::new();
        for n in 0..OPERATIONS {
            let op = ops.create("burst", json!({"n": n}));
            tasks.push(tokio::spawn(async move {
                op.start();
                for i in 1..=UPDATES {
                    op.progress(|p| {
                        p.items_processed = i;
                        p.message = Some(format!("update {i} of {n}"));
                    });
                    tokio::task::yield_now().await;
                }
                if n % 2 == 0 {
                    assert!(op.complete(json!({"n": n})));
                }
                (
                    op.id().to_owned(),
                    serde_json::to_value(op.info()).expect("json"),
                )
            }));
        }
        let mut finals = Vec::new();
        for task in tasks {
            finals.push(task.await.expect("writer task"));
        }
        let commits = ops.store_commits().expect("persistent");
        assert!(commits > 0, "the burst was written");
        finals
    }; // registry and handles dropped: the writer drains its queue and closes the file

    let ops = Operations::open(cfg).expect("reopen");
    for (id, last) in finals {
        let stored = ops.get(&id).expect("every operation is stored");
        assert_eq!(stored.progress.items_processed, UPDATES, "{id}");
        if last["status"] == "completed" {
            assert_eq!(serde_json::to_value(&stored).expect("json"), last, "{id}");
        } else {
            // Still running when the store closed: it comes back interrupted, with the
            // last progress it reported.
            assert_eq!(stored.status, OperationStatus::Failed, "{id}");
            assert_eq!(
                serde_json::to_value(&stored.progress).expect("json"),
                last["progress"],
                "{id}"
            );
        }
    }
    assert_eq!(ops.list(&OperationFilter::default()).1, OPERATIONS as usize);
}

#[tokio::test]
async fn prune_removes_old_finished_operations_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = OperationsConfig {
        retention: Duration::from_secs(3600),
        ..config(&dir)
    };
    let running_id = {
        let ops = Operations::open(cfg.clone()).expect("open");
        let done = ops.create("x", json!({}));
        done.complete(json!({}));
        let failed = ops.create("x", json!({}));
        failed.fail("no");
        let running = ops.create("x", json!({}));
        running.start();
        let pending = ops.create("x", json!({}));
        assert_eq!(ops.prune(Utc::now()), 0, "nothing is old yet");
        assert_eq!(ops.prune(Utc::now() + chrono::Duration::hours(2)), 2);
        assert!(ops.get(done.id()).is_none() && ops.get(failed.id()).is_none());
        assert_eq!(
            ops.prune(Utc::now() + chrono::Duration::days(10_000)),
            0,
            "active stay"
        );
        assert!(ops.get(running.id()).is_some() && ops.get(pending.id()).is_some());
        running.id().to_owned()
    };
    let ops = Operations::open(cfg).expect("reopen");
    let (all, total, _) = ops.list(&OperationFilter::default());
    assert_eq!(total, 2, "pruned rows are gone from the store too");
    assert!(all.iter().any(|i| i.operation_id == running_id));
}

#[tokio::test]
async fn pruner_task_prunes_and_stops_on_shutdown() {
    let ops = Operations::open(OperationsConfig {
        retention: Duration::ZERO,
        ..OperationsConfig::default()
    })
    .expect("open");
    let op = ops.create("x", json!({}));
    op.complete(json!({}));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = ops.spawn_pruner(Duration::from_millis(5), shutdown.clone());
    tokio::time::timeout(GUARD, async {
        while ops.get(op.id()).is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("pruned");
    shutdown.cancel();
    tokio::time::timeout(GUARD, task)
        .await
        .expect("stopped")
        .expect("no panic");
}

#[tokio::test]
async fn list_filters_and_totals() {
    let ops = Operations::in_memory();
    let mut ids = Vec::new();
    for i in 0..6 {
        let op = ops.create(if i % 2 == 0 { "data_load" } else { "training" }, json!({}));
        match i {
            0 | 1 => {
                op.start();
            }
            2 => {
                op.complete(json!({}));
            }
            3 => {
                op.fail("x");
            }
            _ => {}
        }
        ids.push(op.id().to_owned());
    }
    let list = |f: OperationFilter| ops.list(&f);

    let (all, total, active) = list(OperationFilter::default());
    assert_eq!((all.len(), total, active), (6, 6, 4));
    assert!(
        all.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "newest first"
    );

    let (running, total, _) = list(OperationFilter {
        status: Some(OperationStatus::Running),
        ..OperationFilter::default()
    });
    assert_eq!(total, 2);
    assert!(running.iter().all(|i| i.status == OperationStatus::Running));

    let (loads, total, active) = list(OperationFilter {
        operation_type: Some("data_load".into()),
        active_only: true,
        ..OperationFilter::default()
    });
    assert_eq!(
        (total, active),
        (2, 4),
        "active_count covers the whole registry"
    );
    assert!(
        loads
            .iter()
            .all(|i| i.operation_type == "data_load" && !i.status.is_terminal())
    );

    let (page, total, _) = list(OperationFilter {
        limit: Some(2),
        offset: 3,
        ..OperationFilter::default()
    });
    assert_eq!(total, 6);
    let expected: Vec<_> = all[3..5].iter().map(|i| i.operation_id.clone()).collect();
    assert_eq!(
        page.iter()
            .map(|i| i.operation_id.clone())
            .collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test]
async fn subscribe_streams_changes_and_ends_after_terminal() {
    let ops = Operations::in_memory();
    let op = ops.create("x", json!({}));
    let mut events = ops.subscribe(op.id()).expect("known id");
    let first = next_event(&mut events).await.expect("snapshot");
    assert_eq!(
        (first.kind, first.operation.status),
        (OperationEventKind::Snapshot, OperationStatus::Pending)
    );

    op.start();
    op.progress(|p| p.percentage = 10.0);
    op.complete(json!({}));
    op.progress(|p| p.percentage = 99.0); // ignored: terminal
    let kinds: Vec<_> = [
        next_event(&mut events).await,
        next_event(&mut events).await,
        next_event(&mut events).await,
    ]
    .into_iter()
    .map(|e| e.map(|e| (e.kind, e.seq)))
    .collect();
    assert_eq!(
        kinds,
        [
            Some((OperationEventKind::Status, 1)),
            Some((OperationEventKind::Progress, 2)),
            Some((OperationEventKind::Terminal, 3)),
        ]
    );
    assert!(
        next_event(&mut events).await.is_none(),
        "ends after terminal"
    );

    // A finished operation yields one terminal event and ends.
    let mut late = ops.subscribe(op.id()).expect("known id");
    let only = next_event(&mut late).await.expect("terminal");
    assert_eq!(only.kind, OperationEventKind::Terminal);
    assert_eq!(only.operation.status, OperationStatus::Completed);
    assert!(next_event(&mut late).await.is_none());
    assert!(ops.subscribe("op_unknown").is_none());
}

#[tokio::test]
async fn a_lagging_subscriber_gets_a_snapshot_instead_of_an_error() {
    let ops = Operations::in_memory();
    let op = ops.create("x", json!({}));
    op.start();
    let mut events = ops.subscribe(op.id()).expect("known id");
    let first = next_event(&mut events).await.expect("snapshot");
    for i in 0..500u64 {
        op.progress(|p| p.items_processed = i);
    }
    let caught_up = next_event(&mut events).await.expect("snapshot after lag");
    assert_eq!(caught_up.kind, OperationEventKind::Snapshot);
    assert_eq!(caught_up.operation.progress.items_processed, 499);
    assert!(caught_up.seq > first.seq);
    op.complete(json!({}));
    let last = next_event(&mut events).await.expect("terminal");
    assert_eq!(last.kind, OperationEventKind::Terminal);
    assert_eq!(last.seq, caught_up.seq + 1);
    assert!(next_event(&mut events).await.is_none());
}

// ---- HTTP API ----

async fn start_server(ops: Operations) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().nest("/api/v1", router(ops));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1")
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// One parsed SSE event: (event, id, data).
type SseEvent = (String, String, String);

/// Reads SSE events by hand from the byte stream; `None` when the response ends.
struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), Vec::new());
                for line in block.lines() {
                    let field = |name: &str| {
                        line.strip_prefix(name)
                            .map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned())
                    };
                    if let Some(v) = field("event:") {
                        event = v;
                    } else if let Some(v) = field("id:") {
                        id = v;
                    } else if let Some(v) = field("data:") {
                        data.push(v);
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some((event, id, data.join("\n")));
            }
            let chunk = tokio::time::timeout(GUARD, self.body.next())
                .await
                .expect("SSE stalled")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.expect("body chunk")).expect("utf-8"));
        }
    }
}

#[tokio::test]
async fn sse_streams_progress_in_order_then_terminal_then_ends() {
    let ops = Operations::in_memory();
    let base = start_server(ops.clone()).await;
    let op = ops.create("data_load", json!({"symbol": "AAPL"}));
    op.start();

    let response = reqwest::Client::new()
        .get(format!("{base}/operations/{}/events", op.id()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut sse = SseReader {
        body: response.bytes_stream().boxed(),
        buffer: String::new(),
    };

    // The snapshot proves the subscription exists before we drive the operation.
    let (kind, _, data) = sse.next().await.expect("snapshot");
    assert_eq!(kind, "snapshot");
    let snapshot: Value = serde_json::from_str(&data).expect("json");
    assert_eq!(snapshot["status"], "running");

    for step in 1..=5u64 {
        op.progress(|p| {
            p.percentage = step as f64 * 15.0;
            p.steps_completed = step;
            p.steps_total = 5;
        });
    }
    op.complete(json!({"rows": 5}));

    let mut last = (0u64, -1.0f64);
    for _ in 0..5 {
        let (kind, id, data) = sse.next().await.expect("progress event");
        assert_eq!(kind, "progress");
        let seq: u64 = id.parse().expect("numeric id");
        let info: Value = serde_json::from_str(&data).expect("operation json");
        let pct = info["progress"]["percentage"].as_f64().expect("percentage");
        assert!(
            seq > last.0 && pct > last.1,
            "in order: {seq} {pct} after {last:?}"
        );
        last = (seq, pct);
    }
    let (kind, id, data) = sse.next().await.expect("terminal event");
    assert_eq!(kind, "terminal");
    assert!(id.parse::<u64>().expect("numeric id") > last.0);
    let info: Value = serde_json::from_str(&data).expect("operation json");
    assert_eq!(info["status"], "completed");
    assert_eq!(info["result_summary"], json!({"rows": 5}));
    assert!(
        sse.next().await.is_none(),
        "the response ends after the terminal event"
    );
}

#[tokio::test]
async fn api_lists_gets_and_cancels() {
    let ops = Operations::in_memory();
    let base = start_server(ops.clone()).await;
    let client = reqwest::Client::new();
    let a = ops.create("data_load", json!({"symbol": "AAPL"}));
    a.start();
    let b = ops.create("training", json!({}));
    b.complete(json!({}));

    let (status, body) = get_json(
        &client,
        &format!("{base}/operations?status=running&limit=10"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(
        (body["total_count"].as_u64(), body["active_count"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(body["returned_count"], 1);
    assert_eq!(body["data"][0]["operation_id"], a.id());
    assert_eq!(body["data"][0]["symbol"], "AAPL");

    let (status, body) = get_json(&client, &format!("{base}/operations?limit=1&offset=1")).await;
    assert_eq!(
        (
            status,
            body["total_count"].as_u64(),
            body["returned_count"].as_u64()
        ),
        (200, Some(2), Some(1))
    );

    let (status, body) = get_json(&client, &format!("{base}/operations/{}", b.id())).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "completed");

    let response = client
        .delete(format!("{base}/operations/{}", a.id()))
        .json(&json!({"reason": "changed my mind", "force": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(body["data"]["cancellation_reason"], "changed my mind");
    assert!(body["data"]["cancelled_at"].is_string());
    assert!(a.token().is_cancelled());

    let c = ops.create("x", json!({}));
    let response = client
        .delete(format!("{base}/operations/{}", c.id()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["cancellation_reason"], "cancelled by user");
}

#[tokio::test]
async fn api_errors_use_the_envelope() {
    let ops = Operations::in_memory();
    let base = start_server(ops.clone()).await;
    let client = reqwest::Client::new();
    let done = ops.create("x", json!({}));
    done.complete(json!({}));

    let (status, body) = get_json(&client, &format!("{base}/operations/op_missing")).await;
    assert_eq!((status, body["success"].as_bool()), (404, Some(false)));
    assert_eq!(body["error"]["code"], "not_found");

    let response = client
        .get(format!("{base}/operations/op_missing/events"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);

    let response = client
        .delete(format!("{base}/operations/op_missing"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);

    let response = client
        .delete(format!("{base}/operations/{}", done.id()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(
        ops.get(done.id()).map(|i| i.status),
        Some(OperationStatus::Completed)
    );

    let response = client
        .delete(format!("{base}/operations/{}", done.id()))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);

    // A cancel body over the size limit (axum's default, 2 MiB) is refused in the
    // envelope, not with axum's plain-text 413, and cancels nothing.
    let running = ops.create("demo", Value::Null);
    let response = client
        .delete(format!("{base}/operations/{}", running.id()))
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("a JSON envelope");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(
        !ops.get(running.id())
            .is_some_and(|i| i.status.is_terminal())
    );

    for (query, field) in [
        ("status=bogus", "status"),
        ("limit=abc", "limit"),
        ("limit=-5", "limit"),
    ] {
        let (status, body) = get_json(&client, &format!("{base}/operations?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["details"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn caller_chosen_ids_are_checked_and_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ops.redb");
    let ops = Operations::open(OperationsConfig::persistent(&path)).expect("open");
    let handle = ops
        .create_with_id("session-1", "training", json!({}))
        .expect("fresh id");
    assert_eq!(handle.id(), "session-1");
    match ops.create_with_id("session-1", "training", json!({})) {
        Err(host_service_base::HostError::Conflict { .. }) => {}
        other => panic!("duplicate id: {other:?}"),
    }
    for bad in ["", "../x", "a/b", "sp ace", &"x".repeat(129)] {
        match ops.create_with_id(bad, "training", json!({})) {
            Err(host_service_base::HostError::BadRequest { field, .. }) => {
                assert_eq!(field.as_deref(), Some("id"))
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // Finished operations can be removed, from memory and the store; active ones cannot.
    match ops.remove_finished("session-1") {
        Err(host_service_base::HostError::Conflict { .. }) => {}
        other => panic!("active: {other:?}"),
    }
    handle.start();
    handle.complete(json!({ "ok": true }));
    let removed = ops.remove_finished("session-1").expect("finished");
    assert_eq!(removed.status, OperationStatus::Completed);
    assert!(ops.get("session-1").is_none());
    assert!(matches!(
        ops.remove_finished("session-1"),
        Err(host_service_base::HostError::NotFound { .. })
    ));
    // Handles keep the store open; all of them go before the file is reopened.
    drop((ops, handle));
    let reopened = Operations::open(OperationsConfig::persistent(&path)).expect("reopen");
    assert!(
        reopened.get("session-1").is_none(),
        "removed from the store too"
    );
}

#[tokio::test]
async fn watch_all_sees_every_change_of_every_operation_in_order() {
    let ops = Operations::in_memory();
    let before = ops.create("load", json!({}));
    before.start(); // Not seen: nobody watched yet.
    let mut feed = ops.watch_all();
    let a = ops.create("load", json!({}));
    let b = ops.create("training", json!({}));
    a.start();
    b.start();
    a.progress(|p| p.percentage = 50.0);
    b.fail("boom");
    a.complete(json!({"bars": 3}));
    before.mark_cancelled("stop");

    let mut seen = Vec::new();
    while let Ok(event) = feed.try_recv() {
        seen.push((
            event.operation.operation_id.clone(),
            event.kind,
            event.operation.status,
        ));
    }
    use OperationStatus::*;
    let (a, b, before) = (a.id().to_owned(), b.id().to_owned(), before.id().to_owned());
    assert_eq!(
        seen,
        vec![
            (a.clone(), OperationEventKind::Status, Running),
            (b.clone(), OperationEventKind::Status, Running),
            (a.clone(), OperationEventKind::Progress, Running),
            (b, OperationEventKind::Terminal, Failed),
            (a, OperationEventKind::Terminal, Completed),
            (before, OperationEventKind::Terminal, Cancelled),
        ]
    );
}
