//! The Kafka transport against real peers: the tansu broker (`HOSTBRIDGE_TEST_KAFKA`,
//! started by .ci/run), rdkafka's in-process `MockCluster` for what tansu gets wrong (end
//! offsets, so lag) and for fault injection, and Python's confluent-kafka for interop.
//!
//! Tests that need tansu or Python print why and return when those are missing, except
//! under `CI_REQUIRE_KAFKA=1`, where that fails. Every test uses its own topic and group.

#![cfg(feature = "kafka")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_stream::codec::{Json, Utf8};
use event_stream::kafka::{
    KafkaAdmin, KafkaConfig, KafkaReader, KafkaSyncReader, KafkaWriter, PartitionLag,
    ProducerSettings, TopicCreation,
};
use event_stream::typed::{Codecs, TypedReader};
use event_stream::{AsyncReader, AsyncWriter, Envelope, Message, RawMessage, Reader, StreamError};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::{WAIT, consumer, drain_to_end, next, read_acking, text, topic, unique};

fn numbered(i: usize) -> RawMessage {
    Message::keyed(
        Bytes::from(format!("k{}", i % 4)),
        Bytes::from(format!("m{i}")),
    )
    .with_header("seq", i.to_string())
}

async fn write_all(writer: &mut KafkaWriter, range: std::ops::Range<usize>) {
    for i in range {
        AsyncWriter::write(writer, numbered(i))
            .await
            .expect("enqueue");
    }
}

fn reader(config: &KafkaConfig, group: &str, topic: &str) -> (KafkaReader, CancellationToken) {
    let cancel = CancellationToken::new();
    let reader =
        KafkaReader::new(config, consumer(group), &[topic], cancel.clone()).expect("reader");
    (reader, cancel)
}

/// Reads `count` messages in order and stops the reader.
async fn read_back(config: &KafkaConfig, topic: &str, count: usize) -> Vec<RawMessage> {
    let (mut reader, cancel) = reader(config, &unique("readback"), topic);
    let messages = read_acking(&mut reader, count).await;
    cancel.cancel();
    drain_to_end(&mut reader).await;
    reader.close().await.expect("close the reader");
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_queues_and_one_flush_delivers_a_thousand_in_order() {
    let Some(broker) = common::broker() else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let topic = topic(&config, "thousand", 1).await;
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");

    write_all(&mut writer, 0..1_000).await;
    assert_eq!(writer.stats().flush_calls, 0, "write never flushes");
    AsyncWriter::flush(&mut writer)
        .await
        .expect("all delivered");
    let stats = writer.stats();
    assert_eq!(stats.flush_calls, 1);
    assert_eq!(
        (stats.written, stats.delivered, stats.failed),
        (1_000, 1_000, 0)
    );
    AsyncWriter::close(&mut writer).await.expect("close");

    let messages = read_back(&config, &topic, 1_000).await;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(text(&m.value), format!("m{i}"), "in order");
        assert_eq!(
            m.key.as_ref().map(text),
            Some(format!("k{}", i % 4).as_str())
        );
        assert_eq!(m.headers.get_str("seq"), Some(i.to_string().as_str()));
        let position = m.position.as_ref().expect("position");
        assert_eq!((position.partition, position.offset), (0, i as i64));
        assert!(m.timestamp_ms.is_some(), "broker timestamp");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_delivers_everything_queued() {
    let Some(broker) = common::broker() else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let topic = topic(&config, "close", 1).await;
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");

    write_all(&mut writer, 0..50).await;
    AsyncWriter::close(&mut writer)
        .await
        .expect("close flushes");
    assert_eq!(writer.stats().delivered, 50);
    let late = AsyncWriter::write(&mut writer, numbered(50)).await;
    assert!(matches!(late, Err(StreamError::Closed(_))), "{late:?}");
    AsyncWriter::close(&mut writer)
        .await
        .expect("closing twice is harmless");

    let values: Vec<String> = read_back(&config, &topic, 50)
        .await
        .iter()
        .map(|m| text(&m.value).to_owned())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    assert_eq!(values, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_counts_what_a_downed_broker_did_not_take() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("down");
    mock.create_topic(&topic, 1, 1).expect("mock topic");
    let config = KafkaConfig::new(mock.bootstrap_servers());
    let settings = ProducerSettings {
        message_timeout_ms: 2_000,
        flush_timeout: Duration::from_secs(20),
        ..ProducerSettings::default()
    };
    let mut writer = KafkaWriter::new(&config, settings, &topic).expect("writer");
    write_all(&mut writer, 0..1).await;
    AsyncWriter::flush(&mut writer)
        .await
        .expect("delivered while the broker is up");

    mock.broker_down(1).expect("broker down");
    write_all(&mut writer, 1..6).await;
    match AsyncWriter::flush(&mut writer).await {
        Err(StreamError::Undelivered {
            undelivered,
            first_error,
        }) => {
            assert_eq!(undelivered, 5);
            assert!(first_error.is_some(), "the delivery error is kept");
        }
        other => panic!("expected Undelivered, got {other:?}"),
    }
    let stats = writer.stats();
    assert_eq!((stats.delivered, stats.failed), (1, 5));
    AsyncWriter::flush(&mut writer)
        .await
        .expect("failures are reported once, by the flush after them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_gives_up_at_its_deadline_and_close_reports_the_loss() {
    // Nothing listens on port 1: the messages stay queued (their own timeout is long).
    let config = KafkaConfig::new("127.0.0.1:1");
    let settings = ProducerSettings {
        message_timeout_ms: 600_000,
        flush_timeout: Duration::from_secs(1),
        ..ProducerSettings::default()
    };
    let mut writer = KafkaWriter::new(&config, settings, "unreachable").expect("writer");
    write_all(&mut writer, 0..3).await;
    let flushed = tokio::time::timeout(WAIT, AsyncWriter::flush(&mut writer))
        .await
        .expect("flush returns at its deadline");
    assert!(
        matches!(
            flushed,
            Err(StreamError::Undelivered {
                undelivered: 3,
                first_error: None
            })
        ),
        "{flushed:?}"
    );
    let closed = tokio::time::timeout(WAIT, AsyncWriter::close(&mut writer))
        .await
        .expect("close returns at the flush deadline");
    assert!(
        matches!(closed, Err(StreamError::Undelivered { undelivered: 3, .. })),
        "close reports what it drops: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_per_message_is_opt_in() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("per-message");
    mock.create_topic(&topic, 1, 1).expect("mock topic");
    let config = KafkaConfig::new(mock.bootstrap_servers());
    let mut writer = KafkaWriter::new(&config, ProducerSettings::default(), &topic)
        .expect("writer")
        .with_flush_per_message(true);
    write_all(&mut writer, 0..3).await;
    let stats = writer.stats();
    assert_eq!((stats.flush_calls, stats.delivered), (3, 3));
    AsyncWriter::close(&mut writer).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_write_wait_for_room() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("full");
    mock.create_topic(&topic, 1, 1).expect("mock topic");
    // Room for two messages: most writes find the queue full and must wait, not fail.
    let config = KafkaConfig::new(mock.bootstrap_servers())
        .with_property("queue.buffering.max.messages", "2");
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
    write_all(&mut writer, 0..20).await;
    let mut writer = tokio::task::spawn_blocking(move || {
        for i in 20..40 {
            event_stream::Writer::write(&mut writer, numbered(i)).expect("sync enqueue");
        }
        writer
    })
    .await
    .expect("sync writes");
    AsyncWriter::close(&mut writer).await.expect("delivered");
    let stats = writer.stats();
    assert_eq!(
        (stats.written, stats.delivered, stats.flush_calls),
        (40, 40, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_resumes_right_after_what_was_acknowledged() {
    let Some(broker) = common::broker() else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let topic = topic(&config, "resume", 1).await;
    let group = unique("resume");
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
    write_all(&mut writer, 0..10).await;
    AsyncWriter::close(&mut writer).await.expect("delivered");

    // Six received, only the first four processed (acknowledged), then stopped.
    let (mut first, cancel) = reader(&config, &group, &topic);
    let mut received = Vec::new();
    for _ in 0..6 {
        received.push(next(&mut first).await);
    }
    for m in &received[..4] {
        first
            .ack(m.position.as_ref().expect("position"))
            .expect("ack");
    }
    cancel.cancel();
    drain_to_end(&mut first).await;
    // The stream committed before it ended: the group's offset is already there.
    let admin = KafkaAdmin::new(&config).expect("admin");
    let lag = admin.group_lag(&group, &[&topic]).await.expect("lag");
    assert_eq!(lag.first().and_then(|p| p.committed), Some(4), "{lag:?}");
    first.close().await.expect("close");

    let (mut second, cancel) = reader(&config, &group, &topic);
    let resumed = read_acking(&mut second, 6).await;
    let values: Vec<&str> = resumed.iter().map(|m| text(&m.value)).collect();
    assert_eq!(values, ["m4", "m5", "m6", "m7", "m8", "m9"]);
    cancel.cancel();
    drain_to_end(&mut second).await;
    second.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_are_committed_when_partitions_are_revoked() {
    let Some(broker) = common::broker() else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let topic = topic(&config, "revoke", 1).await;
    let group = unique("revoke");
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
    write_all(&mut writer, 0..6).await;
    AsyncWriter::close(&mut writer).await.expect("delivered");

    // Three acknowledged, no commit, no cancel: the member just goes away, which revokes
    // its partitions; the revocation must commit what was acknowledged.
    let (mut first, _cancel) = reader(&config, &group, &topic);
    read_acking(&mut first, 3).await;
    next(&mut first).await;
    drop(first);

    let admin = KafkaAdmin::new(&config).expect("admin");
    let deadline = Instant::now() + WAIT;
    loop {
        let lag = admin.group_lag(&group, &[&topic]).await.expect("lag");
        if lag.first().and_then(|p| p.committed) == Some(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offset 3 never committed: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut second, cancel) = reader(&config, &group, &topic);
    assert_eq!(text(&next(&mut second).await.value), "m3");
    cancel.cancel();
    drain_to_end(&mut second).await;
    second.close().await.expect("close");
}

#[test]
fn the_sync_reader_leaves_a_failed_message_for_the_next_member() {
    let Some(broker) = common::broker() else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let topic = runtime.block_on(topic(&config, "sync", 1));
    let group = unique("sync");

    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
    for i in 0..3 {
        event_stream::Writer::write(&mut writer, numbered(i)).expect("enqueue");
    }
    event_stream::Writer::close(&mut writer).expect("delivered");

    let deadline = Instant::now() + WAIT;
    let mut first = KafkaSyncReader::new(&config, consumer(&group), &[&topic]).expect("reader");
    let stop = || Instant::now() > deadline;
    let mut seen = Vec::new();
    let outcome = first.read(&stop, &mut |m: RawMessage| {
        seen.push(text(&m.value).to_owned());
        if m.value == "m1" {
            Err("cannot handle m1".into())
        } else {
            Ok(())
        }
    });
    assert!(
        matches!(outcome, Err(StreamError::Handler(_))),
        "{outcome:?}"
    );
    assert_eq!(seen, ["m0", "m1"]);
    first.close().expect("close");

    let handled = AtomicUsize::new(0);
    let stop = || handled.load(Ordering::SeqCst) == 2 || Instant::now() > deadline;
    let mut second = KafkaSyncReader::new(&config, consumer(&group), &[&topic]).expect("reader");
    let mut again = Vec::new();
    let summary = second
        .read(&stop, &mut |m: RawMessage| {
            again.push(text(&m.value).to_owned());
            handled.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .expect("reads");
    assert_eq!(again, ["m1", "m2"], "m1 was not committed, m0 was");
    assert_eq!(summary.handled, 2);
    second.close().expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topic_is_idempotent_and_describe_reports_partitions() {
    let Some(broker) = common::broker() else {
        return;
    };
    let config = KafkaConfig::new(broker);
    let admin = KafkaAdmin::new(&config).expect("admin");
    let name = unique("admin");
    let retention = [("retention.ms", "86400000")];
    let create = || tokio::time::timeout(WAIT, admin.create_topic(&name, 3, 1, &retention));

    assert_eq!(
        create().await.expect("in time").expect("create"),
        TopicCreation::Created
    );
    assert_eq!(
        create().await.expect("in time").expect("create again"),
        TopicCreation::AlreadyExisted
    );
    let info = tokio::time::timeout(WAIT, admin.describe_topic(&name))
        .await
        .expect("in time")
        .expect("describe")
        .expect("the topic exists");
    assert_eq!((info.name.as_str(), info.partitions), (name.as_str(), 3));
    assert_eq!(info.replication, 1);
    assert_eq!(
        info.configs.get("retention.ms").map(String::as_str),
        Some("86400000")
    );
    assert!(
        admin.list_topics().await.expect("list").contains(&name),
        "listed"
    );
    let missing = admin
        .describe_topic(&unique("missing"))
        .await
        .expect("describe");
    assert_eq!(missing, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lag_is_end_minus_committed() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("lag");
    mock.create_topic(&topic, 1, 1).expect("mock topic");
    let config = KafkaConfig::new(mock.bootstrap_servers());
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
    write_all(&mut writer, 0..10).await;
    AsyncWriter::close(&mut writer).await.expect("delivered");

    let group = unique("lag");
    let (mut reader, cancel) = reader(&config, &group, &topic);
    read_acking(&mut reader, 4).await;
    reader.commit().await.expect("commit");

    let admin = KafkaAdmin::new(&config).expect("admin");
    let lag = tokio::time::timeout(WAIT, admin.group_lag(&group, &[&topic]))
        .await
        .expect("in time")
        .expect("lag");
    assert_eq!(
        lag,
        [PartitionLag {
            topic: topic.clone(),
            partition: 0,
            committed: Some(4),
            end: 10,
            lag: 6,
        }]
    );
    cancel.cancel();
    drain_to_end(&mut reader).await;
    reader.close().await.expect("close");
}

/// Puts `counts[p]` messages on partition `p` of `topic`.
fn produce_per_partition(config: &KafkaConfig, topic: &str, counts: &[usize]) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .create()
        .expect("producer");
    for (partition, &count) in counts.iter().enumerate() {
        for i in 0..count {
            let payload = format!("p{partition}-{i}");
            producer
                .send(
                    BaseRecord::<(), _>::to(topic)
                        .partition(i32::try_from(partition).expect("small"))
                        .payload(&payload),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
        }
    }
    producer.flush(WAIT).expect("delivered");
}

/// Commits `offsets` for `group` the way a member that stopped there would have.
fn commit_for(config: &KafkaConfig, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for &(topic, partition, offset) in offsets {
        tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))
            .expect("valid offset");
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

// What `hostbridge topics lag GROUP` runs (group_lag with no topic named): the lag is
// end - committed on every partition, end - start where the group never committed, and
// only topics the group committed on are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lag_of_every_committed_topic_is_right_per_partition() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("lag3");
    let untouched = unique("lag-other");
    mock.create_topic(&topic, 3, 1).expect("mock topic");
    mock.create_topic(&untouched, 1, 1).expect("mock topic");
    let config = KafkaConfig::new(mock.bootstrap_servers());
    let produced = [5usize, 7, 3];
    produce_per_partition(&config, &topic, &produced);
    produce_per_partition(&config, &untouched, &[4]);
    let group = unique("lag3");
    commit_for(&config, &group, &[(&topic, 0, 2), (&topic, 1, 7)]);

    let admin = KafkaAdmin::new(&config)
        .expect("admin")
        .with_timeout(Duration::from_secs(10));
    for named in [vec![], vec![topic.as_str()]] {
        let lag = tokio::time::timeout(WAIT, admin.group_lag(&group, &named))
            .await
            .expect("in time")
            .expect("lag");
        let rows: Vec<(&str, i32, Option<i64>, i64, i64)> = lag
            .iter()
            .map(|l| (l.topic.as_str(), l.partition, l.committed, l.end, l.lag))
            .collect();
        assert_eq!(
            rows,
            [
                (topic.as_str(), 0, Some(2), 5, 3),
                (topic.as_str(), 1, Some(7), 7, 0),
                (topic.as_str(), 2, None, 3, 3),
            ],
            "topics named: {named:?}"
        );
    }
    let nobody = tokio::time::timeout(WAIT, admin.group_lag(&unique("nobody"), &[]))
        .await
        .expect("in time")
        .expect("lag");
    assert_eq!(nobody, [], "a group without commits has no topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_an_idle_stream() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("idle");
    mock.create_topic(&topic, 1, 1).expect("mock topic");
    let config = KafkaConfig::new(mock.bootstrap_servers());
    let (mut reader, cancel) = reader(&config, &unique("idle"), &topic);
    let idle = tokio::time::timeout(Duration::from_millis(500), reader.next()).await;
    assert!(idle.is_err(), "nothing to read: {idle:?}");
    cancel.cancel();
    drain_to_end(&mut reader).await;
    reader.close().await.expect("close");
}

fn sample_envelope(event_type: &str, subject: &str) -> Envelope {
    Envelope::new(
        event_type,
        "api-gateway",
        json!({"operation_id": "op-7", "rows": 42, "ratio": 0.1, "tags": ["a", "b"]}),
    )
    .expect("valid type")
    .with_subject(subject)
    .with_correlation_id(Some("corr-1".to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_written_here_is_read_by_python() {
    let Some(broker) = common::broker() else {
        return;
    };
    let Some(()) = common::python_kafka() else {
        return;
    };
    let config = KafkaConfig::new(broker.clone());
    let topic = topic(&config, "to-python", 1).await;
    let envelope = sample_envelope("operation.completed", "op-7");
    let codecs = Codecs::new(Utf8, Json);
    let raw = codecs
        .encode(envelope.clone().into_message())
        .expect("encode");
    let mut writer =
        KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
    AsyncWriter::write(&mut writer, raw).await.expect("enqueue");
    AsyncWriter::close(&mut writer).await.expect("delivered");

    let args: [&str; 6] = ["consume", &broker, &topic, &unique("py"), "1", "60"];
    let output = common::python(args.map(str::to_owned).to_vec(), Vec::new()).await;
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(line["key"], "op-7");
    assert_eq!(
        line["value"],
        serde_json::to_value(&envelope).expect("to json")
    );
    assert_eq!(line["headers"]["type"], "operation.completed");
    assert_eq!(line["headers"]["id"], envelope.id.to_string());
    assert_eq!(line["headers"]["correlation_id"], "corr-1");
    let back = Envelope::from_json(line["value"].to_string().as_bytes()).expect("an envelope");
    assert_eq!(back, envelope);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_produced_by_python_is_read_here() {
    let Some(broker) = common::broker() else {
        return;
    };
    let Some(()) = common::python_kafka() else {
        return;
    };
    let config = KafkaConfig::new(broker.clone());
    let topic = topic(&config, "from-python", 1).await;
    let envelope = sample_envelope("data.load.requested", "AAPL");
    let type_header = format!("type={}", envelope.event_type);
    let id_header = format!("id={}", envelope.id);
    let args: [&str; 6] = ["produce", &broker, &topic, "AAPL", &type_header, &id_header];
    let output = common::python(args.map(str::to_owned).to_vec(), envelope.to_json()).await;
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (raw, cancel) = reader(&config, &unique("from-python"), &topic);
    let mut typed = TypedReader::new(raw, Codecs::new(Utf8, Json));
    let message: Message<String, Envelope> = tokio::time::timeout(WAIT, typed.next())
        .await
        .expect("a message within the wait")
        .expect("not ended")
        .expect("decodes as an envelope");
    assert_eq!(message.value, envelope);
    assert_eq!(message.key.as_deref(), Some("AAPL"));
    assert_eq!(message.headers.get_str("type"), Some("data.load.requested"));
    assert_eq!(
        message.headers.get_str("id"),
        Some(envelope.id.to_string().as_str())
    );
    typed
        .ack(message.position.as_ref().expect("position"))
        .expect("ack");
    cancel.cancel();
    let rest = tokio::time::timeout(WAIT, typed.next())
        .await
        .expect("ends");
    assert!(rest.is_none());
    typed.into_inner().close().await.expect("close");
}
