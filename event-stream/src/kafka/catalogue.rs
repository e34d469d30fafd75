//! The topic catalogue of DESIGN.md ("Event layer") in code, and [`setup`], which
//! applies it: what `hostbridge topics setup` runs.
//!
//! | topic                     | partitions | retention | key                 |
//! |---------------------------|-----------:|----------:|---------------------|
//! | `hostbridge.events`       | 6          | 7 d       | subject             |
//! | `hostbridge.commands`     | 3          | 1 d       | subject             |
//! | `hostbridge.commands.dlq` | 1          | 30 d      | the failed message's |
//! | `hostbridge.market-data`  | 8          | 24 h      | symbol              |
//!
//! Names are parameters ([`Catalogue::new`]) because deployments rename the events and
//! commands topics (`KAFKA_EVENTS_TOPIC`, `KAFKA_COMMANDS_TOPIC`) and tests share one
//! broker. Setup creates what is missing and only *reports* a topic whose partitions or
//! retention differ: shrinking partitions is impossible and growing them reshuffles
//! keys, and shortening retention deletes data — decisions for an operator, not a
//! start-up script.

use std::time::Duration;

use serde::Serialize;

use super::admin::{KafkaAdmin, TopicCreation, TopicInfo};
use crate::error::StreamError;

/// The variable naming the events topic.
pub const ENV_EVENTS_TOPIC: &str = "KAFKA_EVENTS_TOPIC";
/// The variable naming the commands topic (its dead letters go to `{name}.dlq`).
pub const ENV_COMMANDS_TOPIC: &str = "KAFKA_COMMANDS_TOPIC";
/// The events topic's default name.
pub const EVENTS_TOPIC: &str = "hostbridge.events";
/// The commands topic's default name.
pub const COMMANDS_TOPIC: &str = "hostbridge.commands";
/// The market-data topic (bars keyed by symbol).
pub const MARKET_DATA_TOPIC: &str = "hostbridge.market-data";
/// The topic config key holding retention in milliseconds.
pub const RETENTION_MS: &str = "retention.ms";

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// One topic as the catalogue wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: String,
    /// How many partitions.
    pub partitions: i32,
    /// How long messages are kept (`retention.ms`).
    #[serde(rename = "retention_ms", serialize_with = "as_millis")]
    pub retention: Duration,
    /// What the messages are keyed by.
    pub key: &'static str,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl TopicSpec {
    fn new(
        name: impl Into<String>,
        partitions: i32,
        retention: Duration,
        key: &'static str,
    ) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            retention,
            key,
        }
    }

    /// `retention.ms` as the broker takes it.
    pub fn retention_ms(&self) -> String {
        self.retention.as_millis().to_string()
    }

    /// How `info` differs from this spec (empty: it matches).
    pub fn compare(&self, info: &TopicInfo) -> Vec<Difference> {
        let mut differences = Vec::new();
        let wanted = usize::try_from(self.partitions).unwrap_or(0);
        if info.partitions != wanted {
            differences.push(Difference {
                what: Setting::Partitions,
                expected: self.partitions.to_string(),
                actual: info.partitions.to_string(),
            });
        }
        let retention = info.configs.get(RETENTION_MS);
        let same = retention
            .and_then(|ms| ms.trim().parse::<u128>().ok())
            .is_some_and(|ms| ms == self.retention.as_millis());
        if !same {
            differences.push(Difference {
                what: Setting::Retention,
                expected: format_retention_ms(&self.retention_ms()),
                actual: retention.map_or_else(
                    || "not reported by the broker".to_owned(),
                    |ms| format_retention_ms(ms),
                ),
            });
        }
        differences
    }

    /// [`TopicStatus::Ok`] when `info` matches, else what differs.
    pub fn status(&self, info: &TopicInfo) -> TopicStatus {
        let differences = self.compare(info);
        if differences.is_empty() {
            TopicStatus::Ok
        } else {
            TopicStatus::Differs { differences }
        }
    }
}

/// The topics of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    topics: Vec<TopicSpec>,
}

impl Default for Catalogue {
    /// The design's names.
    fn default() -> Self {
        Catalogue::new(EVENTS_TOPIC, COMMANDS_TOPIC, MARKET_DATA_TOPIC)
    }
}

impl Catalogue {
    /// The catalogue with these names; the dead letters go to `{commands}.dlq`.
    pub fn new(events: &str, commands: &str, market_data: &str) -> Self {
        Catalogue {
            topics: vec![
                TopicSpec::new(events, 6, 7 * DAY, "subject"),
                TopicSpec::new(commands, 3, DAY, "subject"),
                TopicSpec::new(dlq_topic(commands), 1, 30 * DAY, "the failed message's key"),
                TopicSpec::new(market_data, 8, 24 * HOUR, "symbol"),
            ],
        }
    }

    /// Every topic, in the order above.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    /// The spec of `name`, if the catalogue has it.
    pub fn get(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A setting [`setup`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// The partition count.
    Partitions,
    /// `retention.ms`.
    Retention,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Setting::Partitions => "partitions",
            Setting::Retention => "retention",
        })
    }
}

/// One setting of an existing topic that is not what the catalogue says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Which setting.
    pub what: Setting,
    /// The catalogue's value.
    pub expected: String,
    /// The cluster's.
    pub actual: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (catalogue: {})",
            self.what, self.actual, self.expected
        )
    }
}

/// What [`setup`] did with one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TopicStatus {
    /// It was missing and was created.
    Created,
    /// It exists as the catalogue says.
    Ok,
    /// It exists with other settings; they were left as they are.
    Differs {
        /// What differs.
        differences: Vec<Difference>,
    },
}

/// One line of a [`SetupReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    /// The catalogue's spec.
    #[serde(flatten)]
    pub spec: TopicSpec,
    /// The outcome.
    #[serde(flatten)]
    pub status: TopicStatus,
}

/// What [`setup`] did, one entry per catalogue topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupReport {
    /// In catalogue order.
    pub topics: Vec<TopicReport>,
}

impl SetupReport {
    /// The topics whose settings differ from the catalogue.
    pub fn differing(&self) -> impl Iterator<Item = &TopicReport> {
        self.topics
            .iter()
            .filter(|t| matches!(t.status, TopicStatus::Differs { .. }))
    }
}

/// Creates every topic of `catalogue` that is missing (with `replication` replicas) and
/// compares the others; never changes an existing topic.
pub async fn setup(
    admin: &KafkaAdmin,
    catalogue: &Catalogue,
    replication: i32,
) -> Result<SetupReport, StreamError> {
    let mut topics = Vec::with_capacity(catalogue.topics().len());
    for spec in catalogue.topics() {
        let status = ensure(admin, spec, replication).await?;
        topics.push(TopicReport {
            spec: spec.clone(),
            status,
        });
    }
    Ok(SetupReport { topics })
}

/// Creates the topic of `spec` when it is missing, else compares it; never changes an
/// existing topic.
pub async fn ensure(
    admin: &KafkaAdmin,
    spec: &TopicSpec,
    replication: i32,
) -> Result<TopicStatus, StreamError> {
    if let Some(info) = admin.describe_topic(&spec.name).await? {
        return Ok(spec.status(&info));
    }
    let retention = spec.retention_ms();
    let config = [(RETENTION_MS, retention.as_str())];
    match admin
        .create_topic(&spec.name, spec.partitions, replication, &config)
        .await?
    {
        TopicCreation::Created => Ok(TopicStatus::Created),
        // Created by someone else since we looked: judge what they made.
        TopicCreation::AlreadyExisted => Ok(match admin.describe_topic(&spec.name).await? {
            Some(info) => spec.status(&info),
            None => TopicStatus::Created,
        }),
    }
}

/// A `retention.ms` value for people: `7 d`, `12 h`, `90 min`, `-1` as `forever`; a
/// value that is not a number is shown as it came.
pub fn format_retention_ms(ms: &str) -> String {
    let Ok(ms) = ms.trim().parse::<i64>() else {
        return ms.to_owned();
    };
    let Ok(ms) = u64::try_from(ms) else {
        return "forever".to_owned();
    };
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| ms != 0 && ms % unit == 0)
        .map_or_else(
            || format!("{ms} ms"),
            |(unit, name)| format!("{} {name}", ms / unit),
        )
}

#[cfg(test)]
mod tests;
