//! Dead letters: a message no handler can finish, put on `{topic}.dlq` unchanged (key,
//! value, headers) with Kafka Connect's error headers and hostbridge's own, so the
//! tools that read Connect's dead-letter queues read these too, and `hostbridge dlq
//! replay` can put a fixed one back where it came from.

use bytes::Bytes;

use crate::message::{Headers, RawMessage};

/// The header names a dead letter carries.
pub mod header {
    /// The topic the message was read from.
    pub const TOPIC: &str = "__connect.errors.topic";
    /// Its partition.
    pub const PARTITION: &str = "__connect.errors.partition";
    /// Its offset.
    pub const OFFSET: &str = "__connect.errors.offset";
    /// The failure's class (`ValidationError`, `UndecodableMessage`, `TransientError`).
    pub const CLASS: &str = "__connect.errors.exception.class.name";
    /// What went wrong; for validation, it names the field.
    pub const MESSAGE: &str = "__connect.errors.exception.message";
    /// Handler calls made before giving up (0 when the message could not be decoded).
    pub const ATTEMPTS: &str = "hostbridge.dlq.attempts";
    /// The consumer group that gave up.
    pub const GROUP: &str = "hostbridge.dlq.consumer.group";
    /// The envelope id, when the message decoded.
    pub const EVENT_ID: &str = "hostbridge.dlq.event.id";
    /// The envelope's correlation id, when it had one.
    pub const CORRELATION_ID: &str = "hostbridge.dlq.correlation.id";
    /// How many times the message was put back by `dlq replay` (a replayed message is
    /// handled again even though its id was seen).
    pub const REPLAYS: &str = "hostbridge.dlq.replays";

    /// Every header a dead letter adds (a replay takes them off again; `REPLAYS` stays).
    pub const ADDED: [&str; 9] = [
        TOPIC,
        PARTITION,
        OFFSET,
        CLASS,
        MESSAGE,
        ATTEMPTS,
        GROUP,
        EVENT_ID,
        CORRELATION_ID,
    ];
}

/// The failure classes the reliability layer itself names.
pub mod class {
    /// The value is not an envelope (not JSON, a field missing or malformed).
    pub const UNDECODABLE: &str = "UndecodableMessage";
    /// Transient failures outlasted the retry budget.
    pub const RETRIES_EXHAUSTED: &str = "RetriesExhausted";
    /// The handler panicked.
    pub const PANICKED: &str = "HandlerPanicked";
}

/// The dead-letter topic of `topic`.
pub fn topic_for(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Why a message was given up on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// Where it was read: topic, partition, offset (unknown for a source without
    /// positions).
    pub topic: Option<String>,
    /// Its partition.
    pub partition: Option<i32>,
    /// Its offset.
    pub offset: Option<i64>,
    /// The failure's class.
    pub class: String,
    /// What went wrong.
    pub message: String,
    /// Handler calls made.
    pub attempts: u32,
    /// The consumer group.
    pub group: String,
    /// The envelope id, if it decoded.
    pub event_id: Option<String>,
    /// The correlation id, if it had one.
    pub correlation_id: Option<String>,
}

impl DeadLetter {
    /// The message to write to the dead-letter topic: `original` with the headers.
    pub fn message(&self, original: &RawMessage) -> RawMessage {
        let mut headers = strip(&original.headers);
        let mut add = |name: &str, value: String| headers.push(name, value);
        if let Some(topic) = &self.topic {
            add(header::TOPIC, topic.clone());
        }
        if let Some(partition) = self.partition {
            add(header::PARTITION, partition.to_string());
        }
        if let Some(offset) = self.offset {
            add(header::OFFSET, offset.to_string());
        }
        add(header::CLASS, self.class.clone());
        add(header::MESSAGE, self.message.clone());
        add(header::ATTEMPTS, self.attempts.to_string());
        add(header::GROUP, self.group.clone());
        if let Some(id) = &self.event_id {
            add(header::EVENT_ID, id.clone());
        }
        if let Some(c) = &self.correlation_id {
            add(header::CORRELATION_ID, c.clone());
        }
        RawMessage {
            key: original.key.clone(),
            value: original.value.clone(),
            headers,
            position: None,
            timestamp_ms: None,
        }
    }

    /// Reads the headers of a message found on a dead-letter topic (`None` when it has
    /// none of them: not a dead letter).
    pub fn read(message: &RawMessage) -> Option<DeadLetter> {
        let h = &message.headers;
        let text = |name: &str| h.get_str(name).map(str::to_owned);
        let class = text(header::CLASS)?;
        Some(DeadLetter {
            topic: text(header::TOPIC),
            partition: text(header::PARTITION).and_then(|p| p.parse().ok()),
            offset: text(header::OFFSET).and_then(|o| o.parse().ok()),
            class,
            message: text(header::MESSAGE).unwrap_or_default(),
            attempts: text(header::ATTEMPTS)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0),
            group: text(header::GROUP).unwrap_or_default(),
            event_id: text(header::EVENT_ID),
            correlation_id: text(header::CORRELATION_ID),
        })
    }
}

/// `message` as it goes back to its topic on a replay: the dead-letter headers off,
/// `hostbridge.dlq.replays` one higher, `value` (the fix) in place of the old one when
/// given.
pub fn replayed(message: &RawMessage, value: Option<Bytes>) -> RawMessage {
    let replays = replays(&message.headers) + 1;
    let mut headers = strip(&message.headers);
    headers.set(header::REPLAYS, replays.to_string());
    RawMessage {
        key: message.key.clone(),
        value: value.unwrap_or_else(|| message.value.clone()),
        headers,
        position: None,
        timestamp_ms: None,
    }
}

/// How many times a message was replayed from a dead-letter topic.
pub fn replays(headers: &Headers) -> u32 {
    headers
        .get_str(header::REPLAYS)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn strip(headers: &Headers) -> Headers {
    headers
        .iter()
        .filter(|(name, _)| !header::ADDED.contains(name))
        .map(|(name, value)| (name.to_owned(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Position;

    fn original() -> RawMessage {
        let mut m = RawMessage::new(Bytes::from_static(b"{not json"));
        m.key = Some(Bytes::from_static(b"AAPL"));
        m.headers.push("type", "data.load.requested");
        m.position = Some(Position {
            topic: "hostbridge.commands".to_owned(),
            partition: 2,
            offset: 41,
        });
        m
    }

    fn letter() -> DeadLetter {
        DeadLetter {
            topic: Some("hostbridge.commands".to_owned()),
            partition: Some(2),
            offset: Some(41),
            class: "ValidationError".to_owned(),
            message: "symbol: must not be empty".to_owned(),
            attempts: 1,
            group: "hostbridge-gateway".to_owned(),
            event_id: Some("0190".to_owned()),
            correlation_id: None,
        }
    }

    #[test]
    fn a_dead_letter_keeps_the_message_and_adds_the_connect_headers() {
        let m = letter().message(&original());
        assert_eq!(m.value, original().value);
        assert_eq!(m.key, original().key);
        let h = &m.headers;
        assert_eq!(h.get_str("type"), Some("data.load.requested"));
        assert_eq!(h.get_str(header::TOPIC), Some("hostbridge.commands"));
        assert_eq!(h.get_str(header::PARTITION), Some("2"));
        assert_eq!(h.get_str(header::OFFSET), Some("41"));
        assert_eq!(h.get_str(header::CLASS), Some("ValidationError"));
        assert_eq!(
            h.get_str(header::MESSAGE),
            Some("symbol: must not be empty")
        );
        assert_eq!(h.get_str(header::ATTEMPTS), Some("1"));
        assert_eq!(h.get_str(header::GROUP), Some("hostbridge-gateway"));
        assert_eq!(h.get_str(header::EVENT_ID), Some("0190"));
        assert_eq!(h.get_str(header::CORRELATION_ID), None);
        assert_eq!(DeadLetter::read(&m), Some(letter()));
        assert_eq!(DeadLetter::read(&original()), None);
    }

    #[test]
    fn a_replay_takes_the_headers_off_and_counts() {
        let dead = letter().message(&original());
        let back = replayed(&dead, Some(Bytes::from_static(b"{}")));
        assert_eq!(back.value, Bytes::from_static(b"{}"));
        assert_eq!(DeadLetter::read(&back), None);
        assert_eq!(back.headers.get_str("type"), Some("data.load.requested"));
        assert_eq!(replays(&back.headers), 1);
        // Dead again, replayed again: the count goes on, one header.
        let twice = replayed(&letter().message(&back), None);
        assert_eq!(replays(&twice.headers), 2);
        assert_eq!(twice.value, Bytes::from_static(b"{}"));
        assert_eq!(
            twice
                .headers
                .iter()
                .filter(|(n, _)| *n == header::REPLAYS)
                .count(),
            1
        );
        assert_eq!(topic_for("hostbridge.commands"), "hostbridge.commands.dlq");
    }
}
