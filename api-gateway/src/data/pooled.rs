//! [`PooledDataHost`]: a [`DataProvider`] over a pool of data-host instances (host
//! mode). Every call goes to a healthy instance and fails over when one is down, so the
//! data manager cannot tell it from the in-process provider.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use data_host::client::DataHostClient;
use data_host::provider::{BarsRequest, DataError, DataProvider, ProviderStatus, Validation};
use data_host::{InstrumentType, Symbol, Timeframe};
use host_service_base::{CancellationToken, HostError};
use polars::prelude::DataFrame;
use url::Url;

use crate::pool::{HostPool, member_client};

/// The service name errors and health use.
pub const DATA_HOST: &str = "data-host";

/// data-host instances as one provider.
#[derive(Debug, Clone)]
pub struct PooledDataHost {
    pool: Arc<HostPool<DataHostClient>>,
}

impl PooledDataHost {
    /// One client per URL ([`member_client`]).
    pub fn new(urls: &[Url]) -> Result<Self, HostError> {
        let members = urls
            .iter()
            .map(|url| Ok(DataHostClient::with_client(member_client(DATA_HOST, url)?)))
            .collect::<Result<Vec<_>, HostError>>()?;
        Ok(Self {
            pool: Arc::new(HostPool::new(DATA_HOST, members)?),
        })
    }

    /// The pool (for health and the prober).
    pub fn pool(&self) -> &Arc<HostPool<DataHostClient>> {
        &self.pool
    }
}

#[async_trait]
impl DataProvider for PooledDataHost {
    fn name(&self) -> &str {
        DATA_HOST
    }

    async fn bars(
        &self,
        request: &BarsRequest,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, DataError> {
        let (_, frame) = self
            .pool
            .call(|m| async move { m.bars(request, cancel).await })
            .await?;
        Ok(frame)
    }

    async fn head_timestamp(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        instrument_type: Option<InstrumentType>,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, DataError> {
        let (_, head) = self
            .pool
            .call(|m| async move {
                m.head_timestamp(symbol, timeframe, instrument_type, cancel)
                    .await
            })
            .await?;
        Ok(head)
    }

    async fn validate(
        &self,
        symbol: &Symbol,
        timeframes: &[Timeframe],
        cancel: &CancellationToken,
    ) -> Result<Validation, DataError> {
        let (_, validation) = self
            .pool
            .call(|m| async move { m.validate(symbol, timeframes, cancel).await })
            .await?;
        Ok(validation)
    }

    fn status(&self) -> ProviderStatus {
        let instances = self.pool.report();
        let healthy = instances.iter().filter(|i| i.healthy == Some(true)).count();
        ProviderStatus {
            source: DATA_HOST.to_owned(),
            connected: healthy > 0,
            connections: healthy,
            last_error: instances.iter().find_map(|i| i.error.clone()),
            details: serde_json::json!({ "instances": instances }),
        }
    }
}
