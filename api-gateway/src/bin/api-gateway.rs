//! `api-gateway`: the gateway service (:8000) and a healthcheck for containers.

use std::process::ExitCode;

use api_gateway::cli::serve::{self, ServeArgs};
use clap::{Parser, Subcommand};
use host_service_base::service::healthcheck_exit;

#[derive(Parser, Debug)]
#[command(
    name = "api-gateway",
    version,
    about = "hostbridge gateway: routes data and training calls to host services or in-process fallbacks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the /api/v1 API.
    Serve(Box<ServeArgs>),
    /// Exit 0 when the gateway at --url answers /health healthy (for container healthchecks).
    Healthcheck {
        /// Base URL of the gateway.
        #[arg(long, env = "API_GATEWAY_URL", default_value = "http://127.0.0.1:8000")]
        url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Healthcheck { url } => healthcheck_exit(api_gateway::SERVICE_NAME, &url).await,
        Command::Serve(args) => match serve::run(*args).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("api-gateway: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
