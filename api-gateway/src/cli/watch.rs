//! Following an operation to its end with a progress bar; Ctrl-C cancels it.

use std::time::Duration;

use host_service_base::HostError;
use host_service_base::operations::{OperationInfo, OperationStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::client::GatewayClient;

/// How often the operation is polled.
const POLL: Duration = Duration::from_millis(250);

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
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let info = fetch(client, id).await?;
        bar.set_position(info.progress.percentage.round().clamp(0.0, 100.0) as u64);
        if let Some(step) = info.progress.current_step.as_deref() {
            bar.set_message(step.to_owned());
        }
        if info.status.is_terminal() {
            bar.finish_and_clear();
            return Ok(Ended::Finished(Box::new(info)));
        }
        tokio::select! {
            _ = &mut interrupt => {
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
                return Ok(Ended::Interrupted(Box::new(info)));
            }
            () = tokio::time::sleep(POLL) => {}
        }
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
