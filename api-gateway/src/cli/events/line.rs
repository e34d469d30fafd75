//! One line per event for people: time, type, subject and the few figures of its data
//! that matter (a progress percentage, an epoch's losses, bars added, a host's state).

use chrono::SecondsFormat;
use event_stream::Envelope;
use serde_json::Value;

/// Longest summary of an event type this module does not know.
const MAX_OTHER: usize = 120;

/// `2024-05-01T12:00:00.123Z operation.progress     <id> 40% fetching bars`.
pub(super) fn summary(envelope: &Envelope) -> String {
    format!(
        "{} {:<24} {} {}",
        envelope
            .timestamp
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        envelope.event_type,
        envelope.subject.as_deref().unwrap_or("-"),
        data_summary(&envelope.event_type, &envelope.data)
    )
    .trim_end()
    .to_owned()
}

fn data_summary(event_type: &str, data: &Value) -> String {
    match event_type {
        "operation.started" | "operation.progress" => {
            let p = &data["progress"];
            let percentage = p["percentage"].as_f64().unwrap_or(0.0);
            let step = p["current_step"].as_str().unwrap_or("");
            format!("{} {percentage:.0}% {step}", text(&data["operation_type"]))
        }
        "operation.completed" | "operation.cancelled" => format!(
            "{} {}",
            text(&data["operation_type"]),
            text(&data["status"])
        ),
        "operation.failed" => format!(
            "{} failed: {}",
            text(&data["operation_type"]),
            text(&data["error_message"])
        ),
        "training.epoch" => format!(
            "epoch {}/{} train_loss {} val_loss {} val_accuracy {}",
            text(&data["epoch"]),
            text(&data["total_epochs"]),
            figure(&data["train_loss"], 4),
            figure(&data["val_loss"], 4),
            figure(&data["val_accuracy"], 3),
        ),
        "data.loaded" => format!(
            "{} {} +{} bars",
            text(&data["symbol"]),
            text(&data["timeframe"]),
            text(&data["bars_added"])
        ),
        "host.health_changed" => format!(
            "{} {} ({}) {}",
            text(&data["service"]),
            if data["healthy"] == true {
                "healthy"
            } else {
                "DOWN"
            },
            text(&data["mode"]),
            data["reason"].as_str().unwrap_or("")
        ),
        _ => {
            let all = data.to_string();
            match all.char_indices().nth(MAX_OTHER) {
                Some((cut, _)) => format!("{}…", &all[..cut]),
                None => all,
            }
        }
    }
}

/// A string as it is, anything else in its JSON form, absent as `?`.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "?".to_owned(),
        other => other.to_string(),
    }
}

/// A number with `decimals` places, or `-` when absent.
fn figure(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

#[cfg(test)]
mod tests;
