//! The local-store provider (`--source local`): answers from the store, no IB at all.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use host_service_base::CancellationToken;
use polars::prelude::DataFrame;
use serde_json::json;

use crate::provider::{
    BarsRequest, ContractInfo, DataError, DataProvider, ProviderStatus, Validation,
};
use crate::store::{Store, StoreError};
use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

/// Serves bars from a [`Store`].
#[derive(Debug, Clone)]
pub struct LocalProvider {
    store: Store,
}

impl LocalProvider {
    /// A provider over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs blocking store work off the async threads, giving up when `cancel` fires.
    async fn blocking<T, F>(&self, cancel: &CancellationToken, work: F) -> Result<T, DataError>
    where
        T: Send + 'static,
        F: FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let task = tokio::task::spawn_blocking(move || work(store));
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(DataError::Cancelled),
            joined = task => match joined {
                Ok(result) => result.map_err(|e| DataError::Store(e.to_string())),
                Err(e) => Err(DataError::Store(format!("store task failed: {e}"))),
            },
        }
    }
}

fn asset_type(kind: InstrumentType) -> &'static str {
    match kind {
        InstrumentType::Stock => "STK",
        InstrumentType::Forex => "CASH",
        InstrumentType::Future => "FUT",
        InstrumentType::ContinuousFuture => "CONTFUT",
        InstrumentType::Index => "IND",
    }
}

#[async_trait]
impl DataProvider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    async fn bars(
        &self,
        request: &BarsRequest,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, DataError> {
        let r = request.clone();
        self.blocking(cancel, move |store| {
            store.load_range(&r.symbol, r.timeframe, r.start, r.end)
        })
        .await
    }

    async fn head_timestamp(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        _instrument_type: Option<InstrumentType>,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError> {
        let symbol = symbol.clone();
        let coverage = self
            .blocking(cancel, move |store| store.coverage(&symbol, timeframe))
            .await?;
        Ok(coverage.map(|c| c.first))
    }

    async fn validate(
        &self,
        symbol: &Symbol,
        timeframes: &[Timeframe],
        cancel: &CancellationToken,
    ) -> Result<Validation, DataError> {
        let (sym, wanted) = (symbol.clone(), timeframes.to_vec());
        let (known, heads) = self
            .blocking(cancel, move |store| {
                let known = store.list()?.iter().any(|(s, _)| *s == sym);
                let mut heads = BTreeMap::new();
                for tf in wanted {
                    heads.insert(tf.to_string(), store.coverage(&sym, tf)?.map(|c| c.first));
                }
                Ok((known, heads))
            })
            .await?;
        if !known {
            return Ok(Validation {
                is_valid: false,
                error_message: Some(format!("no stored data for {symbol} in the local store")),
                contract_info: None,
                head_timestamps: heads,
            });
        }
        let head = heads.values().flatten().min().map(DateTime::to_rfc3339);
        let kind = InstrumentType::guess(symbol);
        Ok(Validation {
            is_valid: true,
            error_message: None,
            contract_info: Some(ContractInfo {
                symbol: symbol.to_string(),
                asset_type: asset_type(kind).to_owned(),
                exchange: "LOCAL".to_owned(),
                currency: "USD".to_owned(),
                description: format!("{symbol} from the local store"),
                validated_at: Utc::now().timestamp_millis() as f64 / 1000.0,
                head_timestamp: head,
            }),
            head_timestamps: heads,
        })
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            source: "local".to_owned(),
            connected: false,
            connections: 0,
            last_error: None,
            details: json!({ "data_dir": self.store.dir().display().to_string() }),
        }
    }
}
