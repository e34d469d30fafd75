//! `serve`: the gateway's flags (shared by `api-gateway serve` and `hostbridge serve`)
//! and the run loop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use data_host::ib::IbConfig;
use data_host::ib::config::PacingArgs;
use host_service_base::config::Env;
use host_service_base::operations::parse_retention;
use host_service_base::server::shutdown_token;

use crate::config::{GatewayConfig, ServiceMode};
use crate::gateway::{Gateway, GatewayError, GatewaySettings};

/// Flags of `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "API_GATEWAY_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// The store bars are loaded into and served from ({SYMBOL}_{TIMEFRAME}.csv).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Root of the model store of in-process training.
    #[arg(long, env = "MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Directory of strategies that `strategy_name` refers to.
    #[arg(long, env = "STRATEGIES_DIR", default_value = "strategies")]
    pub strategies_dir: PathBuf,
    /// File keeping operations across restarts (default: gateway-operations.redb in
    /// the models directory).
    #[arg(long, env = "API_GATEWAY_STATE")]
    pub state: Option<PathBuf>,
    /// TWS / IB Gateway the in-process data provider uses in fallback mode (an IP).
    #[arg(long, env = "IB_ADDRESS", default_value = "127.0.0.1:4002")]
    pub ib_address: SocketAddr,
    /// API client id of the in-process data provider at the IB Gateway.
    #[arg(long, env = "IB_CLIENT_ID", default_value_t = 2)]
    pub ib_client_id: i32,
    /// IB pacing budgets of the in-process provider: its own, separate from any
    /// data-host's on the same IB Gateway (lower them when they share one).
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// In-process training sessions at once (fallback mode).
    #[arg(long, env = "GATEWAY_MAX_SESSIONS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_sessions: u16,
    /// How long a finished operation is kept (memory and state file): 24h, 7days, 90m.
    #[arg(long, env = "OPERATIONS_RETENTION", default_value = "24h", value_parser = parse_retention)]
    pub operations_retention: Duration,
    /// Longest a load waits for a lost IB Gateway link (or every data-host) to return
    /// before it fails; it then resumes at the segment it was on.
    #[arg(long, env = "LOAD_RECONNECT_WAIT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub load_reconnect_wait: Duration,
    /// Name model directories of in-process training by their absolute path on this
    /// host (for callers that share its file system); by default `models/...`.
    #[arg(long, env = "EXPOSE_MODEL_PATHS", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub expose_model_paths: bool,
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeFailure {
    /// A variable of DESIGN.md has a bad value.
    #[error(transparent)]
    Config(#[from] host_service_base::config::ConfigError),
    /// Logging could not start.
    #[error(transparent)]
    Telemetry(#[from] host_service_base::telemetry::TelemetryError),
    /// The gateway failed to build or run.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

fn describe(mode: &ServiceMode) -> String {
    match mode {
        ServiceMode::Local => "in-process".to_owned(),
        ServiceMode::Host(urls) => urls
            .iter()
            .map(url::Url::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Runs the gateway until SIGTERM / Ctrl-C. Returns whether shutdown drained cleanly.
pub async fn run(args: ServeArgs) -> Result<bool, ServeFailure> {
    let env = Env::process();
    host_service_base::telemetry::init_tracing(host_service_base::telemetry::LogFormat::from_env(
        &env,
    )?)?;
    let config = GatewayConfig::from_env(&env)?;
    let events = crate::events::EventSettings::from_env(&env)?;
    let commands = crate::commands::CommandSettings::from_env(&env)?;
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| args.models_dir.join("gateway-operations.redb"));
    let settings = GatewaySettings {
        strategies_dir: args.strategies_dir.clone(),
        state: Some(state),
        ib: {
            let mut ib = IbConfig::new(args.ib_address, args.ib_client_id);
            ib.pacing = args.pacing.apply(ib.pacing);
            ib
        },
        max_sessions: usize::from(args.max_sessions),
        operations_retention: args.operations_retention,
        load_reconnect_wait: args.load_reconnect_wait,
        model_paths: if args.expose_model_paths {
            training_host::model::PathStyle::Absolute
        } else {
            training_host::model::PathStyle::Relative
        },
        events,
        commands,
        ..GatewaySettings::new(
            config.clone(),
            args.data_dir.clone(),
            args.models_dir.clone(),
        )
    };
    let gateway = Gateway::build(settings)?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|source| ServeFailure::Bind {
            addr: args.bind,
            source,
        })?;
    let data_mode = match &config.data {
        ServiceMode::Local => format!(
            "in-process (store {}, IB at {})",
            args.data_dir.display(),
            args.ib_address
        ),
        host => describe(host),
    };
    tracing::info!(
        data = %data_mode,
        training = %describe(&config.training),
        api_key = config.api_key.is_some(),
        "api-gateway starting"
    );
    let report = gateway.serve(listener, shutdown_token()).await?;
    Ok(report.drained)
}
