//! Stream services against real peers: Redis (`redis-server` from Debian, started here
//! per test so it can be stopped mid-run) as the shared dedup store, and the tansu
//! Kafka broker (`HOSTBRIDGE_TEST_KAFKA`) as the transport.
//!
//! Without `redis-server` on the PATH (or `HOSTBRIDGE_REDIS_BIN`) or without a broker a
//! test prints why and returns, except under `CI_REQUIRE_REDIS=1` / `CI_REQUIRE_KAFKA=1`.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use event_stream::memory::{MemoryBus, TopicConfig};
use event_stream::stream::dedup::SharedStore;
use event_stream::stream::producer::encode;
use event_stream::stream::{
    Consume, ConsumerReport, Dedup, HandleError, MemoryTransport, RedisStore, RetryPolicy,
    RunningService, StoreFailure, StreamService,
};
use event_stream::{AsyncWriter, Envelope, RawMessage};
use serde_json::json;

const TOPIC: &str = "commands";

fn redis_required() -> bool {
    std::env::var("CI_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// A redis-server of this test's own on a free port; killed when dropped.
struct OwnRedis {
    child: Option<Child>,
    port: u16,
}

impl OwnRedis {
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self { child: None, port };
        redis.launch()?;
        Some(redis)
    }

    fn launch(&mut self) -> Option<()> {
        let bin = std::env::var("HOSTBRIDGE_REDIS_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(e) => {
                assert!(
                    !redis_required(),
                    "CI_REQUIRE_REDIS=1 but `{bin}` does not start: {e}"
                );
                println!("skipping: `{bin}` does not start ({e}); install redis-server");
                return None;
            }
        }
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on {} within 5 s", self.port);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn command(symbol: &str) -> Envelope {
    Envelope::new("data.load.requested", "test", json!({"symbol": symbol})).expect("envelope")
}

/// A stream service on an in-process bus whose handler counts calls per symbol.
struct Counting {
    transport: Arc<MemoryTransport>,
    calls: Arc<Mutex<HashMap<String, u32>>>,
    /// How long each call takes.
    work: Duration,
}

impl Counting {
    fn new() -> Self {
        Self {
            transport: Arc::new(MemoryTransport::new(MemoryBus::new(TopicConfig::default()))),
            calls: Arc::default(),
            work: Duration::ZERO,
        }
    }

    /// Another process counting into the same tally: its own bus and service.
    fn another_process(&self, work: Duration) -> Self {
        Self {
            transport: Arc::new(MemoryTransport::new(MemoryBus::new(TopicConfig::default()))),
            calls: self.calls.clone(),
            work,
        }
    }

    fn start(&self, dedup: Dedup) -> RunningService {
        let calls = self.calls.clone();
        let work = self.work;
        StreamService::builder("redis-test")
            .transport(self.transport.clone())
            .dedup(dedup)
            .retry(RetryPolicy {
                max_attempts: 2,
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(100),
                jitter: true,
            })
            .consumer(
                Consume::new("gw", "g", &[TOPIC], move |e: Envelope| {
                    let calls = calls.clone();
                    async move {
                        let symbol = e.data["symbol"].as_str().unwrap_or_default().to_owned();
                        *calls.lock().expect("lock").entry(symbol).or_insert(0) += 1;
                        tokio::time::sleep(work).await;
                        Ok::<(), HandleError>(())
                    }
                })
                .concurrency(4),
            )
            .build()
            .expect("build")
            .start()
            .expect("start")
    }

    async fn put(&self, envelope: &Envelope) {
        let mut writer = self.transport.bus().writer(TOPIC);
        AsyncWriter::write(&mut writer, encode(envelope.clone()))
            .await
            .expect("write");
    }

    fn calls(&self, symbol: &str) -> u32 {
        self.calls
            .lock()
            .expect("lock")
            .get(symbol)
            .copied()
            .unwrap_or(0)
    }
}

async fn until(service: &RunningService, done: impl Fn(&ConsumerReport) -> bool) {
    for _ in 0..2000 {
        if done(&service.report().consumers[0]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never got there: {:?}", service.report());
}

fn redis_dedup(url: &str, policy: StoreFailure) -> Dedup {
    let store = RedisStore::new(url).expect("store");
    Dedup::local(1000).with_shared(Arc::new(store), policy, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_remembers_ids_across_a_restart_of_the_service() {
    let Some(redis) = OwnRedis::start() else {
        return;
    };
    let store = RedisStore::new(&redis.url()).expect("store");
    assert!(!store.seen("k").await.expect("seen"));
    store
        .remember("k", Duration::from_secs(60))
        .await
        .expect("remember");
    store
        .remember("k", Duration::from_secs(60))
        .await
        .expect("remembering twice is fine");
    assert!(store.seen("k").await.expect("seen"));

    let bench = Counting::new();
    let cmd = command("AAPL");
    let first = bench.start(redis_dedup(&redis.url(), StoreFailure::Open));
    bench.put(&cmd).await;
    until(&first, |c| c.handled == 1).await;
    first.stop().await.expect("stop");
    // A new process: an empty LRU; Redis knows the id.
    let second = bench.start(redis_dedup(&redis.url(), StoreFailure::Open));
    bench.put(&cmd).await;
    bench.put(&cmd).await;
    until(&second, |c| c.duplicates == 2).await;
    let report = second.stop().await.expect("stop");
    assert_eq!(bench.calls("AAPL"), 1);
    assert_eq!(report.dedup.store, "redis");
    assert!(report.dedup.store_up);
    assert_eq!(report.dedup.store_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_leases_an_id_to_one_process_at_a_time() {
    use event_stream::stream::dedup::{Check, SharedStore, Taken};
    let Some(redis) = OwnRedis::start() else {
        return;
    };
    // Two processes: their own stores and LRUs, one Redis.
    let lease = Duration::from_millis(300);
    let first = redis_dedup(&redis.url(), StoreFailure::Closed).lease(lease);
    let second = redis_dedup(&redis.url(), StoreFailure::Closed).lease(lease);
    assert_eq!(first.check("gw", "cmd-1").await, Check::New);
    assert_eq!(second.check("gw", "cmd-1").await, Check::InFlight);
    assert_eq!(
        first.check("gw", "cmd-1").await,
        Check::New,
        "its own lease"
    );
    first.remember("gw", "cmd-1").await;
    assert_eq!(
        second.check("gw", "cmd-1").await,
        Check::Duplicate { local: false }
    );

    // A holder that dies: its lease lapses, the next process handles the id.
    assert_eq!(first.check("gw", "cmd-2").await, Check::New);
    assert_eq!(second.check("gw", "cmd-2").await, Check::InFlight);
    tokio::time::sleep(lease * 2).await;
    assert_eq!(second.check("gw", "cmd-2").await, Check::New);

    // Through the consumers: the same command reaches two processes at once (a
    // rebalance, a republish); the one that takes it second waits, then skips it.
    let one = Counting::new().another_process(Duration::from_millis(200));
    let two = one.another_process(Duration::from_millis(200));
    let first = one.start(redis_dedup(&redis.url(), StoreFailure::Open));
    let second = two.start(redis_dedup(&redis.url(), StoreFailure::Open));
    let cmd = command("MSFT");
    tokio::join!(one.put(&cmd), two.put(&cmd));
    until(&first, |c| c.handled + c.duplicates == 1).await;
    until(&second, |c| c.handled + c.duplicates == 1).await;
    let (a, b) = (
        first.stop().await.expect("stop"),
        second.stop().await.expect("stop"),
    );
    assert_eq!(one.calls("MSFT"), 1, "handled once across both processes");
    let handled: u64 = [&a, &b].iter().map(|r| r.consumers[0].handled).sum();
    let duplicates: u64 = [&a, &b].iter().map(|r| r.consumers[0].duplicates).sum();
    assert_eq!((handled, duplicates), (1, 1));

    // Ids remembered by an earlier version (value `1`) still count as handled.
    let store = RedisStore::new(&redis.url()).expect("store");
    let mut connection = ::redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let () = ::redis::cmd("SET")
        .arg("old-key")
        .arg(1)
        .query_async(&mut connection)
        .await
        .expect("SET");
    assert_eq!(
        store
            .take("old-key", "lease:x", Duration::from_secs(1))
            .await
            .expect("take"),
        Taken::Done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_open_as_configured_and_says_so() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let bench = Counting::new();
    let service = bench.start(redis_dedup(&redis.url(), StoreFailure::Open));
    bench.put(&command("BEFORE")).await;
    until(&service, |c| c.handled == 1).await;

    redis.stop();
    bench.put(&command("DURING")).await;
    until(&service, |c| c.handled == 2).await;
    let report = service.report();
    assert!(!report.dedup.store_up, "{report:?}");
    assert!(report.dedup.store_errors >= 1, "{report:?}");
    assert_eq!(report.dedup.on_store_failure, "open");

    redis.launch().expect("redis again");
    bench.put(&command("AFTER")).await;
    until(&service, |c| c.handled == 3).await;
    let report = service.stop().await.expect("stop");
    assert!(report.dedup.store_up, "back up: {report:?}");
    assert_eq!(
        (
            bench.calls("BEFORE"),
            bench.calls("DURING"),
            bench.calls("AFTER")
        ),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_closed_as_configured_and_resumes_when_it_returns() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let bench = Counting::new();
    let service = bench.start(redis_dedup(&redis.url(), StoreFailure::Closed));
    redis.stop();
    bench.put(&command("WAITS")).await;
    // Not handled while Redis is down: the message waits, counted as store errors.
    until(&service, |_| true).await;
    for _ in 0..400 {
        if service.report().dedup.store_errors >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = service.report();
    assert!(report.dedup.store_errors >= 2, "{report:?}");
    assert_eq!(report.dedup.on_store_failure, "closed");
    assert_eq!(bench.calls("WAITS"), 0);
    assert_eq!(report.consumers[0].in_flight, 1);

    redis.launch().expect("redis again");
    until(&service, |c| c.handled == 1).await;
    let report = service.stop().await.expect("stop");
    assert_eq!(bench.calls("WAITS"), 1);
    assert!(report.dedup.store_up);
}

// ---- Kafka

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use event_stream::AsyncReader;
    use event_stream::kafka::{KafkaConfig, KafkaWriter, ProducerSettings};
    use event_stream::stream::KafkaTransport;
    use event_stream::stream::dead_letter::header;
    use futures::StreamExt;
    use tokio_util::sync::CancellationToken;

    use crate::common::{SESSION_TIMEOUT_MS, WAIT, broker, consumer, next, topic, unique};

    fn service(
        config: &KafkaConfig,
        group: &str,
        topic: &str,
        calls: Arc<Mutex<HashMap<String, u32>>>,
    ) -> RunningService {
        let transport = KafkaTransport::new(config.clone(), ProducerSettings::default())
            .with_session_timeout_ms(SESSION_TIMEOUT_MS);
        StreamService::builder("kafka-test")
            .transport(Arc::new(transport))
            .retry(RetryPolicy::none())
            .consumer(
                Consume::new("gw", group, &[topic], move |e: Envelope| {
                    let calls = calls.clone();
                    async move {
                        let symbol = e.data["symbol"].as_str().unwrap_or_default().to_owned();
                        if symbol.is_empty() {
                            return Err(HandleError::permanent(
                                "ValidationError",
                                "symbol: must not be empty",
                            ));
                        }
                        *calls.lock().expect("lock").entry(symbol).or_insert(0) += 1;
                        Ok(())
                    }
                })
                .concurrency(4),
            )
            .build()
            .expect("build")
            .start()
            .expect("start")
    }

    async fn produce(writer: &mut KafkaWriter, messages: Vec<RawMessage>) {
        for m in messages {
            AsyncWriter::write(writer, m).await.expect("enqueue");
        }
        AsyncWriter::flush(writer).await.expect("flush");
    }

    async fn wait_for(service: &RunningService, done: impl Fn(&ConsumerReport) -> bool) {
        tokio::time::timeout(WAIT, until(service, done))
            .await
            .expect("within the wait");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_kafka_each_command_is_handled_once_poison_is_dead_lettered_and_a_restart_resumes() {
        let Some(address) = broker() else {
            return;
        };
        let config = KafkaConfig::new(address);
        let topic = topic(&config, "commands", 3).await;
        let group = unique("group");
        let mut writer =
            KafkaWriter::new(&config, ProducerSettings::default(), &topic).expect("writer");
        let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();

        let commands: Vec<Envelope> = (0..12).map(|i| command(&format!("S{i}"))).collect();
        let mut batch: Vec<RawMessage> = commands.iter().map(|c| encode(c.clone())).collect();
        // The first command twice more, a poison message and an invalid one.
        batch.push(encode(commands[0].clone()));
        batch.push(encode(commands[0].clone()));
        let mut poison = RawMessage::new(Bytes::from_static(b"not json"));
        poison.key = Some(Bytes::from_static(b"x"));
        batch.push(poison);
        batch.push(encode(command("")));
        produce(&mut writer, batch).await;

        let first = service(&config, &group, &topic, calls.clone());
        wait_for(&first, |c| c.handled + c.duplicates + c.dead_lettered == 16).await;
        let report = first.stop().await.expect("stop");
        let c = &report.consumers[0];
        assert_eq!(
            (c.handled, c.duplicates, c.dead_lettered),
            (12, 2, 2),
            "{c:?}"
        );
        assert!(c.commits >= 1);

        // Restart: everything was committed, so only what is new is read.
        produce(&mut writer, vec![encode(command("LATE"))]).await;
        let second = service(&config, &group, &topic, calls.clone());
        wait_for(&second, |c| c.handled == 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = second.stop().await.expect("stop");
        assert_eq!(report.consumers[0].received, 1, "{report:?}");
        {
            let calls = calls.lock().expect("lock");
            assert_eq!(calls.len(), 13);
            assert!(calls.values().all(|&n| n == 1), "{calls:?}");
        }

        // The dead letters, with their headers.
        let cancel = CancellationToken::new();
        let dlq = format!("{topic}.dlq");
        let mut reader = event_stream::kafka::KafkaReader::new(
            &config,
            consumer(&unique("dlq")),
            &[dlq.as_str()],
            cancel.clone(),
        )
        .expect("dlq reader");
        let mut letters = Vec::new();
        for _ in 0..2 {
            letters.push(next(&mut reader).await);
        }
        cancel.cancel();
        while reader.next().await.is_some() {}
        let class_of = |class: &str| {
            letters
                .iter()
                .find(|m| m.headers.get_str(header::CLASS) == Some(class))
                .unwrap_or_else(|| panic!("a {class} dead letter"))
        };
        let poison = class_of("UndecodableMessage");
        assert_eq!(poison.value, Bytes::from_static(b"not json"));
        assert_eq!(poison.key, Some(Bytes::from_static(b"x")));
        let invalid = class_of("ValidationError");
        assert_eq!(
            invalid.headers.get_str(header::MESSAGE),
            Some("symbol: must not be empty")
        );
        for letter in &letters {
            let h = &letter.headers;
            assert_eq!(h.get_str(header::TOPIC), Some(topic.as_str()));
            assert!(
                h.get_str(header::PARTITION)
                    .is_some_and(|p| p.parse::<i32>().is_ok())
            );
            assert!(
                h.get_str(header::OFFSET)
                    .is_some_and(|o| o.parse::<i64>().is_ok())
            );
            assert_eq!(h.get_str(header::GROUP), Some(group.as_str()));
        }
        let _ = reader.commit().await;
    }
}
