//! Event settings from the environment (DESIGN.md "Event layer"): which sinks
//! (`EVENT_MODE`), the Kafka topic and producer, and the progress throttle. Every error
//! names its variable; start-up stops on one.

use std::time::Duration;

use event_stream::kafka::{KafkaConfig, ProducerSettings};
use host_service_base::config::{ConfigError, Env, EnvSource, parse_enum, parse_in_range};

/// `socketio` (default), `kafka`, `both` or `off`.
pub const EVENT_MODE: &str = "EVENT_MODE";
/// Kafka brokers, required by `kafka` and `both`.
pub const KAFKA_BOOTSTRAP_SERVERS: &str = "KAFKA_BOOTSTRAP_SERVERS";
/// The events topic (default `hostbridge.events`).
pub const KAFKA_EVENTS_TOPIC: &str = event_stream::kafka::catalogue::ENV_EVENTS_TOPIC;
/// Progress events per second and operation at most (default 4).
pub const EVENT_PROGRESS_PER_SECOND: &str = "EVENT_PROGRESS_PER_SECOND";

/// Every variable the event settings read (the compose file's checks use it).
pub const ENV_VARS: [&str; 7] = [
    EVENT_MODE,
    KAFKA_BOOTSTRAP_SERVERS,
    KAFKA_EVENTS_TOPIC,
    EVENT_PROGRESS_PER_SECOND,
    event_stream::kafka::ENV_COMPRESSION,
    event_stream::kafka::ENV_LINGER_MS,
    event_stream::kafka::ENV_BATCH_SIZE,
];

/// The events topic of the catalogue.
pub const DEFAULT_EVENTS_TOPIC: &str = event_stream::kafka::catalogue::EVENTS_TOPIC;

/// Which sinks publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode {
    /// Socket.IO on the gateway's port (the default).
    SocketIo,
    /// The Kafka events topic.
    Kafka,
    /// Both.
    Both,
    /// Neither (SSE at `/api/v1/events` still streams).
    Off,
}

impl EventMode {
    /// The lowercase name `/api/v1/health` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SocketIo => "socketio",
            Self::Kafka => "kafka",
            Self::Both => "both",
            Self::Off => "off",
        }
    }

    /// Whether the Kafka sink runs.
    pub fn kafka(self) -> bool {
        matches!(self, Self::Kafka | Self::Both)
    }

    /// Whether the Socket.IO sink runs.
    pub fn socketio(self) -> bool {
        matches!(self, Self::SocketIo | Self::Both)
    }
}

/// The Kafka sink's settings.
#[derive(Debug, Clone)]
pub struct KafkaSinkSettings {
    /// Brokers and client id.
    pub config: KafkaConfig,
    /// Batching, compression, deadlines.
    pub producer: ProducerSettings,
    /// The events topic.
    pub topic: String,
}

/// Everything the gateway's event publisher is built from.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Which sinks publish.
    pub mode: EventMode,
    /// The Kafka sink (`Some` exactly when the mode includes Kafka).
    pub kafka: Option<KafkaSinkSettings>,
    /// Shortest gap between two progress events of one operation.
    pub progress_interval: Duration,
    /// Events a sink (or an SSE client) may fall behind before the oldest are dropped.
    pub sink_buffer: usize,
}

impl Default for EventSettings {
    /// Socket.IO mode, 4 progress events a second, 4096 buffered per sink.
    fn default() -> Self {
        Self {
            mode: EventMode::SocketIo,
            kafka: None,
            progress_interval: Duration::from_millis(250),
            sink_buffer: 4096,
        }
    }
}

impl EventSettings {
    /// No sinks (SSE only): what tests that do not look at events use.
    pub fn off() -> Self {
        Self {
            mode: EventMode::Off,
            ..Self::default()
        }
    }

    /// Reads the variables; every error names the variable.
    pub fn from_env<S: EnvSource>(env: &Env<S>) -> Result<Self, ConfigError> {
        let mode = env.or(EVENT_MODE, EventMode::SocketIo, |var, value| {
            parse_enum(
                var,
                value,
                &[
                    ("socketio", EventMode::SocketIo),
                    ("kafka", EventMode::Kafka),
                    ("both", EventMode::Both),
                    ("off", EventMode::Off),
                ],
            )
        })?;
        let per_second = env.or(EVENT_PROGRESS_PER_SECOND, 4u32, |var, value| {
            parse_in_range(var, value, 1..=1000)
        })?;
        // Read (and so validated) in every mode: a typo is caught before Kafka is on.
        let lookup = |name: &str| env.raw(name).ok().flatten();
        let producer = ProducerSettings::from_lookup(lookup).map_err(|e| match e {
            event_stream::StreamError::Config { setting, message } => {
                let value = env.raw(&setting).ok().flatten().unwrap_or_default();
                ConfigError::invalid(&setting, &value, message)
            }
            other => ConfigError::invalid("KAFKA_PRODUCER_*", "", other.to_string()),
        })?;
        let kafka = if mode.kafka() {
            let servers =
                env.raw(KAFKA_BOOTSTRAP_SERVERS)?
                    .ok_or_else(|| ConfigError::Missing {
                        var: format!(
                            "{KAFKA_BOOTSTRAP_SERVERS} (EVENT_MODE={} publishes to Kafka)",
                            mode.as_str()
                        ),
                    })?;
            let config = KafkaConfig::from_lookup(|name| {
                (name == KAFKA_BOOTSTRAP_SERVERS).then(|| servers.clone())
            })
            .map_err(|e| ConfigError::invalid(KAFKA_BOOTSTRAP_SERVERS, &servers, e.to_string()))?
            .with_client_id("hostbridge-gateway");
            let topic = env
                .raw(KAFKA_EVENTS_TOPIC)?
                .unwrap_or_else(|| DEFAULT_EVENTS_TOPIC.to_owned());
            Some(KafkaSinkSettings {
                config,
                producer: ProducerSettings {
                    // A sink never waits long on a broker: what does not fit is dropped
                    // and counted, and the next flush says whether the broker is back.
                    flush_timeout: Duration::from_secs(5),
                    message_timeout_ms: 10_000,
                    ..producer
                },
                topic,
            })
        } else {
            None
        };
        Ok(Self {
            mode,
            kafka,
            progress_interval: Duration::from_secs(1) / per_second,
            ..Self::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use host_service_base::config::MapEnv;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<EventSettings, ConfigError> {
        EventSettings::from_env(&Env::new(vars.iter().copied().collect::<MapEnv>()))
    }

    #[test]
    fn defaults_to_socketio_at_four_per_second() {
        let s = read(&[]).expect("defaults");
        assert_eq!(s.mode, EventMode::SocketIo);
        assert!(s.kafka.is_none());
        assert_eq!(s.progress_interval, Duration::from_millis(250));
    }

    #[test]
    fn modes_are_case_insensitive_and_kafka_needs_brokers() {
        let s = read(&[
            ("EVENT_MODE", "BOTH"),
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        ])
        .expect("both");
        assert_eq!(s.mode, EventMode::Both);
        let kafka = s.kafka.expect("kafka settings");
        assert_eq!(kafka.topic, DEFAULT_EVENTS_TOPIC);
        let s = read(&[
            ("EVENT_MODE", "kafka"),
            ("KAFKA_BOOTSTRAP_SERVERS", "b1:9092,b2:9092"),
            ("KAFKA_EVENTS_TOPIC", "my.events"),
        ])
        .expect("kafka");
        assert_eq!(s.kafka.expect("kafka").topic, "my.events");
        assert_eq!(
            read(&[("EVENT_MODE", "Off")]).expect("off").mode,
            EventMode::Off
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        for (vars, name) in [
            (vec![("EVENT_MODE", "carrier-pigeon")], "EVENT_MODE"),
            (vec![("EVENT_MODE", "kafka")], "KAFKA_BOOTSTRAP_SERVERS"),
            (vec![("EVENT_MODE", "both")], "KAFKA_BOOTSTRAP_SERVERS"),
            (
                vec![
                    ("EVENT_MODE", "kafka"),
                    ("KAFKA_BOOTSTRAP_SERVERS", "no-port"),
                ],
                "KAFKA_BOOTSTRAP_SERVERS",
            ),
            (
                vec![("KAFKA_PRODUCER_LINGER_MS", "soon")],
                "KAFKA_PRODUCER_LINGER_MS",
            ),
            (
                vec![("KAFKA_PRODUCER_COMPRESSION", "zip")],
                "KAFKA_PRODUCER_COMPRESSION",
            ),
            (
                vec![("EVENT_PROGRESS_PER_SECOND", "0")],
                "EVENT_PROGRESS_PER_SECOND",
            ),
        ] {
            let err = read(&vars).expect_err(name).to_string();
            assert!(err.contains(name), "{vars:?}: {err}");
        }
    }
}
