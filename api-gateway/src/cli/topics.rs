//! `hostbridge topics setup|list|describe NAME|lag GROUP`: the Kafka topic catalogue
//! of DESIGN.md applied and inspected.
//!
//! The work is event-stream's ([`event_stream::kafka::catalogue`], [`KafkaAdmin`]);
//! this module picks the names (flags, or the gateway's variables), bounds every call
//! with `--timeout` so a dead broker is an error naming its address rather than a
//! hang, and prints a table or, with `--json`, one JSON document.

mod table;

use std::time::Duration;

use clap::Subcommand;
use event_stream::StreamError;
use event_stream::kafka::catalogue::{
    self, COMMANDS_TOPIC, Catalogue, ENV_COMMANDS_TOPIC, ENV_EVENTS_TOPIC, EVENTS_TOPIC,
    MARKET_DATA_TOPIC, TopicStatus,
};
use event_stream::kafka::{KafkaAdmin, TopicInfo};
use serde::Serialize;
use serde_json::json;

use super::stream::{Brokers, StreamCliError};

/// Exit code of a `setup` that found topics unlike the catalogue.
pub const EXIT_DIFFERS: u8 = 3;

/// `hostbridge topics ...`.
#[derive(clap::Args, Debug)]
pub struct TopicsArgs {
    /// Kafka brokers.
    #[command(flatten)]
    pub brokers: Brokers,
    /// Longest wait for the cluster on each call (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub timeout: Duration,
    /// The catalogue's names.
    #[command(flatten)]
    pub names: TopicNames,
    /// What to do.
    #[command(subcommand)]
    pub command: TopicsCommand,
}

/// The names of the catalogue's topics (the dead letters go to `{commands}.dlq`).
#[derive(clap::Args, Debug, Clone)]
pub struct TopicNames {
    /// The events topic.
    #[arg(long, env = ENV_EVENTS_TOPIC, default_value = EVENTS_TOPIC, global = true)]
    pub events_topic: String,
    /// The commands topic.
    #[arg(long, env = ENV_COMMANDS_TOPIC, default_value = COMMANDS_TOPIC, global = true)]
    pub commands_topic: String,
    /// The market-data topic.
    #[arg(long, default_value = MARKET_DATA_TOPIC, global = true)]
    pub market_data_topic: String,
}

impl TopicNames {
    fn catalogue(&self) -> Catalogue {
        Catalogue::new(
            &self.events_topic,
            &self.commands_topic,
            &self.market_data_topic,
        )
    }
}

/// The `topics` subcommands.
#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create the catalogue's missing topics; report (never change) topics whose
    /// partitions or retention differ, exiting with 3 if there are any.
    Setup {
        /// Replicas of each created topic.
        #[arg(long, default_value_t = 1)]
        replication: i32,
    },
    /// Every topic with partitions, retention and how it compares with the catalogue.
    List,
    /// One topic in full (an unknown name is an error).
    Describe {
        /// The topic.
        name: String,
    },
    /// A consumer group's lag per partition.
    Lag {
        /// The group.
        group: String,
        /// Only these topics (repeatable); by default every topic the group committed on.
        #[arg(long = "topic")]
        topics: Vec<String>,
    },
}

/// Why a `topics` command failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicsCliError {
    /// A flag is missing or bad.
    #[error(transparent)]
    Flag(#[from] StreamCliError),
    /// The first call to the cluster failed.
    #[error("cannot reach Kafka at {servers} (waited up to {waited}): {source}")]
    Unreachable {
        /// The bootstrap servers.
        servers: String,
        /// The `--timeout`.
        waited: String,
        /// What librdkafka said.
        source: StreamError,
    },
    /// A later call failed.
    #[error("Kafka at {servers}: {source}")]
    Kafka {
        /// The bootstrap servers.
        servers: String,
        /// What failed.
        source: StreamError,
    },
    /// `describe` of a topic the cluster does not have.
    #[error("topic {name} does not exist on {servers}")]
    UnknownTopic {
        /// The name asked for.
        name: String,
        /// The bootstrap servers.
        servers: String,
    },
    /// `setup` found topics unlike the catalogue (they were left as they are).
    #[error("{} differ from the catalogue and were left unchanged: {}", if .0.len() == 1 { "1 topic" } else { "topics" }, .0.join("; "))]
    Differs(Vec<String>),
}

impl TopicsCliError {
    /// The process exit code: [`EXIT_DIFFERS`] for differing topics, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            TopicsCliError::Differs(_) => EXIT_DIFFERS,
            _ => 1,
        }
    }
}

/// Runs a `topics` command, printing JSON when `json`.
pub async fn run(args: TopicsArgs, json: bool) -> Result<(), TopicsCliError> {
    let config = args.brokers.config()?;
    let servers = config.bootstrap_servers.clone();
    let kafka = |source| TopicsCliError::Kafka {
        servers: servers.clone(),
        source,
    };
    let admin = KafkaAdmin::new(&config)
        .map_err(kafka)?
        .with_timeout(args.timeout);
    // Every command starts with the topic list: a broker that does not answer is
    // reported here, by address, within the timeout.
    let names = admin
        .list_topics()
        .await
        .map_err(|source| TopicsCliError::Unreachable {
            servers: servers.clone(),
            waited: humantime::format_duration(args.timeout).to_string(),
            source,
        })?;
    let catalogue = args.names.catalogue();
    match args.command {
        TopicsCommand::Setup { replication } => {
            let report = catalogue::setup(&admin, &catalogue, replication)
                .await
                .map_err(kafka)?;
            print(json, &report, || table::setup(&report));
            let differing: Vec<String> = report
                .differing()
                .map(|t| table::differing_line(&t.spec.name, &t.status))
                .collect();
            if differing.is_empty() {
                Ok(())
            } else {
                Err(TopicsCliError::Differs(differing))
            }
        }
        TopicsCommand::List => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let infos = admin.describe_topics(&names).await.map_err(kafka)?;
            let rows: Vec<Listed> = infos
                .into_iter()
                .map(|info| Listed::compare(info, &catalogue))
                .collect();
            print(json, &rows, || table::list(&rows));
            Ok(())
        }
        TopicsCommand::Describe { name } => {
            let info = admin.describe_topic(&name).await.map_err(kafka)?.ok_or(
                TopicsCliError::UnknownTopic {
                    name,
                    servers: servers.clone(),
                },
            )?;
            let row = Listed::compare(info, &catalogue);
            print(json, &row, || table::describe(&row));
            Ok(())
        }
        TopicsCommand::Lag { group, topics } => {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            let lag = admin.group_lag(&group, &topics).await.map_err(kafka)?;
            let total: i64 = lag.iter().map(|l| l.lag).sum();
            print(
                json,
                &json!({ "group": group, "total_lag": total, "partitions": lag }),
                || table::lag(&group, &lag),
            );
            Ok(())
        }
    }
}

/// A topic with how it compares with the catalogue (`None`: not a catalogue topic).
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The topic as the cluster describes it.
    #[serde(flatten)]
    pub info: TopicInfo,
    /// The comparison.
    pub catalogue: Option<TopicStatus>,
}

impl Listed {
    fn compare(info: TopicInfo, catalogue: &Catalogue) -> Self {
        let status = catalogue.get(&info.name).map(|spec| spec.status(&info));
        Listed {
            info,
            catalogue: status,
        }
    }
}

/// Prints `value` as JSON, or the table `human` renders.
fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("hostbridge: cannot encode the answer as JSON: {e}"),
        }
    } else {
        print!("{}", human());
    }
}
