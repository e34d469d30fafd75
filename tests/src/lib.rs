//! Workspace-level end-to-end tests live in `tests/tests/`; this library holds the shared
//! helpers that start services on 127.0.0.1 port 0.
//!
//! - [`bins`]: the workspace's binaries (built on demand) for tests that run them.
//! - [`process`]: a binary started as a service on port 0, its address read from its
//!   JSON log, killed when dropped.
//! - [`stack`]: the simulator, the host services and the gateway as processes, and the
//!   HTTP calls made against them.
//! - [`docker`]: the Docker engine and the compose tool through their own CLIs: the
//!   project image built from the Dockerfile, compose projects started and removed.
//! - [`browser`]: headless Chromium and chromedriver for the operations page's test,
//!   skipped with a reason or required by CI.
//! - [`peers`]: the test peers written by others (python-socketio, confluent-kafka, the
//!   tansu broker), skipped with a reason or required by CI.

pub mod bins;
pub mod browser;
pub mod docker;
pub mod peers;
pub mod process;
pub mod stack;
