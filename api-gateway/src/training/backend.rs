//! Where sessions run: the in-process [`SessionManager`] (fallback) or a pool of
//! training-hosts (host mode). Both speak the training-host contract types, so the
//! training manager handles them alike.

use std::sync::Arc;

use host_service_base::{AsyncHostService, HostError};
use training_host::client::{StartUnconfirmed, TrainingHostClient};
use training_host::sessions::SessionManager;
use training_host::sessions::wire::{ResultResponse, StartRequest, StatusResponse, StopResponse};
use url::Url;

use crate::pool::{HostPool, member_client};

/// The service name errors and health use.
pub const TRAINING_HOST: &str = "training-host";
/// The instance name of in-process sessions.
pub const IN_PROCESS: &str = "in-process";

/// Where a start put its session.
#[derive(Debug)]
pub struct Placed {
    /// The instance (URL, or `in-process`).
    pub instance: String,
    /// Why the start is not confirmed, when its answer was lost and the instance could
    /// not be asked again: the session may or may not be running there.
    pub unconfirmed: Option<HostError>,
}

/// Whether `error` is a start whose outcome is unknown
/// ([`training_host::client::StartUnconfirmed`]).
fn is_unconfirmed(error: &HostError) -> bool {
    std::error::Error::source(error).is_some_and(|s| s.is::<StartUnconfirmed>())
}

/// Where sessions run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In this process.
    Local(SessionManager),
    /// On training-host instances; a session stays on the instance that started it.
    Host(Arc<HostPool<TrainingHostClient>>),
}

impl Backend {
    /// A pool of training-hosts at `urls` ([`member_client`]).
    pub fn host(urls: &[Url]) -> Result<Self, HostError> {
        let members = urls
            .iter()
            .map(|url| {
                Ok(TrainingHostClient::with_client(member_client(
                    TRAINING_HOST,
                    url,
                )?))
            })
            .collect::<Result<Vec<_>, HostError>>()?;
        Ok(Self::Host(Arc::new(HostPool::new(TRAINING_HOST, members)?)))
    }

    /// `host` or `local`.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Host(_) => "host",
        }
    }

    fn member(
        pool: &HostPool<TrainingHostClient>,
        instance: &str,
    ) -> Result<Arc<TrainingHostClient>, HostError> {
        pool.member(instance).ok_or_else(|| {
            HostError::internal(format_args!("no training-host instance {instance}"))
        })
    }

    /// Starts a session (with the caller's `session_id`, so a fail-over can never
    /// start it twice); returns the instance running it.
    ///
    /// The rule against double work: another instance is tried only when the start
    /// provably did not take effect on this one (the connection was refused, or it
    /// answered and refused). When the answer was lost and the instance then could not
    /// be reached, the session may be running there: it is placed on that instance,
    /// unconfirmed, and never started elsewhere.
    pub async fn start(&self, request: &StartRequest) -> Result<Placed, HostError> {
        match self {
            Self::Local(sessions) => {
                sessions.start(request.clone())?;
                Ok(Placed {
                    instance: IN_PROCESS.to_owned(),
                    unconfirmed: None,
                })
            }
            Self::Host(pool) => {
                let (member, outcome) = pool
                    .call(|m| async move {
                        match m.start(request, None).await {
                            Ok(_) => Ok(None),
                            // Bound to this instance: not an error the pool may fail over.
                            Err(e) if is_unconfirmed(&e) => Ok(Some(e)),
                            Err(e) => Err(e),
                        }
                    })
                    .await?;
                Ok(Placed {
                    instance: member.base_url().to_string(),
                    unconfirmed: outcome,
                })
            }
        }
    }

    /// The session's status.
    pub async fn status(&self, instance: &str, id: &str) -> Result<StatusResponse, HostError> {
        match self {
            Self::Local(sessions) => sessions.status(id),
            Self::Host(pool) => Self::member(pool, instance)?.status(id, None).await,
        }
    }

    /// The session's result.
    pub async fn result(&self, instance: &str, id: &str) -> Result<ResultResponse, HostError> {
        match self {
            Self::Local(sessions) => sessions.result(id),
            Self::Host(pool) => Self::member(pool, instance)?.result(id, None).await,
        }
    }

    /// Stops the session within a batch, saving a checkpoint when asked.
    pub async fn stop(
        &self,
        instance: &str,
        id: &str,
        save_checkpoint: bool,
    ) -> Result<StopResponse, HostError> {
        match self {
            Self::Local(sessions) => sessions.stop(id, save_checkpoint).await,
            Self::Host(pool) => {
                Self::member(pool, instance)?
                    .stop(id, save_checkpoint, None)
                    .await
            }
        }
    }
}
