//! Following an operation to its end with a progress bar; Ctrl-C cancels it.
//!
//! The operation is read once at the start (it may have ended already) and once at the
//! end (the final record); in between, its progress comes from the gateway's event
//! stream (`GET /api/v1/events?type=operation.`), not from polling.

use std::time::Duration;

use host_service_base::HostError;
use host_service_base::operations::{OperationInfo, OperationProgress, OperationStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::client::GatewayClient;
use super::sse::{self, EventStream, SseError};

/// Reconnects of the event stream in a row before giving up.
const RECONNECTS: u32 = 5;

/// Pause before a reconnect, times the failures in a row.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// The event types that end an operation.
const TERMINAL: [&str; 3] = [
    "operation.completed",
    "operation.failed",
    "operation.cancelled",
];

/// How a watched operation ended.
#[derive(Debug)]
pub enum Ended {
    /// It reached a terminal state.
    Finished(Box<OperationInfo>),
    /// The user pressed Ctrl-C and the operation was cancelled.
    Interrupted(Box<OperationInfo>),
}

/// Reads one operation.
pub async fn fetch(client: &GatewayClient, id: &str) -> Result<OperationInfo, HostError> {
    let answer: Value = client
        .get(&format!("/api/v1/operations/{}", encode(id)), &[])
        .await?;
    serde_json::from_value(answer["data"].clone()).map_err(|e| HostError::Decode {
        what: "operation".into(),
        message: e.to_string(),
    })
}

/// Percent-encodes an id for a path segment.
pub fn encode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// Follows operation `id` until it ends, drawing a progress bar on stderr (hidden when
/// `quiet` or stderr is not a terminal). Ctrl-C cancels the operation at the gateway.
pub async fn follow(client: &GatewayClient, id: &str, quiet: bool) -> Result<Ended, HostError> {
    let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let interrupt = tokio::signal::ctrl_c();
    tokio::select! {
        info = until_terminal(client, id, &bar) => {
            bar.finish_and_clear();
            Ok(Ended::Finished(Box::new(info?)))
        }
        _ = interrupt => {
            bar.finish_and_clear();
            eprintln!("Ctrl-C: cancelling operation {id} ...");
            client
                .delete(
                    &format!("/api/v1/operations/{}", encode(id)),
                    &json!({ "reason": "cancelled from the hostbridge CLI (Ctrl-C)" }),
                )
                .await?;
            let info = fetch(client, id).await?;
            eprintln!("operation {id} is {}", info.status.as_str());
            Ok(Ended::Interrupted(Box::new(info)))
        }
    }
}

/// The operation's final record, followed through the gateway's event stream.
///
/// The stream is opened *before* the operation is read, so an end that comes between
/// the two is either in the record or on the stream. When the stream breaks, the
/// operation is read again and the stream reopened, at most [`RECONNECTS`] times in a
/// row.
async fn until_terminal(
    client: &GatewayClient,
    id: &str,
    bar: &ProgressBar,
) -> Result<OperationInfo, HostError> {
    let mut failures = 0u32;
    loop {
        let stream = sse::open(client, "operation.").await;
        let info = fetch(client, id).await?;
        show(bar, &info.progress);
        if info.status.is_terminal() {
            return Ok(info);
        }
        let broke = match stream {
            Ok(mut stream) => match follow_stream(&mut stream, id, bar).await {
                Ok(()) => return fetch(client, id).await,
                Err(Dropped { events, error }) => {
                    // A stream that delivered something was healthy for a while.
                    if events > 0 {
                        failures = 0;
                    }
                    error.to_string()
                }
            },
            Err(e) => e.to_string(),
        };
        failures += 1;
        if failures > RECONNECTS {
            return Err(HostError::unavailable(
                "the gateway's event stream",
                format!(
                    "following operation {id}: the event stream broke {failures} times in a row, last: {broke}"
                ),
            ));
        }
        tracing::debug!(%broke, failures, "event stream lost; reading the operation and reconnecting");
        tokio::time::sleep(RECONNECT_PAUSE * failures).await;
    }
}

/// The stream broke after `events` events of the operation.
struct Dropped {
    events: u64,
    error: SseError,
}

/// Reads the stream until the operation's terminal event.
async fn follow_stream(
    stream: &mut EventStream,
    id: &str,
    bar: &ProgressBar,
) -> Result<(), Dropped> {
    let mut events = 0;
    loop {
        let event = stream
            .next()
            .await
            .map_err(|error| Dropped { events, error })?;
        let Ok(envelope) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        if envelope["subject"] != id {
            continue;
        }
        events += 1;
        if let Ok(progress) = serde_json::from_value(envelope["data"]["progress"].clone()) {
            show(bar, &progress);
        }
        if TERMINAL.contains(&event.event.as_str()) {
            return Ok(());
        }
    }
}

fn show(bar: &ProgressBar, progress: &OperationProgress) {
    bar.set_position(progress.percentage.round().clamp(0.0, 100.0) as u64);
    if let Some(step) = progress.current_step.as_deref() {
        bar.set_message(step.to_owned());
    }
}

/// The exit code for an operation's final state.
pub fn exit_code(status: OperationStatus) -> u8 {
    match status {
        OperationStatus::Completed => 0,
        OperationStatus::Cancelled => 130,
        _ => 1,
    }
}
