//! [`IbProvider`]: the [`DataProvider`] over TWS / IB Gateway through `ibapi`.
//!
//! It exists at once ([`IbProvider::new`]) and connects in the background
//! (module `connection`); bars go through coalescing, segmenting, pacing and `ibapi`
//! (module `fetch`); IB's errors become [`DataError`]s by code (module `errors`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use host_service_base::CancellationToken;
use polars::prelude::DataFrame;
use serde_json::json;

use super::coalesce::CoalesceStats;
use super::config::IbConfig;
use super::contract::IbContract;
use super::errors::IbError;
use super::fetch::{Inner, read};
use crate::provider::{
    BarsRequest, ContractInfo, DataError, DataProvider, ProviderStatus, Validation,
};
use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

/// What `/health/detailed` says about whose budget the pacing limits are.
pub const PACING_SCOPE: &str = "this process's own budget: IB paces per IB Gateway and \
    account, and other clients of the same gateway (another data-host, an api-gateway in \
    fallback mode, TWS itself) keep budgets of their own; when they share one, lower the \
    limits (IB_PACING_REQUESTS_PER_10MIN, IB_PACING_IDENTICAL_INTERVAL, \
    IB_PACING_BURST_PER_CONTRACT, IB_PACING_MAX_OPEN) so that together they stay within IB's";

/// Historical bars, head timestamps and contract validation from TWS / IB Gateway.
///
/// Cheap to share behind an `Arc`; [`shutdown`](IbProvider::shutdown) (or dropping
/// it) stops the connection task.
pub struct IbProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IbProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IbProvider")
            .field("connection", &self.inner.connection)
            .field("pacing", &self.inner.pacing)
            .finish_non_exhaustive()
    }
}

impl IbProvider {
    /// A provider for the gateway of `config`. It starts connecting in the
    /// background at once and reports `connected: false` until the handshake is
    /// done. Must be called within a tokio runtime (it spawns the connection task).
    pub fn new(config: IbConfig) -> Self {
        Self {
            inner: Arc::new(Inner::new(config)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IbConfig {
        &self.inner.config
    }

    /// Whether requests can be sent now (handshake done, connection alive, and TWS
    /// connected to IB's servers).
    pub fn is_connected(&self) -> bool {
        self.inner.connection.is_connected()
    }

    /// Stops the connection task and closes the connection; requests fail with
    /// `Connectivity` from then on. Returns at once (the socket closes in the
    /// background); see [`shutdown_and_wait`](Self::shutdown_and_wait).
    pub fn shutdown(&self) {
        self.inner.connection.shutdown();
    }

    /// [`shutdown`](Self::shutdown), and waits until the connection is closed.
    pub async fn shutdown_and_wait(&self) {
        self.inner.connection.shutdown_and_wait().await;
    }

    /// Counts an error of a call and remembers it as the last error.
    fn failed(&self, error: IbError) -> DataError {
        if error != IbError::Cancelled {
            self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
            self.inner.connection.note_error(error.to_string());
        }
        error.into()
    }
}

impl Drop for IbProvider {
    fn drop(&mut self) {
        self.inner.connection.shutdown();
    }
}

fn coalescing_json(stats: CoalesceStats) -> serde_json::Value {
    json!({
        "in_flight": stats.in_flight,
        "started": stats.started,
        "joined": stats.joined,
        "abandoned": stats.abandoned,
    })
}

fn invalid(message: String, timeframes: &[Timeframe]) -> Validation {
    Validation {
        is_valid: false,
        error_message: Some(message),
        contract_info: None,
        head_timestamps: timeframes.iter().map(|tf| (tf.to_string(), None)).collect(),
    }
}

#[async_trait]
impl DataProvider for IbProvider {
    fn name(&self) -> &str {
        "ib"
    }

    async fn bars(
        &self,
        request: &BarsRequest,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, DataError> {
        let inner = &self.inner;
        inner.counters.bars_calls.fetch_add(1, Ordering::Relaxed);
        let contract = IbContract::resolve(&request.symbol, request.instrument_type)
            .map_err(|e| self.failed(e))?;
        inner
            .bars(
                contract,
                request.timeframe,
                (request.start, request.end),
                cancel,
            )
            .await
            .map_err(|e| self.failed(e))
    }

    /// IB's earliest data point for the contract. It does not depend on the bar size:
    /// `timeframe` is accepted for the trait and not sent.
    async fn head_timestamp(
        &self,
        symbol: &Symbol,
        _timeframe: Timeframe,
        instrument_type: Option<InstrumentType>,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError> {
        let inner = &self.inner;
        inner.counters.head_calls.fetch_add(1, Ordering::Relaxed);
        let contract = IbContract::resolve(symbol, instrument_type).map_err(|e| self.failed(e))?;
        inner
            .head_timestamp(&contract, cancel)
            .await
            .map_err(|e| self.failed(e))
    }

    /// Contract details decide validity (IB's 200 is `is_valid: false`, not an
    /// error); the head timestamp, asked once (it is the same for every bar size),
    /// fills `head_timestamps` for each timeframe asked. Connectivity, timeouts and
    /// cancellation are errors.
    async fn validate(
        &self,
        symbol: &Symbol,
        timeframes: &[Timeframe],
        cancel: &CancellationToken,
    ) -> Result<Validation, DataError> {
        let inner = &self.inner;
        inner
            .counters
            .validate_calls
            .fetch_add(1, Ordering::Relaxed);
        let contract = match IbContract::resolve(symbol, None) {
            Ok(contract) => contract,
            Err(IbError::Invalid { message, .. }) => return Ok(invalid(message, timeframes)),
            Err(e) => return Err(self.failed(e)),
        };
        let details = match inner.contract_details(&contract, cancel).await {
            Ok(details) => details,
            Err(IbError::UnknownSymbol { .. }) => Vec::new(),
            Err(e) => return Err(self.failed(e)),
        };
        let Some(details) = details.into_iter().next() else {
            let c = &contract.contract;
            return Ok(invalid(
                format!(
                    "IB has no security definition for {symbol} ({} on {} in {})",
                    c.security_type.as_str(),
                    c.exchange,
                    c.currency
                ),
                timeframes,
            ));
        };
        let head = if timeframes.is_empty() {
            None
        } else {
            match inner.head_timestamp(&contract, cancel).await {
                Ok(head) => head,
                Err(e @ (IbError::Cancelled | IbError::Connectivity(_) | IbError::Timeout(_))) => {
                    return Err(self.failed(e));
                }
                // The contract is valid; only its history is not available to us.
                Err(e) => {
                    tracing::warn!(%symbol, error = %e, "head timestamp unavailable");
                    None
                }
            }
        };
        let c = &details.contract;
        let text = |s: String, fallback: String| if s.is_empty() { fallback } else { s };
        let info = ContractInfo {
            symbol: text(c.local_symbol.clone(), c.symbol.to_string()),
            asset_type: c.security_type.as_str().to_owned(),
            exchange: text(c.primary_exchange.to_string(), c.exchange.to_string()),
            currency: c.currency.to_string(),
            description: details.long_name.clone(),
            validated_at: Utc::now().timestamp_millis() as f64 / 1000.0,
            head_timestamp: head.map(|h| h.to_rfc3339()),
        };
        let head_timestamps: BTreeMap<String, Option<DateTime<Utc>>> =
            timeframes.iter().map(|tf| (tf.to_string(), head)).collect();
        Ok(Validation {
            is_valid: true,
            error_message: None,
            contract_info: Some(info),
            head_timestamps,
        })
    }

    fn pacing(&self) -> Option<super::PacingStats> {
        Some(self.inner.pacing.stats())
    }

    fn status(&self) -> ProviderStatus {
        let inner = &self.inner;
        let connection = &inner.connection;
        let connected = connection.is_connected();
        let conn = connection.stats();
        let pacing = inner.pacing.stats();
        let counters = &inner.counters;
        let config = &inner.config;
        ProviderStatus {
            source: "ib".to_owned(),
            connected,
            connections: usize::from(connected),
            last_error: connection.last_error(),
            details: json!({
                "address": config.address.to_string(),
                "client_id": config.client_id,
                "state": connection.state(),
                "reconnects": conn.reconnects,
                "connect_attempts": conn.attempts,
                "connect_failures": conn.failures,
                "requests": {
                    "bars": read(&counters.bars_calls),
                    "head_timestamp": read(&counters.head_calls),
                    "validate": read(&counters.validate_calls),
                    "ib_historical": read(&counters.historical_sent),
                    "ib_head_timestamp": read(&counters.head_sent),
                    "ib_contract_details": read(&counters.contract_sent),
                    "ib_no_data": read(&counters.no_data),
                },
                "errors": read(&counters.errors),
                "pacing": {
                    "limits": {
                        "requests_per_10min": config.pacing.max_per_window,
                        "identical_interval_seconds": config.pacing.identical_interval.as_secs_f64(),
                        "burst_per_contract": config.pacing.max_per_burst,
                        "max_open": config.pacing.max_open,
                    },
                    "scope": PACING_SCOPE,
                    "granted": pacing.granted,
                    "delayed": pacing.delayed,
                    "waiting": pacing.waiting,
                    "open": pacing.open,
                    "cancelled": pacing.cancelled,
                    "waited_total_ms": pacing.waited_total.as_millis(),
                    "longest_wait_ms": pacing.longest_wait.as_millis(),
                },
                "coalescing": {
                    "requests": coalescing_json(inner.ranges.stats()),
                    "segments": coalescing_json(inner.segments.stats()),
                },
            }),
        }
    }
}
