//! Throughput of the reliable-consumer layer (`event_stream::stream`), printed as tables
//! with ratios measured side by side in one run
//! (`cargo bench -p event-stream --bench consumer`):
//!
//! 1. plain: the bare reader loop, no reliability layer (read, ack; Kafka also commits
//!    at the end);
//! 2. service, dedup off-path: a `StreamService` with a no-op handler and the default
//!    local LRU dedup (every id distinct), concurrency 1 and 16;
//! 3. service + Redis dedup: the same with Redis behind the LRU (`EXISTS` before and
//!    `SET NX EX` after each handling), concurrency 16 and 64, when
//!    `HOSTBRIDGE_BENCH_REDIS` or `HOSTBRIDGE_TEST_REDIS` names one.
//!
//! Each on two sources: the in-memory transport, which isolates the layer's cost (the
//! messages are written while the consumer runs, to a topic that holds them all, so the
//! writer never waits; every row pays the same writing), and Kafka
//! (`HOSTBRIDGE_BENCH_KAFKA` or `HOSTBRIDGE_TEST_KAFKA`): a fresh topic and group per
//! row, every message produced before the consumer starts, timed from the first message
//! received (the tansu test broker completes a group join only after one session
//! timeout).
//!
//! Messages: `N` (`HOSTBRIDGE_BENCH_MEMORY_N`, default 50,000; `HOSTBRIDGE_BENCH_KAFKA_N`,
//! default 20,000; or `-- --memory-n N --kafka-n N`) `data.load.requested` envelopes
//! encoded as the gateway's commands are. Memory rows: the median of 3 rounds (rows
//! interleaved) after a warm-up round; Kafka rows: one run each. Notes above the memory
//! table say where the time goes: writing alone, decoding one envelope (the layer's way
//! and two cheaper ones) and the Redis store alone (the ceiling of the Redis rows).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_stream::memory::{MemoryBus, MemoryWriter, Overflow, TopicConfig};
use event_stream::stream::dedup::{DEFAULT_LOCAL_CAPACITY, SharedStore};
use event_stream::stream::producer::encode;
use event_stream::stream::{
    Consume, ConsumerReport, Dedup, HandleError, MemoryTransport, RedisStore, RunningService,
    ServiceReport, StoreFailure, StreamService, Transport,
};
use event_stream::{AsyncReader, AsyncWriter, Envelope, RawMessage};
use futures::StreamExt;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "bench.commands";
const MEMORY_ROUNDS: usize = 3;
const KAFKA_PARTITIONS: i32 = 3;
/// The tansu broker completes a group join only after one session timeout.
const SESSION_TIMEOUT_MS: u32 = 6_000;
/// The longest any wait (a run to finish, a group join, one message) may take before
/// the bench fails.
const WAIT: Duration = Duration::from_secs(120);
/// How often a service's report is polled for completion.
const POLL: Duration = Duration::from_millis(1);
const REDIS_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Plain,
    Local,
    Redis,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    label: &'static str,
    layer: Layer,
    concurrency: usize,
}

const CASES: [Case; 5] = [
    Case {
        label: "plain (reader loop, ack)",
        layer: Layer::Plain,
        concurrency: 1,
    },
    Case {
        label: "service, dedup off-path (local LRU)",
        layer: Layer::Local,
        concurrency: 1,
    },
    Case {
        label: "service, dedup off-path (local LRU)",
        layer: Layer::Local,
        concurrency: 16,
    },
    Case {
        label: "service + Redis dedup",
        layer: Layer::Redis,
        concurrency: 16,
    },
    Case {
        label: "service + Redis dedup",
        layer: Layer::Redis,
        concurrency: 64,
    },
];

/// Messages timed and the time they took.
#[derive(Debug, Clone, Copy)]
struct Measured {
    messages: usize,
    elapsed: Duration,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    fn micros(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.messages as f64
    }
}

/// A row's figure, or why it was not measured.
type Outcome = Result<Measured, String>;

const SYMBOLS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "SPY",
];

/// `n` distinct commands, encoded as the gateway's are (JSON value, the three headers).
fn commands(n: usize) -> Vec<RawMessage> {
    (0..n)
        .map(|i| {
            let envelope = Envelope::new(
                "data.load.requested",
                "bench",
                json!({
                    "symbol": SYMBOLS[i % SYMBOLS.len()],
                    "timeframe": "1m",
                    "start_date": "2025-01-02",
                    "end_date": "2025-01-31",
                    "mode": "tail",
                }),
            )
            .expect("a valid envelope");
            encode(envelope)
        })
        .collect()
}

fn dedup(layer: Layer, redis: Option<&str>) -> Dedup {
    let local = Dedup::local(DEFAULT_LOCAL_CAPACITY);
    match (layer, redis) {
        (Layer::Redis, Some(url)) => local.with_shared(
            Arc::new(RedisStore::new(url).expect("a valid Redis URL")),
            StoreFailure::Open,
            REDIS_TTL,
        ),
        _ => local,
    }
}

fn start_service(
    transport: Arc<dyn Transport>,
    dedup: Dedup,
    group: &str,
    topic: &str,
    concurrency: usize,
) -> RunningService {
    // A consumer name (the dedup scope) of its own per run: runs reuse their batch, and
    // Redis remembers the ids of the runs before.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let name = format!("bench-{}", RUNS.fetch_add(1, Ordering::Relaxed));
    StreamService::builder("bench")
        .transport(transport)
        .dedup(dedup)
        .consumer(
            Consume::new(name, group, &[topic], |_e: Envelope| async {
                Ok::<(), HandleError>(())
            })
            .concurrency(concurrency),
        )
        .build()
        .expect("a valid service")
        .start()
        .expect("the service starts")
}

/// Polls the consumer's report until `done`; fails loudly after [`WAIT`].
async fn wait_until(
    service: &RunningService,
    what: &str,
    done: impl Fn(&ConsumerReport) -> bool,
) -> ConsumerReport {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut report = service.report();
        if done(&report.consumers[0]) {
            return report.consumers.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {WAIT:?}: {report:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Every message at its final outcome (which [`check`] then wants to be "handled").
fn finished(c: &ConsumerReport, n: usize) -> bool {
    c.handled + c.duplicates + c.dead_lettered >= n as u64
}

/// Every message handled once, nothing failed, the shared store never failed (a
/// fail-open row with Redis down would not measure Redis).
fn check(report: &ServiceReport, n: usize, case: &Case) {
    let c = &report.consumers[0];
    assert_eq!(
        (c.handled, c.duplicates, c.dead_lettered, c.failed),
        (n as u64, 0, 0, 0),
        "{}: {report:?}",
        case.label
    );
    assert_eq!(
        report.dedup.store_errors, 0,
        "{}: the dedup store failed: {report:?}",
        case.label
    );
}

// ---- memory

/// A bus whose topics hold `n` messages, so a writer ahead of the consumer never waits.
fn memory_bus(n: usize) -> MemoryBus<Bytes, Bytes> {
    MemoryBus::new(TopicConfig {
        capacity: n,
        overflow: Overflow::Wait,
    })
}

fn spawn_writes(mut writer: MemoryWriter<Bytes, Bytes>, batch: Vec<RawMessage>) -> JoinHandle<()> {
    tokio::spawn(async move {
        for message in batch {
            AsyncWriter::write(&mut writer, message)
                .await
                .expect("a memory write");
        }
    })
}

/// Writing alone, to one subscriber that does not read: what every memory row pays
/// beside the consuming.
async fn memory_write_only(batch: &[RawMessage]) -> Measured {
    let bus = memory_bus(batch.len());
    let _idle = bus.subscribe(TOPIC, CancellationToken::new());
    let messages = batch.to_vec();
    let t = Instant::now();
    spawn_writes(bus.writer(TOPIC), messages)
        .await
        .expect("the writer task");
    Measured {
        messages: batch.len(),
        elapsed: t.elapsed(),
    }
}

async fn memory_plain(batch: &[RawMessage]) -> Measured {
    let n = batch.len();
    let bus = memory_bus(n);
    let mut reader = bus.subscribe(TOPIC, CancellationToken::new());
    let messages = batch.to_vec();
    let t = Instant::now();
    let writer = spawn_writes(bus.writer(TOPIC), messages);
    for _ in 0..n {
        let message = tokio::time::timeout(WAIT, reader.next())
            .await
            .expect("a message within the wait")
            .expect("the topic is open")
            .expect("a message");
        let position = message
            .position
            .as_ref()
            .expect("memory messages have a position");
        reader.ack(position).expect("ack");
        black_box(&message);
    }
    reader.commit().await.expect("commit");
    let elapsed = t.elapsed();
    writer.await.expect("the writer task");
    Measured {
        messages: n,
        elapsed,
    }
}

async fn memory_service(batch: &[RawMessage], case: &Case, redis: Option<&str>) -> Measured {
    let n = batch.len();
    let transport = Arc::new(MemoryTransport::new(memory_bus(n)));
    let running = start_service(
        transport.clone(),
        dedup(case.layer, redis),
        "bench",
        TOPIC,
        case.concurrency,
    );
    let messages = batch.to_vec();
    let t = Instant::now();
    let writer = spawn_writes(transport.bus().writer(TOPIC), messages);
    wait_until(&running, "every message finished", |c| finished(c, n)).await;
    let elapsed = t.elapsed();
    writer.await.expect("the writer task");
    let report = running.stop().await.expect("the service stops");
    check(&report, n, case);
    Measured {
        messages: n,
        elapsed,
    }
}

async fn memory_case(batch: &[RawMessage], case: &Case, redis: &Result<String, String>) -> Outcome {
    match (case.layer, redis) {
        (Layer::Plain, _) => Ok(memory_plain(batch).await),
        (Layer::Redis, Err(reason)) => Err(reason.clone()),
        (_, redis) => Ok(memory_service(batch, case, redis.as_deref().ok()).await),
    }
}

async fn memory_bench(n: usize, redis: &Result<String, String>) -> Vec<Outcome> {
    let batch = commands(n);
    let warm = commands(n.min(5_000));
    for case in &CASES {
        let _ = memory_case(&warm, case, redis).await;
    }
    let mut rounds: Vec<Vec<Outcome>> = vec![Vec::new(); CASES.len()];
    for _ in 0..MEMORY_ROUNDS {
        for (i, case) in CASES.iter().enumerate() {
            rounds[i].push(memory_case(&batch, case, redis).await);
        }
    }
    let write_only = memory_write_only(&batch).await;
    let [layer, plain_serde, value] = decode_costs(&batch[0].value, n);
    let mut store = Vec::new();
    if let Ok(url) = redis {
        for tasks in [16, 64] {
            store.push((tasks, redis_store_alone(url, n, tasks).await));
        }
    }
    println!(
        "\n## Memory transport: {n} messages of {} bytes (median of {MEMORY_ROUNDS} rounds)",
        batch[0].value.len()
    );
    println!(
        "- Writing them alone (one idle subscriber): {:.0} msg/s, {:.2} µs/msg; every row \
         below includes this writing, done beside the consumer.",
        write_only.rate(),
        write_only.micros()
    );
    println!(
        "- Decoding one envelope (single thread): `Envelope::from_json` (the layer's) \
         {layer:.2} µs; `serde_json::from_slice::<Envelope>` (no path tracking) \
         {plain_serde:.2} µs; into a `serde_json::Value` {value:.2} µs."
    );
    for (tasks, m) in &store {
        println!(
            "- Redis store alone, {tasks} tasks, `EXISTS` then `SET NX EX` per new id: \
             {:.0} ids/s, {:.2} µs/id.",
            m.rate(),
            m.micros()
        );
    }
    rounds.into_iter().map(median).collect()
}

/// One envelope decoded `n` times the layer's way and two cheaper ways, in µs each.
fn decode_costs(value: &Bytes, n: usize) -> [f64; 3] {
    let time = |decode: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..n {
            decode();
        }
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    [
        time(&|| {
            black_box(Envelope::from_json(black_box(value)).expect("decodes"));
        }),
        time(&|| {
            black_box(serde_json::from_slice::<Envelope>(black_box(value)).expect("decodes"));
        }),
        time(&|| {
            black_box(
                serde_json::from_slice::<serde_json::Value>(black_box(value)).expect("decodes"),
            );
        }),
    ]
}

/// The Redis store alone, `tasks` at a time: `EXISTS`, then `SET NX EX`, per new id (what
/// the layer asks per message), in ids/s.
async fn redis_store_alone(url: &str, n: usize, tasks: usize) -> Measured {
    let store = Arc::new(RedisStore::new(url).expect("a valid Redis URL"));
    store
        .seen("hostbridge:bench:ping")
        .await
        .expect("Redis answers");
    let prefix = format!(
        "hostbridge:dedup:bench-store-{}",
        uuid::Uuid::new_v4().simple()
    );
    let t = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|k| {
            let (store, prefix) = (store.clone(), prefix.clone());
            tokio::spawn(async move {
                for i in (k..n).step_by(tasks) {
                    let key = format!("{prefix}:{i}");
                    let seen = store.seen(&key).await.expect("EXISTS");
                    assert!(!seen, "{key} is new");
                    store.remember(&key, REDIS_TTL).await.expect("SET NX EX");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a store task");
    }
    Measured {
        messages: n,
        elapsed: t.elapsed(),
    }
}

fn median(mut runs: Vec<Outcome>) -> Outcome {
    if let Some(Err(reason)) = runs.iter().find(|r| r.is_err()) {
        return Err(reason.clone());
    }
    runs.sort_by_key(|r| r.as_ref().map_or(Duration::ZERO, |m| m.elapsed));
    runs.swap_remove(runs.len() / 2)
}

// ---- Kafka

mod kafka {
    use super::*;
    use event_stream::kafka::{
        ConsumerSettings, KafkaAdmin, KafkaConfig, KafkaReader, KafkaWriter, ProducerSettings,
    };
    use event_stream::stream::KafkaTransport;

    fn unique(label: &str) -> String {
        format!("bench-consumer-{label}-{}", uuid::Uuid::new_v4().simple())
    }

    /// A fresh topic holding every message of `batch`, delivered.
    async fn topic_with(config: &KafkaConfig, admin: &KafkaAdmin, batch: &[RawMessage]) -> String {
        let name = unique("topic");
        tokio::time::timeout(WAIT, admin.create_topic(&name, KAFKA_PARTITIONS, 1, &[]))
            .await
            .expect("create_topic within the wait")
            .expect("create_topic");
        let mut writer =
            KafkaWriter::new(config, ProducerSettings::default(), &name).expect("a writer");
        for message in batch {
            AsyncWriter::write(&mut writer, message.clone())
                .await
                .expect("enqueue");
        }
        tokio::time::timeout(WAIT, AsyncWriter::close(&mut writer))
            .await
            .expect("delivered within the wait")
            .expect("every message delivered");
        assert_eq!(
            writer.stats().delivered as usize,
            batch.len(),
            "all delivered"
        );
        name
    }

    async fn next(reader: &mut KafkaReader) -> RawMessage {
        tokio::time::timeout(WAIT, reader.next())
            .await
            .expect("a message within the wait")
            .expect("the stream is open")
            .expect("a message")
    }

    /// KafkaReader acking every message and committing at the end, timed from the first
    /// message received.
    async fn plain(config: &KafkaConfig, topic: &str, n: usize) -> Measured {
        let settings =
            ConsumerSettings::new(unique("group")).with_session_timeout_ms(SESSION_TIMEOUT_MS);
        let mut reader =
            KafkaReader::new(config, settings, &[topic], CancellationToken::new()).expect("reader");
        let first = next(&mut reader).await;
        let t = Instant::now();
        reader
            .ack(first.position.as_ref().expect("a position"))
            .expect("ack");
        for _ in 1..n {
            let message = next(&mut reader).await;
            reader
                .ack(message.position.as_ref().expect("a position"))
                .expect("ack");
            black_box(&message);
        }
        reader.commit().await.expect("commit");
        let elapsed = t.elapsed();
        reader.close().await.expect("close");
        Measured {
            messages: n - 1,
            elapsed,
        }
    }

    async fn service(
        config: &KafkaConfig,
        topic: &str,
        n: usize,
        case: &Case,
        redis: Option<&str>,
    ) -> Measured {
        let transport = KafkaTransport::new(config.clone(), ProducerSettings::default())
            .with_session_timeout_ms(SESSION_TIMEOUT_MS);
        let running = start_service(
            Arc::new(transport),
            dedup(case.layer, redis),
            &unique("group"),
            topic,
            case.concurrency,
        );
        let first = wait_until(&running, "the first message (group join)", |c| {
            c.received >= 1
        })
        .await;
        let t = Instant::now();
        wait_until(&running, "every message finished", |c| finished(c, n)).await;
        let elapsed = t.elapsed();
        let report = running.stop().await.expect("the service stops");
        check(&report, n, case);
        Measured {
            messages: n - first.handled as usize,
            elapsed,
        }
    }

    pub(super) async fn bench(
        bootstrap: &str,
        n: usize,
        redis: &Result<String, String>,
    ) -> Vec<Outcome> {
        let config = KafkaConfig::new(bootstrap).with_client_id("hostbridge-bench-consumer");
        let admin = KafkaAdmin::new(&config).expect("an admin client");
        let batch = commands(n);
        let mut rows = Vec::new();
        for case in &CASES {
            let row = match (case.layer, redis) {
                (Layer::Redis, Err(reason)) => Err(reason.clone()),
                (layer, redis) => {
                    let topic = topic_with(&config, &admin, &batch).await;
                    Ok(if layer == Layer::Plain {
                        plain(&config, &topic, n).await
                    } else {
                        service(&config, &topic, n, case, redis.as_deref().ok()).await
                    })
                }
            };
            rows.push(row);
        }
        println!(
            "\n## Kafka on {bootstrap}: {n} messages of {} bytes, {KAFKA_PARTITIONS} partitions, \
             fresh topic and group per row, timed from the first message received",
            batch[0].value.len()
        );
        rows
    }
}

// ---- report

fn table(rows: &[Outcome]) {
    println!(
        "| consumer | concurrency | messages | msg/s | µs/msg | vs plain | layer cost µs/msg |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let plain = rows.first().and_then(|r| r.as_ref().ok()).copied();
    for (case, row) in CASES.iter().zip(rows) {
        let concurrency = if case.layer == Layer::Plain {
            "—".to_owned()
        } else {
            case.concurrency.to_string()
        };
        match (row, plain) {
            (Ok(m), Some(p)) => {
                let cost = if case.layer == Layer::Plain {
                    "—".to_owned()
                } else {
                    format!("{:+.2}", m.micros() - p.micros())
                };
                println!(
                    "| {} | {concurrency} | {} | {:.0} | {:.2} | {:.2}x | {cost} |",
                    case.label,
                    m.messages,
                    m.rate(),
                    m.micros(),
                    m.rate() / p.rate()
                );
            }
            (Ok(m), None) => println!(
                "| {} | {concurrency} | {} | {:.0} | {:.2} | | |",
                case.label,
                m.messages,
                m.rate(),
                m.micros()
            ),
            (Err(reason), _) => {
                println!(
                    "| {} | {concurrency} | skipped: {reason} | | | | |",
                    case.label
                );
            }
        }
    }
}

/// `--name N` or `--name=N` among the arguments, else `env`, else `default`.
fn knob(arg: &str, env: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    let from_args = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix(&format!("{arg}="))
            .map(str::to_owned)
            .or_else(|| (a == arg).then(|| args.get(i + 1).cloned().unwrap_or_default()))
    });
    let value = from_args.or_else(|| std::env::var(env).ok());
    let n = value.map_or(default, |v| {
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("{arg} / {env}: `{v}` is not a count: {e}"))
    });
    assert!(n >= 2, "{arg} / {env}: at least 2 messages");
    n
}

fn first_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// The Redis URL when one is named and answers, else why the Redis rows are skipped.
async fn redis() -> Result<String, String> {
    let url = first_env(&["HOSTBRIDGE_BENCH_REDIS", "HOSTBRIDGE_TEST_REDIS"])
        .ok_or("set HOSTBRIDGE_BENCH_REDIS=redis://host:port")?;
    let store = RedisStore::new(&url).map_err(|e| e.to_string())?;
    store
        .seen("hostbridge:bench:ping")
        .await
        .map_err(|e| format!("Redis does not answer: {e}"))?;
    Ok(url)
}

fn main() {
    let memory_n = knob("--memory-n", "HOSTBRIDGE_BENCH_MEMORY_N", 50_000);
    let kafka_n = knob("--kafka-n", "HOSTBRIDGE_BENCH_KAFKA_N", 20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "# event-stream reliable consumer: a no-op handler behind the layer ({} cores, \
         {} tokio workers)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        runtime.metrics().num_workers()
    );
    let redis = runtime.block_on(redis());
    match &redis {
        Ok(url) => println!("Redis: {url} (fail-open, TTL {}s)", REDIS_TTL.as_secs()),
        Err(reason) => println!("Redis rows skipped: {reason}"),
    }
    let rows = runtime.block_on(memory_bench(memory_n, &redis));
    table(&rows);

    match first_env(&["HOSTBRIDGE_BENCH_KAFKA", "HOSTBRIDGE_TEST_KAFKA"]) {
        Some(bootstrap) => {
            let rows = runtime.block_on(kafka::bench(&bootstrap, kafka_n, &redis));
            table(&rows);
        }
        None => println!(
            "\n(Kafka rows skipped: set HOSTBRIDGE_BENCH_KAFKA=host:port of a broker; \
             {kafka_n} messages per row)"
        ),
    }
}
