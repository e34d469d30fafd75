//! The training manager: starts sessions where training runs ([`Backend`]) and
//! mirrors each one as a gateway operation.
//!
//! The strategy is resolved (by name from the strategies directory, or given as YAML)
//! and validated here first, so bad input is refused with the offending key named and
//! nothing is started anywhere. The session is started under the gateway operation's
//! id (task id = session id), then a mirror task polls it: progress flows into the
//! operation, its end becomes the operation's end, and cancelling the operation stops
//! the session on its host (saving a checkpoint of the best epoch).

pub mod backend;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_service_base::HostError;
use host_service_base::names::{SAFE_NAME, check_safe_name};
use host_service_base::operations::{OperationHandle, Operations};
use serde::{Deserialize, Serialize};
use serde_json::json;
use training_host::sessions::wire::{Progress, StartRequest, StatusResponse};
use training_host::strategy::{Overrides, apply_overrides, parse_strategy};

use crate::Origin;

pub use backend::{Backend, IN_PROCESS, Placed, TRAINING_HOST};

/// Operation type of a training run.
pub const TRAINING_OPERATION: &str = "training";

/// How often a running session is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Consecutive failed polls after which the session's host counts as lost (~5 s).
pub const MAX_POLL_FAILURES: u32 = 25;
/// How long a session whose start is unconfirmed waits for its instance to answer.
pub const UNCONFIRMED_PATIENCE: Duration = Duration::from_secs(600);

/// `POST /api/v1/trainings/start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// A strategy of the strategies directory, by file stem (see
    /// `/api/v1/strategies`); one of `strategy_name` and `strategy_yaml` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$",
        example = "rsi_macd_mlp"
    )]
    pub strategy_name: Option<String>,
    /// Or the strategy itself (KTRDR v2 YAML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_yaml: Option<String>,
    /// Overrides the strategy's symbols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["AAPL"]))]
    pub symbols: Option<Vec<String>>,
    /// Overrides the strategy's timeframes (1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w, 1M).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["1d"]))]
    pub timeframes: Option<Vec<String>>,
    /// First bar used (ISO date or time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// End of the bars used (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

/// Starts and mirrors training sessions.
#[derive(Debug, Clone)]
pub struct TrainingManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    ops: Operations,
    strategies_dir: PathBuf,
}

impl TrainingManager {
    /// Sessions on `backend`, mirrored in `ops`; strategies by name from `strategies_dir`.
    pub fn new(backend: Backend, ops: Operations, strategies_dir: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                ops,
                strategies_dir: strategies_dir.into(),
            }),
        }
    }

    /// Where sessions run.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The strategies directory.
    pub fn strategies_dir(&self) -> &Path {
        &self.inner.strategies_dir
    }

    /// The strategies available by name, sorted. Listed on the blocking pool: a
    /// directory read is disk I/O, and this answers an HTTP route.
    pub async fn strategies(&self) -> Vec<String> {
        let dir = self.inner.strategies_dir.clone();
        tokio::task::spawn_blocking(move || strategy_names(&dir))
            .await
            .unwrap_or_default()
    }

    /// The strategy YAML a request names or carries (a named one is read with
    /// `tokio::fs`, off the async threads).
    pub async fn strategy_yaml(&self, request: &TrainRequest) -> Result<String, HostError> {
        match (&request.strategy_name, &request.strategy_yaml) {
            (Some(_), Some(_)) => Err(HostError::bad_field(
                "strategy_name",
                "give strategy_name or strategy_yaml, not both",
            )),
            (None, None) => Err(HostError::bad_field(
                "strategy_name",
                "give strategy_name (a strategy of the strategies directory) or strategy_yaml",
            )),
            (None, Some(yaml)) => Ok(yaml.clone()),
            (Some(name), None) => {
                let name = name
                    .trim()
                    .trim_end_matches(".yaml")
                    .trim_end_matches(".yml");
                // A plain file stem of the strategies directory: no path, no hidden file.
                check_safe_name("strategy_name", name)?;
                for ext in ["yaml", "yml"] {
                    let path = self.inner.strategies_dir.join(format!("{name}.{ext}"));
                    match tokio::fs::read_to_string(&path).await {
                        Ok(text) => return Ok(text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(HostError::internal(format_args!(
                                "reading {}: {e}",
                                path.display()
                            )));
                        }
                    }
                }
                Err(HostError::not_found(format!(
                    "strategy `{name}` is not in {} (available: {})",
                    self.inner.strategies_dir.display(),
                    self.strategies().await.join(", ")
                )))
            }
        }
    }

    /// Validates the request, starts the session and its mirror; returns the task id.
    /// Nothing is started when anything is invalid or the backend refuses. The
    /// operation carries the origin's correlation id (and so does every event of it).
    /// With an operation id the registry already holds, nothing starts and that id is
    /// answered (a command delivered again).
    pub async fn start(&self, request: &TrainRequest, origin: Origin) -> Result<String, HostError> {
        if let Some(id) = &origin.operation_id
            && self.inner.ops.get(id).is_some()
        {
            return Ok(id.clone());
        }
        let correlation_id = origin.correlation_id;
        let yaml = self.strategy_yaml(request).await?;
        let strategy = parse_strategy(&yaml)?;
        let overrides = Overrides {
            symbols: request.symbols.clone(),
            timeframes: request.timeframes.clone(),
            start_date: request.start_date.clone(),
            end_date: request.end_date.clone(),
        };
        let strategy = apply_overrides(strategy, &overrides)?;

        let task_id = origin
            .operation_id
            .unwrap_or_else(|| Operations::new_id(TRAINING_OPERATION));
        let start = StartRequest {
            session_id: Some(task_id.clone()),
            strategy_yaml: yaml,
            symbols: request.symbols.clone(),
            timeframes: request.timeframes.clone(),
            start_date: request.start_date.clone(),
            end_date: request.end_date.clone(),
        };
        let Placed {
            instance,
            unconfirmed,
        } = self.inner.backend.start(&start).await?;
        let metadata = json!({
            "strategy": strategy.name,
            "symbols": strategy.training_data.symbols.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "timeframes": strategy.training_data.timeframes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "mode": self.inner.backend.mode(),
            "instance": instance,
            "session_id": task_id,
            "correlation_id": correlation_id,
            "start_confirmed": unconfirmed.is_none(),
        });
        let handle = match self
            .inner
            .ops
            .create_with_id(&task_id, TRAINING_OPERATION, metadata)
        {
            Ok(handle) => handle,
            Err(e) => {
                // Do not leave a session nobody watches.
                let _ = self.inner.backend.stop(&instance, &task_id, false).await;
                return Err(e);
            }
        };
        if let Some(why) = &unconfirmed {
            tracing::warn!(session = %task_id, %instance, error = %why, "training start not confirmed; waiting for the instance, not starting it elsewhere");
        }
        let manager = self.clone();
        let unconfirmed = unconfirmed.map(|e| e.to_string());
        self.inner.ops.tracker().spawn(async move {
            manager.mirror(handle, instance, unconfirmed).await;
        });
        Ok(task_id)
    }

    /// Stops the host sessions of training operations a previous run of this gateway
    /// left behind (`ids`: the operations the registry found running when it opened and
    /// marked failed). Nobody mirrors those sessions any more, so they would hold a
    /// host's GPU to the end; each is stopped with a checkpoint. In-process sessions
    /// died with the old process.
    pub async fn stop_orphans(&self, ids: &[String]) {
        let Backend::Host(_) = self.backend() else {
            return;
        };
        for id in ids {
            let Some(info) = self.inner.ops.get(id) else {
                continue;
            };
            if info.operation_type != TRAINING_OPERATION || info.metadata["mode"] != "host" {
                continue;
            }
            let Some(instance) = info.metadata["instance"].as_str() else {
                continue;
            };
            match self.inner.backend.stop(instance, id, true).await {
                Ok(stopped) => tracing::warn!(
                    session = %id, %instance, checkpoint = stopped.checkpoint_saved,
                    "stopped a session the previous gateway run left running"
                ),
                // Already over, or unknown to the host: nothing left to stop.
                Err(HostError::Conflict { .. } | HostError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(
                    session = %id, %instance, error = %e,
                    "could not stop a session the previous gateway run left running"
                ),
            }
        }
    }

    /// Follows one session until it ends or the operation is cancelled. With
    /// `unconfirmed` (the start's answer was lost and the instance unreachable), the
    /// operation says so and waits up to [`UNCONFIRMED_PATIENCE`] for the instance to
    /// answer: it then either knows the session (followed as usual) or does not (the
    /// start never took effect; the operation fails saying nothing ran).
    async fn mirror(&self, handle: OperationHandle, instance: String, unconfirmed: Option<String>) {
        let token = handle.token();
        let session = handle.id().to_owned();
        let backend = &self.inner.backend;
        handle.start();
        let mut unconfirmed_since = unconfirmed.map(|why| {
            let note = format!(
                "start not confirmed: {why}; waiting for {TRAINING_HOST} at {instance} to answer (the session is not started anywhere else)"
            );
            handle.progress(|p| {
                p.current_step = Some("start not confirmed".to_owned());
                p.message = Some(note.clone());
            });
            handle.warn(note);
            Instant::now()
        });
        let mut failures = 0u32;
        let mut last_progress = None;
        loop {
            tokio::select! {
                () = token.cancelled() => {
                    // Cancelled at the gateway: stop the session where it runs.
                    match backend.stop(&instance, &session, true).await {
                        Ok(stopped) => tracing::info!(%session, %instance, checkpoint = stopped.checkpoint_saved, "session stopped after the operation was cancelled"),
                        Err(HostError::Conflict { .. }) => {} // It had already ended.
                        Err(e) => tracing::warn!(%session, %instance, error = %e, "could not stop the session of a cancelled operation"),
                    }
                    return;
                }
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            let status = match backend.status(&instance, &session).await {
                Ok(status) => {
                    if unconfirmed_since.take().is_some() {
                        tracing::info!(%session, %instance, "training start confirmed: the instance knows the session");
                    }
                    status
                }
                Err(HostError::NotFound { .. }) if unconfirmed_since.is_some() => {
                    handle.fail(format!(
                        "the start never took effect on {TRAINING_HOST} at {instance}: it answered again and does not know session {session} (it never received the start, or the session was removed there); start the training again"
                    ));
                    return;
                }
                Err(HostError::NotFound { .. }) => {
                    handle.fail(format!(
                        "{TRAINING_HOST} at {instance} no longer knows session {session}"
                    ));
                    return;
                }
                Err(e) if unconfirmed_since.is_some() => {
                    if unconfirmed_since.is_some_and(|t| t.elapsed() >= UNCONFIRMED_PATIENCE) {
                        handle.fail(format!(
                            "{TRAINING_HOST} at {instance} did not answer for {} after a start whose answer was lost ({e}); whether session {session} runs there is unknown, and it was not started elsewhere",
                            humantime::format_duration(UNCONFIRMED_PATIENCE)
                        ));
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    if failures >= MAX_POLL_FAILURES {
                        handle.fail(format!(
                            "lost {TRAINING_HOST} at {instance} while training: {e}"
                        ));
                        return;
                    }
                    continue;
                }
            };
            failures = 0;
            let key = progress_key(&status);
            if last_progress.as_ref() != Some(&key) {
                mirror_progress(&handle, &status, &instance);
                last_progress = Some(key);
            }
            match status.status.as_str() {
                "completed" => {
                    match backend.result(&instance, &session).await {
                        Ok(result) => {
                            let mut summary = serde_json::to_value(&result).unwrap_or_default();
                            summary["instance"] = json!(instance);
                            handle.complete(summary);
                        }
                        Err(e) => {
                            handle.fail(format!("training completed but its result could not be read from {instance}: {e}"));
                        }
                    }
                    return;
                }
                "failed" => {
                    let why = status.error.unwrap_or_else(|| "no reason given".to_owned());
                    handle.fail(format!("training failed on {instance}: {why}"));
                    return;
                }
                "stopped" => {
                    handle.mark_cancelled(format!("the session was stopped on {instance}"));
                    return;
                }
                _ => {}
            }
        }
    }
}

/// What, when it changes, is worth an operation update.
fn progress_key(status: &StatusResponse) -> (String, Progress, serde_json::Value) {
    (
        status.status.clone(),
        status.progress.clone(),
        status.metrics.current.clone(),
    )
}

fn mirror_progress(handle: &OperationHandle, status: &StatusResponse, instance: &str) {
    let p = &status.progress;
    handle.progress(|op| {
        op.percentage = p.progress_percent;
        op.current_step = p.message.clone().or_else(|| Some(status.status.clone()));
        op.steps_completed = p.epoch;
        op.steps_total = p.total_epochs;
        op.items_processed = p.items_processed;
        op.items_total = (p.items_total > 0).then_some(p.items_total);
        op.current_item = p.current_item.clone();
        op.message = p.message.clone();
        op.context = json!({
            "session_status": status.status,
            "epoch": p.epoch,
            "total_epochs": p.total_epochs,
            "batch": p.batch,
            "total_batches": p.total_batches,
            "metrics": status.metrics.current,
            "instance": instance,
        });
    });
}

/// The strategy names of `dir`: the stems of its `.yaml`/`.yml` files that
/// `strategy_name` would accept, sorted; none when it cannot be read. Blocking.
fn strategy_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name
                .strip_suffix(".yaml")
                .or_else(|| name.strip_suffix(".yml"))?;
            // Only the names `strategy_yaml` would accept.
            SAFE_NAME.check(stem).is_ok().then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_are_plain_file_stems() {
        for good in ["rsi_macd_mlp", "v2.1-test", "A"] {
            assert!(check_safe_name("strategy_name", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(check_safe_name("strategy_name", bad).is_err(), "{bad}");
        }
    }

    async fn refused_field(manager: &TrainingManager, request: &TrainRequest) -> Option<String> {
        match manager.strategy_yaml(request).await {
            Err(HostError::BadRequest { field, .. }) => field,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_strategy_is_named_or_given_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("s1.yaml"), "name: s1").expect("write");
        let manager = TrainingManager::new(
            Backend::host(&["http://127.0.0.1:1".parse().expect("url")]).expect("pool"),
            Operations::in_memory(),
            dir.path(),
        );
        assert_eq!(manager.strategies().await, vec!["s1".to_owned()]);
        let by_name = TrainRequest {
            strategy_name: Some("s1".into()),
            ..TrainRequest::default()
        };
        assert_eq!(
            manager.strategy_yaml(&by_name).await.expect("found"),
            "name: s1"
        );

        assert_eq!(
            refused_field(&manager, &TrainRequest::default())
                .await
                .as_deref(),
            Some("strategy_name")
        );
        let both = TrainRequest {
            strategy_name: Some("s1".into()),
            strategy_yaml: Some("x".into()),
            ..TrainRequest::default()
        };
        assert_eq!(
            refused_field(&manager, &both).await.as_deref(),
            Some("strategy_name")
        );
        let traversal = TrainRequest {
            strategy_name: Some("../secrets".into()),
            ..TrainRequest::default()
        };
        assert_eq!(
            refused_field(&manager, &traversal).await.as_deref(),
            Some("strategy_name")
        );

        let missing = TrainRequest {
            strategy_name: Some("nope".into()),
            ..TrainRequest::default()
        };
        let err = manager.strategy_yaml(&missing).await.expect_err("missing");
        assert!(matches!(err, HostError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("s1"), "lists what exists: {err}");
    }
}
