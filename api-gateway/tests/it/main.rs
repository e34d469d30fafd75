//! api-gateway integration tests: the real gateway router on 127.0.0.1:0 talked to
//! over HTTP, with in-process fallbacks, an in-process IB Gateway simulator, and
//! data-host / training-host routers as hosts.

mod api;
mod archive;
mod cli_events;
mod cli_watch;
mod commands;
mod data;
mod events;
mod exactly_once;
mod socketio;
mod stream;
mod support;
mod topics;
mod training;
mod ui;
