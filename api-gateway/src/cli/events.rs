//! `hostbridge events tail`: follow the platform's live events, from the gateway's SSE
//! stream (the default: works in every event mode) or from the Kafka events topic.
//!
//! One line per event ([`line::summary`]), or with `--json` the envelope as it came,
//! one per line, for scripts. Ctrl-C ends it cleanly (exit 0).

mod line;

use clap::{Subcommand, ValueEnum};
use event_stream::kafka::OffsetReset;
use event_stream::kafka::catalogue::{ENV_EVENTS_TOPIC, EVENTS_TOPIC};
use event_stream::replay;
use event_stream::{Envelope, StreamError};

use super::client::GatewayClient;
use super::sse::{self, SseError};
use super::stream::{Brokers, StreamCliError, cancel_on_ctrl_c, tail_reader};

/// `hostbridge events ...`.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print live events as they happen, until Ctrl-C.
    Tail(TailArgs),
    /// Keep every event of the Kafka events topic in one NDJSON file per day (the
    /// audit log): each event once, also across restarts.
    Archive(super::archive::ArchiveArgs),
}

/// Where `events tail` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Origin {
    /// The gateway's `GET /api/v1/events` (any event mode).
    Gateway,
    /// The Kafka events topic, in a consumer group of its own (`kafka` / `both` modes).
    Kafka,
}

/// `hostbridge events tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Only event types starting with this, e.g. `operation.` or `training.epoch`.
    #[arg(long = "type", value_name = "PREFIX")]
    pub type_prefix: Option<String>,
    /// Where to read.
    #[arg(long, value_enum, default_value = "gateway")]
    pub from: Origin,
    /// Only the events of this chain (a correlation id, e.g. the one `commands send`
    /// printed).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// With `--from kafka`: read the topic from its beginning instead of live events
    /// only (with `--correlation-id`, finds what already happened).
    #[arg(long)]
    pub from_beginning: bool,
    /// The events topic (with `--from kafka`).
    #[arg(long, env = ENV_EVENTS_TOPIC, default_value = EVENTS_TOPIC)]
    pub topic: String,
    /// Kafka brokers (with `--from kafka`).
    #[command(flatten)]
    pub brokers: Brokers,
}

/// Why `events tail` stopped before Ctrl-C.
#[derive(Debug, thiserror::Error)]
pub enum EventsCliError {
    /// A flag is missing or bad.
    #[error(transparent)]
    Flag(#[from] StreamCliError),
    /// The gateway refused or could not be reached (the message names its URL).
    #[error("{0}")]
    Gateway(String),
    /// The gateway's stream broke.
    #[error(transparent)]
    Stream(#[from] SseError),
    /// Reading the topic failed.
    #[error("reading topic {topic} on Kafka at {servers}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        servers: String,
        /// What failed.
        source: StreamError,
    },
}

/// Runs an `events` command; `client` is the gateway's, `json` prints raw envelopes.
pub async fn run(
    command: EventsCommand,
    client: &GatewayClient,
    json: bool,
) -> Result<(), EventsCliError> {
    let args = match command {
        EventsCommand::Tail(args) => args,
        EventsCommand::Archive(args) => {
            return super::archive::run(args)
                .await
                .map_err(EventsCliError::Flag);
        }
    };
    let filter = Filter {
        prefix: args.type_prefix.clone().unwrap_or_default(),
        correlation_id: args.correlation_id.clone(),
    };
    if args.from_beginning && args.from != Origin::Kafka {
        return Err(EventsCliError::Flag(StreamCliError::BadFlag(
            "--from-beginning: only with --from kafka (the gateway's stream is live)".into(),
        )));
    }
    match args.from {
        Origin::Gateway => from_gateway(client, &filter, json).await,
        Origin::Kafka => from_kafka(&args, &filter, json).await,
    }
}

/// Which events to print.
struct Filter {
    prefix: String,
    correlation_id: Option<String>,
}

impl Filter {
    fn accepts(&self, bytes: &[u8]) -> bool {
        let Some(head) = head_of(bytes) else {
            return false;
        };
        head.event_type.starts_with(&self.prefix)
            && self
                .correlation_id
                .as_ref()
                .is_none_or(|c| head.correlation_id.as_ref() == Some(c))
    }
}

async fn from_gateway(
    client: &GatewayClient,
    filter: &Filter,
    json: bool,
) -> Result<(), EventsCliError> {
    let mut stream = sse::open(client, &filter.prefix)
        .await
        .map_err(|e| EventsCliError::Gateway(super::explain(&e, client)))?;
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let event = tokio::select! {
            _ = &mut interrupt => return Ok(()),
            event = stream.next() => event?,
        };
        if filter.accepts(event.data.as_bytes()) {
            print_event(event.data.as_bytes(), json);
        }
    }
}

async fn from_kafka(args: &TailArgs, filter: &Filter, json: bool) -> Result<(), EventsCliError> {
    let config = args.brokers.config()?;
    let failed = |source| EventsCliError::Kafka {
        topic: args.topic.clone(),
        servers: config.bootstrap_servers.clone(),
        source,
    };
    // Live events only: a tail starts at the end, like the gateway's stream does.
    let reader = tail_reader(
        &config,
        &args.topic,
        None,
        if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        cancel_on_ctrl_c(),
    )
    .map_err(failed)?;
    replay::tail(reader, None, |message| {
        if filter.accepts(&message.value) {
            print_event(&message.value, json);
        }
        Ok::<(), StreamError>(())
    })
    .await
    .map_err(failed)?;
    Ok(())
}

/// The `type` and `correlation_id` of an envelope's JSON, without decoding the rest.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    correlation_id: Option<String>,
}

fn head_of(bytes: &[u8]) -> Option<Head> {
    serde_json::from_slice::<Head>(bytes).ok()
}

/// Prints one envelope: as it came (on one line) with `json`, else its summary line.
fn print_event(bytes: &[u8], json: bool) {
    let text = String::from_utf8_lossy(bytes);
    if json {
        // Line breaks in JSON text can only be whitespace (inside strings they are
        // escaped), so this keeps the envelope intact on one line.
        super::print_line(&text.replace(['\r', '\n'], " "));
        return;
    }
    match serde_json::from_slice::<Envelope>(bytes) {
        Ok(envelope) => super::print_line(&line::summary(&envelope)),
        Err(e) => eprintln!("hostbridge: skipping an event that is not an envelope ({e}): {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_takes_a_type_prefix_and_a_correlation_id() {
        let event = |t: &str, c: Option<&str>| {
            serde_json::json!({"type": t, "correlation_id": c, "id": "x"})
                .to_string()
                .into_bytes()
        };
        let all = Filter {
            prefix: String::new(),
            correlation_id: None,
        };
        assert!(all.accepts(&event("operation.started", None)));
        assert!(!all.accepts(b"not json"));
        let chain = Filter {
            prefix: "training.".to_owned(),
            correlation_id: Some("c-1".to_owned()),
        };
        assert!(chain.accepts(&event("training.epoch", Some("c-1"))));
        assert!(!chain.accepts(&event("training.epoch", Some("c-2"))));
        assert!(!chain.accepts(&event("training.epoch", None)));
        assert!(!chain.accepts(&event("operation.started", Some("c-1"))));
    }
}
