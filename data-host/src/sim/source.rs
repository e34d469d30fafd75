//! Where the simulator's bars come from.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{Bar, Timeframe};

/// The bars the simulated gateway serves.
///
/// `symbol` is the store spelling, upper-case: `AAPL`, `EURUSD` (the simulator also
/// asks for `EUR.USD` when a `CASH` contract is requested). `None` means the symbol is
/// unknown at this timeframe; a symbol unknown at every timeframe is answered with IB
/// error 200. Bars must be sorted by `timestamp`, oldest first.
pub trait BarSource: Send + Sync {
    /// All bars of `symbol` at `timeframe`, or `None` if there are none.
    fn bars(&self, symbol: &str, timeframe: Timeframe) -> Option<Arc<Vec<Bar>>>;

    /// Whether `symbol` exists at any timeframe. The default asks [`Self::bars`] for
    /// every timeframe; override it when that is expensive.
    fn knows(&self, symbol: &str) -> bool {
        Timeframe::ALL
            .into_iter()
            .any(|tf| self.bars(symbol, tf).is_some())
    }

    /// The open time of the earliest bar of `symbol` at any timeframe (IB's "head
    /// timestamp"). The default asks [`Self::bars`] for every timeframe.
    fn head_timestamp(&self, symbol: &str) -> Option<DateTime<Utc>> {
        Timeframe::ALL
            .into_iter()
            .filter_map(|tf| self.bars(symbol, tf))
            .filter_map(|bars| bars.first().map(|bar| bar.timestamp))
            .min()
    }
}

/// A [`BarSource`] held in memory, for tests and demos.
#[derive(Default, Clone)]
pub struct MemoryBarSource {
    series: HashMap<(String, Timeframe), Arc<Vec<Bar>>>,
}

impl MemoryBarSource {
    /// An empty source: every symbol is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the bars of `symbol` at `timeframe`; they are sorted by time.
    pub fn insert(&mut self, symbol: &str, timeframe: Timeframe, mut bars: Vec<Bar>) {
        bars.sort_by_key(|bar| bar.timestamp);
        self.series
            .insert((symbol.to_ascii_uppercase(), timeframe), Arc::new(bars));
    }

    /// Builder form of [`Self::insert`].
    pub fn with(mut self, symbol: &str, timeframe: Timeframe, bars: Vec<Bar>) -> Self {
        self.insert(symbol, timeframe, bars);
        self
    }
}

impl fmt::Debug for MemoryBarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut series: Vec<String> = self
            .series
            .iter()
            .map(|((symbol, tf), bars)| format!("{symbol}_{tf}: {} bars", bars.len()))
            .collect();
        series.sort();
        f.debug_struct("MemoryBarSource")
            .field("series", &series)
            .finish()
    }
}

impl BarSource for MemoryBarSource {
    fn bars(&self, symbol: &str, timeframe: Timeframe) -> Option<Arc<Vec<Bar>>> {
        self.series
            .get(&(symbol.to_ascii_uppercase(), timeframe))
            .cloned()
    }

    fn knows(&self, symbol: &str) -> bool {
        let symbol = symbol.to_ascii_uppercase();
        self.series.keys().any(|(s, _)| *s == symbol)
    }
}
