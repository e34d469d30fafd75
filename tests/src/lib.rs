//! Workspace-level end-to-end tests live in `tests/tests/`; this library holds the shared
//! helpers that start services on 127.0.0.1 port 0.
//!
//! - [`bins`]: the workspace's binaries (built on demand) for tests that run them.
//! - [`process`]: a binary started as a service on port 0, its address read from its
//!   JSON log, killed when dropped.

pub mod bins;
pub mod process;
