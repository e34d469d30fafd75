//! [`KafkaAdmin`]: topic creation and description, and a consumer group's lag — what
//! `hostbridge topics setup|list|describe|lag` is built on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::config::KafkaConfig;
use super::context::{TracingContext, join_error, kafka_error};
use crate::error::StreamError;

/// What [`KafkaAdmin::create_topic`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCreation {
    /// The topic was created.
    Created,
    /// A topic of that name already existed (its settings were left as they are).
    AlreadyExisted,
}

/// A topic as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// How many partitions.
    pub partitions: usize,
    /// Replicas of partition 0 (the replication factor).
    pub replication: usize,
    /// Topic configuration (`retention.ms`, `cleanup.policy`…) as the broker reports it.
    pub configs: BTreeMap<String, String>,
}

/// How far a group is behind on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (the next message it will read), if it has one.
    pub committed: Option<i64>,
    /// The partition's end offset (high watermark).
    pub end: i64,
    /// Messages not yet consumed: `end - committed`, or `end - start` with no commit.
    pub lag: i64,
}

/// Administrative calls against one cluster.
pub struct KafkaAdmin {
    client: Arc<AdminClient<TracingContext>>,
    config: KafkaConfig,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAdmin")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl KafkaAdmin {
    /// An admin client; each call waits at most 30 s (see [`KafkaAdmin::with_timeout`]).
    pub fn new(config: &KafkaConfig) -> Result<Self, StreamError> {
        let client = AdminClient::from_config_and_context(&config.client_config(), TracingContext)
            .map_err(|e| kafka_error("creating the admin client", e))?;
        Ok(KafkaAdmin {
            client: Arc::new(client),
            config: config.clone(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Sets how long each call waits for the cluster.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new().request_timeout(Some(self.timeout))
    }

    /// Creates `name` unless it exists. An existing topic is success
    /// ([`TopicCreation::AlreadyExisted`]) and is not changed; compare it with
    /// [`KafkaAdmin::describe_topic`].
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        config: &[(&str, &str)],
    ) -> Result<TopicCreation, StreamError> {
        let topic = config.iter().fold(
            NewTopic::new(name, partitions, TopicReplication::Fixed(replication)),
            |topic, (key, value)| topic.set(key, value),
        );
        let results = self
            .client
            .create_topics([&topic], &self.options())
            .await
            .map_err(|e| kafka_error(&format!("creating topic {name}"), e))?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(TopicCreation::Created),
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                Ok(TopicCreation::AlreadyExisted)
            }
            Some(Err((_, code))) => Err(StreamError::transport(
                "kafka",
                format!("creating topic {name}: {code}"),
            )),
            None => Err(StreamError::transport(
                "kafka",
                format!("creating topic {name}: the broker returned no result"),
            )),
        }
    }

    /// Partitions, replication and configuration of `name`; `None` if it does not exist.
    pub async fn describe_topic(&self, name: &str) -> Result<Option<TopicInfo>, StreamError> {
        Ok(self.describe_topics(&[name]).await?.into_iter().next())
    }

    /// [`KafkaAdmin::describe_topic`] of each of `names` that exists, in the order
    /// given: one metadata and one configuration request for all of them.
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<TopicInfo>, StreamError> {
        let metadata = self.metadata().await?;
        let mut infos = Vec::with_capacity(names.len());
        for &name in names {
            let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
                continue;
            };
            if topic.error().is_some() || topic.partitions().is_empty() {
                continue;
            }
            let replication = topic
                .partitions()
                .iter()
                .find(|p| p.id() == 0)
                .map_or(0, |p| p.replicas().len());
            infos.push(TopicInfo {
                name: name.to_owned(),
                partitions: topic.partitions().len(),
                replication,
                configs: BTreeMap::new(),
            });
        }
        if infos.is_empty() {
            return Ok(infos);
        }
        let resources: Vec<ResourceSpecifier<'_>> = infos
            .iter()
            .map(|i| ResourceSpecifier::Topic(&i.name))
            .collect();
        let described = self
            .client
            .describe_configs(&resources, &self.options())
            .await
            .map_err(|e| kafka_error("describing topics", e))?;
        for resource in described {
            let resource = resource.map_err(|code| {
                StreamError::transport("kafka", format!("describing topics: {code}"))
            })?;
            let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                continue;
            };
            if let Some(info) = infos.iter_mut().find(|i| &i.name == name) {
                info.configs.extend(
                    resource
                        .entries
                        .into_iter()
                        .filter_map(|entry| entry.value.map(|value| (entry.name, value))),
                );
            }
        }
        Ok(infos)
    }

    /// Every topic's name except internal ones (`__consumer_offsets`…), sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>, StreamError> {
        let mut names: Vec<String> = self
            .metadata()
            .await?
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|n| !n.starts_with("__"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The cluster's metadata for all topics. Asking for one topic by name could create
    /// it on brokers that auto-create; asking for all never does.
    async fn metadata(&self) -> Result<Metadata, StreamError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || client.inner().fetch_metadata(None, timeout))
            .await
            .map_err(|e| join_error("metadata", e))?
            .map_err(|e| kafka_error("fetching metadata", e))
    }

    /// Committed offset, end offset and lag of `group` on every partition of `topics`;
    /// with no topics, of every topic the group has committed an offset on.
    pub async fn group_lag(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Vec<PartitionLag>, StreamError> {
        let mut config = self.config.client_config();
        // A member that never subscribes: it only asks the group's coordinator for the
        // committed offsets, so the group itself is not disturbed.
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        let topics: Vec<String> = topics.iter().map(|&t| t.to_owned()).collect();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let consumer = BaseConsumer::from_config_and_context(&config, TracingContext)
                .map_err(|e| kafka_error("creating the lag consumer", e))?;
            lag_of(&consumer, &topics, timeout)
        })
        .await
        .map_err(|e| join_error("group lag", e))?
    }
}

fn lag_of(
    consumer: &BaseConsumer<TracingContext>,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<PartitionLag>, StreamError> {
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| kafka_error("fetching metadata", e))?;
    // Without names, ask about every topic and keep those the group committed on:
    // librdkafka's consumer cannot list a group's topics directly.
    let every_topic = topics.is_empty();
    let names: Vec<&str> = if every_topic {
        metadata
            .topics()
            .iter()
            .map(|t| t.name())
            .filter(|n| !n.starts_with("__"))
            .collect()
    } else {
        topics.iter().map(String::as_str).collect()
    };
    let mut wanted = TopicPartitionList::new();
    for name in names {
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| StreamError::config("topics", format!("topic {name} does not exist")))?;
        for partition in topic.partitions() {
            wanted.add_partition(name, partition.id());
        }
    }
    let committed = consumer
        .committed_offsets(wanted, timeout)
        .map_err(|e| kafka_error("reading committed offsets", e))?;
    // Every topic with a commit on any of its partitions, so a listing of all topics
    // fetches end offsets only where the group has been.
    let committed_on: BTreeSet<String> = committed
        .elements()
        .iter()
        .filter(|e| matches!(e.offset(), Offset::Offset(_)))
        .map(|e| e.topic().to_owned())
        .collect();
    let mut lags = Vec::with_capacity(committed.count());
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        if every_topic && !committed_on.contains(topic) {
            continue;
        }
        let (start, end) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| kafka_error(&format!("end offset of {topic}/{partition}"), e))?;
        let committed = match element.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        };
        lags.push(PartitionLag {
            topic: topic.to_owned(),
            partition,
            committed,
            end,
            lag: (end - committed.unwrap_or(start)).max(0),
        });
    }
    lags.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(lags)
}
