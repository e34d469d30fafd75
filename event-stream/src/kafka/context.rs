//! What every client of this module shares: librdkafka's log lines and client errors
//! routed to `tracing` (rdkafka's default goes to the `log` crate, which this workspace
//! does not collect), and the mapping of rdkafka errors to [`StreamError`].

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::StreamError;

/// A client context that only logs; the admin client and its lag consumer use it, the producer and consumer
/// contexts call [`log_line`] and [`client_error`] from theirs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TracingContext;

// The lag consumer never subscribes, so it needs no rebalance handling.
impl rdkafka::consumer::ConsumerContext for TracingContext {}

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&error, reason);
    }
}

/// Forwards one librdkafka log line to `tracing` at the matching level.
pub(crate) fn log_line(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

/// Logs a client-level error. Connection losses are routine (librdkafka reconnects), so
/// they are warnings; fatal errors are errors.
pub(crate) fn client_error(error: &KafkaError, reason: &str) {
    let transient = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
        )
    );
    if transient {
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    } else {
        tracing::error!(target: "librdkafka", %error, "{reason}");
    }
}

/// An rdkafka error as a [`StreamError`]: a rejected property names the property.
pub(crate) fn kafka_error(context: &str, error: KafkaError) -> StreamError {
    match error {
        KafkaError::ClientConfig(_, description, key, _) => StreamError::config(key, description),
        other => StreamError::transport("kafka", format!("{context}: {other}")),
    }
}

/// A background (`spawn_blocking`) task that panicked or was cancelled.
pub(crate) fn join_error(what: &str, error: tokio::task::JoinError) -> StreamError {
    StreamError::Task(format!("kafka {what}: {error}"))
}
