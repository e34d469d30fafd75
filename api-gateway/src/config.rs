//! Where each service runs, read from the environment (the variables of DESIGN.md).
//!
//! `USE_IB_HOST_SERVICE` / `USE_TRAINING_HOST_SERVICE` switch a service to its host
//! (true/1/yes/on) or to the in-process fallback (false/0/no/off, the default);
//! `IB_HOST_SERVICE_URL` / `TRAINING_HOST_SERVICE_URL` say where the host runs — a comma
//! list forms a pool. A bad value stops start-up with an error naming the variable.

use host_service_base::config::{ConfigError, Env, EnvSource, parse_url_list};
use url::Url;

/// Switches data calls to data-host.
pub const USE_IB_HOST_SERVICE: &str = "USE_IB_HOST_SERVICE";
/// data-host URL(s).
pub const IB_HOST_SERVICE_URL: &str = "IB_HOST_SERVICE_URL";
/// Switches training calls to training-host.
pub const USE_TRAINING_HOST_SERVICE: &str = "USE_TRAINING_HOST_SERVICE";
/// training-host URL(s).
pub const TRAINING_HOST_SERVICE_URL: &str = "TRAINING_HOST_SERVICE_URL";
/// When set, every `/api/v1` route but health requires this key.
pub const HOSTBRIDGE_API_KEY: &str = "HOSTBRIDGE_API_KEY";

/// Every variable the gateway library reads (the binaries' flags have their own).
pub const ENV_VARS: [&str; 5] = [
    USE_IB_HOST_SERVICE,
    IB_HOST_SERVICE_URL,
    USE_TRAINING_HOST_SERVICE,
    TRAINING_HOST_SERVICE_URL,
    HOSTBRIDGE_API_KEY,
];

/// Default data-host address (the KTRDR IB host service port).
pub const DEFAULT_DATA_HOST_URL: &str = "http://localhost:5001";
/// Default training-host address (the KTRDR training host service port).
pub const DEFAULT_TRAINING_HOST_URL: &str = "http://localhost:5002";

/// Where one service's calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceMode {
    /// To host service instances (one or a pool).
    Host(Vec<Url>),
    /// To the same library code in this process.
    Local,
}

impl ServiceMode {
    /// `host` or `local`, as `/api/v1/health` reports it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Host(_) => "host",
            Self::Local => "local",
        }
    }
}

/// The gateway's routing and access settings. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Data calls (loads, bars).
    pub data: ServiceMode,
    /// Training sessions.
    pub training: ServiceMode,
    /// The API key `/api/v1` requires, if any.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Configs end up in logs and panic messages; the key must not.
        f.debug_struct("GatewayConfig")
            .field("data", &self.data)
            .field("training", &self.training)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Default for GatewayConfig {
    /// The embedded default: everything in-process, no key.
    fn default() -> Self {
        Self {
            data: ServiceMode::Local,
            training: ServiceMode::Local,
            api_key: None,
        }
    }
}

impl GatewayConfig {
    /// Reads the variables; every error names the variable and echoes the value.
    pub fn from_env<S: EnvSource>(env: &Env<S>) -> Result<Self, ConfigError> {
        let mode = |switch: &str, urls: &str, default: &str| -> Result<ServiceMode, ConfigError> {
            // Parse the URL list even when the service is off, so a typo is caught
            // before someone switches it on.
            let list = env.or(urls, None, |var, value| {
                parse_url_list(var, value).map(Some)
            })?;
            if !env.bool_or(switch, false)? {
                return Ok(ServiceMode::Local);
            }
            match list {
                Some(list) => Ok(ServiceMode::Host(list)),
                None => Ok(ServiceMode::Host(parse_url_list(urls, default)?)),
            }
        };
        let api_key = env.raw(HOSTBRIDGE_API_KEY)?.map(|k| k.trim().to_owned());
        if let Some(key) = &api_key
            && key.len() < 8
        {
            return Err(ConfigError::invalid(
                HOSTBRIDGE_API_KEY,
                "(hidden)",
                "a key of at least 8 characters",
            ));
        }
        Ok(Self {
            data: mode(
                USE_IB_HOST_SERVICE,
                IB_HOST_SERVICE_URL,
                DEFAULT_DATA_HOST_URL,
            )?,
            training: mode(
                USE_TRAINING_HOST_SERVICE,
                TRAINING_HOST_SERVICE_URL,
                DEFAULT_TRAINING_HOST_URL,
            )?,
            api_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use host_service_base::config::MapEnv;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<GatewayConfig, ConfigError> {
        let mut map = MapEnv::default();
        for (k, v) in pairs {
            map = map.with(*k, *v);
        }
        GatewayConfig::from_env(&Env::new(map))
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let config = read(&[(HOSTBRIDGE_API_KEY, "s3cret-key-value")]).expect("config");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(format!("{:?}", GatewayConfig::default()).contains("api_key: None"));
    }

    #[test]
    fn default_is_everything_in_process() {
        assert_eq!(read(&[]).expect("empty env"), GatewayConfig::default());
    }

    #[test]
    fn host_mode_uses_the_default_url_or_a_pool() {
        let config = read(&[(USE_IB_HOST_SERVICE, "yes")]).expect("valid");
        let ServiceMode::Host(urls) = &config.data else {
            panic!("data should be in host mode: {config:?}");
        };
        assert_eq!(urls.len(), 1);
        assert_eq!(urls[0].port(), Some(5001));
        assert_eq!(config.training, ServiceMode::Local);

        let config = read(&[
            (USE_TRAINING_HOST_SERVICE, "1"),
            (
                TRAINING_HOST_SERVICE_URL,
                "http://10.0.0.1:5002, http://10.0.0.2:5002",
            ),
        ])
        .expect("valid");
        let ServiceMode::Host(urls) = &config.training else {
            panic!("training should be in host mode: {config:?}");
        };
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[1].host_str(), Some("10.0.0.2"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = read(&[(USE_IB_HOST_SERVICE, "maybe")]).expect_err("not a bool");
        assert!(err.to_string().contains(USE_IB_HOST_SERVICE), "{err}");
        assert!(err.to_string().contains("maybe"), "{err}");

        let err = read(&[(TRAINING_HOST_SERVICE_URL, "not a url")]).expect_err("bad url");
        assert!(err.to_string().contains(TRAINING_HOST_SERVICE_URL), "{err}");

        let err = read(&[(HOSTBRIDGE_API_KEY, "short")]).expect_err("short key");
        assert!(err.to_string().contains(HOSTBRIDGE_API_KEY), "{err}");
        assert!(
            !err.to_string().contains("short"),
            "the key must not be echoed: {err}"
        );
    }
}
