//! The data requests: historical bars, head timestamp, contract details.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::SimConfig;
use super::contract::{self, Resolved};
use super::history::{self, Refusal};
use super::leases::OpenSlots;
use super::pacing::{PacingKey, Violation};
use super::proto::{
    Contract, ContractData, ContractDataEnd, HeadTimestamp, HeadTimestampRequest, HistoricalData,
    HistoricalDataEnd, HistoricalDataRequest, msg,
};
use super::session::{Connection, decode};
use super::stats::Counters;
use super::wire::{self, FrameTooLarge, Outbox};
use crate::Timeframe;

const NO_SECURITY: &str = "No security definition has been found for the request";
const PACING: &str =
    "Historical Market Data Service error message:Historical data request pacing violation";

/// A historical request that passed validation, ready to be answered.
struct BarQuery {
    id: i32,
    key: String,
    timeframe: Option<Timeframe>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    format_date: i32,
    keep_up_to_date: bool,
    /// For the "no data" text: `AAPL@SMART Trades`.
    label: String,
}

impl Connection {
    /// Resolves `contract` against the source. A store-backed source may read and parse
    /// a file to answer, so it runs on the blocking pool, never on the async threads
    /// that carry every client's messages.
    async fn resolve(&self, contract: &Contract) -> Option<Resolved> {
        let (shared, contract) = (Arc::clone(&self.shared), contract.clone());
        tokio::task::spawn_blocking(move || {
            contract::resolve(&contract, shared.config.source.as_ref(), &shared.con_ids)
        })
        .await
        .ok()
        .flatten()
    }

    async fn refuse(&self, id: i32, refusal: Refusal, label: &str) {
        match refusal {
            Refusal::Invalid(why) => {
                self.out
                    .error(id, 321, format!("Error validating request:-{why}"))
                    .await;
            }
            Refusal::NoData => self.no_data(id, label).await,
        }
    }

    async fn no_data(&self, id: i32, label: &str) {
        let text = format!(
            "Historical Market Data Service error message:HMDS query returned no data: {label}"
        );
        self.out.error(id, 162, text).await;
    }

    pub(super) async fn historical_data(&self, payload: &[u8]) {
        Counters::bump(&self.shared.counters.historical_requests);
        let Some(request) = decode::<HistoricalDataRequest>(payload) else {
            return;
        };
        let id = request.req_id.unwrap_or(-1);
        let contract = request.contract.clone().unwrap_or_default();
        let Some(resolved) = self.resolve(&contract).await else {
            self.out.error(id, 200, NO_SECURITY).await;
            return;
        };
        let exchange = contract.exchange.clone().unwrap_or_default();
        let what = request.what_to_show.clone().unwrap_or_default();
        let label = format!("{}@{} {}", resolved.key, exchange, title_case(&what));
        let query = match parse(&request, id, &resolved, label) {
            Ok(query) => query,
            Err((refusal, label)) => return self.refuse(id, refusal, &label).await,
        };
        let weight = if what.eq_ignore_ascii_case("BID_ASK") {
            self.shared.config.pacing.bid_ask_weight
        } else {
            1
        };
        let slots = if self.shared.config.enforce_pacing {
            let key = PacingKey {
                contract: format!("{}|{}|{exchange}|{what}", resolved.key, resolved.sec_type),
                full: format!(
                    "{}|{}|{exchange}|{what}|{}|{}|{}|{}",
                    resolved.key,
                    resolved.sec_type,
                    request.end_date_time.as_deref().unwrap_or(""),
                    request.duration.as_deref().unwrap_or(""),
                    request.bar_size_setting.as_deref().unwrap_or(""),
                    request.use_rth.unwrap_or(false),
                ),
                weight,
            };
            // The pacer's lock must not be held across an await.
            let admitted = self.shared.pacer().admit(key, Instant::now());
            if let Err(violation) = admitted {
                Counters::bump(&self.shared.counters.violations);
                tracing::info!(id, ?violation, "ib-sim: pacing violation");
                let text = match violation {
                    Violation::TooManyOpen => format!(
                        "{PACING} (more than {} open requests)",
                        self.shared.config.pacing.max_open
                    ),
                    _ => PACING.to_owned(),
                };
                self.out.error(id, 162, text).await;
                return;
            }
            OpenSlots {
                shared: Arc::clone(&self.shared),
                weight,
            }
        } else {
            OpenSlots {
                shared: Arc::clone(&self.shared),
                weight: 0,
            }
        };

        let token = self.requests.child_token();
        let ticket = self.open.open(id, token.clone());
        let open = self.open.clone();
        let out = self.out.clone();
        let config = self.shared.config.clone();
        tokio::spawn(async move {
            let _slots = slots;
            tokio::select! {
                () = token.cancelled() => {}
                () = answer(&config, &out, &query) => {
                    if query.keep_up_to_date {
                        token.cancelled().await;
                    }
                }
            }
            open.finish(query.id, ticket);
        });
    }

    pub(super) async fn head_timestamp(&self, payload: &[u8]) {
        Counters::bump(&self.shared.counters.head_timestamp_requests);
        let Some(request) = decode::<HeadTimestampRequest>(payload) else {
            return;
        };
        let id = request.req_id.unwrap_or(-1);
        let Some(resolved) = self.resolve(&request.contract.unwrap_or_default()).await else {
            self.out.error(id, 200, NO_SECURITY).await;
            return;
        };
        let what = request.what_to_show.unwrap_or_default();
        let label = format!("{} {}", resolved.key, title_case(&what));
        if let Err(refusal) = history::what_to_show(&what) {
            return self.refuse(id, refusal, &label).await;
        }
        let (source, key) = (Arc::clone(&self.shared.config.source), resolved.key.clone());
        let head = tokio::task::spawn_blocking(move || source.head_timestamp(&key))
            .await
            .ok()
            .flatten();
        let Some(head) = head else {
            return self.no_data(id, &label).await;
        };
        let text = match request.format_date {
            Some(1) => head.format("%Y%m%d %H:%M:%S").to_string(),
            _ => head.timestamp().to_string(),
        };
        let answer = HeadTimestamp {
            req_id: Some(id),
            head_timestamp: Some(text),
        };
        self.out.send(msg::HEAD_TIMESTAMP, &answer).await;
    }

    pub(super) async fn contract_details(&self, payload: &[u8]) {
        Counters::bump(&self.shared.counters.contract_detail_requests);
        let Some(request) = decode::<super::proto::ContractDataRequest>(payload) else {
            return;
        };
        let id = request.req_id.unwrap_or(-1);
        let requested = request.contract.unwrap_or_default();
        let Some(resolved) = self.resolve(&requested).await else {
            self.out.error(id, 200, NO_SECURITY).await;
            return;
        };
        let (contract, details) = contract::describe(&requested, &resolved);
        let data = ContractData {
            req_id: Some(id),
            contract: Some(contract),
            contract_details: Some(details),
        };
        self.out.send(msg::CONTRACT_DATA, &data).await;
        self.out
            .send(
                msg::CONTRACT_DATA_END,
                &ContractDataEnd { req_id: Some(id) },
            )
            .await;
    }
}

/// Validates a historical request; a refusal comes with the label for its text.
fn parse(
    request: &HistoricalDataRequest,
    id: i32,
    resolved: &Resolved,
    label: String,
) -> Result<BarQuery, (Refusal, String)> {
    let fail = |refusal| (refusal, label.clone());
    history::what_to_show(request.what_to_show.as_deref().unwrap_or("")).map_err(fail)?;
    let timeframe =
        history::bar_size(request.bar_size_setting.as_deref().unwrap_or("")).map_err(fail)?;
    let end = history::end_date_time(request.end_date_time.as_deref().unwrap_or(""), Utc::now())
        .map_err(fail)?;
    let start =
        history::window_start(request.duration.as_deref().unwrap_or(""), end).map_err(fail)?;
    Ok(BarQuery {
        id,
        key: resolved.key.clone(),
        timeframe,
        start,
        end,
        format_date: request.format_date.unwrap_or(1),
        keep_up_to_date: request.keep_up_to_date.unwrap_or(false),
        label,
    })
}

/// Sends the bars of `query` (after the configured delay) and the window, or the
/// "no data" error.
async fn answer(config: &SimConfig, out: &Outbox, query: &BarQuery) {
    if !config.response_delay.is_zero() {
        tokio::time::sleep(config.response_delay).await;
    }
    let no_data = format!(
        "Historical Market Data Service error message:HMDS query returned no data: {}",
        query.label
    );
    let Some(timeframe) = query.timeframe else {
        out.error(query.id, 162, no_data).await;
        return;
    };
    // Off the async threads: the first ask of a series reads and parses its file.
    let (source, key) = (Arc::clone(&config.source), query.key.clone());
    let all = tokio::task::spawn_blocking(move || source.bars(&key, timeframe))
        .await
        .ok()
        .flatten();
    let bars = all
        .map(|all| history::select(&all, query.start, query.end))
        .unwrap_or_default();
    if bars.is_empty() {
        out.error(query.id, 162, no_data).await;
        return;
    }
    let data = HistoricalData {
        req_id: Some(query.id),
        bars: bars
            .iter()
            .map(|bar| history::wire_bar(bar, timeframe, query.format_date))
            .collect(),
    };
    let frame = match wire::encode(msg::HISTORICAL_DATA, &data) {
        Ok(frame) => frame,
        Err(FrameTooLarge(len)) => {
            tracing::info!(
                id = query.id,
                bars = bars.len(),
                len,
                "ib-sim: answer too large for one frame"
            );
            out.error(
                query.id,
                162,
                "Historical Market Data Service error message:Time length exceed max.",
            )
            .await;
            return;
        }
    };
    let end = HistoricalDataEnd {
        req_id: Some(query.id),
        start_date_str: Some(history::window_text(query.start)),
        end_date_str: Some(history::window_text(query.end)),
    };
    if out.send_frame(frame).await {
        out.send(msg::HISTORICAL_DATA_END, &end).await;
    }
}

/// `TRADES` -> `Trades`, as IB writes it in "no data" texts.
fn title_case(what: &str) -> String {
    let lower = what.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
