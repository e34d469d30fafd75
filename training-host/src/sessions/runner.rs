//! One session's background task: load bars, train off the async threads, record
//! the outcome on the session's operation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use data_host::provider::{BarsRequest, DataProvider};
use data_host::{Symbol, Timeframe};
use host_service_base::CancellationToken;
use host_service_base::operations::OperationHandle;
use polars::prelude::DataFrame;
use serde_json::{Value, json};

use super::trainer::{BatchProgress, TrainControl, TrainJob, TrainOutcome, Trainer};
use super::wire::{DateSource, RangeOrigin, TrainingResult};
use crate::model::{PathStyle, shown_path};
use crate::pipeline::StopHandle;
use crate::strategy::limits::{MAX_FEATURE_VALUES, MAX_SESSION_BARS};
use crate::strategy::{DateRange, Strategy};

/// Everything a session's task needs.
pub(super) struct Run {
    pub(super) handle: OperationHandle,
    pub(super) strategy: Strategy,
    pub(super) data: Arc<dyn DataProvider>,
    pub(super) trainer: Arc<dyn Trainer>,
    pub(super) models_dir: PathBuf,
    pub(super) model_paths: PathStyle,
    pub(super) stop: StopHandle,
    /// Who chose each end of the range of bars (reported in the result).
    pub(super) origin: RangeOrigin,
}

/// Frames of bars per symbol and timeframe.
type Bars = BTreeMap<(Symbol, Timeframe), DataFrame>;

/// How one end of the range was chosen, for messages.
fn chosen_by(source: DateSource, start: bool) -> &'static str {
    match (source, start) {
        (DateSource::Request, true) => "start_date of the request",
        (DateSource::Request, false) => "end_date of the request",
        (DateSource::Strategy, true) => "training_data.start_date of the strategy",
        (DateSource::Strategy, false) => "training_data.end_date of the strategy",
        (DateSource::Data, true) => "no start date given: the first bar available",
        (DateSource::Data, false) => "no end date given: now",
    }
}

/// The range asked for one series: `range` (the strategy's, overrides applied) where
/// it has an end; without a start, from the first bar `data` has (never 1970);
/// without an end, up to now (a day ahead, so the bar in progress is in).
async fn series_range(
    data: &dyn DataProvider,
    (range, origin): (DateRange, RangeOrigin),
    symbol: &Symbol,
    timeframe: Timeframe,
    cancel: &CancellationToken,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let end = range.end.unwrap_or_else(|| Utc::now() + TimeDelta::days(1));
    let start = match range.start {
        Some(start) => start,
        None => data
            .head_timestamp(symbol, timeframe, None, cancel)
            .await
            .map_err(|e| format!("where the bars of {symbol} {timeframe} begin: {e}"))?
            .ok_or_else(|| {
                format!(
                    "no bars for {symbol} {timeframe}: the data source has none (no start_date was given, so training starts at the first bar available)"
                )
            })?,
    };
    if start >= end {
        return Err(format!(
            "no bars for {symbol} {timeframe} before {} ({}): the first is at {}",
            end.to_rfc3339(),
            chosen_by(origin.end, false),
            start.to_rfc3339()
        ));
    }
    Ok((start, end))
}

async fn load_bars(run: &Run, cancel: &CancellationToken) -> Result<Bars, String> {
    let mut bars = BTreeMap::new();
    let mut loaded = 0usize;
    for symbol in &run.strategy.training_data.symbols {
        for &timeframe in &run.strategy.training_data.timeframes {
            let range = (run.strategy.date_range, run.origin);
            let (start, end) =
                series_range(run.data.as_ref(), range, symbol, timeframe, cancel).await?;
            run.handle.progress(|p| {
                p.message = Some(format!(
                    "loading {symbol} {timeframe} bars from {} ({}) to {} ({})",
                    start.to_rfc3339(),
                    chosen_by(run.origin.start, true),
                    end.to_rfc3339(),
                    chosen_by(run.origin.end, false),
                ));
            });
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
            loaded = loaded.saturating_add(frame.height());
            if loaded > MAX_SESSION_BARS {
                return Err(format!(
                    "more than {MAX_SESSION_BARS} bars to load ({loaded} up to {symbol} {timeframe}); narrow start_date/end_date or train on fewer symbols or timeframes"
                ));
            }
            bars.insert((symbol.clone(), timeframe), frame);
        }
    }
    let base = run.strategy.training_data.base_timeframe;
    let base_rows = bars
        .iter()
        .filter(|((_, tf), _)| *tf == base)
        .map(|(_, frame)| frame.height())
        .sum();
    check_feature_values(&run.strategy, base_rows)?;
    Ok(bars)
}

/// Refuses a dataset whose feature values (`base_rows` base bars × feature columns)
/// would pass [`MAX_FEATURE_VALUES`], before any is built.
fn check_feature_values(strategy: &Strategy, base_rows: usize) -> Result<(), String> {
    let columns = strategy.feature_count();
    let values = base_rows.saturating_mul(columns);
    if values > MAX_FEATURE_VALUES {
        return Err(format!(
            "{base_rows} {} bars × {columns} feature columns = {values} feature values; at most {MAX_FEATURE_VALUES} are built: narrow start_date/end_date, train on fewer symbols or use fewer features",
            strategy.training_data.base_timeframe
        ));
    }
    Ok(())
}

/// The session's own throughput, measured from its first batch: the estimate of how
/// long the run takes comes from it once the first epoch is done (before that, one
/// partial epoch's rate says too little, so there is none).
#[derive(Debug, Default)]
struct Throughput {
    /// When the first batch ended, and the samples processed by then.
    first: Option<(std::time::Instant, u64)>,
}

/// What [`Throughput::measure`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    samples_per_second: f64,
    total_minutes: f64,
    remaining_minutes: f64,
}

impl Throughput {
    fn measure(&mut self, p: &BatchProgress, now: std::time::Instant) -> Option<Estimate> {
        let Some((since, samples_then)) = self.first else {
            self.first = Some((now, p.items_processed));
            return None;
        };
        if p.epoch < 2 {
            return None;
        }
        let seconds = now.duration_since(since).as_secs_f64();
        let samples = p.items_processed.saturating_sub(samples_then) as f64;
        if seconds <= 0.0 || samples <= 0.0 {
            return None;
        }
        let rate = samples / seconds;
        let remaining = p.items_total.saturating_sub(p.items_processed) as f64 / rate;
        // The first batch's own time is not in the window: add it at the same rate.
        let total = (p.items_total as f64) / rate;
        let minutes = |s: f64| (s / 60.0 * 100.0).round() / 100.0;
        Some(Estimate {
            samples_per_second: rate.round(),
            total_minutes: minutes(total),
            remaining_minutes: minutes(remaining),
        })
    }
}

fn record_progress(handle: &OperationHandle, p: &BatchProgress, estimate: Option<Estimate>) {
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
            "samples_per_second": estimate.map(|e| e.samples_per_second),
            "estimated_duration_minutes": estimate.map(|e| e.total_minutes),
            "estimated_remaining_minutes": estimate.map(|e| e.remaining_minutes),
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
        models_dir: run.models_dir.clone(),
    };
    let (models_dir, style) = (run.models_dir, run.model_paths);
    let reporter = handle.clone();
    let device = run.trainer.device();
    if device != "cpu" {
        // What the device reports: candle gives its name, no memory figures.
        handle.progress(|p| merge(&mut p.context, json!({ "gpu_usage": { "device": device } })));
    }
    let mut throughput = Throughput::default();
    let control = TrainControl {
        stop: run.stop,
        progress: Box::new(move |p| {
            let estimate = throughput.measure(p, std::time::Instant::now());
            record_progress(&reporter, p, estimate);
        }),
    };
    let trainer = run.trainer;
    let origin = run.origin;
    let stored = move |mut result: TrainingResult| {
        result.data_summary.date_range = Some(origin);
        // Results leave this host: name the model the way the operator allows.
        let show = |path: &str| shown_path(&models_dir, std::path::Path::new(path), style);
        result.model_path = result.model_path.as_deref().map(show);
        if let Some(dir) = result.artifacts.get("model_dir").and_then(Value::as_str) {
            result.artifacts["model_dir"] = Value::String(show(dir));
        }
        serde_json::to_value(result).unwrap_or(Value::Null)
    };
    // Training is CPU-bound: it runs on the blocking pool, never on the async threads.
    let outcome = tokio::task::spawn_blocking(move || trainer.train(job, control)).await;
    match outcome {
        Ok(Ok(TrainOutcome::Completed(result))) => {
            handle.complete(stored(result));
        }
        Ok(Ok(TrainOutcome::Stopped { checkpoint })) => {
            stopped(&handle, checkpoint.map(stored));
        }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use data_host::local::LocalProvider;
    use data_host::store::{Store, StoreFormat};

    use super::*;

    fn sample_bars() -> LocalProvider {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
        LocalProvider::new(Store::new(data, StoreFormat::Csv))
    }

    fn batch(epoch: u64, items_processed: u64) -> BatchProgress {
        BatchProgress {
            epoch,
            total_epochs: 10,
            batch: 1,
            total_batches: 10,
            items_processed,
            items_total: 10_000,
            current: Value::Null,
            best: Value::Null,
        }
    }

    #[test]
    fn the_estimate_is_measured_after_the_first_epoch_not_before() {
        let mut throughput = Throughput::default();
        let t0 = std::time::Instant::now();
        let at = |ms| t0 + std::time::Duration::from_millis(ms);
        // Within the first epoch: nothing measured yet, whatever the clock says.
        assert_eq!(throughput.measure(&batch(1, 100), at(0)), None);
        assert_eq!(throughput.measure(&batch(1, 900), at(800)), None);
        // Epoch 2 at 1,100 samples, 1 s after the first batch: 1,000 samples/s.
        let e = throughput
            .measure(&batch(2, 1_100), at(1_000))
            .expect("measured after the first epoch");
        assert_eq!(e.samples_per_second, 1_000.0);
        // 10,000 samples at 1,000/s = 10 s; 8,900 left = 8.9 s.
        assert_eq!(e.total_minutes, (10.0_f64 / 60.0 * 100.0).round() / 100.0);
        assert_eq!(
            e.remaining_minutes,
            (8.9_f64 / 60.0 * 100.0).round() / 100.0
        );
        // A slower stretch lowers the rate: it is measured, not a constant.
        let slower = throughput
            .measure(&batch(3, 2_100), at(4_000))
            .expect("measured");
        assert_eq!(slower.samples_per_second, 500.0);
    }

    fn from(source: DateSource) -> RangeOrigin {
        RangeOrigin {
            start: source,
            end: source,
        }
    }

    fn day(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a test date")
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn without_dates_a_series_starts_at_its_first_bar_not_1970() {
        let data = sample_bars();
        let aapl = Symbol::parse("AAPL").expect("symbol");
        let cancel = CancellationToken::new();
        let open = (DateRange::default(), from(DateSource::Data));
        let (start, end) = series_range(&data, open, &aapl, Timeframe::D1, &cancel)
            .await
            .expect("a range");
        let head = data
            .head_timestamp(&aapl, Timeframe::D1, None, &cancel)
            .await
            .expect("head")
            .expect("stored bars");
        assert_eq!(start, head);
        assert!(start.timestamp() > 0, "{start}");
        assert!(end > Utc::now(), "an open end reaches now: {end}");

        let given = DateRange {
            start: Some(day("2005-01-01T00:00:00Z")),
            end: Some(day("2006-01-01T00:00:00Z")),
        };
        let range = series_range(
            &data,
            (given, from(DateSource::Request)),
            &aapl,
            Timeframe::D1,
            &cancel,
        )
        .await
        .expect("a range");
        assert_eq!((Some(range.0), Some(range.1)), (given.start, given.end));
    }

    #[test]
    fn feature_values_over_the_ceiling_fail_before_any_is_built() {
        let yaml = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategies/rsi_macd_mlp.yaml"),
        )
        .expect("shipped strategy");
        let strategy = crate::strategy::parse_strategy(&yaml).expect("valid");
        let columns = strategy.feature_count();
        assert_eq!(columns, 24, "8 fuzzy sets, lookback 2");
        let most = MAX_FEATURE_VALUES / columns;
        assert_eq!(check_feature_values(&strategy, most), Ok(()));
        let err = check_feature_values(&strategy, most + 1).expect_err("over");
        assert!(err.contains("narrow start_date/end_date"), "{err}");
    }

    #[tokio::test]
    async fn a_series_without_bars_or_ending_before_its_first_bar_says_so() {
        let data = sample_bars();
        let cancel = CancellationToken::new();
        let open = (DateRange::default(), from(DateSource::Data));
        let none = Symbol::parse("NOSUCH").expect("symbol");
        let err = series_range(&data, open, &none, Timeframe::D1, &cancel)
            .await
            .expect_err("no bars");
        assert!(err.contains("no bars for NOSUCH 1d"), "{err}");
        assert!(err.contains("first bar available"), "{err}");

        let aapl = Symbol::parse("AAPL").expect("symbol");
        let early = DateRange {
            start: None,
            end: Some(day("1980-01-01T00:00:00Z")),
        };
        let origin = RangeOrigin {
            start: DateSource::Data,
            end: DateSource::Strategy,
        };
        let err = series_range(&data, (early, origin), &aapl, Timeframe::D1, &cancel)
            .await
            .expect_err("ends before the first bar");
        assert!(
            err.contains("training_data.end_date of the strategy"),
            "{err}"
        );
    }
}
