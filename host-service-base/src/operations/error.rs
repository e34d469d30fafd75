//! Errors of the operations registry and how they become HTTP answers.

use std::path::PathBuf;

use crate::error::HostError;

use super::model::OperationStatus;

/// A failure of the registry's persistent store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperationsError {
    /// The directory of the store could not be created.
    #[error("could not create the directory of the operations store {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The store file could not be opened (locked by another process, corrupt, I/O).
    #[error("could not open the operations store {path}: {source}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::DatabaseError,
    },
    /// A read or write transaction failed.
    #[error("operations store failure: {0}")]
    Store(#[from] redb::Error),
    /// An operation could not be turned into JSON.
    #[error("could not serialize operation {operation_id}: {source}")]
    Serialize {
        /// The operation.
        operation_id: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl OperationsError {
    /// Wraps any redb error (transaction, table, storage, commit).
    pub(crate) fn store(err: impl Into<redb::Error>) -> Self {
        Self::Store(err.into())
    }
}

impl From<OperationsError> for HostError {
    fn from(err: OperationsError) -> Self {
        HostError::internal(err)
    }
}

/// Why [`Operations::cancel`](super::Operations::cancel) did not cancel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// No operation has this id (or it was pruned).
    #[error("operation {operation_id} not found")]
    NotFound {
        /// The id asked for.
        operation_id: String,
    },
    /// The operation already reached a terminal state.
    #[error("operation {operation_id} is already {status}")]
    AlreadyFinished {
        /// The id asked for.
        operation_id: String,
        /// Its terminal status.
        status: OperationStatus,
    },
}

impl From<CancelError> for HostError {
    /// 404 for an unknown id, 409 for a finished operation.
    fn from(err: CancelError) -> Self {
        match err {
            CancelError::NotFound { .. } => HostError::not_found(err.to_string()),
            CancelError::AlreadyFinished { .. } => HostError::Conflict {
                message: err.to_string(),
            },
        }
    }
}
