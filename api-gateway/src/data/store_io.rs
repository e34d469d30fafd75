//! The store side of the data manager: reads of stored bars and the inventory, and the
//! one way store calls run (on the blocking pool, as they wait on the disk).

use chrono::{DateTime, Utc};
use data_host::store::Store;
use data_host::{Symbol, Timeframe};
use host_service_base::HostError;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::DataManager;

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

impl DataManager {
    /// Runs `work` on the store off the async threads; a store failure is a 500.
    pub(super) async fn blocking<T, F>(&self, work: F) -> Result<T, HostError>
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
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::testing::manager;
    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, d, 0, 0, 0)
            .single()
            .expect("a date")
    }

    #[tokio::test]
    async fn bars_are_sliced_from_the_store_and_a_missing_series_is_a_404() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("AAPL_1d.csv"),
            "timestamp,open,high,low,close,volume\n\
             2024-01-02T00:00:00Z,1,1,1,1,1\n2024-01-03T00:00:00Z,2,2,2,2,2\n\
             2024-01-04T00:00:00Z,3,3,3,3,3\n",
        )
        .expect("store file");
        let data = manager(dir.path());
        let aapl = Symbol::parse("AAPL").expect("symbol");
        let all = data
            .bars(&aapl, Timeframe::D1, None, None)
            .await
            .expect("bars");
        assert_eq!(all.height(), 3);
        let sliced = data
            .bars(&aapl, Timeframe::D1, Some(day(3)), Some(day(4)))
            .await
            .expect("bars");
        assert_eq!(sliced.height(), 1);
        let missing = data
            .bars(&aapl, Timeframe::H1, None, None)
            .await
            .expect_err("nothing stored");
        assert_eq!(missing.status(), 404);
        assert!(missing.to_string().contains("load them first"), "{missing}");

        let inventory = data.inventory().await.expect("inventory");
        assert_eq!(inventory.len(), 1);
        let series = &inventory[0];
        assert_eq!(
            (series.symbol.as_str(), series.timeframe.as_str()),
            ("AAPL", "1d")
        );
        assert_eq!(
            (series.first, series.last, series.rows),
            (Some(day(2)), Some(day(4)), 3)
        );
    }
}
