//! `data-host`: the market-data host service, the IB Gateway simulator, and a
//! healthcheck. Parses arguments and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use data_host::ib::config::PacingArgs;
use data_host::ib::{IbConfig, IbProvider};
use data_host::local::LocalProvider;
use data_host::provider::DataProvider;
use data_host::sim::{SimConfig, Simulator, StoreBarSource};
use data_host::store::{DEFAULT_CACHE_BYTES, Store, StoreFormat};
use host_service_base::config::{Env, parse_duration};
use host_service_base::server::{shutdown_signal, shutdown_token};
use host_service_base::service::healthcheck_exit;
use host_service_base::telemetry::{LogFormat, init_tracing};

#[derive(Parser, Debug)]
#[command(
    name = "data-host",
    version,
    about = "hostbridge market-data host service (KTRDR IB host service contract)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Run the IB Gateway simulator: a TWS-API peer serving bars from a store directory
    /// and enforcing IB's pacing rules (error 162), for use without an IB account.
    IbSim(SimArgs),
    /// Exit 0 when the service at --url answers /health healthy (for container healthchecks).
    Healthcheck {
        /// Base URL of the service.
        #[arg(long, env = "DATA_HOST_URL", default_value = "http://127.0.0.1:5001")]
        url: String,
    },
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (loopback by default: host services are not for the network).
    #[arg(long, env = "DATA_HOST_BIND", default_value = "127.0.0.1:5001")]
    bind: SocketAddr,
    /// Where bars come from.
    #[arg(long, env = "DATA_HOST_SOURCE", value_enum, default_value_t = Source::Ib)]
    source: Source,
    /// TWS / IB Gateway address (an IP: 127.0.0.1, not localhost).
    #[arg(long, env = "IB_ADDRESS", default_value = "127.0.0.1:4002")]
    ib_address: SocketAddr,
    /// API client id this service uses at the gateway (unique per connection).
    #[arg(long, env = "IB_CLIENT_ID", default_value_t = 1)]
    ib_client_id: i32,
    /// IB pacing budgets (per IB Gateway: lower them when others share it).
    #[command(flatten)]
    pacing: PacingArgs,
    /// Directory of the local store ({SYMBOL}_{TIMEFRAME}.csv).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Format the store writes.
    #[arg(long, env = "DATA_HOST_STORE_FORMAT", value_enum, default_value_t = Format::Csv)]
    store_format: Format,
    /// Bytes of parsed store files kept in memory with `--source local` (0: none).
    #[arg(long, env = "DATA_HOST_CACHE_BYTES", default_value_t = DEFAULT_CACHE_BYTES)]
    cache_bytes: usize,
    /// Longest a data request may take (e.g. 600s, 10m).
    #[arg(long, env = "DATA_HOST_REQUEST_TIMEOUT", default_value = "600s", value_parser = duration)]
    request_timeout: Duration,
}

#[derive(clap::Args, Debug)]
struct SimArgs {
    /// Address the simulated gateway listens on (IB Gateway's paper port is 4002).
    #[arg(long, env = "IB_SIM_BIND", default_value = "127.0.0.1:4002")]
    bind: SocketAddr,
    /// Store directory whose bars it serves.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Delay before each historical answer (e.g. 500ms), to exercise cancellation.
    #[arg(long, env = "IB_SIM_RESPONSE_DELAY", default_value = "0s", value_parser = delay)]
    response_delay: Duration,
    /// Do not enforce IB's pacing rules.
    #[arg(long)]
    no_pacing: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Source {
    /// Fetch from TWS / IB Gateway (or `data-host ib-sim`), paced by IB's rules.
    Ib,
    /// Answer from the local store only; no IB connection.
    Local,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Csv,
    Parquet,
}

fn delay(text: &str) -> Result<Duration, String> {
    parse_duration("--response-delay", text).map_err(|e| e.to_string())
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration("--request-timeout", text).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("data-host: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Healthcheck { url } => Ok(healthcheck_exit("data-host", &url).await),
        Command::IbSim(args) => {
            init_tracing(LogFormat::from_env(&Env::process())?)?;
            let source = StoreBarSource::new(Store::new(&args.data_dir, StoreFormat::Csv));
            let mut config = SimConfig::new(Arc::new(source));
            config.response_delay = args.response_delay;
            config.enforce_pacing = !args.no_pacing;
            let sim = Simulator::bind(args.bind, config).await?;
            tracing::info!(addr = %sim.addr(), data_dir = %args.data_dir.display(), "IB Gateway simulator listening");
            shutdown_signal().await;
            let stats = sim.stats();
            sim.shutdown().await;
            // The violation count is the simulator's verdict on its clients: print it.
            println!(
                "ib-sim: {} connections, {} historical requests, {} pacing violations, {} cancels",
                stats.connections, stats.historical_requests, stats.violations, stats.cancels
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            init_tracing(LogFormat::from_env(&Env::process())?)?;
            let format = match args.store_format {
                Format::Csv => StoreFormat::Csv,
                Format::Parquet => StoreFormat::Parquet,
            };
            let provider: Arc<dyn DataProvider> = match args.source {
                Source::Local => Arc::new(LocalProvider::new(
                    Store::new(&args.data_dir, format).with_cache_bytes(args.cache_bytes),
                )),
                Source::Ib => {
                    let mut config = IbConfig::new(args.ib_address, args.ib_client_id);
                    config.pacing = args.pacing.apply(config.pacing);
                    Arc::new(IbProvider::new(config))
                }
            };
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            tracing::info!(source = provider.name(), data_dir = %args.data_dir.display(), "data-host starting");
            let report = data_host::service::serve(
                listener,
                provider,
                args.request_timeout,
                shutdown_token(),
            )
            .await?;
            Ok(if report.drained {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
