//! The data manager: loads bars into the gateway's store and serves them from it.
//!
//! A load is an operation. It plans the ranges its mode wants ([`plan`]), splits them
//! into IB-sized segments, asks the [`DataProvider`] for each (data-host in host mode,
//! the in-process IB provider in fallback mode), and merges every segment into the store
//! as soon as it arrives, so a load that fails or is cancelled half-way keeps what it
//! fetched. Progress is reported per segment; cancelling the operation cancels the
//! provider call in flight, which cancels the IB request.
//!
//! By role: `validation` checks what a request says, `admission` decides whether a
//! load may start, `store_io` reads the store, `load` is the load algorithm, [`plan`]
//! the ranges a mode wants and [`pooled`] the data-host pool behind the provider seam.

mod admission;
mod load;
pub mod plan;
pub mod pooled;
mod store_io;
#[cfg(test)]
mod testing;
mod validation;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use data_host::provider::DataProvider;
use data_host::store::Store;
use host_service_base::operations::Operations;

pub use load::{DEFAULT_RECONNECT_WAIT, default_lookback};
pub use plan::{FetchRange, LoadMode};
pub use store_io::StoredSeries;
pub use validation::{
    LoadRequest, LoadSpec, parse_instrument, parse_symbol, parse_time, parse_timeframe,
};

/// Operation type of a data load.
pub const LOAD_OPERATION: &str = "data_load";

/// Loads bars into the store and reads them back.
#[derive(Debug, Clone)]
pub struct DataManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    provider: Arc<dyn DataProvider>,
    ops: Operations,
    /// Serialises "is a load of this series running?" with starting one.
    admission: Mutex<()>,
    /// Longest a load waits for a lost upstream link to return before it fails.
    reconnect_wait: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataManager")
            .field("store", &self.store.dir())
            .field("provider", &self.provider.name())
            .finish_non_exhaustive()
    }
}

impl DataManager {
    /// Loads into `store` from `provider`, tracking loads in `ops`; a load waits up to
    /// [`DEFAULT_RECONNECT_WAIT`] for a lost link.
    pub fn new(store: Store, provider: Arc<dyn DataProvider>, ops: Operations) -> Self {
        Self::with_reconnect_wait(store, provider, ops, DEFAULT_RECONNECT_WAIT)
    }

    /// As [`new`](Self::new), a load waiting up to `reconnect_wait` for its upstream
    /// (IB Gateway, or every data-host) to come back before it fails.
    pub fn with_reconnect_wait(
        store: Store,
        provider: Arc<dyn DataProvider>,
        ops: Operations,
        reconnect_wait: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                provider,
                ops,
                admission: Mutex::new(()),
                reconnect_wait,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The provider gaps are filled from.
    pub fn provider(&self) -> &Arc<dyn DataProvider> {
        &self.inner.provider
    }
}

#[cfg(test)]
mod tests {
    use super::testing::manager;

    #[test]
    fn debug_names_the_store_and_the_provider_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{:?}", manager(dir.path()));
        assert!(text.contains("provider: \"pending\""), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }
}
