//! The IB provider's client-side scheduling core: what stands between a bars request
//! and the `ibapi` client so that IB is asked as little as possible and never faster
//! than its pacing rules allow.
//!
//! The layers, outermost rule first (pacing → coalescing → segmenting → ibapi):
//!
//! * **pacing** ([`pacing`]): every single IB historical request takes a
//!   [`PacingPermit`] from the one [`PacingScheduler`] shared by everything talking to a
//!   gateway, right before it is sent. The scheduler waits (FIFO, cancellable) until
//!   sending cannot break any of IB's rules (60 per 10 min, no identical request within
//!   15 s, 5 per contract, exchange and what-to-show in 2 s, 50 open, `BID_ASK` counted
//!   twice) and records the send as it grants it. The permit is held until IB has
//!   answered or the request was cancelled at IB.
//! * **coalescing** ([`coalesce`]): identical concurrent requests share one piece of
//!   work through a [`Coalescer`]; the work is cancelled only when every caller has gone.
//! * **segmenting** ([`segment`]): a range longer than IB serves in one request for a
//!   bar size is split into consecutive [`Segment`]s, each with its end time,
//!   [`IbDuration`] and bar size ([`ib_bar_size`]), ready for
//!   `client.historical_data(&contract, bar_size).ending(end).duration(d).fetch()`.
//! * **ibapi**: `connection` keeps one `ibapi` client connected to the gateway of
//!   an [`IbConfig`] (background connect, dead-connection detection, reconnect with
//!   backoff and jitter); `contract` turns a symbol into an IB contract; `convert` maps
//!   segments, times and bars to and from `ibapi`'s; `fetch` sends the requests
//!   through the layers above; `errors` maps IB's answers to `DataError`s; and
//!   [`IbProvider`] is the `DataProvider` over all of it.
//!
//! How a call nests them: the provider coalesces a whole bars request (keyed by the
//! request and what-to-show), splits it into segments, and for each segment builds its
//! [`RequestKey`], acquires a permit with the caller's cancellation token, sends the
//! request, and drops the permit when IB has answered. Segments are also coalesced by
//! their [`RequestKey`], so overlapping concurrent requests never send an identical
//! segment twice (which the 15 s rule would otherwise delay).
//!
//! Every wait here is on `tokio::time` and takes a `CancellationToken`, so a client that
//! goes away releases its place at once, and tests run on tokio's paused clock.

mod backoff;
pub mod coalesce;
pub mod config;
mod connection;
mod contract;
mod convert;
mod errors;
mod fetch;
pub mod pacing;
pub mod provider;
pub mod segment;

pub use coalesce::{CoalesceError, CoalesceStats, Coalescer};
pub use config::{IbConfig, MESSAGES_PER_SECOND};
pub use pacing::{
    ContractKey, PacingLimits, PacingPermit, PacingScheduler, PacingStats, RequestKey,
};
pub use provider::IbProvider;
pub use segment::{
    DurationUnit, IbDuration, Segment, WhatToShow, bar_size_setting, ib_bar_size, split,
};

use crate::provider::DataError;

/// The caller's cancellation token fired before the wait was over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

impl From<Cancelled> for DataError {
    fn from(_: Cancelled) -> Self {
        DataError::Cancelled
    }
}
