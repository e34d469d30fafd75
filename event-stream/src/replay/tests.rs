use std::time::Duration;

use chrono::TimeZone;
use futures::StreamExt;

use super::*;
use crate::codec::{Json, Utf8};
use crate::memory::{MemoryBus, Overflow, TopicConfig};
use crate::typed::{Codecs, TypedWriter};

fn bars(n: i64) -> Vec<MarketBar> {
    (0..n)
        .map(|i| MarketBar {
            symbol: "AAPL".into(),
            timeframe: "1m".into(),
            timestamp: Utc
                .timestamp_opt(1_700_000_000 + 60 * i, 0)
                .single()
                .expect("time"),
            open: 1.0 + i as f64,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 100.0,
        })
        .collect()
}

fn options(speed: Option<f64>) -> ReplayOptions {
    ReplayOptions {
        speed,
        source: "test".into(),
        cancel: CancellationToken::new(),
    }
}

#[tokio::test]
async fn bars_become_keyed_envelopes_in_order() {
    let bus: MemoryBus<String, Envelope> = MemoryBus::new(TopicConfig {
        capacity: 64,
        overflow: Overflow::Wait,
    });
    let mut sub = bus.subscribe("md", CancellationToken::new());
    let stats = replay(bars(5), bus.writer("md"), options(None))
        .await
        .expect("replay");
    assert_eq!(
        stats,
        ReplayStats {
            written: 5,
            cancelled: false
        }
    );
    for i in 0..5 {
        let m = sub.next().await.expect("open").expect("ok");
        assert_eq!(m.key.as_deref(), Some("AAPL"));
        assert_eq!(m.value.event_type, MARKET_BAR);
        let bar: MarketBar = serde_json::from_value(m.value.data).expect("a bar");
        assert_eq!(bar.open, 1.0 + i as f64);
    }
}

#[tokio::test(start_paused = true)]
async fn speed_paces_by_the_bars_clock_and_cancel_stops_between_bars() {
    let bus: MemoryBus<String, Envelope> = MemoryBus::default();
    let _sub = bus.subscribe("md", CancellationToken::new());
    let opts = options(Some(60.0));
    let cancel = opts.cancel.clone();
    let started = tokio::time::Instant::now();
    let task = tokio::spawn(replay(bars(10), bus.writer("md"), opts));
    // 60x: one bar a second of (paused) time. After 3.5 s, four bars are out.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    cancel.cancel();
    let stats = task.await.expect("task").expect("replay");
    assert_eq!(
        stats,
        ReplayStats {
            written: 4,
            cancelled: true
        }
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_bad_speed_names_the_setting() {
    let bus: MemoryBus<String, Envelope> = MemoryBus::default();
    let err = replay(bars(1), bus.writer("md"), options(Some(0.0)))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("speed"), "{err}");
}

#[tokio::test]
async fn tail_prints_and_acks_each_message() {
    let bus: MemoryBus<bytes::Bytes, bytes::Bytes> = MemoryBus::default();
    let sub = bus.subscribe("md", CancellationToken::new());
    let writer = TypedWriter::new(bus.writer("md"), Codecs::new(Utf8, Json));
    replay(bars(3), writer, options(None))
        .await
        .expect("replay");
    drop(bus);
    let mut lines = Vec::new();
    let n = tail(sub, Some(2), |m| {
        lines.push(tail_line(m));
        Ok(())
    })
    .await
    .expect("tail");
    assert_eq!(n, 2);
    assert!(lines[0].starts_with("0/0 AAPL {"), "{}", lines[0]);
    assert!(lines[1].contains("\"market.bar\""), "{}", lines[1]);
}
