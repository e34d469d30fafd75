//! Retention: removing finished operations once they are older than
//! [`OperationsConfig::retention`](super::OperationsConfig::retention).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::registry::Operations;
use crate::error::HostError;

impl Operations {
    /// Removes finished operations whose `completed_at` is more than `retention` before
    /// `now`, from memory and store. Active operations are never pruned.
    pub fn prune(&self, now: DateTime<Utc>) -> usize {
        let cutoff = chrono::Duration::from_std(self.shared.config.retention)
            .ok()
            .and_then(|retention| now.checked_sub_signed(retention));
        let Some(cutoff) = cutoff else { return 0 };
        let removed: Vec<String> = {
            let mut entries = self.shared.write();
            let expired: Vec<String> = entries
                .iter()
                .filter(|(_, entry)| {
                    let info = &entry.lock().info;
                    info.status.is_terminal()
                        && info.completed_at.unwrap_or(info.updated_at) < cutoff
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                entries.remove(id);
            }
            expired
        };
        // Queued, not waited for: the pruner runs on an async thread, and a pruned
        // row that survives a crash is pruned again at the next open.
        if let Some(store) = &self.shared.store
            && !removed.is_empty()
        {
            store.queue_remove(&removed);
        }
        if !removed.is_empty() {
            tracing::debug!(count = removed.len(), "pruned finished operations");
        }
        removed.len()
    }

    /// Removes one finished operation now (memory and store) and returns its last
    /// state. Unknown ids are `NotFound`; active operations are a `Conflict` (cancel
    /// them first).
    pub fn remove_finished(&self, id: &str) -> Result<super::OperationInfo, HostError> {
        let info = {
            let mut entries = self.shared.write();
            let entry = entries
                .get(id)
                .ok_or_else(|| HostError::not_found(format!("operation `{id}` not found")))?;
            let info = entry.lock().info.clone();
            if !info.status.is_terminal() {
                return Err(HostError::Conflict {
                    message: format!(
                        "`{id}` is {}; stop it before removing it",
                        info.status.as_str()
                    ),
                });
            }
            entries.remove(id);
            info
        };
        // Waited for: a client told "removed" must not see it again after a restart.
        if let Some(store) = &self.shared.store {
            store.wait(store.queue_remove(std::slice::from_ref(&info.operation_id)));
        }
        Ok(info)
    }

    /// Runs [`Self::prune`] every `interval` until `shutdown` fires or the registry is
    /// dropped (the task holds no strong reference to it).
    pub fn spawn_pruner(
        &self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.shared);
        let period = interval.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticker.tick() => {
                        let Some(shared) = weak.upgrade() else { break };
                        Operations { shared }.prune(Utc::now());
                    }
                }
            }
        })
    }
}
