use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::memory::{MemoryBus, Overflow, TopicConfig};

/// Records acks of an inner memory reader.
struct Acking<R> {
    inner: R,
    acked: Arc<Mutex<Vec<i64>>>,
}

impl<R: futures::Stream + Unpin> futures::Stream for Acking<R> {
    type Item = R::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[async_trait]
impl<R: AsyncReader<String, u32>> AsyncReader<String, u32> for Acking<R> {
    fn ack(&mut self, position: &Position) -> Result<(), StreamError> {
        self.acked.lock().expect("acked").push(position.offset);
        self.inner.ack(position)
    }
    async fn commit(&mut self) -> Result<(), StreamError> {
        self.inner.commit().await
    }
}

/// A writer whose flush fails once it has seen `fail_at` writes.
#[derive(Default)]
struct Sink {
    got: Vec<String>,
    fail_at: Option<usize>,
    closed: bool,
}

#[async_trait]
impl AsyncWriter<String, String> for Sink {
    async fn write(&mut self, message: Message<String, String>) -> Result<(), StreamError> {
        self.got.push(message.value);
        Ok(())
    }
    async fn flush(&mut self) -> Result<(), StreamError> {
        match self.fail_at {
            Some(n) if self.got.len() >= n => Err(StreamError::Undelivered {
                undelivered: 1,
                first_error: None,
            }),
            _ => Ok(()),
        }
    }
    async fn close(&mut self) -> Result<(), StreamError> {
        self.closed = true;
        Ok(())
    }
}

async fn source(
    n: u32,
) -> (
    Acking<crate::memory::MemoryReader<String, u32>>,
    Arc<Mutex<Vec<i64>>>,
) {
    let bus = MemoryBus::new(TopicConfig {
        capacity: 64,
        overflow: Overflow::Wait,
    });
    let sub = bus.subscribe("in", CancellationToken::new());
    let mut w = bus.writer("in");
    for i in 0..n {
        w.write(Message::new(i)).await.expect("write");
    }
    // With the topic gone the subscriber drains what is queued, then ends.
    drop((w, bus));
    let acked = Arc::new(Mutex::new(Vec::new()));
    (
        Acking {
            inner: sub,
            acked: acked.clone(),
        },
        acked,
    )
}

#[tokio::test]
async fn maps_filters_and_acks_after_flush() {
    let (reader, acked) = source(10).await;
    let mut sink = Sink::default();
    let stats = pipe(
        reader,
        &mut sink,
        PipeOptions {
            batch: 4,
            ..Default::default()
        },
        |m| Ok((m.value % 2 == 0).then(|| m.map(|k| k, |v| format!("v{v}")))),
    )
    .await
    .expect("pipe");
    assert_eq!(sink.got, ["v0", "v2", "v4", "v6", "v8"]);
    assert_eq!(stats.read, 10);
    assert_eq!((stats.written, stats.filtered), (5, 5));
    assert!(sink.closed);
    // Acks after each batch of 4 and at the end: the highest offset each time.
    assert_eq!(*acked.lock().expect("acked"), vec![3, 7, 9]);
}

#[tokio::test]
async fn a_failed_flush_stops_the_pipe_without_acking() {
    let (reader, acked) = source(10).await;
    let mut sink = Sink {
        fail_at: Some(6),
        ..Default::default()
    };
    let err = pipe(
        reader,
        &mut sink,
        PipeOptions {
            batch: 4,
            ..Default::default()
        },
        |m| Ok(Some(m.map(|k| k, |v| v.to_string()))),
    )
    .await
    .expect_err("flush fails on the second batch");
    assert!(matches!(err, StreamError::Undelivered { .. }), "{err}");
    assert_eq!(
        *acked.lock().expect("acked"),
        vec![3],
        "only the delivered batch is acked"
    );
}

#[tokio::test]
async fn a_step_error_stops_the_pipe() {
    let (reader, acked) = source(3).await;
    let err = pipe(
        reader,
        Sink::default(),
        PipeOptions::default(),
        |m: Message<String, u32>| {
            if m.value == 1 {
                Err(StreamError::transport("test", "poison"))
            } else {
                Ok(Some(m.map(|k| k, |v| v.to_string())))
            }
        },
    )
    .await
    .expect_err("step fails");
    assert!(err.to_string().contains("poison"));
    assert!(acked.lock().expect("acked").is_empty());
}
