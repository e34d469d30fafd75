//! `hostbridge commands send`: puts a load or training command on the commands topic,
//! as any other service of the platform would, and prints its id (the operation id it
//! will have) and its correlation id (on every event of that operation).

use clap::Subcommand;
use event_stream::kafka::catalogue::{COMMANDS_TOPIC, ENV_COMMANDS_TOPIC};
use event_stream::kafka::{KafkaWriter, ProducerSettings};
use event_stream::stream::producer::encode;
use event_stream::{AsyncWriter, Envelope};
use serde_json::{Value, json};

use super::stream::{Brokers, StreamCliError};
use super::{LoadArgs, TrainingOverrides, train_body};
use crate::commands::{LOAD_REQUESTED, TRAINING_REQUESTED};

/// The `source` of commands the CLI sends.
pub const SOURCE: &str = "hostbridge-cli";

/// `hostbridge commands ...`.
#[derive(Subcommand, Debug)]
pub enum CommandsCommand {
    /// Put a command on the commands topic; the gateway consuming it starts the work.
    #[command(subcommand)]
    Send(SendCommand),
}

/// What to ask for.
#[derive(Subcommand, Debug)]
pub enum SendCommand {
    /// `data.load.requested`: load bars into the store.
    Load {
        /// What to load.
        #[command(flatten)]
        load: LoadArgs,
        /// Where to send.
        #[command(flatten)]
        to: Destination,
    },
    /// `training.start.requested`: train a strategy (a name on the gateway, or a YAML
    /// file whose text is sent).
    Train {
        /// A strategy name or a path to a YAML file.
        strategy: String,
        /// What to train on.
        #[command(flatten)]
        training: TrainingOverrides,
        /// Where to send.
        #[command(flatten)]
        to: Destination,
    },
}

/// The topic, the brokers, the correlation id.
#[derive(clap::Args, Debug)]
pub struct Destination {
    /// The commands topic.
    #[arg(long, env = ENV_COMMANDS_TOPIC, default_value = COMMANDS_TOPIC)]
    pub topic: String,
    /// The chain this command belongs to (default: the command starts one, its id).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Kafka brokers.
    #[command(flatten)]
    pub brokers: Brokers,
}

/// Sends the command; prints its ids (JSON with `json`).
pub async fn run(command: CommandsCommand, json: bool) -> Result<(), StreamCliError> {
    let CommandsCommand::Send(send) = command;
    let (event_type, data, subject, to) = match send {
        SendCommand::Load { load, to } => {
            let request = load.request();
            // Named here, before anything is sent: the gateway would dead-letter it.
            let spec = request
                .validate()
                .map_err(|e| StreamCliError::BadFlag(e.to_string()))?;
            let data = serde_json::to_value(&request)
                .map_err(|e| StreamCliError::BadFlag(e.to_string()))?;
            (LOAD_REQUESTED, data, Some(spec.symbol.to_string()), to)
        }
        SendCommand::Train {
            strategy,
            training,
            to,
        } => {
            let data = train_body(&strategy, &training)
                .map_err(|e| StreamCliError::BadFlag(e.to_string()))?;
            (TRAINING_REQUESTED, without_nulls(data), None, to)
        }
    };
    if let Some(c) = &to.correlation_id
        && (c.is_empty() || c.len() > 128 || c.chars().any(char::is_control))
    {
        return Err(StreamCliError::BadFlag(
            "--correlation-id: 1 to 128 characters, no control characters".into(),
        ));
    }
    let config = to.brokers.config()?;
    let mut envelope = Envelope::new(event_type, SOURCE, data)
        .map_err(|e| StreamCliError::BadFlag(e.to_string()))?;
    let correlation = to
        .correlation_id
        .clone()
        .unwrap_or_else(|| envelope.id.to_string());
    envelope.correlation_id = Some(correlation.clone());
    // Keyed by what the command is about (a symbol) or its own id.
    envelope.subject = Some(subject.unwrap_or_else(|| envelope.id.to_string()));
    let id = envelope.id.to_string();

    let mut writer = KafkaWriter::new(&config, ProducerSettings::default(), &to.topic)?;
    writer.write(encode(envelope)).await?;
    writer.close().await?;

    if json {
        super::print_line(&format!(
            "{}",
            json!({"command_id": id, "operation_id": id, "correlation_id": correlation,
                   "type": event_type, "topic": to.topic})
        ));
    } else {
        super::print_line(&format!("sent {event_type} {id} to {}", to.topic));
        super::print_line(&format!("correlation id: {correlation}"));
        super::print_line(&format!("follow it: hostbridge ops watch {id}"));
    }
    Ok(())
}

/// The body without its null fields (`symbols: null` means "the strategy's").
fn without_nulls(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    body
}
