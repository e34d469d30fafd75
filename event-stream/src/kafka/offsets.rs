//! Acknowledged offsets of a consumer-group member, and the consumer context that keeps
//! them rebalance-safe.
//!
//! The readers never let librdkafka commit on its own: an acknowledgement records
//! `offset + 1` for its partition here (never moving backwards), and commits send exactly
//! these offsets. Before a rebalance takes partitions away, the context commits what was
//! acknowledged on them, so the next owner starts right after it; acknowledgements that
//! arrive for a partition this member no longer owns are dropped (the new owner gets
//! those messages again: at-least-once, never a loss).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::context::{client_error, log_line};
use crate::error::StreamError;
use crate::message::Position;

type Partition = (String, i32);

/// What this member acknowledged and committed, per partition it owns.
#[derive(Debug, Default)]
pub(crate) struct OffsetBook {
    assigned: HashSet<Partition>,
    /// The next offset to read (last acknowledged + 1).
    acked: HashMap<Partition, i64>,
    committed: HashMap<Partition, i64>,
}

impl OffsetBook {
    /// Records an acknowledgement; never moves a partition backwards.
    fn ack(&mut self, position: &Position) {
        let partition = (position.topic.clone(), position.partition);
        if !self.assigned.contains(&partition) {
            tracing::warn!(
                topic = %position.topic,
                partition = position.partition,
                offset = position.offset,
                "ack for a partition this member does not own (revoked?); its new owner reads it again"
            );
            return;
        }
        let next = position.offset.saturating_add(1);
        let entry = self.acked.entry(partition).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// Acknowledged offsets not committed yet, of `only` partitions when given.
    fn pending(&self, only: Option<&HashSet<Partition>>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (partition, &next) in &self.acked {
            let newer = self.committed.get(partition).is_none_or(|&c| next > c);
            if newer && only.is_none_or(|set| set.contains(partition)) {
                // Adding a partition with a valid offset cannot fail.
                let _ = tpl.add_partition_offset(&partition.0, partition.1, Offset::Offset(next));
            }
        }
        tpl
    }

    /// Marks the offsets of `tpl` committed.
    fn committed(&mut self, tpl: &TopicPartitionList) {
        for element in tpl.elements() {
            if let Offset::Offset(next) = element.offset() {
                let partition = (element.topic().to_owned(), element.partition());
                let entry = self.committed.entry(partition).or_insert(next);
                *entry = (*entry).max(next);
            }
        }
    }
}

/// The shared book, behind a lock that only ever guards plain maps.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBook(Arc<Mutex<OffsetBook>>);

impl SharedBook {
    fn lock(&self) -> MutexGuard<'_, OffsetBook> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`OffsetBook::ack`].
    pub(crate) fn ack(&self, position: &Position) {
        self.lock().ack(position);
    }

    /// Commits every acknowledged offset not committed yet (synchronously: call it off
    /// the async workers).
    pub(crate) fn commit(&self, consumer: &impl Consumer<GroupContext>) -> Result<(), StreamError> {
        let tpl = self.lock().pending(None);
        self.commit_list(consumer, tpl).map_err(|e| {
            StreamError::transport("kafka", format!("committing acknowledged offsets: {e}"))
        })
    }

    fn commit_list(
        &self,
        consumer: &impl Consumer<GroupContext>,
        tpl: TopicPartitionList,
    ) -> KafkaResult<()> {
        // librdkafka rejects an empty commit (no offset): nothing to do is success.
        if tpl.count() == 0 {
            return Ok(());
        }
        consumer.commit(&tpl, CommitMode::Sync)?;
        self.lock().committed(&tpl);
        Ok(())
    }
}

/// The consumer context of both readers: logs, and commits on revocation.
pub(crate) struct GroupContext {
    pub(crate) book: SharedBook,
    pub(crate) group_id: String,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&error, reason);
    }
}

fn partitions(tpl: &TopicPartitionList) -> HashSet<Partition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let revoked = partitions(revoked);
        // After an involuntary loss the partitions may already belong to another member:
        // committing would overwrite its progress, so skip and let it re-read.
        if !consumer.assignment_lost() {
            let pending = self.book.lock().pending(Some(&revoked));
            if let Err(error) = self.book.commit_list(consumer, pending) {
                tracing::warn!(group = %self.group_id, %error,
                    "commit before revocation failed; the next owner re-reads from the last commit");
            }
        }
        let mut book = self.book.lock();
        for partition in &revoked {
            book.assigned.remove(partition);
            book.acked.remove(partition);
            book.committed.remove(partition);
        }
        tracing::info!(group = %self.group_id, revoked = ?revoked, "kafka partitions revoked");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assigned) => {
                let assigned = partitions(assigned);
                tracing::info!(group = %self.group_id, assigned = ?assigned, "kafka partitions assigned");
                self.book.lock().assigned.extend(assigned);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => {
                tracing::error!(group = %self.group_id, %error, "kafka rebalance failed");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(group = %self.group_id, %error, ?offsets, "kafka commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> Position {
        Position {
            topic: "t".to_owned(),
            partition,
            offset,
        }
    }

    #[test]
    fn acks_never_move_backwards_and_need_an_assignment() {
        let mut book = OffsetBook::default();
        book.ack(&at(0, 3));
        assert!(book.acked.is_empty(), "not assigned yet: dropped");
        book.assigned.insert(("t".to_owned(), 0));
        book.ack(&at(0, 5));
        book.ack(&at(0, 2));
        assert_eq!(book.acked.get(&("t".to_owned(), 0)), Some(&6));
    }

    #[test]
    fn pending_lists_only_what_moved_since_the_last_commit() {
        let mut book = OffsetBook::default();
        book.assigned.insert(("t".to_owned(), 0));
        book.assigned.insert(("t".to_owned(), 1));
        book.ack(&at(0, 4));
        book.ack(&at(1, 9));
        let tpl = book.pending(None);
        assert_eq!(tpl.count(), 2);
        book.committed(&tpl);
        assert_eq!(book.pending(None).count(), 0);
        book.ack(&at(1, 10));
        let only_one = HashSet::from([("t".to_owned(), 1)]);
        let tpl = book.pending(Some(&only_one));
        assert_eq!(
            tpl.find_partition("t", 1).map(|e| e.offset()),
            Some(Offset::Offset(11))
        );
        assert_eq!(tpl.count(), 1);
    }
}
