//! What a business handler is, and how it says a message failed: transient (try again
//! later) or permanent (no retry can help: dead-letter it).

use std::future::Future;

use async_trait::async_trait;

use crate::Envelope;

/// Why a handler did not handle an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying: a host that is down, a timeout.
    #[error("{0}")]
    Transient(String),
    /// No retry can help: a body that does not validate, an unknown type.
    #[error("{class}: {message}")]
    Permanent {
        /// A short class name for the dead letter's
        /// `__connect.errors.exception.class.name` (`ValidationError`).
        class: String,
        /// What was wrong; for validation, it names the field.
        message: String,
    },
}

impl HandleError {
    /// A failure worth retrying.
    pub fn transient(message: impl std::fmt::Display) -> Self {
        HandleError::Transient(message.to_string())
    }

    /// A failure no retry can fix, with its class name.
    pub fn permanent(class: impl Into<String>, message: impl std::fmt::Display) -> Self {
        HandleError::Permanent {
            class: class.into(),
            message: message.to_string(),
        }
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, HandleError::Transient(_))
    }

    /// The class name a dead letter records.
    pub fn class(&self) -> &str {
        match self {
            HandleError::Transient(_) => "TransientError",
            HandleError::Permanent { class, .. } => class,
        }
    }

    /// The message without the class.
    pub fn message(&self) -> &str {
        match self {
            HandleError::Transient(message) | HandleError::Permanent { message, .. } => message,
        }
    }
}

/// Business code: handles one envelope, knowing nothing of the transport. The envelope
/// comes as it was sent; the chain it belongs to (its correlation id, or its own id when
/// it starts one) is `Envelope::chain_id()` and [`super::correlation::current`], and every
/// envelope a service's `Producer` sends during the handling carries it.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles `envelope`; `Ok` means done for good.
    async fn handle(&self, envelope: crate::Envelope) -> Result<(), HandleError>;
}

#[async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    async fn handle(&self, envelope: Envelope) -> Result<(), HandleError> {
        self(envelope).await
    }
}
