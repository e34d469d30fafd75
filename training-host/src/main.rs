//! `training-host`: the training host service and a healthcheck. Parses arguments and
//! hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use data_host::client::DataHostClient;
use data_host::local::LocalProvider;
use data_host::provider::DataProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::config::Env;
use host_service_base::operations::{Operations, OperationsConfig, parse_retention};
use host_service_base::server::shutdown_token;
use host_service_base::service::healthcheck_exit;
use host_service_base::telemetry::{LogFormat, init_tracing};
use training_host::model::PathStyle;
use training_host::sessions::{SessionConfig, SessionManager};
use training_host::trainer::CandleTrainer;

#[derive(Parser, Debug)]
#[command(
    name = "training-host",
    version,
    about = "hostbridge training host service (KTRDR training host contract)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Exit 0 when the service at --url answers /health healthy (for container healthchecks).
    Healthcheck {
        /// Base URL of the service.
        #[arg(
            long,
            env = "TRAINING_HOST_URL",
            default_value = "http://127.0.0.1:5002"
        )]
        url: String,
    },
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (loopback by default: host services are not for the network).
    #[arg(long, env = "TRAINING_HOST_BIND", default_value = "127.0.0.1:5002")]
    bind: SocketAddr,
    /// Store directory bars are read from ({SYMBOL}_{TIMEFRAME}.csv).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Read bars from this data-host instead of the data directory.
    #[arg(long, env = "DATA_HOST_URL")]
    data_host_url: Option<String>,
    /// Root of the model store (models/{strategy}/{timeframe}_v{N}/).
    #[arg(long, env = "MODELS_DIR", default_value = "models")]
    models_dir: PathBuf,
    /// Most sessions training at once; more get 503.
    #[arg(long, env = "TRAINING_HOST_MAX_SESSIONS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_sessions: u16,
    /// File that keeps sessions across restarts (default: sessions.redb in the models directory).
    #[arg(long, env = "TRAINING_HOST_STATE")]
    state: Option<PathBuf>,
    /// How long a finished session is kept (memory and state file): 24h, 7days, 90m.
    #[arg(long, env = "OPERATIONS_RETENTION", default_value = "24h", value_parser = parse_retention)]
    operations_retention: Duration,
    /// Name model directories in results by their absolute path on this host (for
    /// callers that share its file system); by default `models/{strategy}/{label}_vN`.
    #[arg(long, env = "EXPOSE_MODEL_PATHS", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    expose_model_paths: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("training-host: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Healthcheck { url } => Ok(healthcheck_exit("training-host", &url).await),
        Command::Serve(args) => {
            init_tracing(LogFormat::from_env(&Env::process())?)?;
            std::fs::create_dir_all(&args.models_dir)?;
            let state = args
                .state
                .clone()
                .unwrap_or_else(|| args.models_dir.join("sessions.redb"));
            let ops = Operations::open(
                OperationsConfig::persistent(state).with_retention(args.operations_retention),
            )?;
            let data: Arc<dyn DataProvider> = match &args.data_host_url {
                Some(url) => Arc::new(DataHostClient::new(url)?),
                None => Arc::new(LocalProvider::new(Store::new(
                    &args.data_dir,
                    StoreFormat::Csv,
                ))),
            };
            let max_sessions = usize::from(args.max_sessions);
            let config = SessionConfig {
                max_sessions,
                models_dir: args.models_dir.clone(),
                model_paths: if args.expose_model_paths {
                    PathStyle::Absolute
                } else {
                    PathStyle::Relative
                },
            };
            let sessions =
                SessionManager::new(ops, data, Arc::new(CandleTrainer::default()), config);
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            tracing::info!(device = %sessions.device(), models_dir = %args.models_dir.display(), "training-host starting");
            let report =
                training_host::service::serve(listener, sessions, max_sessions, shutdown_token())
                    .await?;
            Ok(if report.drained {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
