//! Workspace-level end-to-end tests live in `tests/tests/`; this library holds the shared
//! helpers that start services on 127.0.0.1 port 0.
