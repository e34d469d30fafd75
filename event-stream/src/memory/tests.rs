use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::writer::{AsyncWriter, Writer};

type Bus = MemoryBus<String, u64>;

fn bus(capacity: usize, overflow: Overflow) -> Bus {
    MemoryBus::new(TopicConfig { capacity, overflow })
}

async fn take(reader: &mut MemoryReader<String, u64>, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(5), reader.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("no error");
        out.push(m.value);
    }
    out
}

#[tokio::test]
async fn every_subscriber_gets_every_message_in_order() {
    let bus = bus(64, Overflow::Wait);
    let token = CancellationToken::new();
    let mut subs: Vec<_> = (0..3).map(|_| bus.subscribe("t", token.clone())).collect();
    let mut w = bus.writer("t");
    for i in 0..10 {
        AsyncWriter::write(&mut w, Message::keyed("k".to_owned(), i))
            .await
            .expect("write");
    }
    for sub in &mut subs {
        assert_eq!(take(sub, 10).await, (0..10).collect::<Vec<_>>());
    }
    let stats = bus.stats("t");
    assert_eq!(
        (stats.published, stats.evicted, stats.subscribers),
        (10, 0, 3)
    );
}

#[tokio::test]
async fn drop_oldest_evicts_counts_and_never_blocks_the_writer() {
    let bus = bus(4, Overflow::DropOldest);
    let mut sub = bus.subscribe("t", CancellationToken::new());
    let mut w = bus.writer("t");
    for i in 0..10 {
        AsyncWriter::write(&mut w, Message::new(i))
            .await
            .expect("write");
    }
    assert_eq!(bus.stats("t").evicted, 6);
    // The subscriber sees the 4 newest, and learns it missed 6.
    assert_eq!(take(&mut sub, 4).await, vec![6, 7, 8, 9]);
    assert_eq!(sub.missed(), 6);
}

#[tokio::test]
async fn wait_holds_the_writer_until_the_slowest_subscriber_reads() {
    let bus = bus(2, Overflow::Wait);
    let mut fast = bus.subscribe("t", CancellationToken::new());
    let mut slow = bus.subscribe("t", CancellationToken::new());
    let mut w = bus.writer("t");
    let writer = tokio::spawn(async move {
        for i in 0..6 {
            AsyncWriter::write(&mut w, Message::new(i))
                .await
                .expect("write");
        }
    });
    assert_eq!(take(&mut fast, 2).await, vec![0, 1]);
    // The slow subscriber has not read: the writer is parked on the third message.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!writer.is_finished());
    // Each read of the slow one makes room for one more message, never more than the
    // capacity ahead of the fast one.
    assert_eq!(take(&mut slow, 4).await, vec![0, 1, 2, 3]);
    assert_eq!(take(&mut fast, 4).await, vec![2, 3, 4, 5]);
    assert_eq!(take(&mut slow, 2).await, vec![4, 5]);
    writer.await.expect("writer finished");
    assert_eq!(bus.stats("t").evicted, 0);
    assert_eq!(slow.missed() + fast.missed(), 0);
}

#[tokio::test]
async fn a_topic_nobody_reads_counts_unheard_messages() {
    let bus = bus(4, Overflow::Wait);
    let mut w = bus.writer("t");
    for i in 0..5 {
        AsyncWriter::write(&mut w, Message::new(i))
            .await
            .expect("never blocks");
    }
    assert_eq!(bus.stats("t").unheard, 5);
    // A later subscriber starts from now.
    let mut sub = bus.subscribe("t", CancellationToken::new());
    AsyncWriter::write(&mut w, Message::new(99))
        .await
        .expect("write");
    assert_eq!(take(&mut sub, 1).await, vec![99]);
}

#[tokio::test]
async fn try_next_drains_what_is_queued_after_cancel() {
    let bus = bus(4, Overflow::DropOldest);
    let token = CancellationToken::new();
    let mut sub = bus.subscribe("t", token.clone());
    let mut w = bus.writer("t");
    for i in 0..6 {
        AsyncWriter::write(&mut w, Message::new(i))
            .await
            .expect("write");
    }
    token.cancel();
    assert!(sub.next().await.is_none(), "the stream ends at once");
    let mut rest = Vec::new();
    while let Some(m) = sub.try_next() {
        rest.push(m.value);
    }
    assert_eq!(rest, vec![2, 3, 4, 5]);
    assert_eq!(sub.missed(), 2);
}

#[tokio::test]
async fn cancel_ends_the_stream_promptly() {
    let bus = bus(4, Overflow::Wait);
    let token = CancellationToken::new();
    let mut sub = bus.subscribe("t", token.clone());
    let waiter = tokio::spawn(async move { sub.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(20)).await;
    token.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("ends after cancel")
        .expect("task");
    assert!(ended);
}

#[tokio::test]
async fn positions_are_topic_offsets_and_close_refuses_writes() {
    let bus = bus(8, Overflow::Wait);
    let mut sub = bus.subscribe("prices", CancellationToken::new());
    let mut w = bus.writer("prices");
    for i in 0..3 {
        AsyncWriter::write(&mut w, Message::new(i))
            .await
            .expect("write");
    }
    for expected in 0..3 {
        let m = sub.next().await.expect("open").expect("ok");
        let p = m.position.expect("position");
        assert_eq!((p.topic.as_str(), p.offset), ("prices", expected));
    }
    AsyncWriter::close(&mut w).await.expect("close");
    assert!(matches!(
        AsyncWriter::write(&mut w, Message::new(1)).await,
        Err(StreamError::Closed(_))
    ));
}

#[test]
fn the_blocking_writer_works_outside_a_runtime() {
    let bus = bus(8, Overflow::Wait);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut sub = bus.subscribe("t", CancellationToken::new());
    let mut w = bus.writer("t");
    for i in 0..3 {
        Writer::write(&mut w, Message::new(i)).expect("write");
    }
    Writer::close(&mut w).expect("close");
    let got = rt.block_on(take(&mut sub, 3));
    assert_eq!(got, vec![0, 1, 2]);
}

#[tokio::test(flavor = "current_thread")]
async fn the_blocking_writer_refuses_a_current_thread_runtime_instead_of_panicking() {
    let bus = bus(8, Overflow::Wait);
    let mut w = bus.writer("t");
    let err = Writer::write(&mut w, Message::new(1)).expect_err("refused");
    assert!(matches!(err, StreamError::WouldBlockRuntime(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_writer_steps_out_of_a_multi_thread_worker() {
    let bus = bus(8, Overflow::Wait);
    let mut sub = bus.subscribe("t", CancellationToken::new());
    let mut w = bus.writer("t");
    Writer::write(&mut w, Message::new(5)).expect("write");
    assert_eq!(take(&mut sub, 1).await, vec![5]);
}

use crate::error::StreamError;
use crate::message::Message;
