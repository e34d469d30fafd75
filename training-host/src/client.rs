//! `TrainingHostClient`: the typed client of a training-host, or of a KTRDR training host
//! service (the same contract on :5002). It speaks the wire types of
//! [`sessions::wire`](crate::sessions::wire), so callers handle remote and in-process
//! sessions alike.
//!
//! Errors arrive as [`HostError`] variants through [`HostClient`]: 404 `NotFound`, 409
//! `Conflict`, 400/422 `BadRequest` naming the offending key (e.g.
//! `model.training.epochs`), and a full session table `Busy` from training-host (whose
//! envelope says so) or `Unavailable` from a KTRDR service (a bare 503 `{"detail"}`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use host_service_base::health::{DEFAULT_HEALTH_TTL, HealthCache};
use host_service_base::{AsyncHostService, CancellationToken, HostClient, HostError, HostRequest};
use serde::de::DeserializeOwned;

use crate::SERVICE_NAME;
use crate::sessions::STOP_WAIT;
use crate::sessions::wire::{
    ResultResponse, SessionsResponse, StartRequest, StartResponse, StatusResponse, StopRequest,
    StopResponse,
};

/// Longest one `stop` attempt may take: the service itself waits up to [`STOP_WAIT`] for
/// the session to reach a batch boundary, and must be given time to answer after that.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(STOP_WAIT.as_secs() + 15);

const _: () = assert!(
    STOP_TIMEOUT.as_secs() > host_service_base::server::DEFAULT_REQUEST_TIMEOUT.as_secs(),
    "a stop attempt outlasts the service's own request timeout, so its answer arrives"
);

/// The source of the error of a start whose outcome is unknown: its first answer was
/// lost (it may have started the session) and the instance could not be reached to
/// find out. The session must not be started elsewhere until the instance answers.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "start of session {session_id} not confirmed: its answer was lost ({first}) and the instance could not be asked again ({last})"
)]
pub struct StartUnconfirmed {
    /// The session the start named.
    pub session_id: String,
    /// How the first attempt ended.
    pub first: String,
    /// How the last replay ended.
    pub last: String,
}

/// A client of one training-host. Clones share the connection pool and health cache.
#[derive(Debug, Clone)]
pub struct TrainingHostClient {
    client: HostClient,
    health: Arc<HealthCache>,
}

impl TrainingHostClient {
    /// A client of the training-host at `base_url` with default settings.
    pub fn new(base_url: &str) -> Result<Self, HostError> {
        Ok(Self::with_client(HostClient::new(SERVICE_NAME, base_url)?))
    }

    /// A client over an existing (shared) HTTP client.
    pub fn with_client(client: HostClient) -> Self {
        Self {
            client,
            health: Arc::new(HealthCache::new(DEFAULT_HEALTH_TTL)),
        }
    }

    /// `POST /training/start`.
    ///
    /// Without a `session_id` the call is never replayed once it may have reached the
    /// service (the client only retries when no connection was made): each arrival
    /// starts a new session under a fresh id.
    ///
    /// With a caller-chosen `session_id` the start runs at most once on this instance
    /// and is never reported as "not started" when it may have started:
    /// - a failure that provably did not take effect ([`HostError::did_not_take_effect`]:
    ///   refused connection, an answer refusing it, `Busy`) is returned as it is, so a
    ///   caller may start the session elsewhere;
    /// - after a failure that may have taken effect (a lost answer) the start is
    ///   replayed here with the same id: a `Conflict` then means the first attempt
    ///   started it, which is confirmed with the session's status and answered as
    ///   started;
    /// - when the replay cannot reach the instance either, the outcome is unknown and
    ///   the error says so ([`StartUnconfirmed`] as its source, which
    ///   `did_not_take_effect` is false for): the session must not be started
    ///   anywhere else until this instance answers again.
    pub async fn start(
        &self,
        request: &StartRequest,
        cancel: Option<&CancellationToken>,
    ) -> Result<StartResponse, HostError> {
        let call = || -> Result<HostRequest<'_>, HostError> {
            Ok(self
                .client
                .post("/training/start")
                .json(request)?
                .cancel_opt(cancel))
        };
        let Some(session_id) = &request.session_id else {
            return call()?.idempotent(false).send_json().await;
        };
        let first = match call()?.max_retries(0).send_json().await {
            Ok(started) => return Ok(started),
            // Only a lost answer is replayed: a refusal, or the service's own answer
            // (a 409 here is someone else's session), is final.
            Err(e) if e.did_not_take_effect() || !e.is_retryable() => return Err(e),
            Err(e) => e,
        };
        tracing::debug!(error = %first, session = %session_id, "start answer lost; replaying with the same id");
        let retries = self.client.retry_policy().max_retries.max(1);
        let replay = call()?
            .idempotent(true)
            .max_retries(retries - 1)
            .send_json::<StartResponse>()
            .await;
        let unconfirmed = |last: &HostError| HostError::Unavailable {
            service: SERVICE_NAME.to_owned(),
            source: Box::new(StartUnconfirmed {
                session_id: session_id.clone(),
                first: first.to_string(),
                last: last.to_string(),
            }),
        };
        match replay {
            Ok(started) => Ok(started),
            Err(HostError::Conflict { .. }) => match self.status(session_id, cancel).await {
                // Our own first attempt started it: the duplicate id proves it.
                Ok(status) => Ok(StartResponse {
                    session_id: session_id.clone(),
                    status: "started".to_owned(),
                    message: format!(
                        "started by an earlier attempt whose answer was lost; the session is {}",
                        status.status
                    ),
                    gpu_allocated: status.gpu_usage.is_some(),
                    estimated_duration_minutes: None,
                }),
                Err(e) => Err(unconfirmed(&e)),
            },
            // The service answered and refused (busy, bad request): with the duplicate
            // check ahead of every other, a refusal means the first attempt did not
            // start it either.
            Err(e) if e.did_not_take_effect() && !e.never_sent() => Err(e),
            Err(e) => Err(unconfirmed(&e)),
        }
    }

    /// `POST /training/stop`: stops a running session within one batch, saving the best
    /// epoch so far as a loadable model when `save_checkpoint` is set. Safe to replay
    /// (stopping twice leaves one stopped session); a replay of a stop that had already
    /// taken effect answers `Conflict` ("already stopped"), marked as possibly ours.
    pub async fn stop(
        &self,
        session_id: &str,
        save_checkpoint: bool,
        cancel: Option<&CancellationToken>,
    ) -> Result<StopResponse, HostError> {
        let body = StopRequest {
            session_id: session_id.to_owned(),
            save_checkpoint,
        };
        self.replayable(|| {
            Ok(self
                .client
                .post("/training/stop")
                .json(&body)?
                .timeout(STOP_TIMEOUT)
                // Room for one replay after a lost answer, not four full waits.
                .deadline(STOP_TIMEOUT * 2)
                .cancel_opt(cancel))
        })
        .await
    }

    /// `GET /training/status/{id}`.
    pub async fn status(
        &self,
        session_id: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<StatusResponse, HostError> {
        let path = format!("/training/status/{}", path_segment(session_id)?);
        self.client.get_json(&path, cancel).await
    }

    /// `GET /training/result/{id}`: `BadRequest` while the session has not finished.
    pub async fn result(
        &self,
        session_id: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<ResultResponse, HostError> {
        let path = format!("/training/result/{}", path_segment(session_id)?);
        self.client.get_json(&path, cancel).await
    }

    /// `GET /training/sessions`: every session, newest first.
    pub async fn sessions(
        &self,
        cancel: Option<&CancellationToken>,
    ) -> Result<SessionsResponse, HostError> {
        self.client.get_json("/training/sessions", cancel).await
    }

    /// `DELETE /training/sessions/{id}`: forgets a finished session (its model stays).
    /// `Conflict` while it runs. A retried delete whose first attempt got through
    /// answers `NotFound`.
    pub async fn delete(
        &self,
        session_id: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<(), HostError> {
        let path = format!("/training/sessions/{}", path_segment(session_id)?);
        self.client
            .request(Method::DELETE, &path)
            .cancel_opt(cancel)
            .send_bytes()
            .await
            .map(drop)
    }

    /// Sends a POST that is safe to repeat but whose repeat answers `Conflict` when the
    /// first attempt took effect. One attempt first; only a transient failure (the
    /// answer may have been lost) is followed by the client's retries, and a `Conflict`
    /// then says it may be our own earlier attempt. `Busy` is final: the service
    /// answered, and its limit will not clear within a retry's backoff.
    async fn replayable<'a, T, F>(&'a self, call: F) -> Result<T, HostError>
    where
        T: DeserializeOwned,
        F: Fn() -> Result<HostRequest<'a>, HostError>,
    {
        let retries = self.client.retry_policy().max_retries;
        match call()?.max_retries(0).send_json().await {
            Err(first)
                if retries > 0
                    && first.is_retryable()
                    && !matches!(first, HostError::Busy { .. }) =>
            {
                tracing::debug!(error = %first, "replaying a call that is safe to repeat");
                call()?
                    .idempotent(true)
                    .max_retries(retries - 1)
                    .send_json()
                    .await
                    .map_err(|e| match e {
                        HostError::Conflict { message } => HostError::Conflict {
                            message: format!(
                                "{message} (retried after: {first}; that attempt may have taken effect)"
                            ),
                        },
                        other => other,
                    })
            }
            other => other,
        }
    }
}

impl AsyncHostService for TrainingHostClient {
    fn client(&self) -> &HostClient {
        &self.client
    }

    fn health_cache(&self) -> &HealthCache {
        &self.health
    }
}

/// `id` as one percent-encoded path segment, so a user's id can never reach another
/// route (`../health`) or carry a query. `.` and `..` are refused: URL parsing resolves
/// them (encoded or not) instead of sending them.
fn path_segment(id: &str) -> Result<String, HostError> {
    if matches!(id, "" | "." | "..") {
        return Err(HostError::bad_field(
            "session_id",
            format!("`{id}` cannot name a session in a URL"),
        ));
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    Ok(out)
}
