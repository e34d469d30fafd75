//! The load algorithm: where the range starts, which ranges the mode wants, the
//! IB-sized segments, each fetched (its waits reported in progress) and merged into the
//! store as it arrives, and the summary the operation ends with.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use data_host::Timeframe;
use data_host::bars::timestamps_ms;
use data_host::ib::segment::split;
use data_host::provider::{BarsRequest, DataError};
use data_host::store::{Coverage, MergeReport};
use host_service_base::operations::OperationHandle;
use host_service_base::{CancellationToken, HostError};
use polars::prelude::DataFrame;
use serde_json::json;

use super::{DataManager, LoadMode, LoadSpec, plan};

/// How far back a load with no start date reaches when the provider cannot say where
/// its data begins.
pub fn default_lookback(timeframe: Timeframe) -> TimeDelta {
    match timeframe {
        tf if tf < Timeframe::H1 => TimeDelta::days(30),
        tf if tf < Timeframe::D1 => TimeDelta::days(365),
        _ => TimeDelta::days(365 * 10),
    }
}

impl DataManager {
    /// Runs a started load to its end, marking the operation with the outcome.
    pub(super) async fn run_load(&self, handle: OperationHandle, spec: LoadSpec) {
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
            let mut outages = 0;
            let fetched = loop {
                let result = self
                    .fetch_reporting_waits(handle, &request, token, (i + 1, total))
                    .await;
                match result {
                    // A short outage must not kill a long load: wait for the link and
                    // fetch this segment again; a flapping link gives up in time.
                    Err(e) if link_lost(&e) && outages < MAX_OUTAGES_PER_SEGMENT => {
                        outages += 1;
                        if let Err(still_down) =
                            self.wait_for_link(handle, token, &e, (i + 1, total)).await
                        {
                            let kept = if merged.added > 0 {
                                format!("; {} bar(s) fetched before it are stored", merged.added)
                            } else {
                                String::new()
                            };
                            return Err(format!("{step} failed: {still_down}{kept}"));
                        }
                    }
                    other => break other,
                }
            };
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

/// Default longest wait of a load for its lost upstream link (IB Gateway, or every
/// data-host) to return; IB Gateway's nightly restart takes about a minute.
pub const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(120);

/// Outages one segment may sit out before the load gives up on a flapping link.
const MAX_OUTAGES_PER_SEGMENT: u32 = 5;

/// Whether `e` says the upstream link is down (not that this request was bad): the IB
/// Gateway connection, or no data-host reachable.
fn link_lost(e: &DataError) -> bool {
    matches!(
        e,
        DataError::Connectivity(_) | DataError::Host(HostError::Unavailable { .. })
    )
}

impl DataManager {
    /// Waits, bounded by the manager's reconnect wait, for the provider to be ready
    /// again, saying so in the operation's progress every second. `Err` says why the
    /// load ends: the link stayed down, naming where it looked.
    async fn wait_for_link(
        &self,
        handle: &OperationHandle,
        token: &CancellationToken,
        lost: &DataError,
        (segment, total): (usize, usize),
    ) -> Result<(), String> {
        let provider = &self.inner.provider;
        let bound = self.inner.reconnect_wait;
        let started = tokio::time::Instant::now();
        tracing::warn!(error = %lost, segment, total, "load waiting for its upstream link to return");
        loop {
            let why = match provider.status().ready() {
                Ok(()) => {
                    tracing::info!(
                        waited_s = started.elapsed().as_secs(),
                        segment,
                        "link back; resuming the load"
                    );
                    return Ok(());
                }
                Err(why) => why,
            };
            let waited = started.elapsed();
            if waited >= bound {
                return Err(format!(
                    "{} ({why}); waited {} for it to return",
                    describe(provider.name(), lost),
                    humantime::format_duration(Duration::from_secs(waited.as_secs()))
                ));
            }
            handle.progress(|p| {
                p.current_step = Some(format!(
                    "link lost: waiting {} s of at most {} s for {} to return, then resuming at segment {segment} of {total}",
                    waited.as_secs(),
                    bound.as_secs(),
                    provider.name()
                ));
                p.context["waiting_for"] = json!("reconnect");
                p.context["waiting_seconds"] = json!(waited.as_secs());
                p.context["link_error"] = json!(why);
            });
            tokio::select! {
                () = token.cancelled() => return Err("cancelled".into()),
                () = tokio::time::sleep(WAIT_REPORT.min(bound.saturating_sub(waited))) => {}
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lookback_grows_with_the_bar_size() {
        assert_eq!(default_lookback(Timeframe::M5), TimeDelta::days(30));
        assert_eq!(default_lookback(Timeframe::H4), TimeDelta::days(365));
        assert_eq!(default_lookback(Timeframe::W1), TimeDelta::days(3650));
    }

    #[test]
    fn only_errors_that_would_repeat_end_a_load() {
        let broker = DataError::Broker {
            code: 162,
            message: "no data in this range".into(),
        };
        assert!(!segment_error_is_fatal(&broker));
        assert!(segment_error_is_fatal(&DataError::UnknownSymbol {
            symbol: "XYZ".into()
        }));
        assert!(segment_error_is_fatal(&DataError::Store(
            "disk full".into()
        )));
    }

    #[test]
    fn an_error_names_its_source_once() {
        let e = DataError::Store("disk full".into());
        assert!(describe("data-host", &e).starts_with("data-host: "));
        let named = DataError::Store("data-host lost its store".into());
        assert!(!describe("data-host", &named).starts_with("data-host: "));
    }

    #[test]
    fn the_loaded_range_is_null_until_something_was_merged() {
        assert_eq!(range_json(None), serde_json::Value::Null);
        let t = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(range_json(Some((t, t)))["start"], "1970-01-01T00:00:00Z");
    }
}
