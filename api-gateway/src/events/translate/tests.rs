use host_service_base::operations::Operations;

use super::*;

fn drain(
    t: &mut Translator,
    feed: &mut tokio::sync::broadcast::Receiver<OperationEvent>,
    now: Instant,
) -> Vec<Envelope> {
    let mut out = Vec::new();
    while let Ok(event) = feed.try_recv() {
        out.extend(t.translate(&event, now));
    }
    out
}

fn types(envs: &[Envelope]) -> Vec<&str> {
    envs.iter().map(|e| e.event_type.as_str()).collect()
}

#[test]
fn a_load_starts_progresses_throttled_and_completes() {
    let ops = Operations::in_memory();
    let mut feed = ops.watch_all();
    let mut t = Translator::new(Duration::from_millis(250));
    let op = ops.create(
        "data_load",
        json!({"symbol": "AAPL", CORRELATION_KEY: "c-1"}),
    );
    let t0 = Instant::now();
    op.start();
    for i in 0..10 {
        op.progress(|p| p.percentage = f64::from(i) * 10.0);
    }
    let burst = drain(&mut t, &mut feed, t0);
    // Ten changes within one interval: one progress event.
    assert_eq!(types(&burst), ["operation.started", "operation.progress"]);
    op.progress(|p| p.percentage = 95.0);
    let later = drain(&mut t, &mut feed, t0 + Duration::from_millis(300));
    assert_eq!(types(&later), ["operation.progress"]);
    assert_eq!(later[0].data["progress"]["percentage"], 95.0);
    op.complete(json!({"bars_added": 12}));
    let end = drain(&mut t, &mut feed, t0 + Duration::from_millis(310));
    assert_eq!(types(&end), ["data.loaded", "operation.completed"]);
    for env in burst.iter().chain(&later).chain(&end[1..]) {
        assert_eq!(env.subject.as_deref(), Some(op.id()));
        assert_eq!(env.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(env.source, SOURCE);
    }
    // data.loaded is about the symbol, and still in the load's chain.
    assert_eq!(end[0].subject.as_deref(), Some("AAPL"));
    assert_eq!(end[0].correlation_id.as_deref(), Some("c-1"));
    assert_eq!(end[0].data["bars_added"], 12);
    assert_eq!(end[0].data["operation_id"], op.id());
    assert_eq!(end[1].data["result_summary"]["bars_added"], 12);
    assert_eq!(t.tracked(), 0, "nothing kept for a finished operation");
}

#[test]
fn failed_and_cancelled_operations_say_so() {
    let ops = Operations::in_memory();
    let mut feed = ops.watch_all();
    let mut t = Translator::new(Duration::ZERO);
    let a = ops.create("data_load", json!({}));
    a.start();
    a.fail("IB said no");
    let b = ops.create("training", json!({}));
    b.start();
    b.mark_cancelled("user");
    let got = drain(&mut t, &mut feed, Instant::now());
    assert_eq!(
        types(&got),
        [
            "operation.started",
            "operation.failed",
            "operation.started",
            "operation.cancelled"
        ]
    );
    assert_eq!(got[1].data["error_message"], "IB said no");
    assert_eq!(got[0].correlation_id, None);
}

fn epoch(n: u64) -> serde_json::Value {
    json!({"epoch": n, "train_loss": 1.0 / n as f64, "train_accuracy": 0.5, "val_loss": null, "val_accuracy": null})
}

/// (epoch, backfilled) of the `training.epoch` events, in the order sent.
fn epochs_sent(got: &[Envelope]) -> Vec<(u64, bool)> {
    got.iter()
        .filter(|e| e.event_type == "training.epoch")
        .map(|e| {
            (
                e.data["epoch"].as_u64().unwrap_or(0),
                e.data["backfilled"] == true,
            )
        })
        .collect()
}

#[test]
fn epochs_a_sample_skipped_come_from_the_recent_window_in_order_once_each() {
    let ops = Operations::in_memory();
    let mut feed = ops.watch_all();
    let mut t = Translator::new(Duration::from_secs(3600));
    let op = ops.create("training", json!({}));
    op.start();
    // Samples: after epoch 1, again after 1, after 3 (2 finished in between), after 3.
    for shown in [vec![1u64], vec![1], vec![1, 2, 3], vec![1, 2, 3]] {
        let recent: Vec<_> = shown.iter().map(|&n| epoch(n)).collect();
        let last = epoch(*shown.last().unwrap_or(&0));
        op.progress(|p| {
            p.context =
                json!({"total_epochs": 4, "metrics": {"last_epoch": last, "recent_epochs": recent}})
        });
    }
    op.complete(json!({"training_metrics": {"history": [epoch(1), epoch(2), epoch(3), epoch(4)]}}));
    let got = drain(&mut t, &mut feed, Instant::now());
    // Epoch 4 finished after the last sample: sent from the history, at the end.
    assert_eq!(
        epochs_sent(&got),
        [(1, false), (2, false), (3, false), (4, true)]
    );
    assert_eq!(
        got.last().map(|e| e.event_type.as_str()),
        Some("operation.completed")
    );
    assert_eq!(got[1].data["total_epochs"], 4);
    assert_eq!(got[1].data["train_loss"], 1.0);
}

#[test]
fn a_gap_wider_than_the_window_holds_epochs_back_so_they_still_arrive_in_order() {
    let ops = Operations::in_memory();
    let mut feed = ops.watch_all();
    let mut t = Translator::new(Duration::from_secs(3600));
    let op = ops.create("training", json!({}));
    op.start();
    // A progress context with only `last_epoch` (an older training-host): 1, then 3.
    for n in [1u64, 3, 4] {
        op.progress(|p| {
            p.context = json!({"total_epochs": 5, "metrics": {"last_epoch": epoch(n)}})
        });
    }
    op.complete(json!({"training_metrics": {"history": [epoch(1), epoch(2), epoch(3), epoch(4), epoch(5)]}}));
    let got = drain(&mut t, &mut feed, Instant::now());
    assert_eq!(
        epochs_sent(&got),
        [(1, false), (2, true), (3, true), (4, true), (5, true)]
    );
}

#[test]
fn a_failed_training_without_history_sends_only_the_epochs_seen() {
    let ops = Operations::in_memory();
    let mut feed = ops.watch_all();
    let mut t = Translator::new(Duration::from_secs(3600));
    let op = ops.create("training", json!({}));
    op.start();
    for n in [1u64, 2] {
        op.progress(|p| {
            p.context = json!({"total_epochs": 5, "metrics": {"last_epoch": epoch(n)}})
        });
    }
    op.fail("loss became NaN");
    let got = drain(&mut t, &mut feed, Instant::now());
    assert_eq!(epochs_sent(&got), [(1, false), (2, false)]);
    assert_eq!(
        got.last().map(|e| e.event_type.as_str()),
        Some("operation.failed")
    );
}

#[test]
fn a_load_that_stored_nothing_sends_no_data_loaded_and_a_failed_one_that_did_does() {
    let ops = Operations::in_memory();
    let mut feed = ops.watch_all();
    let mut t = Translator::new(Duration::ZERO);
    let nothing = ops.create("data_load", json!({"symbol": "IBM", "timeframe": "1d"}));
    nothing.start();
    nothing.complete(json!({"bars_added": 0, "bars_replaced": 0}));
    let partial = ops.create("data_load", json!({"symbol": "MSFT", "timeframe": "1h"}));
    partial.start();
    partial.progress(|p| {
        p.context = json!({
            "bars_added": 40,
            "bars_replaced": 2,
            "loaded_range": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-08T00:00:00Z"},
        });
    });
    partial.fail("segment 2/3 failed: connection lost");
    let envs = drain(&mut t, &mut feed, Instant::now());
    assert_eq!(
        types(&envs),
        [
            "operation.started",
            "operation.completed",
            "operation.started",
            "operation.progress",
            "data.loaded",
            "operation.failed"
        ]
    );
    let loaded = &envs[4];
    assert_eq!(loaded.subject.as_deref(), Some("MSFT"));
    assert_eq!(loaded.data["bars_added"], 40);
    assert_eq!(loaded.data["bars_replaced"], 2);
    assert_eq!(loaded.data["status"], "failed");
    assert_eq!(loaded.data["range"]["end"], "2024-01-08T00:00:00Z");
    assert_eq!(loaded.data["timeframe"], "1h");
}
