use std::collections::HashMap;

use super::*;
use crate::kafka::producer_config::*;
use std::time::Duration;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn bad_setting(result: Result<impl std::fmt::Debug, StreamError>) -> String {
    match result {
        Err(StreamError::Config { setting, .. }) => setting,
        other => panic!("expected a Config error, got {other:?}"),
    }
}

#[test]
fn producer_defaults_when_nothing_is_set() {
    let settings = ProducerSettings::from_lookup(env(&[])).expect("defaults parse");
    assert_eq!(settings, ProducerSettings::default());
    assert_eq!(settings.compression, Compression::Snappy);
    assert_eq!(settings.linger_ms, 10);
    assert_eq!(settings.batch_size, 16_384);
    assert_eq!(settings.flush_timeout, Duration::from_secs(30));
}

#[test]
fn producer_values_are_read_and_blank_means_default() {
    let settings = ProducerSettings::from_lookup(env(&[
        (ENV_COMPRESSION, " LZ4 "),
        (ENV_LINGER_MS, "0"),
        (ENV_BATCH_SIZE, ""),
    ]))
    .expect("valid values parse");
    assert_eq!(settings.compression, Compression::Lz4);
    assert_eq!(settings.linger_ms, 0);
    assert_eq!(settings.batch_size, 16_384);
}

#[test]
fn a_bad_value_names_its_variable() {
    for (var, value) in [
        (ENV_COMPRESSION, "zstd"),
        (ENV_COMPRESSION, "brotli"),
        (ENV_LINGER_MS, "ten"),
        (ENV_LINGER_MS, "-1"),
        (ENV_LINGER_MS, "900001"),
        (ENV_BATCH_SIZE, "0"),
        (ENV_BATCH_SIZE, "3000000000"),
    ] {
        let setting = bad_setting(ProducerSettings::from_lookup(env(&[(var, value)])));
        assert_eq!(setting, var, "value {value:?}");
    }
}

#[test]
fn bootstrap_servers_are_required_and_checked() {
    assert_eq!(
        bad_setting(KafkaConfig::from_lookup(env(&[]))),
        ENV_BOOTSTRAP_SERVERS
    );
    for bad in [
        "localhost",
        "http://broker:9092",
        "a:1,b",
        ":9092",
        "h:port",
    ] {
        assert_eq!(
            bad_setting(KafkaConfig::from_lookup(env(&[(
                ENV_BOOTSTRAP_SERVERS,
                bad
            )]))),
            ENV_BOOTSTRAP_SERVERS,
            "{bad:?}"
        );
    }
    let config = KafkaConfig::from_lookup(env(&[(ENV_BOOTSTRAP_SERVERS, "a:9092, b:9093")]))
        .expect("two brokers parse");
    assert_eq!(config.bootstrap_servers, "a:9092, b:9093");
}

#[test]
fn producer_config_insists_on_idempotence_and_acks_all() {
    let base = KafkaConfig::new("127.0.0.1:9092")
        .with_property("acks", "1")
        .with_property("enable.idempotence", "false");
    let config = ProducerSettings::default()
        .apply(&base)
        .expect("default settings apply");
    assert_eq!(config.get("acks"), Some("all"));
    assert_eq!(config.get("enable.idempotence"), Some("true"));
    assert_eq!(config.get("compression.type"), Some("snappy"));
    assert_eq!(config.get("linger.ms"), Some("10"));
    assert_eq!(config.get("batch.size"), Some("16384"));
}

#[test]
fn consumer_config_turns_auto_commit_off() {
    let base = KafkaConfig::new("127.0.0.1:9092").with_property("enable.auto.commit", "true");
    let config = ConsumerSettings::new("g")
        .with_session_timeout_ms(6_000)
        .apply(&base)
        .expect("settings apply");
    assert_eq!(config.get("enable.auto.commit"), Some("false"));
    assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
    assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
    assert_eq!(config.get("session.timeout.ms"), Some("6000"));
    assert_eq!(config.get("heartbeat.interval.ms"), Some("2000"));
    assert_eq!(
        bad_setting(ConsumerSettings::new(" ").apply(&base)),
        "group.id"
    );
}
