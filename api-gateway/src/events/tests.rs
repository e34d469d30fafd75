use std::time::Duration;

use futures::StreamExt;
use host_service_base::operations::Operations;
use serde_json::json;

use super::*;

async fn next_type(reader: &mut MemoryReader<String, Arc<Envelope>>) -> String {
    let m = tokio::time::timeout(Duration::from_secs(5), reader.next())
        .await
        .expect("an event within 5 s")
        .expect("open")
        .expect("ok");
    m.value.event_type.clone()
}

#[tokio::test]
async fn operation_changes_and_published_envelopes_reach_subscribers_in_order() {
    let ops = Operations::in_memory();
    let events = Events::new(EventSettings::off(), &ops);
    let mut reader = events.subscribe(CancellationToken::new());
    let tasks = events.spawn().expect("first spawn");
    assert!(events.spawn().is_none(), "spawned once");

    let op = ops.create("data_load", json!({}));
    op.start();
    op.progress(|p| p.percentage = 10.0);
    op.complete(json!({}));
    events.publish(
        Envelope::new("data.loaded", "api-gateway", json!({"bars_added": 3}))
            .expect("valid")
            .with_subject("AAPL"),
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_type(&mut reader).await);
    }
    assert_eq!(
        got,
        [
            "operation.started",
            "operation.progress",
            "operation.completed",
            "data.loaded"
        ]
    );
    let health = events.health();
    assert_eq!(health["mode"], "off");
    assert_eq!(health["published"], 4);
    assert!(events.healthy(), "no sink to be down");
    assert!(tasks.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn changes_made_just_before_shutdown_are_still_published() {
    let ops = Operations::in_memory();
    let events = Events::new(EventSettings::off(), &ops);
    let mut reader = events.subscribe(CancellationToken::new());
    let tasks = events.spawn().expect("spawn");
    let op = ops.create("training", json!({}));
    op.start();
    ops.cancel_all("gateway shutting down");
    assert!(tasks.shutdown(Duration::from_secs(5)).await);
    assert_eq!(next_type(&mut reader).await, "operation.started");
    assert_eq!(next_type(&mut reader).await, "operation.cancelled");
}
