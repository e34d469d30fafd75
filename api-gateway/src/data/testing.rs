//! What the data manager's unit tests share: a provider whose calls never finish (a
//! started load stays running) and a manager over a store directory.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use data_host::provider::{BarsRequest, DataError, DataProvider, ProviderStatus, Validation};
use data_host::store::{Store, StoreFormat};
use data_host::{InstrumentType, Symbol, Timeframe};
use host_service_base::CancellationToken;
use host_service_base::operations::Operations;
use polars::prelude::DataFrame;

use super::{DataManager, LoadRequest, LoadSpec};

/// Answers nothing until cancelled.
struct Pending;

#[async_trait::async_trait]
impl DataProvider for Pending {
    fn name(&self) -> &str {
        "pending"
    }

    async fn bars(
        &self,
        _request: &BarsRequest,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, DataError> {
        cancel.cancelled().await;
        Err(DataError::Cancelled)
    }

    async fn head_timestamp(
        &self,
        _symbol: &Symbol,
        _timeframe: Timeframe,
        _instrument_type: Option<InstrumentType>,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError> {
        cancel.cancelled().await;
        Err(DataError::Cancelled)
    }

    async fn validate(
        &self,
        _symbol: &Symbol,
        _timeframes: &[Timeframe],
        cancel: &CancellationToken,
    ) -> Result<Validation, DataError> {
        cancel.cancelled().await;
        Err(DataError::Cancelled)
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            source: "pending".into(),
            connected: true,
            connections: 1,
            last_error: None,
            details: serde_json::Value::Null,
        }
    }
}

/// A data manager over the store in `dir`, fetching from [`Pending`].
pub(super) fn manager(dir: &Path) -> DataManager {
    DataManager::new(
        Store::new(dir, StoreFormat::Csv),
        Arc::new(Pending),
        Operations::in_memory(),
    )
}

/// A validated full load of `symbol` at `timeframe` over January 2024.
pub(super) fn spec(symbol: &str, timeframe: &str) -> LoadSpec {
    LoadRequest {
        symbol: symbol.into(),
        timeframe: timeframe.into(),
        mode: Some("full".into()),
        start_date: Some("2024-01-01".into()),
        end_date: Some("2024-02-01".into()),
        ..LoadRequest::default()
    }
    .validate()
    .expect("a valid load")
}
