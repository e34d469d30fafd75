//! `DataHostClient`: the typed client of a data-host service, and a [`DataProvider`]
//! like the others, so the gateway and training-host cannot tell it from in-process
//! data. It asks for Arrow and accepts JSON (a KTRDR service answers JSON only).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use host_service_base::health::{DEFAULT_HEALTH_TTL, HealthCache};
use host_service_base::{AsyncHostService, CancellationToken, HostClient, HostError};
use polars::prelude::DataFrame;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

use crate::api::wire::{self, ARROW_STREAM};
use crate::api::{
    HeadResponse, HistoricalRequest, HistoricalResponse, ValidateRequest, ValidationResponse,
};
use crate::provider::{
    BarsRequest, ContractInfo, DataError, DataProvider, ProviderStatus, Validation,
};
use crate::store::csv::parse_timestamp;
use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

/// Longest a historical call may take, retries included: pacing can hold long ranges
/// for minutes. A little longer than data-host's own request timeout, so its answer (or
/// its 504) arrives; fast failures (connection refused, 503) are retried inside this
/// budget, a slow attempt is not repeated (never 4 × 10 minutes on one call).
pub const HISTORICAL_TIMEOUT: Duration =
    Duration::from_secs(crate::service::DEFAULT_REQUEST_TIMEOUT.as_secs() + 10);

/// Longest a quick call (head timestamp, validation) may take, retries included: inside
/// a caller's own default request timeout, so a gateway route that makes one answers
/// with this call's error, not its own timeout.
pub const QUICK_CALL_DEADLINE: Duration =
    Duration::from_secs(host_service_base::server::DEFAULT_REQUEST_TIMEOUT.as_secs() - 5);

/// Wire format to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Arrow IPC stream, falling back to JSON when the service answers JSON.
    #[default]
    Arrow,
    /// The KTRDR JSON contract only.
    Json,
}

/// A client of one data-host.
#[derive(Debug)]
pub struct DataHostClient {
    client: HostClient,
    health: HealthCache,
    format: Format,
}

impl DataHostClient {
    /// A client of the data-host at `base_url` with default settings.
    pub fn new(base_url: &str) -> Result<Self, HostError> {
        Ok(Self::with_client(HostClient::new("data-host", base_url)?))
    }

    /// A client over an existing (shared) HTTP client.
    pub fn with_client(client: HostClient) -> Self {
        Self {
            client,
            health: HealthCache::new(DEFAULT_HEALTH_TTL),
            format: Format::Arrow,
        }
    }

    /// Chooses the wire format of historical bars.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
}

#[async_trait]
impl AsyncHostService for DataHostClient {
    fn client(&self) -> &HostClient {
        &self.client
    }

    /// Readiness, not liveness: `/health/` is healthy only while data-host can fetch
    /// (its IB Gateway link is up), so a pool does not send loads to one that cannot.
    fn health_path(&self) -> &str {
        "/health/"
    }

    fn health_cache(&self) -> &HealthCache {
        &self.health
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(text).and_then(DateTime::from_timestamp_millis)
}

#[async_trait]
impl DataProvider for DataHostClient {
    fn name(&self) -> &str {
        "data-host"
    }

    async fn bars(
        &self,
        request: &BarsRequest,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, DataError> {
        let body = HistoricalRequest {
            symbol: request.symbol.to_string(),
            timeframe: request.timeframe.to_string(),
            start: iso(request.start),
            end: iso(request.end),
            instrument_type: request.instrument_type.map(|i| i.as_str().to_owned()),
        };
        let accept = match self.format {
            Format::Arrow => "application/vnd.apache.arrow.stream, application/json;q=0.5",
            Format::Json => "application/json",
        };
        let answer = self
            .client
            .post("/data/historical")
            .json(&body)?
            .header(ACCEPT, HeaderValue::from_static(accept))
            .idempotent(true) // a read: safe to repeat
            .timeout(HISTORICAL_TIMEOUT)
            .deadline(HISTORICAL_TIMEOUT)
            .cancel(cancel)
            .send_bytes()
            .await?;
        let is_arrow = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(ARROW_STREAM));
        // Decoding a large answer is CPU work: keep it off the async threads.
        tokio::task::spawn_blocking(move || -> Result<DataFrame, DataError> {
            let decode = |e: wire::WireError| {
                DataError::Host(HostError::Decode {
                    what: "data-host bars".into(),
                    message: e.to_string(),
                })
            };
            if is_arrow {
                return wire::from_arrow(&answer.body).map_err(decode);
            }
            let response: HistoricalResponse =
                serde_json::from_slice(&answer.body).map_err(|e| {
                    DataError::Host(HostError::Decode {
                        what: "data-host answer".into(),
                        message: e.to_string(),
                    })
                })?;
            if !response.success {
                return Err(DataError::from_code(
                    response.error_code.as_deref(),
                    response.error.unwrap_or_default(),
                ));
            }
            wire::from_pandas_json(response.data.as_deref().unwrap_or("{}")).map_err(decode)
        })
        .await
        .map_err(|e| DataError::Store(format!("decoding task failed: {e}")))?
    }

    async fn head_timestamp(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        instrument_type: Option<InstrumentType>,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError> {
        let mut query = vec![
            ("symbol", symbol.to_string()),
            ("timeframe", timeframe.to_string()),
        ];
        if let Some(kind) = instrument_type {
            query.push(("instrument_type", kind.as_str().to_owned()));
        }
        let answer: HeadResponse = self
            .client
            .get("/data/head-timestamp")
            .query(&query)
            .deadline(QUICK_CALL_DEADLINE)
            .cancel(cancel)
            .send_json()
            .await?;
        if !answer.success {
            return Err(DataError::from_code(
                answer.error_code.as_deref(),
                answer.error.unwrap_or_default(),
            ));
        }
        Ok(answer.timestamp.as_deref().and_then(parse_time))
    }

    async fn validate(
        &self,
        symbol: &Symbol,
        timeframes: &[Timeframe],
        cancel: &CancellationToken,
    ) -> Result<Validation, DataError> {
        let body = ValidateRequest {
            symbol: symbol.to_string(),
            timeframes: Some(timeframes.iter().map(ToString::to_string).collect()),
        };
        let answer: ValidationResponse = self
            .client
            .post("/data/validate")
            .json(&body)?
            .idempotent(true)
            .deadline(QUICK_CALL_DEADLINE)
            .cancel(cancel)
            .send_json()
            .await?;
        if !answer.success {
            return Err(DataError::from_code(
                answer.error_code.as_deref(),
                answer.error.unwrap_or_default(),
            ));
        }
        let contract_info: Option<ContractInfo> = answer
            .contract_info
            .and_then(|v| serde_json::from_value(v).ok());
        Ok(Validation {
            is_valid: answer.is_valid.unwrap_or(false),
            error_message: answer.error_message,
            contract_info,
            head_timestamps: answer
                .head_timestamps
                .unwrap_or_default()
                .into_iter()
                .map(|(tf, t)| (tf, t.as_deref().and_then(parse_time)))
                .collect(),
        })
    }

    fn status(&self) -> ProviderStatus {
        let last = self.last_health();
        ProviderStatus {
            source: "data-host".to_owned(),
            connected: last.as_ref().is_some_and(|h| h.healthy),
            connections: 1,
            last_error: last.as_ref().and_then(|h| h.error.clone()),
            details: json!({ "base_url": self.client.base_url().as_str(), "last_health": last.map(|h| serde_json::to_value(h).unwrap_or(Value::Null)) }),
        }
    }
}
