//! The data manager: loads bars into the gateway's store and serves them from it.
//!
//! A load is an operation. It plans the ranges its mode wants ([`plan`]), splits them
//! into IB-sized segments, asks the [`DataProvider`] for each (data-host in host mode,
//! the in-process IB provider in fallback mode), and merges every segment into the store
//! as soon as it arrives, so a load that fails or is cancelled half-way keeps what it
//! fetched. Progress is reported per segment; cancelling the operation cancels the
//! provider call in flight, which cancels the IB request.

pub mod plan;
pub mod pooled;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use data_host::bars::timestamps_ms;
use data_host::ib::segment::split;
use data_host::provider::{BarsRequest, DataError, DataProvider};
use data_host::store::{Coverage, MergeReport, Store};
use data_host::{InstrumentType, Symbol, Timeframe};
use host_service_base::operations::{OperationFilter, OperationHandle, OperationInfo, Operations};
use host_service_base::{CancellationToken, HostError};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use serde_json::json;

// The one reading of these values is data-host's; re-exported for the gateway's API and CLI.
pub use data_host::params::{parse_instrument, parse_symbol, parse_time, parse_timeframe};
pub use plan::{FetchRange, LoadMode};

/// Most bars one JSON answer of `GET /api/v1/data/{symbol}/{timeframe}` holds: about
/// 10 MB of JSON, a year of regular-hours 1-minute stock bars (252 × 390 = 98,280).
/// A JSON answer is built whole in memory (each bar's date string and text besides its
/// 48 bytes of columns) before it is sent, so a wider range is refused (400 naming the
/// range field) instead of growing with the stored series; an Arrow answer, the bars'
/// own compact columns, is not limited by it. The OpenAPI text of the route repeats the
/// number (a test holds them together).
pub const MAX_JSON_BARS: usize = 100_000;

/// Operation type of a data load.
pub const LOAD_OPERATION: &str = "data_load";

/// `POST /api/v1/data/load`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    /// Symbol, e.g. `AAPL`: letters, digits, `.` and `-` (case-insensitive).
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$", example = "AAPL")]
    pub symbol: String,
    /// Bar size: 1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w or 1M.
    #[schema(pattern = r"^(1m|5m|15m|30m|1h|2h|3h|4h|1d|1w|1M)$", example = "1d")]
    pub timeframe: String,
    /// `local` (store only), `tail` (the default: after the last stored bar),
    /// `backfill` (before the first) or `full` (both, plus gaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(local|tail|backfill|full)$", example = "local")]
    pub mode: Option<String>,
    /// First bar wanted (ISO date or time); default: the earliest the provider has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2024-01-02")]
    pub start_date: Option<String>,
    /// End of the range (exclusive); default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2024-01-31T00:00:00Z")]
    pub end_date: Option<String>,
    /// What the symbol is (KTRDR's `instrument_type`): `stock`, `forex`, `future`,
    /// `continuous_future` or `index` (IB's `STK`, `CASH`, `FUT`, `CONTFUT`, `IND` are
    /// accepted too); absent or empty: guessed from the symbol (a currency pair is
    /// forex, anything else a stock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "future")]
    pub instrument_type: Option<String>,
}

/// A load request after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSpec {
    /// The symbol.
    pub symbol: Symbol,
    /// The bar size.
    pub timeframe: Timeframe,
    /// The mode.
    pub mode: LoadMode,
    /// Explicit start, if given.
    pub start: Option<DateTime<Utc>>,
    /// Explicit end, if given.
    pub end: Option<DateTime<Utc>>,
    /// What the symbol is, if given; passed to the provider with every call of the load.
    pub instrument_type: Option<InstrumentType>,
    /// The id of the chain this load belongs to (the `X-Correlation-ID` it was started
    /// with); every event of the load carries it.
    pub correlation_id: Option<String>,
    /// The operation id to use (a command's id); `None` makes a fresh one.
    pub operation_id: Option<String>,
}

impl LoadRequest {
    /// Validates every field; each error names its field.
    pub fn validate(&self) -> Result<LoadSpec, HostError> {
        let symbol = parse_symbol("symbol", &self.symbol)?;
        let timeframe = parse_timeframe("timeframe", &self.timeframe)?;
        let mode = match self.mode.as_deref().map(str::trim) {
            None | Some("") => LoadMode::Tail,
            Some(text) => text
                .parse::<LoadMode>()
                .map_err(|e| HostError::bad_field("mode", e))?,
        };
        let opt_time = |field: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| parse_time(field, t))
                .transpose()
                .map_err(HostError::from)
        };
        let instrument_type = parse_instrument("instrument_type", self.instrument_type.as_deref())?;
        let start = opt_time("start_date", &self.start_date)?;
        let end = opt_time("end_date", &self.end_date)?;
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(HostError::bad_field(
                "start_date",
                format!("start_date {s} is not before end_date {e}"),
            ));
        }
        Ok(LoadSpec {
            symbol,
            timeframe,
            mode,
            start,
            end,
            instrument_type,
            correlation_id: None,
            operation_id: None,
        })
    }
}

/// What the store holds for one symbol and timeframe (`GET /api/v1/data`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredSeries {
    /// The symbol.
    pub symbol: String,
    /// The bar size.
    pub timeframe: String,
    /// First bar.
    pub first: Option<DateTime<Utc>>,
    /// Last bar.
    pub last: Option<DateTime<Utc>>,
    /// Number of bars.
    pub rows: usize,
}

/// How far back a load with no start date reaches when the provider cannot say where
/// its data begins.
pub fn default_lookback(timeframe: Timeframe) -> TimeDelta {
    match timeframe {
        tf if tf < Timeframe::H1 => TimeDelta::days(30),
        tf if tf < Timeframe::D1 => TimeDelta::days(365),
        _ => TimeDelta::days(365 * 10),
    }
}

/// Loads bars into the store and reads them back.
#[derive(Debug, Clone)]
pub struct DataManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    provider: Arc<dyn DataProvider>,
    ops: Operations,
    /// Serialises "is a load of this series running?" with starting one.
    admission: Mutex<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataManager")
            .field("store", &self.store.dir())
            .field("provider", &self.provider.name())
            .finish_non_exhaustive()
    }
}

impl DataManager {
    /// Loads into `store` from `provider`, tracking loads in `ops`.
    pub fn new(store: Store, provider: Arc<dyn DataProvider>, ops: Operations) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                provider,
                ops,
                admission: Mutex::new(()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The provider gaps are filled from.
    pub fn provider(&self) -> &Arc<dyn DataProvider> {
        &self.inner.provider
    }

    /// Starts the load of a validated request ([`LoadRequest::validate`]); nothing
    /// starts when a load of the same series is already running (409).
    pub fn start_load(&self, spec: LoadSpec) -> Result<OperationInfo, HostError> {
        let handle = {
            let _admission = self
                .inner
                .admission
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let running = OperationFilter {
                operation_type: Some(LOAD_OPERATION.to_owned()),
                active_only: true,
                ..OperationFilter::default()
            };
            // A command delivered again: its operation exists, nothing starts.
            if let Some(existing) = spec
                .operation_id
                .as_deref()
                .and_then(|id| self.inner.ops.get(id))
            {
                return Ok(existing);
            }
            let (active, _, _) = self.inner.ops.list(&running);
            if let Some(op) = active.iter().find(|op| {
                op.metadata["symbol"] == spec.symbol.as_str()
                    && op.metadata["timeframe"] == spec.timeframe.as_str()
            }) {
                return Err(HostError::Conflict {
                    message: format!(
                        "a load of {} {} is already running ({}); cancel it or wait",
                        spec.symbol, spec.timeframe, op.operation_id
                    ),
                });
            }
            let metadata = json!({
                "symbol": spec.symbol.as_str(),
                "timeframe": spec.timeframe.as_str(),
                "mode": spec.mode.as_str(),
                "start_date": spec.start.map(|t| t.to_rfc3339()),
                "end_date": spec.end.map(|t| t.to_rfc3339()),
                "instrument_type": spec.instrument_type.map(InstrumentType::as_str),
                "source": self.inner.provider.name(),
                "correlation_id": spec.correlation_id,
            });
            match &spec.operation_id {
                Some(id) => self
                    .inner
                    .ops
                    .create_with_id(id, LOAD_OPERATION, metadata)?,
                None => self.inner.ops.create(LOAD_OPERATION, metadata),
            }
        };
        let info = handle.info();
        let manager = self.clone();
        self.inner.ops.tracker().spawn(async move {
            manager.run_load(handle, spec).await;
        });
        Ok(info)
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, HostError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, data_host::store::StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| HostError::internal(format_args!("store task failed: {e}")))?
            .map_err(|e| HostError::internal(format_args!("store: {e}")))
    }

    /// The stored bars of a series in `[start, end)`; 404 when nothing is stored.
    pub async fn bars(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<DataFrame, HostError> {
        let (sym, tf) = (symbol.clone(), timeframe);
        let frame = self.blocking(move |s| s.load(&sym, tf)).await?;
        let Some(frame) = frame else {
            return Err(HostError::not_found(format!(
                "no stored bars for {symbol} {timeframe}; load them first (POST /api/v1/data/load)"
            )));
        };
        let start = start.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let end = end.unwrap_or(DateTime::<Utc>::MAX_UTC);
        data_host::bars::slice_range(&frame, start, end)
            .map_err(|e| HostError::internal(format_args!("slicing bars: {e}")))
    }

    /// Every stored series with its coverage.
    pub async fn inventory(&self) -> Result<Vec<StoredSeries>, HostError> {
        self.blocking(|s| {
            let mut out = Vec::new();
            for (symbol, timeframe) in s.list()? {
                let coverage = s.coverage(&symbol, timeframe)?;
                out.push(StoredSeries {
                    symbol: symbol.to_string(),
                    timeframe: timeframe.to_string(),
                    first: coverage.map(|c| c.first),
                    last: coverage.map(|c| c.last),
                    rows: coverage.map_or(0, |c| c.rows),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn run_load(&self, handle: OperationHandle, spec: LoadSpec) {
        handle.start();
        let token = handle.token();
        match self.load(&handle, &spec, &token).await {
            Ok(summary) => {
                let failed = summary["segments_failed"].as_u64().unwrap_or(0);
                if failed > 0 {
                    handle.warn(format!(
                        "{failed} segment(s) could not be fetched; see the result"
                    ));
                }
                handle.complete(summary);
            }
            // A cancel has already marked the operation; nothing to add.
            Err(_) if token.is_cancelled() => {}
            Err(message) => {
                handle.fail(message);
            }
        }
    }

    /// The load itself; `Err` is the failure message.
    async fn load(
        &self,
        handle: &OperationHandle,
        spec: &LoadSpec,
        token: &CancellationToken,
    ) -> Result<serde_json::Value, String> {
        let provider = &self.inner.provider;
        let source = provider.name().to_owned();
        let (symbol, timeframe) = (spec.symbol.clone(), spec.timeframe);
        let now = Utc::now();
        let end = spec.end.unwrap_or(now).min(now);

        let stored = {
            let (sym, tf) = (symbol.clone(), timeframe);
            self.blocking(move |s| s.load(&sym, tf))
                .await
                .map_err(|e| e.to_string())?
        };
        let stored_ms = match &stored {
            Some(frame) => timestamps_ms(frame).map_err(|e| format!("reading the store: {e}"))?,
            None => Vec::new(),
        };
        let bars_before = stored_ms.len();

        // Where the range starts: given, or as far back as the provider has data.
        let start = match (spec.start, spec.mode) {
            (Some(start), _) => start,
            (None, LoadMode::Local) => DateTime::<Utc>::MIN_UTC,
            (None, _) => {
                handle.progress(|p| {
                    p.current_step = Some(format!(
                        "asking {source} where {symbol} {timeframe} data begins"
                    ));
                });
                let head = provider
                    .head_timestamp(&symbol, timeframe, spec.instrument_type, token)
                    .await
                    .map_err(|e| describe(&source, &e))?;
                head.unwrap_or(end - default_lookback(timeframe))
            }
        };

        let ranges = plan::plan(spec.mode, timeframe, &stored_ms, start, end);
        let segments: Vec<_> = ranges
            .iter()
            .flat_map(|r| split(timeframe, r.start, r.end))
            .collect();
        let total = segments.len();
        handle.progress(|p| {
            p.steps_total = total as u64;
            p.current_step = Some(format!("{total} segment(s) to fetch from {source}"));
        });

        let mut fetched_bars = 0usize;
        let mut merged = MergeReport::default();
        // The span of the segments whose bars were merged: `data.loaded`'s range.
        let mut loaded: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
        let mut failures = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            if token.is_cancelled() {
                return Err("cancelled".into());
            }
            let step = format!(
                "segment {}/{total}: {} → {}",
                i + 1,
                segment.start.to_rfc3339(),
                segment.end.to_rfc3339()
            );
            handle.progress(|p| {
                p.current_step = Some(step.clone());
                p.current_item = Some(format!("{symbol} {timeframe}"));
                p.context = json!({
                    "segment": i + 1,
                    "segments": total,
                    "start": segment.start,
                    "end": segment.end,
                });
            });
            let request = BarsRequest::new(
                symbol.clone(),
                timeframe,
                segment.start,
                segment.end,
                spec.instrument_type,
            )
            .map_err(|e| e.to_string())?;
            let fetched = self
                .fetch_reporting_waits(handle, &request, token, (i + 1, total))
                .await;
            match fetched {
                Ok(frame) => {
                    let rows = frame.height();
                    fetched_bars += rows;
                    if rows > 0 {
                        let (sym, tf) = (symbol.clone(), timeframe);
                        let report = self
                            .blocking(move |s| s.merge(&sym, tf, &frame))
                            .await
                            .map_err(|e| format!("{step}: storing failed: {e}"))?;
                        merged.added += report.added;
                        merged.replaced += report.replaced;
                        merged.after = report.after;
                        loaded = Some(loaded.map_or((segment.start, segment.end), |(s, e)| {
                            (s.min(segment.start), e.max(segment.end))
                        }));
                    }
                }
                Err(DataError::Cancelled) => return Err("cancelled".into()),
                Err(e) if segment_error_is_fatal(&e) => {
                    let kept = if merged.added > 0 {
                        format!("; {} bar(s) fetched before it are stored", merged.added)
                    } else {
                        String::new()
                    };
                    return Err(format!("{step} failed: {}{kept}", describe(&source, &e)));
                }
                Err(e) => {
                    tracing::warn!(%symbol, %timeframe, %step, error = %e, "segment failed; continuing");
                    failures.push(json!({
                        "start": segment.start,
                        "end": segment.end,
                        "error": describe(&source, &e),
                    }));
                }
            }
            handle.progress(|p| {
                // What is in the store already, should the load fail later.
                p.context["bars_added"] = json!(merged.added);
                p.context["bars_replaced"] = json!(merged.replaced);
                p.context["loaded_range"] = range_json(loaded);
                p.steps_completed = (i + 1) as u64;
                p.items_processed = fetched_bars as u64;
                p.percentage = 100.0 * (i + 1) as f64 / total.max(1) as f64;
            });
        }

        let coverage = {
            let (sym, tf) = (symbol.clone(), timeframe);
            self.blocking(move |s| s.coverage(&sym, tf))
                .await
                .map_err(|e| e.to_string())?
        };
        let bars_after = coverage.map_or(0, |c: Coverage| c.rows);
        Ok(json!({
            "symbol": symbol.as_str(),
            "timeframe": timeframe.as_str(),
            "mode": spec.mode.as_str(),
            "source": source,
            "requested_start": (start != DateTime::<Utc>::MIN_UTC).then_some(start),
            "requested_end": end,
            "ranges": ranges,
            "segments_total": total,
            "segments_fetched": total - failures.len(),
            "segments_failed": failures.len(),
            "failed_segments": failures,
            "bars_fetched": fetched_bars,
            "bars_added": merged.added,
            "bars_replaced": merged.replaced,
            "loaded_range": range_json(loaded),
            "bars_before": bars_before,
            "bars_after": bars_after,
            "first_bar": coverage.map(|c| c.first),
            "last_bar": coverage.map(|c| c.last),
        }))
    }
}

impl DataManager {
    /// `provider.bars`, saying in the operation's progress every second while the
    /// segment waits, and on what: IB's pacing (with when the next request may go) or
    /// the source itself (data-host, or IB answering slowly). A one-segment load that
    /// waits minutes for pacing says so instead of sitting silent at 0 %.
    async fn fetch_reporting_waits(
        &self,
        handle: &OperationHandle,
        request: &BarsRequest,
        token: &CancellationToken,
        (segment, total): (usize, usize),
    ) -> Result<DataFrame, DataError> {
        let provider = &self.inner.provider;
        let fetch = provider.bars(request, token);
        tokio::pin!(fetch);
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(started + WAIT_REPORT, WAIT_REPORT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                result = &mut fetch => return result,
                _ = tick.tick() => {
                    let waited = started.elapsed().as_secs();
                    let pacing = provider.pacing().filter(|p| p.waiting > 0);
                    let (step, waiting_for, next_in) = match pacing {
                        Some(p) => {
                            let next = p.next_grant_in.map(|d| d.as_secs_f64().ceil());
                            let due = next.map_or(String::new(), |s| format!(" (next request in {s} s)"));
                            (
                                format!("waiting {waited} s for IB pacing, segment {segment} of {total}{due}"),
                                "ib_pacing",
                                next,
                            )
                        }
                        None => (
                            format!("waiting {waited} s for {}, segment {segment} of {total}", provider.name()),
                            "source",
                            None,
                        ),
                    };
                    handle.progress(|p| {
                        p.current_step = Some(step);
                        p.context["waiting_for"] = json!(waiting_for);
                        p.context["waiting_seconds"] = json!(waited);
                        p.context["next_request_in_seconds"] = json!(next_in);
                    });
                }
            }
        }
    }
}

/// How often a segment's wait is reported in its progress.
const WAIT_REPORT: Duration = Duration::from_secs(1);

/// `{start, end}` of what was merged, or null.
fn range_json(range: Option<(DateTime<Utc>, DateTime<Utc>)>) -> serde_json::Value {
    range.map_or(
        serde_json::Value::Null,
        |(start, end)| json!({"start": start, "end": end}),
    )
}

/// Whether a failed segment ends the load. A lost connection, an unknown symbol, a
/// missing subscription or a store failure will fail every later segment too; a
/// broker error about one range (no data in it) or a pacing refusal does not.
fn segment_error_is_fatal(e: &DataError) -> bool {
    !matches!(e, DataError::Broker { .. } | DataError::Pacing(_))
}

/// An error text that names where it came from.
fn describe(source: &str, e: &DataError) -> String {
    let text = e.to_string();
    if text.contains(source) {
        text
    } else {
        format!("{source}: {text}")
    }
}
