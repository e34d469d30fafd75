//! The simulator's bars from a store directory (`{SYMBOL}_{TIMEFRAME}.csv|parquet`),
//! parsed by the same store code every other part of hostbridge uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::BarSource;
use crate::bars;
use crate::store::Store;
use crate::symbol::Symbol;
use crate::{Bar, Timeframe};

/// One converted series; `None` remembers that the store has none.
type Series = Option<Arc<Vec<Bar>>>;

/// Serves what a [`Store`] holds. Bars are converted once per series and kept; the
/// store's own cache notices files that change on disk.
#[derive(Debug)]
pub struct StoreBarSource {
    store: Store,
    converted: Mutex<HashMap<(String, Timeframe), Series>>,
}

impl StoreBarSource {
    /// A source over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            converted: Mutex::default(),
        }
    }

    fn load(&self, symbol: &str, timeframe: Timeframe) -> Option<Arc<Vec<Bar>>> {
        let symbol = Symbol::parse(symbol).ok()?;
        let frame = match self.store.load(&symbol, timeframe) {
            Ok(frame) => frame?,
            Err(error) => {
                tracing::warn!(%error, %symbol, %timeframe, "simulator cannot read store file");
                return None;
            }
        };
        bars::frame_to_bars(&frame)
            .ok()
            .filter(|b| !b.is_empty())
            .map(Arc::new)
    }
}

impl BarSource for StoreBarSource {
    fn bars(&self, symbol: &str, timeframe: Timeframe) -> Option<Arc<Vec<Bar>>> {
        let key = (symbol.to_ascii_uppercase(), timeframe);
        if let Some(hit) = self
            .converted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return hit.clone();
        }
        let loaded = self.load(symbol, timeframe);
        self.converted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, loaded.clone());
        loaded
    }

    fn knows(&self, symbol: &str) -> bool {
        // A directory listing instead of parsing every timeframe's file.
        let Ok(symbol) = Symbol::parse(symbol) else {
            return false;
        };
        self.store
            .list()
            .map(|all| all.iter().any(|(s, _)| *s == symbol))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreFormat;

    #[test]
    fn serves_the_sample_store() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
        let source = StoreBarSource::new(Store::new(dir, StoreFormat::Csv));
        assert!(source.knows("aapl"));
        assert!(!source.knows("ZZZZ"));
        assert!(!source.knows("../etc"));
        let daily = source.bars("AAPL", Timeframe::D1).expect("daily bars");
        assert_eq!(daily.len(), 3270);
        assert!(source.bars("AAPL", Timeframe::W1).is_none());
        assert_eq!(
            source
                .head_timestamp("MSFT")
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some("2000-03-01T00:00:00+00:00")
        );
    }
}
