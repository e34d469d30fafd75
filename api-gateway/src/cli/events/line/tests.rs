use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn at(event_type: &str, subject: Option<&str>, data: Value) -> Envelope {
    let mut env = Envelope::new(event_type, "api-gateway", data).expect("valid type");
    env.timestamp = Utc
        .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("a time");
    env.subject = subject.map(str::to_owned);
    env
}

#[test]
fn progress_shows_type_percentage_and_step() {
    let env = at(
        "operation.progress",
        Some("op-1"),
        json!({"operation_type": "data_load", "progress": {"percentage": 42.4, "current_step": "fetching"}}),
    );
    assert_eq!(
        summary(&env),
        "2024-05-01T12:00:00.000Z operation.progress       op-1 data_load 42% fetching"
    );
}

#[test]
fn an_epoch_shows_its_losses() {
    let env = at(
        "training.epoch",
        Some("op-2"),
        json!({"epoch": 3, "total_epochs": 10, "train_loss": 0.123456, "val_loss": 0.2, "val_accuracy": 0.5}),
    );
    assert!(
        summary(&env)
            .ends_with("op-2 epoch 3/10 train_loss 0.1235 val_loss 0.2000 val_accuracy 0.500"),
        "{}",
        summary(&env)
    );
}

#[test]
fn ends_failures_loads_and_hosts() {
    let cases = [
        (
            "operation.completed",
            json!({"operation_type": "training", "status": "completed"}),
            "training completed",
        ),
        (
            "operation.failed",
            json!({"operation_type": "data_load", "status": "failed", "error_message": "no bars"}),
            "data_load failed: no bars",
        ),
        (
            "data.loaded",
            json!({"symbol": "AAPL", "timeframe": "1h", "bars_added": 12}),
            "AAPL 1h +12 bars",
        ),
        (
            "host.health_changed",
            json!({"service": "data", "healthy": false, "mode": "host", "reason": "refused"}),
            "data DOWN (host) refused",
        ),
    ];
    for (event_type, data, expected) in cases {
        let line = summary(&at(event_type, None, data));
        assert!(line.ends_with(&format!(" - {expected}")), "{line}");
    }
}

#[test]
fn unknown_types_show_their_data_cut_short() {
    let line = summary(&at(
        "custom.thing",
        Some("x"),
        json!({"text": "é".repeat(300)}),
    ));
    assert!(line.ends_with('…'), "{line}");
    assert!(line.chars().count() < 200, "{line}");
}
