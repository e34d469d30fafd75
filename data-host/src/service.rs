//! Running data-host: the provider chosen by configuration behind the HTTP API, on the
//! shared server scaffold. `main` only parses arguments and calls [`serve`]; tests call
//! the same function on 127.0.0.1 port 0.

use std::sync::Arc;
use std::time::Duration;

use host_service_base::CancellationToken;
use host_service_base::server::{
    Readiness, ServeError, Server, ServerConfig, ShutdownReport, ValidationStyle,
};
use tokio::net::TcpListener;

use crate::SERVICE_NAME;
use crate::api::{self, ApiState};
use crate::provider::DataProvider;

/// Default time a data request may take (IB pacing can hold long ranges for minutes).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The server around `provider` (also usable with `oneshot` in tests).
pub fn server(provider: Arc<dyn DataProvider>, request_timeout: Duration) -> Server {
    let mut config = ServerConfig::new(SERVICE_NAME);
    config.request_timeout = request_timeout;
    // KTRDR's data-host is FastAPI: its clients read a malformed request's 422 list.
    config.validation = ValidationStyle::FastApi;
    let readiness = Arc::new(ProviderReady(provider.clone()));
    Server::new(config, api::router(ApiState::new(provider))).readiness(readiness)
}

/// `/ready`: the local store is always ready; a broker-backed source is ready while
/// its upstream is connected.
struct ProviderReady(Arc<dyn DataProvider>);

#[async_trait::async_trait]
impl Readiness for ProviderReady {
    async fn check(&self) -> Result<serde_json::Value, String> {
        let status = self.0.status();
        status.ready()?;
        Ok(serde_json::to_value(&status).unwrap_or_default())
    }
}

/// Serves data-host on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    provider: Arc<dyn DataProvider>,
    request_timeout: Duration,
    shutdown: CancellationToken,
) -> Result<ShutdownReport, ServeError> {
    server(provider, request_timeout)
        .serve(listener, shutdown)
        .await
}
