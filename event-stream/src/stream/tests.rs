//! The composition end to end on in-process transports.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::dead_letter::header;
use super::transport::{BoxReader, BoxWriter};
use super::*;
use crate::memory::{MemoryBus, MemoryReader, TopicConfig};
use crate::message::{Position, RawMessage};
use crate::reader::AsyncReader;
use crate::{Envelope, StreamError};

const TOPIC: &str = "commands";

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        jitter: true,
    }
}

fn command(data: Value) -> Envelope {
    Envelope::new("data.load.requested", "test", data).expect("envelope")
}

fn raw(envelope: &Envelope) -> RawMessage {
    producer::encode(envelope.clone())
}

struct Bench {
    transport: Arc<MemoryTransport>,
}

impl Bench {
    fn new() -> Self {
        Self {
            transport: Arc::new(MemoryTransport::new(MemoryBus::new(TopicConfig::default()))),
        }
    }

    fn listen(&self, topic: &str) -> MemoryReader<Bytes, Bytes> {
        self.transport
            .bus()
            .subscribe(topic, CancellationToken::new())
    }

    async fn put(&self, message: RawMessage) {
        let mut writer = self.transport.bus().writer(TOPIC);
        crate::AsyncWriter::write(&mut writer, message)
            .await
            .expect("write");
    }

    fn builder(&self) -> service::StreamServiceBuilder {
        StreamService::builder("test")
            .transport(self.transport.clone())
            .retry(quick())
            .commit_interval(Duration::from_millis(10))
    }
}

async fn next(reader: &mut MemoryReader<Bytes, Bytes>) -> RawMessage {
    tokio::time::timeout(Duration::from_secs(10), reader.next())
        .await
        .expect("a message in time")
        .expect("open")
        .expect("ok")
}

/// Waits until `report` satisfies `done` (polling a running service).
async fn until(service: &RunningService, done: impl Fn(&ConsumerReport) -> bool) {
    for _ in 0..1000 {
        if done(&service.report().consumers[0]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never got there: {:?}", service.report());
}

#[tokio::test]
async fn the_same_command_three_times_is_handled_once() {
    let bench = Bench::new();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let service = bench
        .builder()
        .consumer(Consume::new("gw", "g", &[TOPIC], move |_e: Envelope| {
            let calls = counted.clone();
            async move {
                calls.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }))
        .build()
        .expect("build")
        .start()
        .expect("start");
    let cmd = command(json!({"symbol": "AAPL"}));
    for _ in 0..3 {
        bench.put(raw(&cmd)).await;
    }
    until(&service, |c| c.handled + c.duplicates == 3).await;
    let report = service.stop().await.expect("stop");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(report.consumers[0].handled, 1);
    assert_eq!(report.consumers[0].duplicates, 2);
    assert_eq!(report.dedup.duplicates, 2);
    assert_eq!(report.dedup.store, "memory");
}

/// Copies of one command in flight at once (concurrency 4, a handler slow enough that
/// the first has not been remembered when the others are checked) are handled once.
#[tokio::test]
async fn copies_in_flight_together_are_handled_once() {
    let bench = Bench::new();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let service = bench
        .builder()
        .consumer(
            Consume::new("gw", "g", &[TOPIC], move |_e: Envelope| {
                let calls = counted.clone();
                async move {
                    calls.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok(())
                }
            })
            .concurrency(4),
        )
        .build()
        .expect("build")
        .start()
        .expect("start");
    let cmd = command(json!({"symbol": "AAPL"}));
    for _ in 0..4 {
        bench.put(raw(&cmd)).await;
    }
    until(&service, |c| c.handled + c.duplicates == 4).await;
    let report = service.stop().await.expect("stop");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(
        (report.consumers[0].handled, report.consumers[0].duplicates),
        (1, 3)
    );
}

#[tokio::test]
async fn poison_permanent_and_panicking_messages_are_dead_lettered_and_the_next_is_handled() {
    let bench = Bench::new();
    let mut dlq = bench.listen("commands.dlq");
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let seen = hooked.clone();
    let service = bench
        .builder()
        .on_dead_letter(move |letter, envelope| {
            seen.lock()
                .expect("lock")
                .push((letter.class.clone(), envelope.map(|e| e.id)));
        })
        .consumer(Consume::new(
            "gw",
            "g",
            &[TOPIC],
            |e: Envelope| async move {
                match e.data["symbol"].as_str() {
                    Some("") => Err(HandleError::permanent(
                        "ValidationError",
                        "symbol: must not be empty",
                    )),
                    Some("BOOM") => panic!("boom"),
                    _ => Ok(()),
                }
            },
        ))
        .build()
        .expect("build")
        .start()
        .expect("start");

    let mut poison = RawMessage::new(Bytes::from_static(b"{not json"));
    poison.headers.push("type", "data.load.requested");
    bench.put(poison).await;
    let invalid = command(json!({"symbol": ""})).with_correlation_id(Some("c-9".to_owned()));
    bench.put(raw(&invalid)).await;
    let panicking = command(json!({"symbol": "BOOM"}));
    bench.put(raw(&panicking)).await;
    bench.put(raw(&command(json!({"symbol": "AAPL"})))).await;

    let first = next(&mut dlq).await;
    assert_eq!(first.value, Bytes::from_static(b"{not json"));
    let h = &first.headers;
    assert_eq!(h.get_str(header::CLASS), Some("UndecodableMessage"));
    assert_eq!(h.get_str(header::TOPIC), Some(TOPIC));
    assert_eq!(h.get_str(header::OFFSET), Some("0"));
    assert_eq!(h.get_str(header::PARTITION), Some("0"));
    assert_eq!(h.get_str(header::ATTEMPTS), Some("0"));
    assert_eq!(h.get_str(header::GROUP), Some("g"));
    assert_eq!(h.get_str("type"), Some("data.load.requested"));
    assert!(h.get_str(header::MESSAGE).is_some_and(|m| !m.is_empty()));

    let second = next(&mut dlq).await;
    let h = &second.headers;
    assert_eq!(h.get_str(header::CLASS), Some("ValidationError"));
    assert_eq!(
        h.get_str(header::MESSAGE),
        Some("symbol: must not be empty")
    );
    assert_eq!(h.get_str(header::ATTEMPTS), Some("1"));
    let id = invalid.id.to_string();
    assert_eq!(h.get_str(header::EVENT_ID), Some(id.as_str()));
    assert_eq!(h.get_str(header::CORRELATION_ID), Some("c-9"));
    assert_eq!(second.value, raw(&invalid).value);

    let third = next(&mut dlq).await;
    assert_eq!(
        third.headers.get_str(header::CLASS),
        Some("HandlerPanicked")
    );
    assert!(
        third
            .headers
            .get_str(header::MESSAGE)
            .is_some_and(|m| m.contains("boom"))
    );

    until(&service, |c| c.handled == 1 && c.dead_lettered == 3).await;
    let report = service.stop().await.expect("stop");
    assert_eq!(report.consumers[0].failed, 2, "{report:?}");
    assert_eq!(report.consumers[0].retried, 0, "permanent: no retry");
    let hooked = hooked.lock().expect("lock").clone();
    assert_eq!(
        hooked,
        [
            ("UndecodableMessage".to_owned(), None),
            ("ValidationError".to_owned(), Some(invalid.id)),
            ("HandlerPanicked".to_owned(), Some(panicking.id)),
        ]
    );
}

#[tokio::test]
async fn transient_failures_are_retried_then_succeed_or_are_dead_lettered_past_the_budget() {
    let bench = Bench::new();
    let mut dlq = bench.listen("commands.dlq");
    // "flaky": fails twice then works; "down": never works.
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let tally = attempts.clone();
    let service = bench
        .builder()
        .consumer(Consume::new("gw", "g", &[TOPIC], move |e: Envelope| {
            let tally = tally.clone();
            async move {
                let name = e.data["symbol"].as_str().unwrap_or_default().to_owned();
                let n = {
                    let mut t = tally.lock().expect("lock");
                    let n = t.entry(name.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                match (name.as_str(), n) {
                    ("flaky", 1 | 2) => Err(HandleError::transient("training-host is down")),
                    ("down", _) => Err(HandleError::transient("training-host is down")),
                    _ => Ok(()),
                }
            }
        }))
        .build()
        .expect("build")
        .start()
        .expect("start");
    bench.put(raw(&command(json!({"symbol": "flaky"})))).await;
    bench.put(raw(&command(json!({"symbol": "down"})))).await;

    let dead = next(&mut dlq).await;
    assert_eq!(
        dead.headers.get_str(header::CLASS),
        Some("RetriesExhausted")
    );
    assert_eq!(dead.headers.get_str(header::ATTEMPTS), Some("3"));
    assert!(
        dead.headers
            .get_str(header::MESSAGE)
            .is_some_and(|m| m.contains("gave up after 3 attempt(s): training-host is down"))
    );
    until(&service, |c| c.handled == 1 && c.dead_lettered == 1).await;
    let report = service.stop().await.expect("stop");
    let c = &report.consumers[0];
    assert_eq!((c.failed, c.retried), (5, 4), "{c:?}");
    assert_eq!(attempts.lock().expect("lock").get("flaky"), Some(&3));
}

#[tokio::test]
async fn the_handler_sees_a_correlation_id_and_everything_it_produces_carries_it() {
    let bench = Bench::new();
    let mut events = bench.listen("events");
    let producer = Producer::new(bench.transport.as_ref(), "events").expect("producer");
    let out = producer.clone();
    let service = bench
        .builder()
        .producer(producer)
        .consumer(Consume::new("gw", "g", &[TOPIC], move |e: Envelope| {
            let out = out.clone();
            async move {
                // The envelope as sent; the chain in the task-local.
                assert!(
                    e.correlation_id.is_none() || e.correlation_id.as_deref() == Some("corr-1")
                );
                let seen = correlation::current().unwrap_or_default();
                // An event made without a correlation id gets the handling's.
                let event = Envelope::new("operation.started", "test", json!({"seen": seen}))
                    .map_err(|e| HandleError::permanent("Bug", e))?;
                out.send(event).await.map_err(HandleError::transient)
            }
        }))
        .build()
        .expect("build")
        .start()
        .expect("start");
    let with = command(json!({})).with_correlation_id(Some("corr-1".to_owned()));
    bench.put(raw(&with)).await;
    let without = command(json!({}));
    bench.put(raw(&without)).await;

    let first = Envelope::from_json(&next(&mut events).await.value).expect("envelope");
    assert_eq!(first.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(first.data["seen"], "corr-1");
    let second = Envelope::from_json(&next(&mut events).await.value).expect("envelope");
    // Without one, the command started the chain: its own id.
    let chain = without.id.to_string();
    assert_eq!(second.correlation_id.as_deref(), Some(chain.as_str()));
    assert_eq!(second.data["seen"], chain.as_str());
    service.stop().await.expect("stop");
}

#[test]
fn a_service_missing_a_part_is_refused_naming_it() {
    let bench = Bench::new();
    let named = |b: service::StreamServiceBuilder| match b.build() {
        Err(StreamError::Config { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    assert_eq!(named(StreamService::builder("x")), "transport");
    assert_eq!(named(bench.builder()), "consumers");
    let ok = |_e: Envelope| async { Ok(()) };
    assert_eq!(
        named(bench.builder().consumer(Consume::new("a", "g", &[], ok))),
        "topics"
    );
    assert_eq!(
        named(
            bench
                .builder()
                .consumer(Consume::new("a", "", &[TOPIC], ok))
        ),
        "group"
    );
    assert_eq!(
        named(
            bench
                .builder()
                .consumer(Consume::new("a", "g", &[TOPIC], ok))
                .consumer(Consume::new("a", "g", &[TOPIC], ok))
        ),
        "consumer name"
    );
    assert_eq!(
        named(
            bench
                .builder()
                .consumer(Consume::new("a", "g", &[TOPIC], ok).concurrency(0))
        ),
        "concurrency"
    );
}

// ---- Commits, with a reader that records what it was told.

/// A reader fed by the test, recording acknowledgements and what each commit covered.
struct Recording {
    messages: mpsc::UnboundedReceiver<RawMessage>,
    cancel: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    acked: Arc<Mutex<HashMap<i32, i64>>>,
    commits: Arc<Mutex<Vec<HashMap<i32, i64>>>>,
}

impl Stream for Recording {
    type Item = Result<RawMessage, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.cancel.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        this.messages.poll_recv(cx).map(|m| m.map(Ok))
    }
}

#[async_trait]
impl AsyncReader<Bytes, Bytes> for Recording {
    fn ack(&mut self, position: &Position) -> Result<(), StreamError> {
        let mut acked = self.acked.lock().expect("lock");
        let next = acked.entry(position.partition).or_insert(0);
        *next = (*next).max(position.offset + 1);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StreamError> {
        let acked = self.acked.lock().expect("lock").clone();
        self.commits.lock().expect("lock").push(acked);
        Ok(())
    }
}

#[derive(Debug)]
struct RecordingTransport {
    reader: Mutex<Option<mpsc::UnboundedReceiver<RawMessage>>>,
    commits: Arc<Mutex<Vec<HashMap<i32, i64>>>>,
    bus: MemoryTransport,
}

impl Transport for RecordingTransport {
    fn reader(
        &self,
        _group: &str,
        _topics: &[String],
        cancel: CancellationToken,
    ) -> Result<BoxReader, StreamError> {
        let messages = self
            .reader
            .lock()
            .expect("lock")
            .take()
            .ok_or(StreamError::Closed("opened once"))?;
        Ok(Box::new(Recording {
            messages,
            cancel: Box::pin(cancel.cancelled_owned()),
            acked: Arc::default(),
            commits: self.commits.clone(),
        }))
    }

    fn writer(&self, topic: &str) -> Result<BoxWriter, StreamError> {
        self.bus.writer(topic)
    }
}

type Commits = Arc<Mutex<Vec<HashMap<i32, i64>>>>;

/// A feed of messages, the commits made, and the transport whose reader reads the feed
/// (writers go to `bus`).
fn recording(
    bus: MemoryTransport,
) -> (
    mpsc::UnboundedSender<RawMessage>,
    Commits,
    Arc<RecordingTransport>,
) {
    let (feed, messages) = mpsc::unbounded_channel();
    let commits = Commits::default();
    let transport = Arc::new(RecordingTransport {
        reader: Mutex::new(Some(messages)),
        commits: commits.clone(),
        bus,
    });
    (feed, commits, transport)
}

fn at(partition: i32, offset: i64, envelope: &Envelope) -> RawMessage {
    let mut m = raw(envelope);
    m.position = Some(Position {
        topic: TOPIC.to_owned(),
        partition,
        offset,
    });
    m
}

#[tokio::test]
async fn out_of_order_finishes_never_commit_past_an_unfinished_message_and_a_stop_leaves_it() {
    let (feed, commits, transport) =
        recording(MemoryTransport::new(MemoryBus::new(TopicConfig::default())));
    // Each message waits for its own gate; "stuck" never opens.
    let gates: Arc<Mutex<HashMap<i64, tokio::sync::oneshot::Sender<()>>>> = Arc::default();
    let waiting: Arc<Mutex<HashMap<i64, tokio::sync::oneshot::Receiver<()>>>> = Arc::default();
    for offset in 0..4 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        gates.lock().expect("lock").insert(offset, tx);
        waiting.lock().expect("lock").insert(offset, rx);
    }
    let handler_gates = waiting.clone();
    let service = StreamService::builder("commits")
        .transport(transport)
        .retry(quick())
        .commit_interval(Duration::from_millis(5))
        .stop_deadline(Duration::from_millis(200))
        .consumer(
            Consume::new("gw", "g", &[TOPIC], move |e: Envelope| {
                let gate = e.data["offset"]
                    .as_i64()
                    .and_then(|o| handler_gates.lock().expect("lock").remove(&o));
                async move {
                    if let Some(gate) = gate {
                        let _ = gate.await;
                    }
                    Ok(())
                }
            })
            .concurrency(8),
        )
        .build()
        .expect("build")
        .start()
        .expect("start");
    for offset in 0..4 {
        let e = command(json!({"offset": offset}));
        feed.send(at(0, offset, &e)).expect("feed");
    }
    // Finish 3, 1, 2 — offset 0 stays unfinished.
    for offset in [3, 1, 2] {
        if let Some(gate) = gates.lock().expect("lock").remove(&offset) {
            let _ = gate.send(());
        }
    }
    until(&service, |c| c.handled == 3).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let report = service.stop().await.expect("stop");
    assert_eq!(report.consumers[0].handled, 3);
    let commits = commits.lock().expect("lock").clone();
    assert!(!commits.is_empty(), "a stop commits");
    for commit in &commits {
        assert!(
            commit.get(&0).is_none_or(|&next| next == 0),
            "a commit passed the unfinished offset 0: {commits:?}"
        );
    }
    drop(gates);
}

#[tokio::test]
async fn finished_in_any_order_the_commit_reaches_one_past_the_last() {
    let (feed, commits, transport) =
        recording(MemoryTransport::new(MemoryBus::new(TopicConfig::default())));
    let service = StreamService::builder("commits")
        .transport(transport)
        .commit_interval(Duration::from_millis(5))
        .consumer(
            Consume::new("gw", "g", &[TOPIC], |e: Envelope| async move {
                // Later offsets finish first.
                let offset = e.data["offset"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(40 - 8 * offset)).await;
                Ok(())
            })
            .concurrency(5),
        )
        .build()
        .expect("build")
        .start()
        .expect("start");
    for (partition, offset) in [(0, 0), (0, 1), (1, 7), (0, 2), (1, 8)] {
        let e = command(json!({"offset": offset % 5}));
        feed.send(at(partition, offset, &e)).expect("feed");
    }
    until(&service, |c| c.handled == 5).await;
    service.stop().await.expect("stop");
    let last = commits
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(last.get(&0), Some(&3));
    assert_eq!(last.get(&1), Some(&9));
}

#[tokio::test]
async fn a_stop_during_retries_leaves_the_message_uncommitted_not_dead_lettered() {
    let bus = MemoryTransport::new(MemoryBus::new(TopicConfig::default()));
    let mut dlq = bus
        .bus()
        .subscribe("commands.dlq", CancellationToken::new());
    let (feed, commits, transport) = recording(bus);
    let service = StreamService::builder("stop")
        .transport(transport)
        .retry(RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
            jitter: false,
        })
        .consumer(Consume::new("gw", "g", &[TOPIC], |_e: Envelope| async {
            Err(HandleError::transient("down"))
        }))
        .build()
        .expect("build")
        .start()
        .expect("start");
    feed.send(at(0, 0, &command(json!({})))).expect("feed");
    until(&service, |c| c.retried == 1).await;
    let report = service.stop().await.expect("stop");
    assert_eq!(report.consumers[0].abandoned, 1);
    assert_eq!(report.consumers[0].dead_lettered, 0);
    assert!(dlq.try_next().is_none());
    for commit in commits.lock().expect("lock").iter() {
        assert!(commit.get(&0).is_none_or(|&n| n == 0), "{commit:?}");
    }
}
