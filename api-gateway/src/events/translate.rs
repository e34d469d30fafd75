//! Operation changes → envelopes: `operation.started|progress|completed|failed|
//! cancelled`, `training.epoch` for every finished epoch of a training, and
//! `data.loaded` (subject: the symbol) when a load ends having merged bars into the
//! store — also when it fails or is cancelled after some segments were stored.
//! [`health_changed`] makes `host.health_changed` of a host pool's change of view.
//!
//! Progress is throttled per operation (the newest state wins; the terminal event
//! carries the final one). Epochs are read from the progress context a training mirror
//! writes (`metrics.recent_epochs`, the last 32 finished, and `metrics.last_epoch`).
//! That context is sampled, so epochs are sent strictly in order, each once: when a
//! sample shows a gap (more epochs finished between two samples than the window
//! holds), live epochs stop for that operation and the rest — like the epochs a run
//! finished after its last sample — are sent from the result's history before
//! `operation.completed`, marked `"backfilled": true`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use event_stream::Envelope;
use host_service_base::operations::{
    OperationEvent, OperationEventKind, OperationInfo, OperationStatus,
};
use serde_json::{Value, json};

use crate::data::LOAD_OPERATION;
use crate::pool::HealthChange;

/// The `source` of the gateway's envelopes.
pub const SOURCE: &str = "api-gateway";

/// Metadata key of the correlation id an operation was started with.
pub const CORRELATION_KEY: &str = "correlation_id";

/// Per-operation memory of what was sent.
#[derive(Debug, Default)]
struct Sent {
    last_progress: Option<Instant>,
    /// The last epoch sent: epochs go out as 1, 2, 3, … without gaps.
    last_epoch: u64,
    /// A sample skipped epochs: the rest waits for the result's history.
    epochs_held: bool,
}

/// Turns the registry's change feed into envelopes.
#[derive(Debug)]
pub struct Translator {
    progress_interval: Duration,
    sent: HashMap<String, Sent>,
}

impl Translator {
    /// A translator sending at most one progress event per `progress_interval` and
    /// operation.
    pub fn new(progress_interval: Duration) -> Self {
        Self {
            progress_interval,
            sent: HashMap::new(),
        }
    }

    /// Operations with state kept (running ones).
    pub fn tracked(&self) -> usize {
        self.sent.len()
    }

    /// The envelopes one change produces, in the order to send them.
    pub fn translate(&mut self, event: &OperationEvent, now: Instant) -> Vec<Envelope> {
        let op = &event.operation;
        let mut out = Vec::new();
        match event.kind {
            OperationEventKind::Snapshot => {}
            OperationEventKind::Status => {
                if op.status == OperationStatus::Running {
                    self.sent.entry(op.operation_id.clone()).or_default();
                    out.extend(envelope("operation.started", op, operation_data(op)));
                }
            }
            OperationEventKind::Progress => {
                let sent = self.sent.entry(op.operation_id.clone()).or_default();
                if !sent.epochs_held {
                    for epoch in finished_epochs(op) {
                        let n = epoch_number(&epoch);
                        if n <= sent.last_epoch {
                            continue;
                        }
                        if n > sent.last_epoch + 1 {
                            sent.epochs_held = true;
                            break;
                        }
                        sent.last_epoch = n;
                        out.extend(envelope("training.epoch", op, epoch_data(op, epoch, false)));
                    }
                }
                let due = sent
                    .last_progress
                    .is_none_or(|at| now.duration_since(at) >= self.progress_interval);
                if due {
                    sent.last_progress = Some(now);
                    out.extend(envelope("operation.progress", op, operation_data(op)));
                }
            }
            OperationEventKind::Terminal => {
                let sent = self.sent.remove(&op.operation_id).unwrap_or_default();
                for epoch in history(op) {
                    if epoch_number(&epoch) > sent.last_epoch {
                        out.extend(envelope("training.epoch", op, epoch_data(op, epoch, true)));
                    }
                }
                out.extend(data_loaded(op));
                let kind = match op.status {
                    OperationStatus::Completed => "operation.completed",
                    OperationStatus::Cancelled => "operation.cancelled",
                    _ => "operation.failed",
                };
                out.extend(envelope(kind, op, operation_data(op)));
            }
        }
        out
    }
}

/// An envelope about `op`: subject = operation id, the operation's correlation id.
fn envelope(event_type: &str, op: &OperationInfo, data: Value) -> Option<Envelope> {
    let correlation = op.metadata[CORRELATION_KEY].as_str().map(str::to_owned);
    match Envelope::new(event_type, SOURCE, data) {
        Ok(env) => Some(
            env.with_subject(op.operation_id.clone())
                .with_correlation_id(correlation),
        ),
        // The types are this module's constants: a failure is a bug, logged not raised.
        Err(e) => {
            tracing::error!(error = %e, event_type, "could not build an event");
            None
        }
    }
}

/// `host.health_changed` (subject: the service) for a change of a pool's view.
pub fn health_changed(change: &HealthChange) -> Option<Envelope> {
    let data = json!({
        "service": change.service,
        "url": change.url,
        "mode": "host",
        "healthy": change.healthy,
        "previous": change.previous,
        "reason": change.reason,
        "latency_ms": change.latency_ms,
        "instances_up": change.instances_up,
        "instances": change.instances,
    });
    match Envelope::new("host.health_changed", SOURCE, data) {
        Ok(env) => Some(env.with_subject(change.service.clone())),
        Err(e) => {
            tracing::error!(error = %e, "could not build host.health_changed");
            None
        }
    }
}

/// `data.loaded` for a load that merged bars: the figures of its result, or of its
/// last progress when it did not complete.
fn data_loaded(op: &OperationInfo) -> Option<Envelope> {
    if op.operation_type != LOAD_OPERATION {
        return None;
    }
    let figures = op
        .result_summary
        .as_ref()
        .filter(|r| r["bars_added"].is_u64())
        .unwrap_or(&op.progress.context);
    let added = figures["bars_added"].as_u64().unwrap_or(0);
    let replaced = figures["bars_replaced"].as_u64().unwrap_or(0);
    if added + replaced == 0 {
        return None;
    }
    let symbol = op.metadata["symbol"].as_str()?.to_owned();
    let data = json!({
        "operation_id": op.operation_id,
        "symbol": symbol,
        "timeframe": op.metadata["timeframe"],
        "bars_added": added,
        "bars_replaced": replaced,
        "bars_after": figures["bars_after"],
        "range": figures["loaded_range"],
        "status": op.status,
    });
    envelope("data.loaded", op, data).map(|env| env.with_subject(symbol))
}

fn operation_data(op: &OperationInfo) -> Value {
    json!({
        "operation_id": op.operation_id,
        "operation_type": op.operation_type,
        "status": op.status,
        "progress": op.progress,
        "metadata": op.metadata,
        "created_at": op.created_at,
        "started_at": op.started_at,
        "completed_at": op.completed_at,
        "error_message": op.error_message,
        "result_summary": op.result_summary,
    })
}

/// The finished epochs a training's progress carries, by number, each once.
fn finished_epochs(op: &OperationInfo) -> Vec<Value> {
    let metrics = &op.progress.context["metrics"];
    let recent = metrics["recent_epochs"].as_array().into_iter().flatten();
    let mut by_number: BTreeMap<u64, &Value> = BTreeMap::new();
    for epoch in recent.chain(std::iter::once(&metrics["last_epoch"])) {
        if let Some(n) = epoch["epoch"].as_u64() {
            by_number.insert(n, epoch);
        }
    }
    by_number.into_values().cloned().collect()
}

fn epoch_number(epoch: &Value) -> u64 {
    epoch["epoch"].as_u64().unwrap_or(0)
}

/// Per-epoch figures of a finished training's result.
fn history(op: &OperationInfo) -> Vec<Value> {
    op.result_summary
        .as_ref()
        .and_then(|r| r["training_metrics"]["history"].as_array())
        .map(|h| {
            h.iter()
                .filter(|e| e["epoch"].as_u64().is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn epoch_data(op: &OperationInfo, epoch: Value, backfilled: bool) -> Value {
    json!({
        "operation_id": op.operation_id,
        "epoch": epoch["epoch"],
        "total_epochs": op.progress.context["total_epochs"],
        "train_loss": epoch["train_loss"],
        "train_accuracy": epoch["train_accuracy"],
        "val_loss": epoch["val_loss"],
        "val_accuracy": epoch["val_accuracy"],
        "backfilled": backfilled,
    })
}

#[cfg(test)]
mod tests;
