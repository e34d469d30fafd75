//! Running training-host: sessions behind the HTTP API on the shared server scaffold.
//! `main` parses arguments and calls [`serve`]; tests call it on 127.0.0.1 port 0.

use host_service_base::CancellationToken;
use host_service_base::server::{
    ServeError, Server, ServerConfig, ShutdownReport, ValidationStyle,
};
use tokio::net::TcpListener;

use crate::SERVICE_NAME;
use crate::api;
use crate::sessions::SessionManager;

/// The server around `sessions`: at shutdown their runs are cancelled (a running
/// session is recorded as stopped) and drained.
pub fn server(sessions: SessionManager, max_sessions: usize) -> Server {
    let ops = sessions.operations().clone();
    let mut config = ServerConfig::new(SERVICE_NAME);
    // KTRDR's training host is FastAPI: its clients read a malformed request's 422 list.
    config.validation = ValidationStyle::FastApi;
    Server::new(config, api::router(sessions, max_sessions)).operations(ops)
}

/// Serves training-host on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    sessions: SessionManager,
    max_sessions: usize,
    shutdown: CancellationToken,
) -> Result<ShutdownReport, ServeError> {
    server(sessions, max_sessions)
        .serve(listener, shutdown)
        .await
}
