//! data-host: the market-data host service (KTRDR IB host service contract, port 5001).
//!
//! Bars come from Interactive Brokers (through the `ibapi` crate, paced so that IB's
//! pacing rules are never broken) or from the local store of CSV/Parquet files, and go
//! out as JSON (the KTRDR contract) or Arrow. The crate also ships an IB Gateway
//! simulator, a real TWS-API peer, so the whole system runs and is tested without an
//! IB account.

pub mod api;
pub mod bars;
pub mod client;
pub mod ib;
pub mod local;
pub mod params;
pub mod provider;
pub mod service;
pub mod sim;
pub mod store;
pub mod symbol;
pub mod timeframe;

pub use bars::Bar;
pub use symbol::{InstrumentType, Symbol};
pub use timeframe::Timeframe;

/// Name this service reports in `/health` (the KTRDR contract calls it `ib-connector`).
pub const SERVICE_NAME: &str = "ib-connector";
