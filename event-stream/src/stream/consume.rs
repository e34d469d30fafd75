//! The loop of one consumer: reads messages, hands each to the reliability layer on its
//! own task (up to `concurrency` at once), and acknowledges and commits exactly what is
//! finally handled, through a [`CompletionTracker`], so a commit never passes a message
//! still being handled however the handlers finish.
//!
//! Stopping: the fetch token ends the reader's stream; the loop then waits for the
//! messages in flight until the deadline (aborting those still running: they stay
//! uncommitted and are read again after a restart), acknowledges, commits, and returns.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::reliable::{Consumer, Outcome, Reliability};
use super::transport::BoxReader;
use crate::completion::CompletionTracker;
use crate::message::Position;

/// How a consumer runs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    /// Messages handled at once.
    pub(super) concurrency: usize,
    /// How often acknowledged progress is committed while running.
    pub(super) commit_interval: Duration,
    /// How long a stop waits for the messages in flight.
    pub(super) stop_deadline: Duration,
}

/// The live part of a consumer other tasks can read.
#[derive(Debug, Default)]
pub(super) struct Live {
    pub(super) in_flight: std::sync::atomic::AtomicU64,
}

/// Runs until `fetch` fires (or the reader ends), then drains and commits.
pub(super) async fn run(
    mut reader: BoxReader,
    consumer: Arc<Consumer>,
    layer: Arc<Reliability>,
    pace: Pace,
    stop: CancellationToken,
    live: Arc<Live>,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Option<Position>, Outcome)>();
    let mut tracker = CompletionTracker::new();
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(pace.commit_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reading = true;
    let mut dirty = false;
    let concurrency = pace.concurrency.max(1);
    while reading {
        tokio::select! {
            biased;
            Some((position, outcome)) = done_rx.recv() => {
                dirty |= finish(&mut tracker, &mut *reader, position, outcome);
            }
            _ = tick.tick() => {
                if std::mem::take(&mut dirty) {
                    commit(&mut *reader, &consumer).await;
                }
            }
            item = reader.next(), if tasks.len() < concurrency => match item {
                Some(Ok(message)) => {
                    if let Some(position) = &message.position {
                        tracker.start(position);
                    }
                    let (consumer, layer, stop, done) =
                        (consumer.clone(), layer.clone(), stop.clone(), done_tx.clone());
                    tasks.spawn(async move {
                        let position = message.position.clone();
                        let outcome = layer.process(&consumer, message, &stop).await;
                        let _ = done.send((position, outcome));
                    });
                    live.in_flight.store(tasks.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Some(Err(error)) => {
                    tracing::warn!(consumer = %consumer.name, %error, "reading failed; still reading");
                }
                None => reading = false,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                live.in_flight.store(tasks.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    // Stopping: what is in flight gets until the deadline.
    let deadline = tokio::time::sleep(pace.stop_deadline);
    tokio::pin!(deadline);
    while !tasks.is_empty() {
        tokio::select! {
            Some(_) = tasks.join_next() => {}
            () = &mut deadline => {
                tracing::warn!(consumer = %consumer.name, unfinished = tasks.len(),
                    "stop deadline passed: abandoning the messages still in flight (read again after a restart)");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
    }
    drop(done_tx);
    while let Some((position, outcome)) = done_rx.recv().await {
        finish(&mut tracker, &mut *reader, position, outcome);
    }
    live.in_flight
        .store(0, std::sync::atomic::Ordering::Relaxed);
    commit(&mut *reader, &consumer).await;
    // Dropping a Kafka reader leaves the group (off the async workers).
    drop(reader);
}

/// Records an outcome; acknowledges the partition's committable position when it
/// moved. True when something new may be committed.
fn finish(
    tracker: &mut CompletionTracker,
    reader: &mut dyn crate::reader::AsyncReader<bytes::Bytes, bytes::Bytes>,
    position: Option<Position>,
    outcome: Outcome,
) -> bool {
    let Some(position) = position else {
        return false;
    };
    if !outcome.is_final() || !tracker.finish(&position) {
        return false;
    }
    let mut moved = false;
    for next in tracker.take_committable() {
        // `ack` names the last message done; the committable position is the next.
        if next.offset > 0 {
            let last = Position {
                offset: next.offset - 1,
                ..next
            };
            if let Err(error) = reader.ack(&last) {
                tracing::warn!(%error, "acknowledging failed");
            } else {
                moved = true;
            }
        }
    }
    moved
}

async fn commit(
    reader: &mut dyn crate::reader::AsyncReader<bytes::Bytes, bytes::Bytes>,
    consumer: &Consumer,
) {
    match reader.commit().await {
        Ok(()) => consumer.recorder.committed(true),
        Err(error) => {
            consumer.recorder.committed(false);
            tracing::warn!(consumer = %consumer.name, %error, "commit failed; the next one covers it");
        }
    }
}
