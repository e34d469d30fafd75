//! data-host: the market-data host service (KTRDR IB host service contract, port 5001).
//!
//! Providers (IB through `ibapi`, the local store), pacing, the HTTP API and a typed
//! client land here with issue 3; for now the crate only fixes its place in the
//! dependency chain `api-gateway -> training-host -> data-host -> host-service-base`.

/// Name this service reports in `/health` (the KTRDR contract calls it `ib-connector`).
pub const SERVICE_NAME: &str = "ib-connector";
