//! The one seam every market-data source sits behind: [`DataProvider`].
//!
//! Three implementations: the local store (`--source local`), the in-process IB
//! provider, and the typed `DataHostClient` of a remote data-host. The gateway and
//! training-host hold an `Arc<dyn DataProvider>` and never learn which one it is.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use host_service_base::{CancellationToken, HostError};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

/// Bars wanted: `symbol` at `timeframe` with open times in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BarsRequest {
    /// Validated symbol.
    pub symbol: Symbol,
    /// Bar size.
    pub timeframe: Timeframe,
    /// First bar open time wanted (inclusive).
    pub start: DateTime<Utc>,
    /// End of the range (exclusive).
    pub end: DateTime<Utc>,
    /// What the symbol is; `None` lets the provider guess.
    pub instrument_type: Option<InstrumentType>,
}

impl BarsRequest {
    /// Builds a request, rejecting an empty or inverted range (naming `start`).
    pub fn new(
        symbol: Symbol,
        timeframe: Timeframe,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        instrument_type: Option<InstrumentType>,
    ) -> Result<Self, DataError> {
        if start >= end {
            return Err(DataError::invalid(
                "start",
                format!(
                    "start {} is not before end {}",
                    start.to_rfc3339(),
                    end.to_rfc3339()
                ),
            ));
        }
        Ok(Self {
            symbol,
            timeframe,
            start,
            end,
            instrument_type,
        })
    }

    /// The instrument type given, or the guess for the symbol.
    pub fn instrument(&self) -> InstrumentType {
        self.instrument_type
            .unwrap_or_else(|| InstrumentType::guess(&self.symbol))
    }
}

/// What a broker knows about a contract (the `contract_info` of the KTRDR contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractInfo {
    /// The symbol as the broker spells it.
    pub symbol: String,
    /// IB security type: `STK`, `CASH`, `FUT`, `CONTFUT`, `IND`.
    pub asset_type: String,
    /// Primary exchange (or the routing exchange).
    pub exchange: String,
    /// Trading currency.
    pub currency: String,
    /// Long name.
    pub description: String,
    /// Unix seconds when the broker confirmed the contract.
    pub validated_at: f64,
    /// Earliest bar available (ISO 8601), when known.
    pub head_timestamp: Option<String>,
}

/// Result of validating a symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Whether the broker knows the symbol.
    pub is_valid: bool,
    /// Why not, when it is not.
    pub error_message: Option<String>,
    /// The contract, when valid.
    pub contract_info: Option<ContractInfo>,
    /// Earliest available bar per timeframe asked (`None` when unknown).
    pub head_timestamps: BTreeMap<String, Option<DateTime<Utc>>>,
}

/// Every failure a data provider can end in.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Bad input; `field` names it.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The broker has no such instrument (IB error 200).
    #[error("no security definition found for {symbol}")]
    UnknownSymbol {
        /// The symbol asked for.
        symbol: String,
    },
    /// The market-data subscription does not cover the request (IB error 354).
    #[error("market data not subscribed for {symbol}: {message}")]
    NotSubscribed {
        /// The symbol asked for.
        symbol: String,
        /// The broker's message.
        message: String,
    },
    /// The broker refused because of pacing (IB error 162 for pacing).
    #[error("pacing violation reported by IB: {0}")]
    Pacing(String),
    /// The broker connection is down or was lost (IB 502, 1100, socket errors).
    #[error("IB Gateway connection: {0}")]
    Connectivity(String),
    /// The broker did not answer in time.
    #[error("IB Gateway did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Any other broker error, with IB's code.
    #[error("IB error {code}: {message}")]
    Broker {
        /// IB's error code.
        code: i32,
        /// IB's message.
        message: String,
    },
    /// Reading or writing the local store failed.
    #[error("store: {0}")]
    Store(String),
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A remote data-host answered with an error.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl DataError {
    /// Shorthand for [`DataError::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A stable machine code for this error, sent beside the message as the
    /// `error_code` addition to the KTRDR contract (`invalid:timeframe`, `pacing`, ...)
    /// so that clients can tell failures apart without parsing text.
    pub fn code(&self) -> String {
        match self {
            Self::Invalid { field, .. } => format!("invalid:{field}"),
            Self::UnknownSymbol { .. } => "unknown_symbol".into(),
            Self::NotSubscribed { .. } => "not_subscribed".into(),
            Self::Pacing(_) => "pacing".into(),
            Self::Connectivity(_) => "connectivity".into(),
            Self::Timeout(_) => "timeout".into(),
            Self::Broker { code, .. } => format!("broker:{code}"),
            Self::Store(_) => "store".into(),
            Self::Cancelled => "cancelled".into(),
            Self::Host(e) => format!("host:{}", e.code()),
        }
    }

    /// Rebuilds an error from its [`code`](Self::code) and message (client side).
    /// What does not cross the wire (a timeout's length) comes back empty.
    pub fn from_code(code: Option<&str>, message: String) -> Self {
        const FIELDS: [&str; 6] = [
            "symbol",
            "timeframe",
            "start",
            "end",
            "instrument_type",
            "timeframes",
        ];
        let (kind, arg) = code.map_or(("", ""), |c| c.split_once(':').unwrap_or((c, "")));
        match kind {
            "invalid" => {
                let field = FIELDS.into_iter().find(|f| *f == arg).unwrap_or("request");
                // The message was "invalid `field`: detail"; keep the detail.
                let detail = message
                    .split_once("`: ")
                    .map_or(message.clone(), |(_, m)| m.to_owned());
                Self::Invalid {
                    field,
                    message: detail,
                }
            }
            "unknown_symbol" => Self::UnknownSymbol {
                symbol: message.rsplit(' ').next().unwrap_or_default().to_owned(),
            },
            "not_subscribed" => Self::NotSubscribed {
                symbol: String::new(),
                message,
            },
            "pacing" => Self::Pacing(message),
            "connectivity" => Self::Connectivity(message),
            "timeout" => Self::Timeout(std::time::Duration::ZERO),
            "cancelled" => Self::Cancelled,
            "broker" => Self::Broker {
                code: arg.parse().unwrap_or(0),
                message,
            },
            "store" => Self::Store(message),
            _ => Self::Host(HostError::Upstream {
                status: 200,
                code: code.unwrap_or("data_error").to_owned(),
                message,
            }),
        }
    }
}

impl From<DataError> for HostError {
    fn from(error: DataError) -> Self {
        match error {
            DataError::Invalid { field, message } => HostError::bad_field(field, message),
            e @ DataError::UnknownSymbol { .. } => HostError::not_found(e.to_string()),
            DataError::Cancelled => HostError::Cancelled,
            DataError::Host(inner) => inner,
            DataError::Timeout(after) => HostError::Timeout {
                service: "ib-gateway".into(),
                after,
            },
            e @ DataError::Connectivity(_) => HostError::unavailable("ib-gateway", e.to_string()),
            e @ DataError::Pacing(_) => HostError::Busy {
                message: e.to_string(),
                retry_after: None,
            },
            e @ (DataError::NotSubscribed { .. } | DataError::Broker { .. }) => {
                HostError::Upstream {
                    status: 502,
                    code: "ib_error".into(),
                    message: e.to_string(),
                }
            }
            DataError::Store(message) => HostError::internal(message),
        }
    }
}

/// A provider's connection state, reported by `/health/detailed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// `local`, `ib` or `data-host`.
    pub source: String,
    /// Whether the upstream (IB Gateway, remote data-host) is connected now; false for
    /// sources that have none.
    pub connected: bool,
    /// Open upstream connections.
    pub connections: usize,
    /// The last upstream error, if any.
    pub last_error: Option<String>,
    /// Source-specific figures (pacing counters, store directory, ...).
    pub details: serde_json::Value,
}

impl ProviderStatus {
    /// Whether requests that need the source's upstream can be served now: a store
    /// has none and is always ready; a broker-backed source (IB, a remote data-host)
    /// while it is connected. `Err` says why not, naming the upstream.
    pub fn ready(&self) -> Result<(), String> {
        if self.source == "local" || self.connected {
            return Ok(());
        }
        Err(match &self.last_error {
            Some(error) => format!("{} source not connected: {error}", self.source),
            None => format!("{} source not connected yet", self.source),
        })
    }
}

/// A source of historical bars. Every call is cancellable: when `cancel` fires the call
/// returns [`DataError::Cancelled`] promptly and releases what it holds (an IB request
/// is cancelled at the gateway).
#[async_trait]
pub trait DataProvider: Send + Sync {
    /// A short name for logs and health (`local`, `ib`, `data-host`).
    fn name(&self) -> &str;

    /// Bars of `request` as a DataFrame with columns `timestamp` (UTC datetime), `open`,
    /// `high`, `low`, `close`, `volume` (f64), sorted by time, no duplicates. No data in
    /// the range is an empty frame, not an error.
    async fn bars(
        &self,
        request: &BarsRequest,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, DataError>;

    /// The earliest bar available for `symbol` at `timeframe`, if known.
    async fn head_timestamp(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        instrument_type: Option<InstrumentType>,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError>;

    /// Whether the symbol exists, its contract, and head timestamps for `timeframes`.
    async fn validate(
        &self,
        symbol: &Symbol,
        timeframes: &[Timeframe],
        cancel: &CancellationToken,
    ) -> Result<Validation, DataError>;

    /// Connection state and counters, cheap to call (never waits on the network).
    fn status(&self) -> ProviderStatus;

    /// The pacing queue of a source that paces its requests (IB), for progress
    /// messages; `None` for sources that do not.
    fn pacing(&self) -> Option<crate::ib::PacingStats> {
        None
    }
}
