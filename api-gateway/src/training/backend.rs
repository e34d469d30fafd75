//! Where sessions run: the in-process [`SessionManager`] (fallback) or a pool of
//! training-hosts (host mode). Both speak the training-host contract types, so the
//! training manager handles them alike.

use std::sync::Arc;

use host_service_base::{AsyncHostService, HostError};
use training_host::client::TrainingHostClient;
use training_host::sessions::SessionManager;
use training_host::sessions::wire::{ResultResponse, StartRequest, StatusResponse, StopResponse};
use url::Url;

use crate::pool::{HostPool, member_client};

/// The service name errors and health use.
pub const TRAINING_HOST: &str = "training-host";
/// The instance name of in-process sessions.
pub const IN_PROCESS: &str = "in-process";

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
    pub async fn start(&self, request: &StartRequest) -> Result<String, HostError> {
        match self {
            Self::Local(sessions) => {
                sessions.start(request.clone())?;
                Ok(IN_PROCESS.to_owned())
            }
            Self::Host(pool) => {
                let (member, _) = pool
                    .call(|m| async move { m.start(request, None).await })
                    .await?;
                Ok(member.base_url().to_string())
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
