//! Which offsets may be committed when handlers finish out of order.
//!
//! A consumer that hands messages to concurrent handlers learns of their outcomes in any
//! order, but a Kafka commit says "everything before this offset is done". The tracker
//! keeps, per partition, the offsets handed out and not yet finished; the committable
//! position of a partition is its oldest unfinished offset, or one past the newest
//! finished when nothing is pending. So a commit never passes a message still being
//! handled, however the handlers finish, and a restart re-reads at most the unfinished
//! ones (at-least-once).
//!
//! Offsets need not be contiguous (compacted topics, transaction markers): only the
//! offsets [`CompletionTracker::start`] saw count.

use std::collections::{BTreeSet, HashMap};

use crate::message::Position;

type Partition = (String, i32);

#[derive(Debug, Default)]
struct PartitionState {
    /// Handed out, not finished.
    pending: BTreeSet<i64>,
    /// One past the newest offset handed out.
    next: i64,
    /// What was last reported by [`CompletionTracker::take_committable`].
    reported: Option<i64>,
}

impl PartitionState {
    /// The offset a commit may name: the oldest unfinished, else one past the newest.
    fn committable(&self) -> Option<i64> {
        match self.pending.first() {
            Some(&oldest) => Some(oldest),
            None if self.next > 0 || self.reported.is_some() => Some(self.next),
            None => None,
        }
    }
}

/// Per-partition bookkeeping of handed-out and finished offsets.
#[derive(Debug, Default)]
pub struct CompletionTracker {
    partitions: HashMap<Partition, PartitionState>,
}

impl CompletionTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the message at `position` was handed to a handler.
    pub fn start(&mut self, position: &Position) {
        let state = self
            .partitions
            .entry((position.topic.clone(), position.partition))
            .or_default();
        state.pending.insert(position.offset);
        state.next = state.next.max(position.offset + 1);
    }

    /// Records that the message at `position` is finally handled (done, or given up
    /// on and dead-lettered). Returns false when it was not pending (unknown, finished
    /// already, or its partition was revoked).
    pub fn finish(&mut self, position: &Position) -> bool {
        self.partitions
            .get_mut(&(position.topic.clone(), position.partition))
            .is_some_and(|state| state.pending.remove(&position.offset))
    }

    /// Messages handed out and not finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|s| s.pending.len()).sum()
    }

    /// The committable position (the next offset to read) of one partition, if any
    /// message of it was handed out.
    pub fn committable(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .and_then(PartitionState::committable)
    }

    /// The partitions whose committable position moved since the last call, as
    /// positions whose `offset` is the next offset to read (what a Kafka commit names).
    pub fn take_committable(&mut self) -> Vec<Position> {
        let mut out = Vec::new();
        for ((topic, partition), state) in &mut self.partitions {
            let Some(offset) = state.committable() else {
                continue;
            };
            if state.reported != Some(offset) {
                state.reported = Some(offset);
                out.push(Position {
                    topic: topic.clone(),
                    partition: *partition,
                    offset,
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Forgets a partition taken away by a rebalance: its pending messages will be
    /// handled again by its next owner, and finishing them here is ignored.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_owned(), partition));
    }
}

#[cfg(test)]
mod tests;
