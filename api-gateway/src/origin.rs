//! Where a request to start an operation came from: the chain it belongs to, and, for a
//! command off the commands topic, the id its operation must have.

/// Who asked for an operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The id of the chain (`X-Correlation-ID`, or a command's correlation id); every
    /// event of the operation carries it.
    pub correlation_id: Option<String>,
    /// The operation id to use (a command's envelope id). Starting again with an id
    /// the registry holds starts nothing and answers that operation: a redelivered
    /// command is a no-op.
    pub operation_id: Option<String>,
}

impl Origin {
    /// An HTTP request with an optional correlation id: a fresh operation id.
    pub fn correlated(correlation_id: Option<String>) -> Self {
        Self {
            correlation_id,
            operation_id: None,
        }
    }
}
