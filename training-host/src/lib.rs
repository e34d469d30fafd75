//! training-host: the model-training host service (KTRDR training host contract, port 5002).
//!
//! Strategy config, features, labels, MLP training sessions and the model store land here
//! with issue 4; for now the crate only fixes its place in the dependency chain.

/// Name this service reports in `/health`.
pub const SERVICE_NAME: &str = "training-host";
