//! Training sessions: start, watch, stop (optionally saving a checkpoint), fetch the
//! result, list, delete. Each session is an operation of the shared registry, so it
//! is persisted (a session running when the process died comes back `failed`,
//! "interrupted by restart"), listed by the operations API, and cancellable there too.

mod runner;
mod trainer;
mod view;
pub mod wire;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use data_host::provider::DataProvider;
use futures::StreamExt;
use host_service_base::HostError;
use host_service_base::operations::{OperationFilter, OperationStatus, Operations};
use serde_json::json;

pub use trainer::{BatchProgress, TrainControl, TrainJob, TrainOutcome, Trainer};
pub use view::{OPERATION_TYPE, session_status};
use wire::{
    DateSource, RangeOrigin, ResultResponse, SessionsResponse, StartRequest, StartResponse,
    StatusResponse, StopResponse,
};

use crate::model::PathStyle;
use crate::pipeline::StopHandle;
use crate::strategy::{DateRange, Overrides, apply_overrides, parse_strategy};

/// How long `stop` waits for a session to reach its end (it checks between batches,
/// so this is a bound for a stuck job, not the expected wait). Shorter than the
/// server's request timeout, so a stuck job is answered by this wait's own 504 naming
/// the stop, not cut off by the scaffold's generic one.
pub const STOP_WAIT: Duration = Duration::from_secs(20);

const _: () = assert!(
    STOP_WAIT.as_secs() + 5 <= host_service_base::server::DEFAULT_REQUEST_TIMEOUT.as_secs(),
    "the stop wait must end well inside the request timeout"
);

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Most sessions initializing or running at once; more get 503.
    pub max_sessions: usize,
    /// Root of the model store.
    pub models_dir: PathBuf,
    /// How results name model directories (relative to the store unless asked).
    pub model_paths: PathStyle,
}

/// The sessions of one training-host.
#[derive(Debug, Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    ops: Operations,
    data: Arc<dyn DataProvider>,
    trainer: Arc<dyn Trainer>,
    config: SessionConfig,
    /// Serialises admission so the session limit cannot be overshot by a race.
    admission: Mutex<()>,
    /// Per running session: how to stop it (and whether to keep a checkpoint).
    stops: Mutex<HashMap<String, StopHandle>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("data", &self.data.name())
            .field("trainer", &self.trainer)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn filter() -> OperationFilter {
    OperationFilter {
        operation_type: Some(OPERATION_TYPE.to_owned()),
        ..OperationFilter::default()
    }
}

impl SessionManager {
    /// Sessions on `ops`, bars from `data`, trained by `trainer`.
    pub fn new(
        ops: Operations,
        data: Arc<dyn DataProvider>,
        trainer: Arc<dyn Trainer>,
        config: SessionConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ops,
                data,
                trainer,
                config,
                admission: Mutex::new(()),
                stops: Mutex::default(),
            }),
        }
    }

    /// The registry holding the sessions.
    pub fn operations(&self) -> &Operations {
        &self.inner.ops
    }

    /// Where sessions write their models.
    pub fn models_dir(&self) -> &std::path::Path {
        &self.inner.config.models_dir
    }

    /// The device training runs on.
    pub fn device(&self) -> String {
        self.inner.trainer.device()
    }

    /// Sessions initializing or running.
    pub fn active(&self) -> usize {
        let mut filter = filter();
        filter.active_only = true;
        self.inner.ops.list(&filter).1
    }

    /// Validates and starts a session. Nothing is started when anything is invalid.
    pub fn start(&self, request: StartRequest) -> Result<StartResponse, HostError> {
        let strategy = parse_strategy(&request.strategy_yaml)?;
        let origin = range_origin(&request, &strategy.date_range);
        let overrides = Overrides {
            symbols: request.symbols.clone(),
            timeframes: request.timeframes.clone(),
            start_date: request.start_date.clone(),
            end_date: request.end_date.clone(),
        };
        let strategy = apply_overrides(strategy, &overrides)?;
        let gpu = self.inner.trainer.device() != "cpu";
        let metadata = json!({
            "strategy": strategy.name,
            "symbols": strategy.training_data.symbols.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "timeframes": strategy.training_data.timeframes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "start_date": strategy.date_range.start.map(|t| t.to_rfc3339()),
            "end_date": strategy.date_range.end.map(|t| t.to_rfc3339()),
            "date_range": origin,
            "gpu_allocated": gpu,
            "device": self.inner.trainer.device(),
        });

        let handle = {
            let _admission = self
                .inner
                .admission
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // A duplicate id first: a replayed start whose first attempt took the last
            // slot must hear "already exists" (it is running), not "busy", which a
            // caller may read as "not started here, try another host".
            if let Some(id) = &request.session_id
                && self.inner.ops.get(id).is_some()
            {
                return Err(HostError::Conflict {
                    message: format!("session {id} already exists"),
                });
            }
            let active = self.active();
            if active >= self.inner.config.max_sessions {
                return Err(HostError::Busy {
                    message: format!(
                        "{active} training sessions are running, the limit of this host is {}; retry when one finishes",
                        self.inner.config.max_sessions
                    ),
                    retry_after: Some(Duration::from_secs(30)),
                });
            }
            let id = request
                .session_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            self.inner
                .ops
                .create_with_id(&id, OPERATION_TYPE, metadata)
                .map_err(|e| match e {
                    HostError::BadRequest { message, .. } => {
                        HostError::bad_field("session_id", message)
                    }
                    HostError::Conflict { .. } => HostError::Conflict {
                        message: format!("session {id} already exists"),
                    },
                    other => other,
                })?
        };
        let session_id = handle.id().to_owned();
        let stop = StopHandle::new(handle.token());
        self.stops().insert(session_id.clone(), stop.clone());
        let message = format!(
            "training {} on {} ({})",
            strategy.name,
            strategy
                .training_data
                .symbols
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            strategy
                .training_data
                .timeframes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
        let run = runner::Run {
            handle,
            strategy,
            data: self.inner.data.clone(),
            trainer: self.inner.trainer.clone(),
            models_dir: self.inner.config.models_dir.clone(),
            model_paths: self.inner.config.model_paths,
            stop,
            origin,
        };
        let manager = self.clone();
        let id = session_id.clone();
        // Tracked by the registry, so a graceful shutdown waits for (cancelled) runs.
        self.inner.ops.tracker().spawn(async move {
            runner::run(run).await;
            manager.stops().remove(&id);
        });
        Ok(StartResponse {
            session_id,
            status: "started".to_owned(),
            message,
            gpu_allocated: gpu,
            estimated_duration_minutes: None,
        })
    }

    /// Stops a running session within one batch; with `save_checkpoint` the best epoch
    /// so far is saved as a loadable model.
    pub async fn stop(
        &self,
        session_id: &str,
        save_checkpoint: bool,
    ) -> Result<StopResponse, HostError> {
        let info = self.info(session_id)?;
        if info.status.is_terminal() {
            return Err(HostError::Conflict {
                message: format!(
                    "session {session_id} is already {}",
                    session_status(info.status)
                ),
            });
        }
        let mut events = self
            .inner
            .ops
            .subscribe(session_id)
            .ok_or_else(|| not_found(session_id))?;
        // The runner sees the stop between batches, saves the checkpoint if asked, then
        // records the stop on the session.
        let stop = self.stops().get(session_id).cloned();
        match stop {
            Some(stop) => stop.stop(save_checkpoint),
            None => {
                if let Some(handle) = self.inner.ops.handle(session_id) {
                    handle.token().cancel();
                }
            }
        }
        let ended = tokio::time::timeout(STOP_WAIT, async {
            while let Some(event) = events.next().await {
                if event.operation.status.is_terminal() {
                    return Some(event.operation);
                }
            }
            None
        })
        .await;
        let info = match ended {
            Ok(Some(info)) => info,
            _ => {
                return Err(HostError::Timeout {
                    service: "training-host".to_owned(),
                    after: STOP_WAIT,
                });
            }
        };
        let saved = info
            .progress
            .context
            .get("checkpoint_saved")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let message = match info.status {
            OperationStatus::Cancelled if saved => {
                "stopped; the best epoch so far was saved as a checkpoint".to_owned()
            }
            OperationStatus::Cancelled => "stopped".to_owned(),
            other => format!(
                "the session ended as {} before the stop took effect",
                session_status(other)
            ),
        };
        Ok(StopResponse {
            session_id: session_id.to_owned(),
            status: "stopped".to_owned(),
            message,
            checkpoint_saved: saved,
        })
    }

    /// The status of one session.
    pub fn status(&self, session_id: &str) -> Result<StatusResponse, HostError> {
        Ok(view::status(&self.info(session_id)?))
    }

    /// The result of a finished session.
    pub fn result(&self, session_id: &str) -> Result<ResultResponse, HostError> {
        view::result(&self.info(session_id)?)
    }

    /// Every session, newest first.
    pub fn list(&self) -> SessionsResponse {
        let (infos, total, _) = self.inner.ops.list(&filter());
        SessionsResponse {
            total_sessions: total,
            sessions: infos.iter().map(view::summary).collect(),
            timestamp: chrono::Utc::now().to_rfc3339(),
        }
    }

    /// Removes a finished session (its saved model stays in the model store).
    pub fn delete(&self, session_id: &str) -> Result<(), HostError> {
        self.info(session_id)?;
        self.inner
            .ops
            .remove_finished(session_id)
            .map(|_| ())
            .map_err(|e| match e {
                HostError::Conflict { .. } => HostError::Conflict {
                    message: format!("session {session_id} is still running; stop it first"),
                },
                other => other,
            })
    }

    fn info(
        &self,
        session_id: &str,
    ) -> Result<host_service_base::operations::OperationInfo, HostError> {
        self.inner
            .ops
            .get(session_id)
            .filter(|info| info.operation_type == OPERATION_TYPE)
            .ok_or_else(|| not_found(session_id))
    }

    fn stops(&self) -> std::sync::MutexGuard<'_, HashMap<String, StopHandle>> {
        self.inner
            .stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who chose each end of the range: the request's dates win over the strategy's
/// (`yaml`, before overrides); with neither, the data decides.
fn range_origin(request: &StartRequest, yaml: &DateRange) -> RangeOrigin {
    let pick = |asked: bool, written: bool| match (asked, written) {
        (true, _) => DateSource::Request,
        (false, true) => DateSource::Strategy,
        (false, false) => DateSource::Data,
    };
    RangeOrigin {
        start: pick(request.start_date.is_some(), yaml.start.is_some()),
        end: pick(request.end_date.is_some(), yaml.end.is_some()),
    }
}

fn not_found(session_id: &str) -> HostError {
    HostError::not_found(format!("training session {session_id} not found"))
}
