//! What the training benches share: the bars the shipped strategy trains on.

use std::collections::BTreeMap;
use std::path::Path;

use data_host::local::LocalProvider;
use data_host::provider::{BarsRequest, DataProvider};
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use host_service_base::CancellationToken;
use polars::prelude::DataFrame;
use training_host::strategy::Strategy;

/// The daily sample bars 2000–2014 of every symbol `strategy` trains on, read from the
/// repository's `data/` store on `runtime`.
pub(crate) fn daily_bars(
    strategy: &Strategy,
    runtime: &tokio::runtime::Runtime,
) -> Result<BTreeMap<(Symbol, Timeframe), DataFrame>, Box<dyn std::error::Error>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let provider = LocalProvider::new(Store::new(repo.join("data"), StoreFormat::Csv));
    let mut bars = BTreeMap::new();
    for symbol in &strategy.training_data.symbols {
        let request = BarsRequest::new(
            symbol.clone(),
            Timeframe::D1,
            "2000-01-01T00:00:00Z".parse()?,
            "2014-01-01T00:00:00Z".parse()?,
            None,
        )?;
        let frame = runtime.block_on(provider.bars(&request, &CancellationToken::new()))?;
        bars.insert((symbol.clone(), Timeframe::D1), frame);
    }
    Ok(bars)
}
