//! The command handler: an envelope of type `data.load.requested` or
//! `training.start.requested` starts the operation its `data` (the body of the matching
//! `/api/v1` POST) describes, with the command's id as the operation id and its
//! correlation id. It knows nothing of Kafka.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use event_stream::Envelope;
use event_stream::stream::{HandleError, Handler};
use host_service_base::HostError;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Origin;
use crate::data::LoadRequest;
use crate::gateway::Gateway;
use crate::training::TrainRequest;

/// Asks for a data load; `data` is a `POST /api/v1/data/load` body.
pub const LOAD_REQUESTED: &str = "data.load.requested";
/// Asks for a training; `data` is a `POST /api/v1/trainings/start` body.
pub const TRAINING_REQUESTED: &str = "training.start.requested";

/// Dead-letter classes the handler names.
pub mod class {
    /// A field of the body is missing or wrong (the message names it).
    pub const VALIDATION: &str = "ValidationError";
    /// The envelope's `type` is not a command.
    pub const UNKNOWN_TYPE: &str = "UnknownCommandType";
    /// Something the command names does not exist (a strategy).
    pub const NOT_FOUND: &str = "NotFound";
    /// The gateway refuses it for good (a service switched off).
    pub const REFUSED: &str = "Refused";
}

/// Starts operations from commands.
#[derive(Debug)]
pub struct CommandHandler {
    gateway: Gateway,
    /// Command ids being handled: a copy delivered meanwhile waits (retried) instead of
    /// racing the first to start the same operation.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl CommandHandler {
    /// A handler starting operations on `gateway`.
    pub fn new(gateway: Gateway) -> Self {
        Self {
            gateway,
            in_flight: Arc::default(),
        }
    }
}

/// Removes its id from the in-flight set when dropped.
struct Claim {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Claim {
    fn take(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> Option<Self> {
        let fresh = set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned());
        fresh.then(|| Self {
            set: set.clone(),
            id: id.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[async_trait]
impl Handler for CommandHandler {
    async fn handle(&self, command: Envelope) -> Result<(), HandleError> {
        let id = command.id.to_string();
        if self.gateway.operations().get(&id).is_some() {
            tracing::info!(operation_id = %id, "command already started its operation: nothing to do");
            return Ok(());
        }
        let _claim = Claim::take(&self.in_flight, &id)
            .ok_or_else(|| HandleError::transient("the same command is being handled"))?;
        let origin = Origin {
            // A command without a correlation id starts its chain: its own id.
            correlation_id: Some(command.chain_id()),
            operation_id: Some(id.clone()),
        };
        match command.event_type.as_str() {
            LOAD_REQUESTED => {
                let request: LoadRequest = body(&command.data)?;
                self.gateway
                    .start_load(&request, origin)
                    .map_err(classify)?;
            }
            TRAINING_REQUESTED => {
                let request: TrainRequest = body(&command.data)?;
                self.gateway
                    .training()
                    .start(&request, origin)
                    .await
                    .map_err(classify)?;
            }
            other => {
                return Err(HandleError::permanent(
                    class::UNKNOWN_TYPE,
                    format!(
                        "type: `{other}` is not a command; expected {LOAD_REQUESTED} or {TRAINING_REQUESTED}"
                    ),
                ));
            }
        }
        tracing::info!(operation_id = %id, command = %command.event_type, "command started its operation");
        Ok(())
    }
}

/// The command's `data` as a request body; the error names the field (`data.symbol`).
fn body<T: DeserializeOwned>(data: &Value) -> Result<T, HandleError> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." {
            // "missing field `symbol`", "unknown field `x`": the name is in backquotes.
            inner
                .split('`')
                .nth(1)
                .map_or_else(|| "data".to_owned(), |f| format!("data.{f}"))
        } else {
            format!("data.{path}")
        };
        HandleError::permanent(class::VALIDATION, format!("{field}: {inner}"))
    })
}

/// Whether waiting can help: a host that is down or busy, a load of the same series
/// still running, a timeout — transient; anything about the command itself — permanent.
fn classify(error: HostError) -> HandleError {
    match error {
        HostError::BadRequest { field, message } => HandleError::permanent(
            class::VALIDATION,
            match field {
                Some(f) => format!("data.{f}: {message}"),
                None => message,
            },
        ),
        HostError::NotFound { message } => HandleError::permanent(class::NOT_FOUND, message),
        e @ (HostError::Disabled { .. }
        | HostError::PayloadTooLarge { .. }
        | HostError::Unauthorized { .. }) => HandleError::permanent(class::REFUSED, e),
        HostError::Upstream { status, .. } if (400..500).contains(&status) && status != 409 => {
            HandleError::permanent(class::REFUSED, error)
        }
        other => HandleError::transient(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_errors_name_the_field_under_data() {
        let missing = body::<LoadRequest>(&json!({"timeframe": "1h"})).expect_err("missing");
        assert_eq!(missing.class(), class::VALIDATION);
        assert!(missing.message().starts_with("data.symbol: "), "{missing}");
        let wrong =
            body::<LoadRequest>(&json!({"symbol": 5, "timeframe": "1h"})).expect_err("type");
        assert!(wrong.message().starts_with("data.symbol: "), "{wrong}");
        let unknown =
            body::<LoadRequest>(&json!({"symbol": "A", "timeframe": "1h", "x": 1})).expect_err("x");
        assert!(unknown.message().starts_with("data.x: "), "{unknown}");
        let not_object = body::<LoadRequest>(&Value::Null).expect_err("null");
        assert!(not_object.message().starts_with("data: "), "{not_object}");
    }

    #[test]
    fn down_or_busy_is_transient_and_bad_input_is_permanent() {
        assert!(classify(HostError::unavailable("training-host", "refused")).is_transient());
        assert!(
            classify(HostError::Conflict {
                message: "a load of AAPL 1h is already running".to_owned()
            })
            .is_transient()
        );
        let bad = classify(HostError::bad_field("timeframe", "unknown timeframe `7x`"));
        assert!(!bad.is_transient());
        assert_eq!(bad.message(), "data.timeframe: unknown timeframe `7x`");
        assert_eq!(
            classify(HostError::not_found("strategy `x`")).class(),
            class::NOT_FOUND
        );
    }
}
