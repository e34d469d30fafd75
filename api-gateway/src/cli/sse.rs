//! Server-Sent Events from the gateway's `GET /api/v1/events`, for `hostbridge events
//! tail` and `hostbridge ops watch`.
//!
//! [`SseParser`] is the WHATWG event-stream grammar, fed whatever chunks the network
//! delivers: an event, a line or a UTF-8 character may be split anywhere; lines end in
//! LF, CRLF or CR; `data:` lines of one event are joined with `\n`; `:` lines are
//! comments (the gateway's heartbeat). [`EventStream`] runs it over a response and
//! notices a stream gone silent: the gateway comments at least every
//! [`KEEP_ALIVE_INTERVAL`], so a longer silence is a dead connection, not a quiet one.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use host_service_base::HostError;
use host_service_base::operations::KEEP_ALIVE_INTERVAL;

use super::client::GatewayClient;

/// The gateway's event stream.
pub const EVENTS_PATH: &str = "/api/v1/events";

/// A line longer than this is dropped (with its event): a server cannot make the
/// client buffer without bound.
const MAX_LINE: usize = 16 << 20;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name (`message` when the server gave none).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:`, if the event had one.
    pub id: Option<String>,
}

/// The incremental parser.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous byte ended a line with CR: an LF right after it belongs to it.
    after_cr: bool,
    /// The current line passed [`MAX_LINE`].
    overflow: bool,
    /// The current event has a line that was dropped.
    broken: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl SseParser {
    /// Parses `chunk`, returning the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    events.extend(self.end_line());
                }
                _ if self.line.len() >= MAX_LINE => self.overflow = true,
                _ => self.line.push(byte),
            }
        }
        events
    }

    fn end_line(&mut self) -> Option<SseEvent> {
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.overflow) {
            self.broken = true;
            return None;
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` and unknown fields mean nothing to a client that does not
            // reconnect on its own.
            _ => {}
        }
        None
    }

    /// A blank line ends the event; one without data is no event (the spec's rule).
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let data = self.data.take();
        let broken = std::mem::take(&mut self.broken);
        let data = data.filter(|_| !broken)?;
        Some(SseEvent {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
            id: self.id.clone(),
        })
    }
}

/// Why an [`EventStream`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The connection failed mid-stream.
    #[error("the event stream of {url} failed: {source}")]
    Transport {
        /// The stream's URL.
        url: String,
        /// What failed.
        source: HostError,
    },
    /// Nothing arrived, not even a heartbeat, for longer than the gateway's interval.
    #[error("the event stream of {url} went silent for {after:?}")]
    Silent {
        /// The stream's URL.
        url: String,
        /// How long it was silent.
        after: Duration,
    },
    /// The gateway ended the stream (it is shutting down).
    #[error("the gateway closed the event stream of {url}")]
    Ended {
        /// The stream's URL.
        url: String,
    },
}

/// The events of one open `GET /api/v1/events`.
pub struct EventStream {
    url: String,
    body: BoxStream<'static, Result<Bytes, HostError>>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("url", &self.url)
            .finish()
    }
}

/// Opens the gateway's event stream, keeping the types starting with `type_prefix`
/// (all when empty). Returns once the gateway answered: from then on no event is
/// missed.
pub async fn open(client: &GatewayClient, type_prefix: &str) -> Result<EventStream, HostError> {
    let query: Vec<(&str, String)> = if type_prefix.is_empty() {
        Vec::new()
    } else {
        vec![("type", type_prefix.to_owned())]
    };
    let response = client.stream(EVENTS_PATH, &query).await?;
    Ok(EventStream {
        url: response.url().to_string(),
        body: response.bytes_stream().boxed(),
        parser: SseParser::default(),
        ready: VecDeque::new(),
    })
}

impl EventStream {
    /// The next event.
    pub async fn next(&mut self) -> Result<SseEvent, SseError> {
        // Three heartbeats missed: the connection is gone even if TCP has not noticed.
        let silence = KEEP_ALIVE_INTERVAL * 3;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            let chunk = tokio::time::timeout(silence, self.body.next())
                .await
                .map_err(|_| SseError::Silent {
                    url: self.url.clone(),
                    after: silence,
                })?;
            match chunk {
                Some(Ok(bytes)) => self.ready.extend(self.parser.feed(&bytes)),
                Some(Err(source)) => {
                    return Err(SseError::Transport {
                        url: self.url.clone(),
                        source,
                    });
                }
                None => {
                    return Err(SseError::Ended {
                        url: self.url.clone(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
