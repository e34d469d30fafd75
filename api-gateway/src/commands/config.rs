//! The commands consumer's settings from the environment (DESIGN.md "Event layer":
//! commands in). It runs when `KAFKA_COMMANDS_TOPIC` is set; every error names its
//! variable and stops start-up.

use std::time::Duration;

use event_stream::kafka::{KafkaConfig, ProducerSettings};
use event_stream::stream::{RetryPolicy, StoreFailure};
use host_service_base::config::{ConfigError, Env, EnvSource, parse_in_range};

use crate::events::config::KAFKA_BOOTSTRAP_SERVERS;

/// The commands topic; set, the gateway consumes it.
pub const KAFKA_COMMANDS_TOPIC: &str = event_stream::kafka::catalogue::ENV_COMMANDS_TOPIC;
/// The consumer group (default `hostbridge-gateway`).
pub const KAFKA_CONSUMER_GROUP: &str = "KAFKA_CONSUMER_GROUP";
/// The consumer's `session.timeout.ms` (default 10000; the tansu test broker completes
/// a join only after one, so tests use 6000).
pub const KAFKA_SESSION_TIMEOUT_MS: &str = "KAFKA_SESSION_TIMEOUT_MS";
/// The shared dedup store (`redis://host:port/db`); without it, a local LRU alone.
pub const REDIS_URL: &str = "REDIS_URL";
/// `open` (default: handle the command) or `closed` (wait for Redis) when Redis fails.
pub const REDIS_DEDUP_ON_FAILURE: &str = "REDIS_DEDUP_ON_FAILURE";
/// Handler calls per command before a transient failure is dead-lettered (default 5).
pub const COMMANDS_MAX_ATTEMPTS: &str = "COMMANDS_MAX_ATTEMPTS";
/// The first retry delay in ms, doubling each time up to 10x (default 500).
pub const COMMANDS_RETRY_INITIAL_MS: &str = "COMMANDS_RETRY_INITIAL_MS";
/// Commands handled at once (default 4).
pub const COMMANDS_CONCURRENCY: &str = "COMMANDS_CONCURRENCY";

/// Every variable the commands settings read.
pub const ENV_VARS: [&str; 8] = [
    KAFKA_COMMANDS_TOPIC,
    KAFKA_CONSUMER_GROUP,
    KAFKA_SESSION_TIMEOUT_MS,
    REDIS_URL,
    REDIS_DEDUP_ON_FAILURE,
    COMMANDS_MAX_ATTEMPTS,
    COMMANDS_RETRY_INITIAL_MS,
    COMMANDS_CONCURRENCY,
];

/// The default consumer group.
pub const DEFAULT_GROUP: &str = "hostbridge-gateway";

/// Everything the commands consumer is built from.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    /// Brokers.
    pub kafka: KafkaConfig,
    /// The dead-letter producer's settings.
    pub producer: ProducerSettings,
    /// The commands topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// `session.timeout.ms`.
    pub session_timeout_ms: u32,
    /// Redis, if shared dedup is wanted.
    pub redis_url: Option<String>,
    /// What a Redis failure means.
    pub on_store_failure: StoreFailure,
    /// Retries of transient failures (a host that is down).
    pub retry: RetryPolicy,
    /// Commands handled at once.
    pub concurrency: usize,
}

impl CommandSettings {
    /// Settings for `topic` on `kafka`, with the defaults.
    pub fn new(kafka: KafkaConfig, topic: impl Into<String>) -> Self {
        Self {
            kafka,
            producer: ProducerSettings::default(),
            topic: topic.into(),
            group: DEFAULT_GROUP.to_owned(),
            session_timeout_ms: 10_000,
            redis_url: None,
            on_store_failure: StoreFailure::Open,
            retry: retry(5, 500),
            concurrency: 4,
        }
    }

    /// `None` without `KAFKA_COMMANDS_TOPIC`; the settings, or the variable that is
    /// wrong.
    pub fn from_env<S: EnvSource>(env: &Env<S>) -> Result<Option<Self>, ConfigError> {
        let Some(topic) = env.raw(KAFKA_COMMANDS_TOPIC)? else {
            return Ok(None);
        };
        let servers = env
            .raw(KAFKA_BOOTSTRAP_SERVERS)?
            .ok_or_else(|| ConfigError::Missing {
                var: format!("{KAFKA_BOOTSTRAP_SERVERS} ({KAFKA_COMMANDS_TOPIC} is set)"),
            })?;
        let kafka = KafkaConfig::from_lookup(|name| {
            (name == KAFKA_BOOTSTRAP_SERVERS).then(|| servers.clone())
        })
        .map_err(|e| ConfigError::invalid(KAFKA_BOOTSTRAP_SERVERS, &servers, e.to_string()))?
        .with_client_id("hostbridge-gateway-commands");
        let mut settings = Self::new(kafka, topic.trim());
        if settings.topic.is_empty() {
            return Err(ConfigError::invalid(
                KAFKA_COMMANDS_TOPIC,
                &topic,
                "a topic name",
            ));
        }
        if let Some(group) = env.raw(KAFKA_CONSUMER_GROUP)? {
            settings.group = group.trim().to_owned();
        }
        settings.session_timeout_ms = env.or(KAFKA_SESSION_TIMEOUT_MS, 10_000u32, |var, v| {
            parse_in_range(var, v, 1_000..=300_000)
        })?;
        if let Some(url) = env.raw(REDIS_URL)? {
            // Parsed now so a typo stops start-up; connecting happens on first use.
            event_stream::stream::RedisStore::new(&url)
                .map_err(|e| ConfigError::invalid(REDIS_URL, "(hidden)", e.message))?;
            settings.redis_url = Some(url);
        }
        settings.on_store_failure =
            env.or(REDIS_DEDUP_ON_FAILURE, StoreFailure::Open, |var, v| {
                v.parse()
                    .map_err(|e: String| ConfigError::invalid(var, v, e))
            })?;
        let attempts = env.or(COMMANDS_MAX_ATTEMPTS, 5u32, |var, v| {
            parse_in_range(var, v, 1..=100)
        })?;
        let initial_ms = env.or(COMMANDS_RETRY_INITIAL_MS, 500u64, |var, v| {
            parse_in_range(var, v, 1..=60_000)
        })?;
        settings.retry = retry(attempts, initial_ms);
        settings.concurrency = env.or(COMMANDS_CONCURRENCY, 4usize, |var, v| {
            parse_in_range(var, v, 1..=64)
        })?;
        Ok(Some(settings))
    }
}

fn retry(max_attempts: u32, initial_ms: u64) -> RetryPolicy {
    let initial_delay = Duration::from_millis(initial_ms);
    RetryPolicy {
        max_attempts,
        initial_delay,
        max_delay: initial_delay * 10,
        jitter: true,
    }
}

#[cfg(test)]
mod tests {
    use host_service_base::config::MapEnv;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<CommandSettings>, ConfigError> {
        CommandSettings::from_env(&Env::new(vars.iter().copied().collect::<MapEnv>()))
    }

    #[test]
    fn off_without_a_topic_and_defaults_with_one() {
        assert!(read(&[]).expect("off").is_none());
        let s = read(&[
            ("KAFKA_COMMANDS_TOPIC", "hostbridge.commands"),
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        ])
        .expect("settings")
        .expect("on");
        assert_eq!(s.topic, "hostbridge.commands");
        assert_eq!(s.group, "hostbridge-gateway");
        assert_eq!(s.redis_url, None);
        assert_eq!(s.on_store_failure, StoreFailure::Open);
        assert_eq!(s.retry.max_attempts, 5);
        assert_eq!(s.concurrency, 4);
    }

    #[test]
    fn every_bad_setting_names_its_variable() {
        let base = [
            ("KAFKA_COMMANDS_TOPIC", "c"),
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        ];
        for (extra, name) in [
            (("REDIS_URL", "http://[::1"), "REDIS_URL"),
            (
                ("REDIS_DEDUP_ON_FAILURE", "maybe"),
                "REDIS_DEDUP_ON_FAILURE",
            ),
            (("COMMANDS_MAX_ATTEMPTS", "0"), "COMMANDS_MAX_ATTEMPTS"),
            (
                ("COMMANDS_RETRY_INITIAL_MS", "soon"),
                "COMMANDS_RETRY_INITIAL_MS",
            ),
            (("COMMANDS_CONCURRENCY", "1000"), "COMMANDS_CONCURRENCY"),
            (
                ("KAFKA_SESSION_TIMEOUT_MS", "5"),
                "KAFKA_SESSION_TIMEOUT_MS",
            ),
        ] {
            let mut vars = base.to_vec();
            vars.push(extra);
            let error = read(&vars).expect_err(name).to_string();
            assert!(error.contains(name), "{error}");
        }
        let error = read(&[("KAFKA_COMMANDS_TOPIC", "c")])
            .expect_err("brokers")
            .to_string();
        assert!(error.contains("KAFKA_BOOTSTRAP_SERVERS"), "{error}");
        // A password in REDIS_URL never reaches the message.
        let error = read(&[
            ("KAFKA_COMMANDS_TOPIC", "c"),
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            ("REDIS_URL", "http://:hunter2@[::1"),
        ])
        .expect_err("bad url")
        .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
