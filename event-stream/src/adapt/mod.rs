//! Adapters between the sync and async worlds, so one transport serves both.
//!
//! - [`BlockingWriter`]: an [`AsyncWriter`](crate::AsyncWriter) over a sync
//!   [`Writer`](crate::Writer); each call runs on tokio's blocking pool.
//! - [`BlockingReader`]: an [`AsyncReader`](crate::AsyncReader) over a sync
//!   [`Reader`](crate::Reader); the read loop runs on a blocking thread.
//! - [`SyncWriter`] and [`SyncReader`]: the reverse, for sync callers. They block on the
//!   runtime they were given, and refuse (with [`StreamError::WouldBlockRuntime`])
//!   where blocking would stall it: on a current-thread runtime's own thread. On a
//!   multi-thread runtime's worker they step out with `block_in_place`.
//!
//! Errors of the inner transport come through unchanged.

mod blocking;
mod sync;

pub use blocking::{BlockingReader, BlockingWriter};
pub use sync::{SyncReader, SyncWriter};

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::StreamError;

/// Runs `future` to completion from sync code, where that is safe.
pub(crate) fn block_on<F: Future>(handle: &Handle, future: F) -> Result<F::Output, StreamError> {
    blocking(|| handle.block_on(future))
}

/// Runs blocking work `f` from sync code, where that is safe: anywhere but an async
/// worker of a current-thread runtime, which it would stall (there it is refused with
/// [`StreamError::WouldBlockRuntime`] instead of panicking or deadlocking).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> Result<T, StreamError> {
    match Handle::try_current() {
        // Not inside any runtime: a plain thread may block.
        Err(_) => Ok(f()),
        Ok(current) => match current.runtime_flavor() {
            // A worker (or a blocking-pool thread) of a multi-thread runtime:
            // block_in_place hands the worker's other tasks to another thread first.
            RuntimeFlavor::MultiThread => Ok(tokio::task::block_in_place(f)),
            _ => Err(StreamError::WouldBlockRuntime(
                "a sync call on a current-thread runtime's thread would stall it; \
                 use the async API, or call from a plain thread or a multi-thread runtime",
            )),
        },
    }
}

#[cfg(test)]
mod tests;
