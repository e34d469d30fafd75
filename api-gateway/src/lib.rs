//! api-gateway: the service backend code calls (port 8000). It routes each data and
//! training call to a host service or, in development, to the same library code
//! in-process. The gateway manager, CLI and operations API land here with issue 5.

/// Name this service reports in its health answer.
pub const SERVICE_NAME: &str = "api-gateway";
