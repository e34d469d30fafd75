//! The crate's typed errors: what a transport, a codec or a handler can report.

use std::time::Duration;

/// A value could not be turned into bytes or back.
#[derive(Debug, thiserror::Error)]
pub enum SerdeError {
    /// Encoding failed (the value cannot be represented in the format).
    #[error("{format} encode: {message}")]
    Encode {
        /// The format, e.g. `json`.
        format: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The bytes are not a valid value of the expected type in this format.
    #[error("{format} decode: {message}")]
    Decode {
        /// The format, e.g. `json`.
        format: &'static str,
        /// What went wrong, with the path of the offending field where the format says.
        message: String,
    },
}

/// The error a message handler returns; it keeps the message unacknowledged.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a reader, a writer or an adapter can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Encoding or decoding a key or value failed.
    #[error(transparent)]
    Serde(#[from] SerdeError),
    /// File or socket I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `flush` or `close` returned with messages not delivered.
    #[error("{undelivered} message(s) not delivered{}", first_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Undelivered {
        /// How many of the messages written since the last flush were not delivered
        /// (failed, or still queued when the flush deadline passed).
        undelivered: u64,
        /// The first delivery error seen, if any.
        first_error: Option<String>,
    },
    /// `flush` did not finish in time.
    #[error("flush timed out after {after:?} with {queued} message(s) still queued")]
    FlushTimeout {
        /// The flush deadline.
        after: Duration,
        /// Messages still in the queue.
        queued: u64,
    },
    /// The writer or reader was closed.
    #[error("{0} is closed")]
    Closed(&'static str),
    /// The transport refused the operation (Kafka errors, a full queue that does not wait).
    #[error("{transport}: {message}")]
    Transport {
        /// `kafka`, `memory`, `file`, `http`.
        transport: &'static str,
        /// What the transport said.
        message: String,
    },
    /// A configuration value is invalid; names the setting.
    #[error("invalid setting `{setting}`: {message}")]
    Config {
        /// The setting, e.g. `linger.ms`.
        setting: String,
        /// Why.
        message: String,
    },
    /// A sync call was made where blocking would stall an async runtime.
    #[error("cannot block here: {0}")]
    WouldBlockRuntime(&'static str),
    /// A message handler failed; the message stays unacknowledged.
    #[error("handler failed: {0}")]
    Handler(#[source] HandlerError),
    /// A background task ended abnormally.
    #[error("background task failed: {0}")]
    Task(String),
}

impl StreamError {
    /// An I/O error with its context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StreamError::Io {
            context: context.into(),
            source,
        }
    }

    /// A transport-level error.
    pub fn transport(transport: &'static str, message: impl std::fmt::Display) -> Self {
        StreamError::Transport {
            transport,
            message: message.to_string(),
        }
    }

    /// A bad setting, named.
    pub fn config(setting: impl Into<String>, message: impl std::fmt::Display) -> Self {
        StreamError::Config {
            setting: setting.into(),
            message: message.to_string(),
        }
    }
}
