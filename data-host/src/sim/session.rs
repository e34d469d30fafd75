//! One client connection: handshake, `startApi`, then requests until the client
//! leaves, a frame is malformed, or the simulator shuts down.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use host_service_base::CancellationToken;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::leases::{ClientIdLease, OpenRequests};
use super::proto::{
    CancelById, CurrentTime, ManagedAccounts, NextValidId, StartApiRequest, msg, req,
};
use super::stats::{ActiveConnection, Counters};
use super::wire::{self, Incoming, MAX_FRAME, Outbox};
use super::{SIM_ACCOUNT, Shared};

/// How long a client may take to greet and call `startApi`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long queued answers may take to drain after the client stopped talking.
const LINGER: Duration = Duration::from_secs(5);
/// Frames queued for the writer before senders wait.
const OUTBOX_DEPTH: usize = 256;

/// Serves one connection; returns once its socket is closed.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let _active = ActiveConnection::new(&shared.counters);
    tracing::debug!(%peer, "ib-sim: connection accepted");
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %err, "ib-sim: set_nodelay failed");
    }
    let (reader, writer) = stream.into_split();
    let (sender, receiver) = mpsc::channel(OUTBOX_DEPTH);
    let mut write_task = tokio::spawn(write_loop(writer, receiver, shutdown.clone()));
    // Cancels this connection's open requests when the session ends, however it ends.
    let requests = shutdown.child_token();
    let outcome = tokio::select! {
        outcome = session(reader, Outbox::new(sender), &shared, &requests) => outcome,
        () = shutdown.cancelled() => Ok(()),
    };
    requests.cancel();
    match outcome {
        Ok(()) => tracing::debug!(%peer, "ib-sim: connection closed"),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, "ib-sim: client left")
        }
        Err(err) => tracing::info!(%peer, %err, "ib-sim: connection dropped"),
    }
    if tokio::time::timeout(LINGER, &mut write_task).await.is_err() {
        write_task.abort();
    }
}

/// Writes queued frames until every sender is gone or the simulator shuts down.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut frames: mpsc::Receiver<Vec<u8>>,
    shutdown: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => return,
            frame = frames.recv() => frame,
        };
        let Some(frame) = frame else { break };
        let written = tokio::select! {
            () = shutdown.cancelled() => return,
            written = writer.write_all(&frame) => written,
        };
        if let Err(err) = written {
            tracing::debug!(%err, "ib-sim: write failed");
            return;
        }
    }
    if let Err(err) = writer.shutdown().await {
        tracing::debug!(%err, "ib-sim: shutdown of the write half failed");
    }
}

fn invalid(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

async fn session(
    mut reader: OwnedReadHalf,
    out: Outbox,
    shared: &Arc<Shared>,
    requests: &CancellationToken,
) -> io::Result<()> {
    let greeting = tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_handshake(&mut reader));
    let (client_min, client_max) = greeting
        .await
        .map_err(|_| invalid("no handshake in time".into()))??;
    let version = shared.config.server_version.min(client_max);
    if version < client_min {
        return Err(invalid(format!(
            "client needs server version {client_min}..{client_max}; simulator has {version}"
        )));
    }
    out.send_frame(wire::handshake_reply(version)).await;

    let start = tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_frame(&mut reader, MAX_FRAME));
    let start = Incoming::split(
        start
            .await
            .map_err(|_| invalid("no startApi in time".into()))??,
    )
    .filter(|m| m.protobuf && m.id == req::START_API)
    .ok_or_else(|| invalid("first message after the handshake is not startApi".into()))?;
    let client_id = StartApiRequest::decode(start.payload.as_slice())
        .ok()
        .and_then(|m| m.client_id)
        .unwrap_or(0);
    let Some(_lease) = ClientIdLease::take(&shared.client_ids, client_id) else {
        tracing::info!(client_id, "ib-sim: client id already in use; refusing");
        out.error(
            -1,
            326,
            "Unable to connect as the client id is already in use. Retry with a unique client id.",
        )
        .await;
        return Ok(());
    };
    tracing::debug!(client_id, version, "ib-sim: API started");
    let mut conn = Connection {
        shared: Arc::clone(shared),
        out,
        requests: requests.clone(),
        open: OpenRequests::default(),
    };
    conn.greet().await;
    loop {
        let body = wire::read_frame(&mut reader, MAX_FRAME).await?;
        let message = Incoming::split(body)
            .ok_or_else(|| invalid("frame too short for a message id".into()))?;
        conn.dispatch(message).await;
    }
}

/// A connection past `startApi`.
pub(super) struct Connection {
    pub(super) shared: Arc<Shared>,
    pub(super) out: Outbox,
    /// Parent of every open request's token.
    pub(super) requests: CancellationToken,
    pub(super) open: OpenRequests,
}

impl Connection {
    async fn greet(&self) {
        self.out
            .send(msg::NEXT_VALID_ID, &NextValidId { order_id: Some(1) })
            .await;
        self.send_accounts().await;
        for (code, text) in [
            (2104, "Market data farm connection is OK:usfarm"),
            (2106, "HMDS data farm connection is OK:ushmds"),
            (2158, "Sec-def data farm connection is OK:secdefnj"),
        ] {
            self.out.error(-1, code, text).await;
        }
    }

    async fn send_accounts(&self) {
        let accounts = ManagedAccounts {
            accounts_list: Some(SIM_ACCOUNT.to_owned()),
        };
        self.out.send(msg::MANAGED_ACCTS, &accounts).await;
    }

    async fn dispatch(&mut self, message: Incoming) {
        if !message.protobuf {
            tracing::debug!(
                id = message.id,
                "ib-sim: text-framed message ignored (server version >= 213 is protobuf)"
            );
            return;
        }
        let payload = message.payload.as_slice();
        match message.id {
            req::REQ_HISTORICAL_DATA => self.historical_data(payload).await,
            req::CANCEL_HISTORICAL_DATA => self.cancel_historical_data(payload).await,
            req::REQ_HEAD_TIMESTAMP => self.head_timestamp(payload).await,
            req::REQ_CONTRACT_DATA => self.contract_details(payload).await,
            req::REQ_CURRENT_TIME => {
                let now = CurrentTime {
                    time: Some(Utc::now().timestamp()),
                };
                self.out.send(msg::CURRENT_TIME, &now).await;
            }
            req::REQ_CURRENT_TIME_IN_MILLIS => {
                let now = CurrentTime {
                    time: Some(Utc::now().timestamp_millis()),
                };
                self.out.send(msg::CURRENT_TIME_IN_MILLIS, &now).await;
            }
            req::REQ_MANAGED_ACCTS => self.send_accounts().await,
            req::REQ_IDS => {
                self.out
                    .send(msg::NEXT_VALID_ID, &NextValidId { order_id: Some(1) })
                    .await;
            }
            // Answered at once, so there is never anything left to cancel.
            req::CANCEL_HEAD_TIMESTAMP | req::CANCEL_CONTRACT_DATA | req::REQ_MARKET_DATA_TYPE => {
                tracing::debug!(id = message.id, "ib-sim: nothing to do");
            }
            other => tracing::info!(id = other, "ib-sim: unsupported message ignored"),
        }
    }

    async fn cancel_historical_data(&self, payload: &[u8]) {
        Counters::bump(&self.shared.counters.cancels);
        let Some(id) = decode::<CancelById>(payload).and_then(|m| m.req_id) else {
            return;
        };
        if self.open.cancel(id) {
            tracing::debug!(id, "ib-sim: historical request cancelled");
        } else {
            self.out
                .error(
                    id,
                    366,
                    format!("No historical data query found for ticker id:{id}"),
                )
                .await;
        }
    }
}

/// Decodes a protobuf payload; a malformed one is logged and yields `None`.
pub(super) fn decode<M: Message + Default>(payload: &[u8]) -> Option<M> {
    match M::decode(payload) {
        Ok(message) => Some(message),
        Err(err) => {
            tracing::warn!(%err, kind = std::any::type_name::<M>(), "ib-sim: undecodable request ignored");
            None
        }
    }
}
