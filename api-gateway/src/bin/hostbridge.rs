//! `hostbridge`: the CLI. `hostbridge serve` runs the whole system in one process on
//! the embedded default; the other commands talk to a running gateway.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    api_gateway::cli::run(api_gateway::cli::Cli::parse()).await
}
