//! Events out of the gateway: the SSE stream at /api/v1/events and the Kafka sink,
//! read back by real clients while a real load runs.

use std::time::Duration;

use api_gateway::GatewayConfig;
use api_gateway::events::config::KafkaSinkSettings;
use api_gateway::events::{EventMode, EventSettings};
use event_stream::kafka::{ConsumerSettings, KafkaConfig, KafkaReader, ProducerSettings};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{Dirs, gateway, get, http, post};

async fn start_local_load(base: &str) -> String {
    let (status, answer) = post(
        &http(),
        &format!("{base}/api/v1/data/load"),
        &json!({"symbol": "MSFT", "timeframe": "1d", "mode": "local"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    answer["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Gateway settings publishing to `topic` on `config`'s broker.
fn kafka_gateway(
    dirs: &Dirs,
    config: &KafkaConfig,
    producer: ProducerSettings,
    topic: &str,
) -> api_gateway::GatewaySettings {
    api_gateway::GatewaySettings {
        events: EventSettings {
            mode: EventMode::Kafka,
            kafka: Some(KafkaSinkSettings {
                config: config.clone(),
                producer,
                topic: topic.to_owned(),
            }),
            ..EventSettings::default()
        },
        ..dirs.settings(GatewayConfig::default())
    }
}

/// Reads SSE events (`event:` name, `data:` JSON) until `stop` says so.
async fn read_sse(
    response: reqwest::Response,
    mut stop: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("an event within 20 s")
            .expect("stream open")
            .expect("chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(v.trim()).ok();
                }
            }
            if let (Some(name), Some(data)) = (name, data) {
                let done = stop(&name, &data);
                events.push((name, data));
                if done {
                    return events;
                }
            }
        }
    }
}

#[tokio::test]
async fn sse_streams_a_loads_events_in_order_with_a_type_filter() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let response = http()
        .get(format!("{}/api/v1/events?type=operation.", gw.base))
        .send()
        .await
        .expect("events stream");
    assert_eq!(response.status(), 200);
    // The subscription is made when the answer's head is sent: start the load after.
    let id = start_local_load(&gw.base).await;
    let events = read_sse(response, |name, env| {
        name == "operation.completed" && env["subject"] == id.as_str()
    })
    .await;
    let mine: Vec<&str> = events
        .iter()
        .filter(|(_, env)| env["subject"] == id.as_str())
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(mine.first(), Some(&"operation.started"), "{mine:?}");
    assert_eq!(mine.last(), Some(&"operation.completed"));
    for (name, env) in &events {
        assert!(name.starts_with("operation."), "filtered: {name}");
        assert_eq!(&env["type"], name.as_str());
        assert_eq!(env["source"], "api-gateway");
        assert_eq!(env["id"].as_str().map(str::len), Some(36));
    }
    let done = &events.last().expect("completed").1;
    assert_eq!(done["data"]["result_summary"]["bars_after"], 3270);
}

#[tokio::test]
async fn a_bad_type_filter_names_the_field_and_health_reports_events() {
    let dirs = Dirs::empty();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let (status, body) = get(
        &http(),
        &format!("{}/api/v1/events?type=Bad%20Type!", gw.base),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("type"), "{body}");
    let (status, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(status, 200);
    assert_eq!(health["events"]["mode"], "off", "{health}");
}

// librdkafka's threads and the gateway's blocking work need more than one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_sink_publishes_a_loads_events_keyed_by_operation() {
    let Some(broker) = crate::support::test_broker() else {
        return;
    };
    let topic = format!("events-test-{}", uuid::Uuid::new_v4().simple());
    let config = KafkaConfig::new(broker.as_str());
    let dirs = Dirs::sample().with_ib().await;
    let settings = kafka_gateway(&dirs, &config, ProducerSettings::default(), &topic);
    let (gw, _) = gateway(settings).await;
    let id = start_local_load(&gw.base).await;

    // The topic comes into being with the sink's first event; a consumer that
    // subscribed before that would wait for its next metadata refresh. So wait until
    // the sink reports the load's events delivered (started, progress, completed).
    let mut health = Value::Null;
    for _ in 0..300 {
        health = get(&http(), &format!("{}/api/v1/health", gw.base)).await.1;
        if health["events"]["sinks"]["kafka"]["delivered"].as_u64() >= Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kafka = &health["events"]["sinks"]["kafka"];
    assert_eq!(kafka["connected"], true, "{health}");
    assert_eq!(kafka["topic"], topic.as_str());
    assert_eq!(kafka["dropped"], 0);
    assert_eq!(health["status"], "healthy");

    let cancel = CancellationToken::new();
    let group = ConsumerSettings::new(format!("g-{}", uuid::Uuid::new_v4().simple()))
        .with_session_timeout_ms(6000);
    let mut reader =
        KafkaReader::new(&config, group, &[topic.as_str()], cancel.clone()).expect("reader");
    let mut mine: Vec<String> = Vec::new();
    while mine.last().map(String::as_str) != Some("operation.completed") {
        let m = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .expect("an event within 60 s")
            .expect("open")
            .expect("ok");
        let env: Value = serde_json::from_slice(&m.value).expect("JSON envelope");
        assert_eq!(env["subject"], id.as_str());
        assert_eq!(m.key.as_deref(), Some(id.as_bytes()), "key = subject");
        assert_eq!(m.headers.get_str("type"), env["type"].as_str());
        assert_eq!(m.headers.get_str("id"), env["id"].as_str());
        mine.push(env["type"].as_str().expect("type").to_owned());
    }
    cancel.cancel();
    assert_eq!(mine.first().map(String::as_str), Some("operation.started"));
    assert!(
        mine[1..mine.len() - 1]
            .iter()
            .all(|t| t == "operation.progress"),
        "{mine:?}"
    );
}

/// A host-mode gateway over one data-host on the simulator, with the SSE stream open:
/// a load started with a correlation id carries it on every event, `data.loaded` names
/// the symbol and the bars merged, and losing data-host is announced as
/// `host.health_changed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_mode_load_events_carry_the_correlation_id_and_host_changes_are_announced() {
    let sim = crate::support::simulator(Duration::ZERO).await;
    let host = crate::support::data_host(&sim, 31).await;
    let dirs = Dirs::empty();
    let config = GatewayConfig {
        data: api_gateway::ServiceMode::Host(vec![host.base.parse().expect("url")]),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    let response = http()
        .get(format!("{}/api/v1/events", gw.base))
        .send()
        .await
        .expect("events stream");
    assert_eq!(response.status(), 200);

    let answer = http()
        .post(format!("{}/api/v1/data/load", gw.base))
        .header("X-Correlation-ID", "chain-42")
        .json(
            &json!({"symbol": "AAPL", "timeframe": "1h", "mode": "backfill",
            "start_date": "2025-02-01T00:00:00Z", "end_date": "2025-02-20T00:00:00Z"}),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status(), 202);
    let answer: Value = answer.json().await.expect("JSON");
    assert_eq!(answer["data"]["correlation_id"], "chain-42");
    let id = answer["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let mut events = read_sse(response, |name, env| {
        name == "operation.completed" && env["subject"] == id.as_str()
    })
    .await;
    let chain: Vec<&(String, Value)> = events
        .iter()
        .filter(|(_, env)| env["correlation_id"] == "chain-42")
        .collect();
    let names: Vec<&str> = chain.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"operation.started"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        ["data.loaded", "operation.completed"],
        "{names:?}"
    );
    let (_, loaded) = chain[chain.len() - 2];
    assert_eq!(loaded["subject"], "AAPL");
    assert_eq!(loaded["data"]["operation_id"], id.as_str());
    assert_eq!(loaded["data"]["timeframe"], "1h");
    assert!(loaded["data"]["bars_added"].as_u64() > Some(0), "{loaded}");
    assert!(loaded["data"]["range"]["start"].is_string(), "{loaded}");
    // Every event of the operation is in the chain.
    assert!(
        events
            .iter()
            .filter(|(_, env)| env["subject"] == id.as_str())
            .all(|(_, env)| env["correlation_id"] == "chain-42")
    );
    events.clear();

    // data-host goes away: the prober's finding is announced.
    let response = http()
        .get(format!("{}/api/v1/events?type=host.", gw.base))
        .send()
        .await
        .expect("events stream");
    drop(host);
    let changes = read_sse(response, |_, env| env["data"]["healthy"] == false).await;
    let (name, down) = changes.last().expect("a change");
    assert_eq!(name, "host.health_changed");
    assert_eq!(down["subject"], "data-host");
    assert_eq!(down["data"]["service"], "data-host");
    assert_eq!(down["data"]["mode"], "host");
    assert_eq!(down["data"]["previous"], true);
    assert_eq!(down["data"]["instances_up"], 0);
    assert!(down["data"]["reason"].is_string(), "{down}");
}

#[tokio::test]
async fn a_bad_correlation_id_is_refused_naming_the_header_and_starts_nothing() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    for bad in ["has space", &"x".repeat(129)] {
        for (path, body) in [
            (
                "data/load",
                json!({"symbol": "MSFT", "timeframe": "1d", "mode": "local"}),
            ),
            (
                "trainings/start",
                json!({"strategy_yaml": crate::support::strategy_yaml(1)}),
            ),
        ] {
            let response = http()
                .post(format!("{}/api/v1/{path}", gw.base))
                .header("X-Correlation-ID", bad)
                .json(&body)
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 400, "{path}");
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(
                body["error"]["details"]["field"], "X-Correlation-ID",
                "{body}"
            );
        }
    }
    let (_, ops) = get(&http(), &format!("{}/api/v1/operations", gw.base)).await;
    assert_eq!(ops["total_count"], 0, "{ops}");
}

/// The Kafka sink's figures from `/api/v1/health`.
async fn kafka_sink(base: &str) -> Value {
    let (_, health) = get(&http(), &format!("{base}/api/v1/health")).await;
    health["events"]["sinks"]["kafka"].clone()
}

/// Polls the Kafka sink's figures until `check` accepts them (bounded: 600 polls).
async fn wait_sink(base: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut sink = Value::Null;
    for _ in 0..600 {
        sink = kafka_sink(base).await;
        if check(&sink) {
            return sink;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the kafka sink never reached {what}: {sink}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_gone_requests_answer_drops_are_counted_and_events_flow_again_after() {
    let Some(mut broker) = crate::support::OwnBroker::start().await else {
        return;
    };
    let config = KafkaConfig::new(broker.address().as_str());
    let dirs = Dirs::sample().with_ib().await;
    // Shorter than the gateway's 5 s / 10 s, so the outage shows sooner.
    let producer = ProducerSettings {
        flush_timeout: Duration::from_secs(2),
        message_timeout_ms: 3000,
        ..ProducerSettings::default()
    };
    let settings = kafka_gateway(&dirs, &config, producer, "hostbridge.events");
    let (gw, _) = gateway(settings).await;
    let id = start_local_load(&gw.base).await;
    crate::support::wait_terminal(&http(), &gw.base, &id).await;
    let before = wait_sink(&gw.base, "delivered", |s| {
        s["connected"] == true && s["delivered"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(before["dropped"], 0);

    // The broker goes away. Every request still answers, every load still completes.
    broker.cut();
    let mut dropped = 0;
    for round in 0..2 {
        for _ in 0..5 {
            let id = start_local_load(&gw.base).await;
            let op = crate::support::wait_terminal(&http(), &gw.base, &id).await;
            assert_eq!(op["status"], "completed");
        }
        // What could not be delivered is dropped and counted, and health says why.
        let sink = wait_sink(&gw.base, "more drops", |s| {
            s["connected"] == false && s["dropped"].as_u64() > Some(dropped)
        })
        .await;
        assert!(sink["last_error"].is_string(), "{sink}");
        dropped = sink["dropped"].as_u64().expect("dropped");
        let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
        assert_eq!(health["status"], "degraded", "round {round}: {health}");
    }
    let metrics = crate::support::text(&format!("{}/metrics", gw.base)).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hostbridge_events_dropped_total{sink=\"kafka\"}")),
        "{metrics}"
    );

    // It comes back: without a restart of the gateway, new events are delivered.
    broker.restore().await;
    // Loads go on meanwhile (librdkafka reconnects with backoff, and a producer the
    // broker no longer accepts is replaced on the next flush): until one load's events
    // are delivered, bounded.
    let delivered = kafka_sink(&gw.base).await["delivered"]
        .as_u64()
        .expect("delivered");
    let mut after = Value::Null;
    for _ in 0..60 {
        let id = start_local_load(&gw.base).await;
        crate::support::wait_terminal(&http(), &gw.base, &id).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = kafka_sink(&gw.base).await;
        if after["connected"] == true && after["delivered"].as_u64() >= Some(delivered + 3) {
            break;
        }
    }
    assert!(
        after["delivered"].as_u64() >= Some(delivered + 3),
        "events never flowed again: {after}"
    );
    let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(health["status"], "healthy", "{health} {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_unreachable_at_start_up_degrades_health_and_publishing_starts_when_it_comes() {
    let Some(mut broker) = crate::support::OwnBroker::start_cut().await else {
        return;
    };
    let dirs = Dirs::sample().with_ib().await;
    let producer = ProducerSettings {
        flush_timeout: Duration::from_secs(2),
        message_timeout_ms: 3000,
        ..ProducerSettings::default()
    };
    let config = KafkaConfig::new(broker.address().as_str());
    let (gw, _) = gateway(kafka_gateway(&dirs, &config, producer, "hostbridge.events")).await;
    // Up and answering, the sink down and saying so.
    let sink = wait_sink(&gw.base, "down", |s| s["connected"] == false).await;
    assert!(
        sink["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&broker.address())),
        "the error names the address: {sink}"
    );
    let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(health["status"], "degraded", "{health}");

    broker.restore().await;
    let mut after = Value::Null;
    for _ in 0..60 {
        let id = start_local_load(&gw.base).await;
        crate::support::wait_terminal(&http(), &gw.base, &id).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = kafka_sink(&gw.base).await;
        if after["connected"] == true && after["delivered"].as_u64() >= Some(3) {
            break;
        }
    }
    assert!(
        after["delivered"].as_u64() >= Some(3),
        "never published: {after}"
    );
    let (_, health) = get(&http(), &format!("{}/api/v1/health", gw.base)).await;
    assert_eq!(health["status"], "healthy", "{health}");
}
