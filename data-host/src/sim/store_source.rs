//! The simulator's bars from a store directory (`{SYMBOL}_{TIMEFRAME}.csv|parquet`),
//! parsed by the same store code every other part of hostbridge uses.

use std::sync::{Arc, Mutex, PoisonError};

use super::BarSource;
use crate::bars;
use crate::store::Store;
use crate::store::cache::ByteLru;
use crate::symbol::Symbol;
use crate::{Bar, Timeframe};

/// One converted series; `None` remembers that the store has none.
type Series = Option<Arc<Vec<Bar>>>;

/// The bytes of converted bars a source keeps by default (about 5.6 million bars).
pub const DEFAULT_CONVERTED_BYTES: usize = 256 << 20;

/// Serves what a [`Store`] holds. Bars are converted once per series and kept while
/// they fit the byte budget (least recently used out first); a series evicted, or too
/// large to keep, is loaded again through the store's own cache on its next request.
#[derive(Debug)]
pub struct StoreBarSource {
    store: Store,
    converted: Mutex<ByteLru<(String, Timeframe), Series>>,
}

impl StoreBarSource {
    /// A source over `store` keeping [`DEFAULT_CONVERTED_BYTES`] of converted bars.
    pub fn new(store: Store) -> Self {
        Self::with_cache_bytes(store, DEFAULT_CONVERTED_BYTES)
    }

    /// A source over `store` keeping at most `bytes` of converted bars (0: none).
    pub fn with_cache_bytes(store: Store, bytes: usize) -> Self {
        Self {
            store,
            converted: Mutex::new(ByteLru::new(bytes)),
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
        let size = loaded
            .as_ref()
            .map_or(0, |bars| bars.len().saturating_mul(size_of::<Bar>()));
        self.converted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, loaded.clone(), size);
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

    #[test]
    fn converted_series_keep_to_the_byte_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), StoreFormat::Csv);
        let days: Vec<i64> = (0..1_000).collect();
        let ts = days.iter().map(|d| d * 86_400_000).collect();
        let frame = bars::frame_from_columns(ts, std::array::from_fn(|_| vec![1.0; days.len()]))
            .expect("frame");
        for symbol in ["AAA", "BBB", "CCC"] {
            let symbol = Symbol::parse(symbol).expect("symbol");
            store.save(&symbol, Timeframe::D1, &frame).expect("save");
        }
        let one = days.len() * size_of::<Bar>() + crate::store::cache::ENTRY_OVERHEAD;
        let budget = one * 5 / 2;
        let source = StoreBarSource::with_cache_bytes(store, budget);
        let held = |symbol: &str| {
            source
                .converted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(symbol.to_owned(), Timeframe::D1))
                .is_some()
        };
        for symbol in ["AAA", "BBB", "CCC"] {
            let bars = source.bars(symbol, Timeframe::D1).expect("bars");
            assert_eq!(bars.len(), days.len());
        }
        assert!(!held("AAA") && held("BBB") && held("CCC"));
        let total = source
            .converted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes();
        assert!(total <= budget && total == 2 * one, "{total} vs {budget}");

        // A series larger than the budget is served but not kept.
        let tight =
            StoreBarSource::with_cache_bytes(Store::new(dir.path(), StoreFormat::Csv), one - 1);
        assert_eq!(
            tight.bars("AAA", Timeframe::D1).map(|b| b.len()),
            Some(days.len())
        );
        assert_eq!(
            tight
                .converted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .bytes(),
            0
        );
    }
}
