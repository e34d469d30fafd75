//! Kafka settings: what every client shares ([`KafkaConfig`]) and what a consumer-group
//! member adds ([`ConsumerSettings`]), and their translation into librdkafka
//! properties. The producer's are [`ProducerSettings`](super::ProducerSettings).
//!
//! Environment parsing takes a lookup closure so it can be tested without touching the
//! process environment; a bad value is a [`StreamError::Config`] naming the variable.

use rdkafka::ClientConfig;

use crate::error::StreamError;

/// `host:port[,host:port…]` of the brokers to bootstrap from.
pub const ENV_BOOTSTRAP_SERVERS: &str = "KAFKA_BOOTSTRAP_SERVERS";

/// Connection settings every Kafka client of this module shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// `client.id`, shown in broker logs and metrics.
    pub client_id: String,
    /// Extra librdkafka properties (security, timeouts…), applied before the settings
    /// this module insists on (idempotence, `acks`, manual commits), which win.
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Settings for `bootstrap_servers` with client id `hostbridge` and no extras.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "hostbridge".to_owned(),
            properties: Vec::new(),
        }
    }

    /// Sets `client.id`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Adds a librdkafka property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Reads [`ENV_BOOTSTRAP_SERVERS`] from the process environment.
    pub fn from_env() -> Result<Self, StreamError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`KafkaConfig::from_env`], with `lookup` standing in for the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StreamError> {
        let servers = non_empty(lookup(ENV_BOOTSTRAP_SERVERS))
            .ok_or_else(|| StreamError::config(ENV_BOOTSTRAP_SERVERS, "is not set"))?;
        check_bootstrap(&servers).map_err(|m| StreamError::config(ENV_BOOTSTRAP_SERVERS, m))?;
        Ok(KafkaConfig::new(servers))
    }

    /// The librdkafka configuration shared by producers, consumers and admin clients.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Where a group with no committed offset starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The oldest retained message (nothing published before the group existed is lost).
    #[default]
    Earliest,
    /// Only messages published after the member joined.
    Latest,
}

/// A consumer-group member's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// `group.id`.
    pub group_id: String,
    /// `auto.offset.reset` (default earliest).
    pub auto_offset_reset: OffsetReset,
    /// `session.timeout.ms` (default 45000, librdkafka's). Brokers that wait a whole
    /// session before completing a join (the tansu test broker) want it small: 6000.
    pub session_timeout_ms: u32,
}

impl ConsumerSettings {
    /// Member of `group_id`, reading from the earliest offset, 45 s sessions.
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerSettings {
            group_id: group_id.into(),
            auto_offset_reset: OffsetReset::Earliest,
            session_timeout_ms: 45_000,
        }
    }

    /// Sets `session.timeout.ms`.
    pub fn with_session_timeout_ms(mut self, ms: u32) -> Self {
        self.session_timeout_ms = ms;
        self
    }

    /// Sets `auto.offset.reset`.
    pub fn with_auto_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }

    /// The consumer's librdkafka configuration; auto-commit and auto-store are off, set
    /// last: only what the caller acknowledged is ever committed.
    pub(crate) fn apply(&self, base: &KafkaConfig) -> Result<ClientConfig, StreamError> {
        if self.group_id.trim().is_empty() {
            return Err(StreamError::config("group.id", "must not be empty"));
        }
        // librdkafka requires heartbeats well inside the session.
        let heartbeat_ms = (self.session_timeout_ms / 3).clamp(1, 3_000);
        let mut config = base.client_config();
        config
            .set("group.id", &self.group_id)
            .set(
                "auto.offset.reset",
                match self.auto_offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            )
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", heartbeat_ms.to_string())
            // A topic created after the subscription (or repartitioned) is found within
            // 10 s, not librdkafka's default 5 min.
            .set("topic.metadata.refresh.interval.ms", "10000")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        Ok(config)
    }
}

/// `None` for an unset or blank value: compose files often pass `VAR=` for "unset".
pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub(super) fn parse_bounded(value: &str, min: u32, max: u32) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a whole number between {min} and {max}"
        )),
    }
}

/// Checks `host:port[,host:port…]` (no scheme, a numeric port on each entry).
fn check_bootstrap(servers: &str) -> Result<(), String> {
    for entry in servers.split(',').map(str::trim) {
        let port = entry
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty() && !host.contains('/'))
            .map(|(_, port)| port);
        if port.and_then(|p| p.parse::<u16>().ok()).is_none() {
            return Err(format!(
                "{entry:?} is not host:port (expected e.g. 127.0.0.1:9092,broker2:9092)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
