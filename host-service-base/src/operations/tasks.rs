//! Running operations as tasks: [`Operations::spawn`] and waiting for the tasks at
//! shutdown.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tokio_util::task::TaskTracker;

use super::config::DEFAULT_CANCEL_REASON;
use super::handle::OperationHandle;
use super::registry::Operations;

impl Operations {
    /// Creates and starts an operation and runs `work(handle)` on the registry's task
    /// tracker. When the future returns, the operation ends `completed` (`Ok`) or
    /// `failed` (`Err` or panic) — or `cancelled` if its token fired, whatever the
    /// future returned. Must be called inside a Tokio runtime.
    pub fn spawn<F, Fut>(
        &self,
        operation_type: impl Into<String>,
        metadata: Value,
        work: F,
    ) -> OperationHandle
    where
        F: FnOnce(OperationHandle) -> Fut,
        Fut: Future<Output = Result<Value, String>> + Send + 'static,
    {
        let handle = self.create(operation_type, metadata);
        handle.start();
        let future = work(handle.clone());
        let task = handle.clone();
        self.shared.tracker.spawn(async move {
            let outcome = AssertUnwindSafe(future).catch_unwind().await;
            if task.is_cancelled() {
                task.mark_cancelled(DEFAULT_CANCEL_REASON);
                return;
            }
            match outcome {
                Ok(Ok(result)) => task.complete(result),
                Ok(Err(message)) => task.fail(message),
                Err(_) => {
                    tracing::error!(operation_id = %task.id(), "operation task panicked");
                    task.fail("operation task panicked")
                }
            };
        });
        handle
    }

    /// The tracker running the tasks of [`Operations::spawn`]. It is closed from the
    /// start, so `tracker().wait()` resolves whenever no spawned task is running.
    pub fn tracker(&self) -> &TaskTracker {
        &self.shared.tracker
    }

    /// Waits until no task spawned by [`Self::spawn`] is running (call
    /// [`Self::interrupt_all`] first at shutdown, and bound the wait with a timeout, or use
    /// [`Self::wait_idle_for`]).
    pub async fn wait_idle(&self) {
        self.shared.tracker.wait().await;
    }

    /// [`Self::wait_idle`] for at most `deadline`; returns whether every task ended.
    pub async fn wait_idle_for(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.wait_idle())
            .await
            .is_ok()
    }
}
