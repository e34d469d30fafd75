//! event-stream benchmarks, printed as tables with ratios measured side by side in one
//! run (`cargo bench -p event-stream`):
//!
//! 1. Serde: JSON vs MessagePack on a `market.bar` envelope (encode, decode, size).
//! 2. Memory transport: messages/s through one topic to 1 and to 8 subscribers.
//! 3. Kafka writer on a real broker (when `HOSTBRIDGE_BENCH_KAFKA` or
//!    `HOSTBRIDGE_TEST_KAFKA` names one): queue-on-write + one flush at close vs a
//!    flush per message, and beside them confluent-kafka (Python over the same
//!    librdkafka) producing the same messages batched.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::TimeZone;
use event_stream::codec::{Json, MsgPack, Serde};
use event_stream::memory::{MemoryBus, Overflow, TopicConfig};
use event_stream::replay::MarketBar;
use event_stream::{AsyncWriter, Envelope, Message, RawMessage};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

fn envelope() -> Envelope {
    let bar = MarketBar {
        symbol: "AAPL".into(),
        timeframe: "1m".into(),
        timestamp: chrono::Utc
            .with_ymd_and_hms(2025, 1, 2, 14, 31, 0)
            .single()
            .expect("a valid time"),
        open: 243.85,
        high: 244.12,
        low: 243.61,
        close: 243.97,
        volume: 187_342.0,
    };
    bar.into_envelope("hostbridge-bench")
        .expect("a valid envelope")
        .with_correlation_id(Some("0193e7a4-5b1c-7d2e-9f00-1a2b3c4d5e6f".into()))
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn serde_bench() {
    const N: usize = 200_000;
    let env = envelope();
    let json = Serde::<Envelope>::to_bytes(&Json, &env).expect("json");
    let mp = Serde::<Envelope>::to_bytes(&MsgPack, &env).expect("msgpack");
    let mut rows = Vec::new();
    for (name, bytes, codec) in [
        ("json", &json, &Json as &dyn Serde<Envelope>),
        ("msgpack", &mp, &MsgPack as &dyn Serde<Envelope>),
    ] {
        let t = Instant::now();
        for _ in 0..N {
            black_box(codec.to_bytes(black_box(&env)).expect("encode"));
        }
        let enc = rate(N, t.elapsed());
        let t = Instant::now();
        for _ in 0..N {
            black_box(codec.from_bytes(black_box(bytes)).expect("decode"));
        }
        let dec = rate(N, t.elapsed());
        rows.push((name, bytes.len(), enc, dec));
    }
    println!("\n## Serde: one market.bar envelope, {N} times each");
    println!("| format | bytes | encode msg/s | decode msg/s |");
    println!("|---|---:|---:|---:|");
    for (name, size, enc, dec) in &rows {
        println!("| {name} | {size} | {enc:.0} | {dec:.0} |");
    }
    let (j, m) = (&rows[0], &rows[1]);
    println!(
        "| msgpack / json | {:.2}x size | {:.2}x | {:.2}x |",
        m.1 as f64 / j.1 as f64,
        m.2 / j.2,
        m.3 / j.3
    );
}

async fn memory_run(subscribers: usize, n: usize, payload: &Bytes) -> Duration {
    let bus: MemoryBus<Bytes, Bytes> = MemoryBus::new(TopicConfig {
        capacity: 4096,
        overflow: Overflow::Wait,
    });
    let token = CancellationToken::new();
    let readers: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut sub = bus.subscribe("bench", token.clone());
            tokio::spawn(async move {
                let mut got = 0usize;
                while got < n {
                    match sub.next().await {
                        Some(Ok(m)) => {
                            black_box(m);
                            got += 1;
                        }
                        _ => break,
                    }
                }
                got
            })
        })
        .collect();
    let mut writer = bus.writer("bench");
    let t = Instant::now();
    for _ in 0..n {
        let m: RawMessage = Message::keyed(Bytes::from_static(b"AAPL"), payload.clone());
        writer.write(m).await.expect("write");
    }
    for r in readers {
        assert_eq!(
            r.await.expect("reader"),
            n,
            "every subscriber got every message"
        );
    }
    t.elapsed()
}

async fn memory_bench(payload: &Bytes) {
    const N: usize = 200_000;
    println!(
        "\n## Memory transport: {N} messages of {} bytes, Wait policy, capacity 4096",
        payload.len()
    );
    println!("| subscribers | written msg/s | delivered msg/s | vs 1 subscriber (written) |");
    println!("|---:|---:|---:|---:|");
    let mut base = None;
    for subs in [1usize, 8] {
        let elapsed = memory_run(subs, N, payload).await;
        let written = rate(N, elapsed);
        let base = *base.get_or_insert(written);
        println!(
            "| {subs} | {written:.0} | {:.0} | {:.2}x |",
            rate(N * subs, elapsed),
            written / base
        );
    }
}

async fn kafka_bench(bootstrap: &str, payload: &Bytes) {
    use event_stream::kafka::{KafkaAdmin, KafkaConfig, KafkaWriter, ProducerSettings};
    const BATCHED: usize = 200_000;
    const PER_MESSAGE: usize = 2_000;
    let config = KafkaConfig::new(bootstrap).with_client_id("hostbridge-bench");
    let admin = KafkaAdmin::new(&config).expect("admin");
    let topic = |label: &str| format!("bench-{label}-{}", uuid::Uuid::new_v4().simple());

    let mut rows: Vec<(String, usize, f64)> = Vec::new();
    for (label, n, per_message) in [
        ("queue on write, flush at close", BATCHED, false),
        ("flush per message", PER_MESSAGE, true),
    ] {
        let name = topic("rs");
        admin.create_topic(&name, 1, 1, &[]).await.expect("topic");
        let mut w = KafkaWriter::new(&config, ProducerSettings::default(), &name)
            .expect("writer")
            .with_flush_per_message(per_message);
        let t = Instant::now();
        for _ in 0..n {
            let m: RawMessage = Message::keyed(Bytes::from_static(b"AAPL"), payload.clone());
            AsyncWriter::write(&mut w, m).await.expect("write");
        }
        AsyncWriter::close(&mut w)
            .await
            .expect("everything delivered");
        let elapsed = t.elapsed();
        let stats = w.stats();
        assert_eq!(stats.delivered as usize, n, "{label}: all delivered");
        rows.push((
            format!("hostbridge KafkaWriter, {label}"),
            n,
            rate(n, elapsed),
        ));
    }

    let name = topic("py");
    admin.create_topic(&name, 1, 1, &[]).await.expect("topic");
    let payload_file = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&payload_file, payload).expect("payload file");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/produce.py");
    match Command::new("python3")
        .args([script, bootstrap, &name, &BATCHED.to_string()])
        .arg(&payload_file)
        .output()
    {
        Ok(out) if out.status.success() => {
            let line: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("the script prints JSON");
            let r = line["rate"].as_f64().unwrap_or(0.0);
            rows.push(("confluent-kafka (Python), batched".into(), BATCHED, r));
        }
        Ok(out) => println!(
            "(confluent-kafka run failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("(python3 not runnable: {e})"),
    }
    let _ = std::fs::remove_file(&payload_file);

    println!(
        "\n## Kafka writer on {bootstrap}: {}-byte JSON envelopes, one partition, acks=all, snappy",
        payload.len()
    );
    println!("| producer | messages | msg/s | vs flush per message |");
    println!("|---|---:|---:|---:|");
    let slow = rows[1].2;
    for (label, n, r) in &rows {
        println!("| {label} | {n} | {r:.0} | {:.1}x |", r / slow);
    }
    if rows.len() == 3 {
        println!(
            "| hostbridge batched / Python batched | | | {:.2}x |",
            rows[0].2 / rows[2].2
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let payload = Bytes::from(envelope().to_json());
    println!(
        "# event-stream benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    serde_bench();
    runtime.block_on(memory_bench(&payload));
    let broker = std::env::var("HOSTBRIDGE_BENCH_KAFKA")
        .or_else(|_| std::env::var("HOSTBRIDGE_TEST_KAFKA"))
        .ok();
    match broker {
        Some(bootstrap) => runtime.block_on(kafka_bench(&bootstrap, &payload)),
        None => println!(
            "\n(Kafka writer benchmark skipped: set HOSTBRIDGE_BENCH_KAFKA=host:port of a broker)"
        ),
    }
}
