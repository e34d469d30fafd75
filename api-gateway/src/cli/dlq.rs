//! `hostbridge dlq list|show|replay`: the dead letters of a topic (`{topic}.dlq`) —
//! what failed, why, how often it was tried — and putting a fixed one back on the topic
//! it came from.
//!
//! Dead letters are read from the start of the dead-letter topic in a consumer group of
//! the command's own, until the topic stays quiet for `--idle` (brokers such as the
//! tansu test broker report wrong end offsets, so "the end" is when nothing more comes).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use event_stream::kafka::catalogue::{COMMANDS_TOPIC, ENV_COMMANDS_TOPIC};
use event_stream::kafka::{KafkaConfig, KafkaWriter, OffsetReset, ProducerSettings};
use event_stream::stream::DeadLetter;
use event_stream::stream::dead_letter::{self, replayed};
use event_stream::{AsyncWriter, RawMessage};
use futures::StreamExt;
use serde_json::{Value, json};

use super::stream::{Brokers, StreamCliError, cancel_on_ctrl_c, tail_reader};

/// `hostbridge dlq ...`.
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// One line per dead letter: where it was, its class, its ids, why.
    List(Source),
    /// One dead letter in full: headers and value.
    Show {
        /// `PARTITION/OFFSET` on the dead-letter topic (as `list` prints it).
        at: String,
        /// Where to read.
        #[command(flatten)]
        source: Source,
    },
    /// Put a dead letter back on the topic it came from (the dead-letter headers off,
    /// `hostbridge.dlq.replays` counted, so the consumer handles it again).
    Replay {
        /// `PARTITION/OFFSET` on the dead-letter topic.
        at: String,
        /// The fixed value to send instead of the original (a JSON file).
        #[arg(long)]
        value_file: Option<PathBuf>,
        /// Where to read.
        #[command(flatten)]
        source: Source,
    },
}

/// The topic whose dead letters to read, and the brokers.
#[derive(clap::Args, Debug)]
pub struct Source {
    /// The topic the dead letters came from (`{topic}.dlq` is read).
    #[arg(long, env = ENV_COMMANDS_TOPIC, default_value = COMMANDS_TOPIC)]
    pub topic: String,
    /// How long the dead-letter topic must stay quiet to count as read to its end.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub idle: Duration,
    /// Kafka brokers.
    #[command(flatten)]
    pub brokers: Brokers,
}

/// Runs a `dlq` command; `json` prints JSON.
pub async fn run(command: DlqCommand, json: bool) -> Result<(), StreamCliError> {
    match command {
        DlqCommand::List(source) => {
            let letters = read(&source).await?;
            for m in &letters {
                print_summary(m, json);
            }
            if !json {
                super::print_line(&format!(
                    "{} dead letter(s) on {}",
                    letters.len(),
                    dead_letter::topic_for(&source.topic)
                ));
            }
            Ok(())
        }
        DlqCommand::Show { at, source } => {
            let at = parse_at(&at)?;
            let m = find(&source, at).await?;
            let shown = detail(&m);
            if json {
                super::print_line(&shown.to_string());
            } else {
                super::print_line(
                    &serde_json::to_string_pretty(&shown).unwrap_or_else(|_| shown.to_string()),
                );
            }
            Ok(())
        }
        DlqCommand::Replay {
            at,
            value_file,
            source,
        } => {
            let at = parse_at(&at)?;
            let value = match value_file {
                Some(path) => {
                    let text = std::fs::read(&path).map_err(|e| {
                        StreamCliError::BadFlag(format!("--value-file {}: {e}", path.display()))
                    })?;
                    serde_json::from_slice::<Value>(&text).map_err(|e| {
                        StreamCliError::BadFlag(format!(
                            "--value-file {}: not JSON: {e}",
                            path.display()
                        ))
                    })?;
                    Some(Bytes::from(text))
                }
                None => None,
            };
            let m = find(&source, at).await?;
            let letter = DeadLetter::read(&m).ok_or_else(|| {
                StreamCliError::BadFlag(format!("{}/{}: not a dead letter", at.0, at.1))
            })?;
            let topic = letter.topic.clone().unwrap_or_else(|| source.topic.clone());
            let back = replayed(&m, value);
            let replays = dead_letter::replays(&back.headers);
            let config = source.brokers.config()?;
            let mut writer = KafkaWriter::new(&config, ProducerSettings::default(), &topic)?;
            writer.write(back).await?;
            writer.close().await?;
            if json {
                super::print_line(&format!(
                    "{}",
                    json!({"replayed": format!("{}/{}", at.0, at.1), "topic": topic,
                           "event_id": letter.event_id, "replays": replays})
                ));
            } else {
                super::print_line(&format!(
                    "replayed {}/{} to {topic} (event {}, replay {replays})",
                    at.0,
                    at.1,
                    letter.event_id.as_deref().unwrap_or("-")
                ));
            }
            Ok(())
        }
    }
}

fn parse_at(at: &str) -> Result<(i32, i64), StreamCliError> {
    let bad = || StreamCliError::BadFlag(format!("`{at}`: expected PARTITION/OFFSET, e.g. 0/12"));
    let (p, o) = at.split_once('/').ok_or_else(bad)?;
    let p = p.trim().parse::<i32>().map_err(|_| bad())?;
    let o = o.trim().parse::<i64>().map_err(|_| bad())?;
    if p < 0 || o < 0 {
        return Err(bad());
    }
    Ok((p, o))
}

/// Every message of the dead-letter topic, in a group of this command's own.
async fn read(source: &Source) -> Result<Vec<RawMessage>, StreamCliError> {
    read_topic(
        &source.brokers.config()?,
        &dead_letter::topic_for(&source.topic),
        source.idle,
    )
    .await
}

async fn find(
    source: &Source,
    (partition, offset): (i32, i64),
) -> Result<RawMessage, StreamCliError> {
    read(source)
        .await?
        .into_iter()
        .find(|m| {
            m.position
                .as_ref()
                .is_some_and(|p| p.partition == partition && p.offset == offset)
        })
        .ok_or_else(|| {
            StreamCliError::BadFlag(format!(
                "no dead letter at {partition}/{offset} on {}",
                dead_letter::topic_for(&source.topic)
            ))
        })
}

/// Reads `topic` from its start until it is quiet for `idle` (the first message may
/// take a group join: up to 30 s) or Ctrl-C.
async fn read_topic(
    config: &KafkaConfig,
    topic: &str,
    idle: Duration,
) -> Result<Vec<RawMessage>, StreamCliError> {
    let cancel = cancel_on_ctrl_c();
    let mut reader = tail_reader(config, topic, None, OffsetReset::Earliest, cancel.clone())?;
    let mut out = Vec::new();
    let first_wait = Duration::from_secs(30).max(idle);
    loop {
        let wait = if out.is_empty() { first_wait } else { idle };
        match tokio::time::timeout(wait, reader.next()).await {
            Ok(Some(Ok(m))) => out.push(m),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) | Err(_) => break,
        }
    }
    cancel.cancel();
    // Nothing was acknowledged: the close commits nothing.
    let _ = reader.close().await;
    Ok(out)
}

fn at_of(m: &RawMessage) -> String {
    m.position.as_ref().map_or_else(
        || "-".to_owned(),
        |p| format!("{}/{}", p.partition, p.offset),
    )
}

fn print_summary(m: &RawMessage, json: bool) {
    let letter = DeadLetter::read(m);
    if json {
        super::print_line(&format!(
            "{}",
            json!({"at": at_of(m), "dead_letter": letter})
        ));
        return;
    }
    match letter {
        Some(l) => super::print_line(&format!(
            "{:<8} {:<20} event {} corr {} attempts {} from {}@{}/{}: {}",
            at_of(m),
            l.class,
            l.event_id.as_deref().unwrap_or("-"),
            l.correlation_id.as_deref().unwrap_or("-"),
            l.attempts,
            l.topic.as_deref().unwrap_or("?"),
            l.partition
                .map_or_else(|| "?".to_owned(), |p| p.to_string()),
            l.offset.map_or_else(|| "?".to_owned(), |o| o.to_string()),
            l.message
        )),
        None => super::print_line(&format!("{:<8} (no dead-letter headers)", at_of(m))),
    }
}

fn detail(m: &RawMessage) -> Value {
    let headers: serde_json::Map<String, Value> = m
        .headers
        .iter()
        .map(|(name, value)| {
            let text = std::str::from_utf8(value).map_or_else(
                |_| json!({"base64": base64_of(value)}),
                |s| Value::String(s.to_owned()),
            );
            (name.to_owned(), text)
        })
        .collect();
    let value = serde_json::from_slice::<Value>(&m.value).unwrap_or_else(|_| {
        std::str::from_utf8(&m.value).map_or_else(
            |_| json!({"base64": base64_of(&m.value)}),
            |s| Value::String(s.to_owned()),
        )
    });
    json!({
        "at": at_of(m),
        "key": m.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "headers": headers,
        "dead_letter": DeadLetter::read(m),
        "value": value,
    })
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_bad_ones_are_named() {
        assert_eq!(parse_at("0/12").ok(), Some((0, 12)));
        for bad in ["", "0", "a/1", "0/-1", "-1/0", "0/1/2"] {
            let error = parse_at(bad).expect_err(bad).to_string();
            assert!(error.contains("PARTITION/OFFSET"), "{bad}: {error}");
        }
    }
}
