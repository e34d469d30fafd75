//! One session's background task: load bars, train off the async threads, record
//! the outcome on the session's operation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use data_host::provider::{BarsRequest, DataProvider};
use host_service_base::CancellationToken;
use host_service_base::operations::OperationHandle;
use serde_json::{Value, json};

use super::trainer::{BatchProgress, TrainControl, TrainJob, TrainOutcome, Trainer};
use crate::pipeline::StopHandle;
use crate::strategy::Strategy;

/// Everything a session's task needs.
pub(super) struct Run {
    pub(super) handle: OperationHandle,
    pub(super) strategy: Strategy,
    pub(super) data: Arc<dyn DataProvider>,
    pub(super) trainer: Arc<dyn Trainer>,
    pub(super) models_dir: PathBuf,
    pub(super) stop: StopHandle,
}

/// Default range when the strategy and the request give none: all stored history.
fn range(strategy: &Strategy) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = strategy.date_range.start.unwrap_or(DateTime::UNIX_EPOCH);
    let end = strategy
        .date_range
        .end
        .unwrap_or_else(|| Utc::now() + TimeDelta::days(1));
    (start, end)
}

async fn load_bars(
    run: &Run,
    cancel: &CancellationToken,
) -> Result<BTreeMap<(data_host::Symbol, data_host::Timeframe), polars::prelude::DataFrame>, String>
{
    let (start, end) = range(&run.strategy);
    let mut bars = BTreeMap::new();
    for symbol in &run.strategy.training_data.symbols {
        for &timeframe in &run.strategy.training_data.timeframes {
            let request = BarsRequest::new(symbol.clone(), timeframe, start, end, None)
                .map_err(|e| e.to_string())?;
            let frame = run
                .data
                .bars(&request, cancel)
                .await
                .map_err(|e| format!("bars for {symbol} {timeframe}: {e}"))?;
            if frame.height() == 0 {
                return Err(format!(
                    "no bars for {symbol} {timeframe} between {} and {}",
                    start.to_rfc3339(),
                    end.to_rfc3339()
                ));
            }
            bars.insert((symbol.clone(), timeframe), frame);
        }
    }
    Ok(bars)
}

fn record_progress(handle: &OperationHandle, p: &BatchProgress) {
    handle.progress(|progress| {
        let done = p.epoch.saturating_sub(1) * p.total_batches + p.batch;
        let all = (p.total_epochs * p.total_batches).max(1);
        progress.percentage = (done as f64 * 100.0 / all as f64).min(100.0);
        progress.steps_completed = p.epoch.saturating_sub(1);
        progress.steps_total = p.total_epochs;
        progress.items_processed = p.items_processed;
        progress.items_total = Some(p.items_total);
        progress.current_step = Some(format!("epoch {}/{}", p.epoch, p.total_epochs));
        progress.message = Some(format!(
            "epoch {}/{}, batch {}/{}",
            p.epoch, p.total_epochs, p.batch, p.total_batches
        ));
        let context = json!({
            "epoch": p.epoch,
            "total_epochs": p.total_epochs,
            "batch": p.batch,
            "total_batches": p.total_batches,
            "metrics": { "current": p.current, "best": p.best },
        });
        merge(&mut progress.context, context);
    });
}

fn merge(target: &mut Value, extra: Value) {
    match (target.as_object_mut(), extra) {
        (Some(map), Value::Object(extra)) => map.extend(extra),
        (_, extra) => *target = extra,
    }
}

/// Runs the session to its end and records it. Never panics on a failure: every end
/// is written to the operation.
pub(super) async fn run(run: Run) {
    let handle = run.handle.clone();
    let cancel = run.stop.token().clone();
    handle.start();
    handle.progress(|p| p.message = Some("loading bars".to_owned()));
    let bars = tokio::select! {
        bars = load_bars(&run, &cancel) => bars,
        () = cancel.cancelled() => Err("stopped while loading bars".to_owned()),
    };
    if cancel.is_cancelled() {
        stopped(&handle, None);
        return;
    }
    let bars = match bars {
        Ok(bars) => bars,
        Err(message) => {
            handle.fail(message);
            return;
        }
    };
    let job = TrainJob {
        strategy: run.strategy,
        bars,
        models_dir: run.models_dir,
    };
    let reporter = handle.clone();
    let control = TrainControl {
        stop: run.stop,
        progress: Box::new(move |p| record_progress(&reporter, p)),
    };
    let trainer = run.trainer;
    // Training is CPU-bound: it runs on the blocking pool, never on the async threads.
    let outcome = tokio::task::spawn_blocking(move || trainer.train(job, control)).await;
    match outcome {
        Ok(Ok(TrainOutcome::Completed(result))) => {
            handle.complete(serde_json::to_value(result).unwrap_or(Value::Null));
        }
        Ok(Ok(TrainOutcome::Stopped { checkpoint })) => stopped(
            &handle,
            checkpoint.map(|c| serde_json::to_value(c).unwrap_or(Value::Null)),
        ),
        Ok(Err(message)) => {
            handle.fail(message);
        }
        Err(e) => {
            handle.fail(format!("training task failed: {e}"));
        }
    }
}

/// Records a stop; the checkpoint (if saved) stays readable through the result API.
fn stopped(handle: &OperationHandle, checkpoint: Option<Value>) {
    let saved = checkpoint.is_some();
    handle.progress(|p| {
        merge(
            &mut p.context,
            json!({ "checkpoint_saved": saved, "checkpoint": checkpoint }),
        );
        p.message = Some(
            if saved {
                "stopped; checkpoint saved"
            } else {
                "stopped"
            }
            .to_owned(),
        );
    });
    handle.mark_cancelled("stopped by request");
}
