//! The `hostbridge` command line: `serve` runs the whole system in one process; every
//! other command is a client of a running gateway, using one HTTP client for the whole
//! command.
//!
//! By role: [`arguments`] is what a user may type (clap), `dispatch` runs it, and
//! `rendering` is what gets printed; the other modules are one command family each.

pub mod archive;
pub mod arguments;
pub mod client;
pub mod commands;
mod dispatch;
pub mod dlq;
pub mod events;
mod rendering;
pub mod serve;
pub mod sse;
pub mod stream;
pub mod topics;
pub mod watch;

pub use arguments::{
    Cli, Command, DataCommand, LoadArgs, OpsCommand, TrainArgs, TrainingOverrides, train_body,
};
use dispatch::explain;
pub use dispatch::run;
pub use rendering::print_line;
