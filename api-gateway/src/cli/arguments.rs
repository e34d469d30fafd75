//! The command line's shape: clap's types for every command and flag, and what a
//! parsed argument becomes on the wire (a load request, a training start body). Nothing
//! here talks to a gateway or prints.

use std::path::Path;

use clap::{Parser, Subcommand};
use host_service_base::HostError;
use serde_json::{Value, json};

use super::serve::ServeArgs;
use super::{commands, dlq, events, stream, topics};

/// `hostbridge`.
#[derive(Parser, Debug)]
#[command(
    name = "hostbridge",
    version,
    about = "hostbridge: run the gateway, load data, train models, watch operations"
)]
pub struct Cli {
    /// The gateway to talk to.
    #[arg(
        long,
        env = "HOSTBRIDGE_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub url: String,
    /// API key, when the gateway requires one.
    #[arg(
        long,
        env = "HOSTBRIDGE_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub api_key: Option<String>,
    /// Print the gateway's JSON answers instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole system in this process (the gateway with in-process data and
    /// training, on the bundled sample data by default).
    Serve(Box<ServeArgs>),
    /// Health of the gateway and the services behind it.
    Health,
    /// Market data in the gateway's store.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train a strategy (a name from the strategies directory or a YAML file).
    Train(TrainArgs),
    /// Long-running operations.
    #[command(subcommand)]
    Ops(OpsCommand),
    /// Event streams: replay stored bars into Kafka, a file or stdout; tail a topic or
    /// a file.
    #[command(subcommand)]
    Stream(stream::StreamCommand),
    /// Kafka topics: apply the catalogue (`setup`), `list`, `describe`, a group's `lag`.
    Topics(topics::TopicsArgs),
    /// Live events: `tail` the gateway's event stream or the Kafka events topic.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Commands over Kafka: `send load|train` puts one on the commands topic.
    #[command(subcommand)]
    Commands(commands::CommandsCommand),
    /// Dead letters of a topic (`{topic}.dlq`): `list`, `show`, `replay`.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
}

/// `hostbridge data ...`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Load bars into the store (fetching what the mode asks for) and wait for it.
    Load {
        /// What to load.
        #[command(flatten)]
        load: LoadArgs,
        /// Print the operation id and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Without arguments: what the store holds. With SYMBOL TIMEFRAME: the last bars.
    Show {
        /// Symbol.
        symbol: Option<String>,
        /// Bar size.
        timeframe: Option<String>,
        /// First bar (ISO date or time).
        #[arg(long)]
        start: Option<String>,
        /// End (exclusive).
        #[arg(long)]
        end: Option<String>,
        /// How many of the last bars to print.
        #[arg(long, default_value_t = 10)]
        last: usize,
    },
}

/// A load: `POST /api/v1/data/load`'s fields as arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Symbol, e.g. AAPL.
    pub symbol: String,
    /// Bar size, e.g. 1h.
    pub timeframe: String,
    /// local, tail, backfill or full.
    #[arg(long, default_value = "tail")]
    pub mode: String,
    /// First bar wanted (ISO date or time).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the range (exclusive).
    #[arg(long)]
    pub end: Option<String>,
}

impl LoadArgs {
    /// The request body.
    pub fn request(&self) -> crate::data::LoadRequest {
        crate::data::LoadRequest {
            symbol: self.symbol.clone(),
            timeframe: self.timeframe.clone(),
            mode: Some(self.mode.clone()),
            start_date: self.start.clone(),
            end_date: self.end.clone(),
            // What the CLI has no flag for keeps the API's default.
            ..crate::data::LoadRequest::default()
        }
    }
}

/// `hostbridge train ...`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// A strategy name (strategies directory of the gateway) or a path to a YAML file.
    pub strategy: String,
    /// What to train on.
    #[command(flatten)]
    pub training: TrainingOverrides,
    /// Print the task id and return at once.
    #[arg(long)]
    pub no_wait: bool,
}

/// The body of `POST /api/v1/trainings/start` for `strategy` (a name, or a YAML file
/// whose text is sent).
pub fn train_body(strategy: &str, overrides: &TrainingOverrides) -> Result<Value, HostError> {
    let mut body = json!({
        "symbols": overrides.symbols, "timeframes": overrides.timeframes,
        "start_date": overrides.start, "end_date": overrides.end,
    });
    let path = Path::new(strategy);
    if path.is_file() || strategy.ends_with(".yaml") || strategy.ends_with(".yml") {
        let yaml = std::fs::read_to_string(path).map_err(|e| {
            HostError::bad_field("strategy", format!("cannot read {}: {e}", path.display()))
        })?;
        body["strategy_yaml"] = json!(yaml);
    } else {
        body["strategy_name"] = json!(strategy);
    }
    Ok(body)
}

/// Symbols, timeframes and range overriding a strategy's.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrainingOverrides {
    /// Symbols to train on (comma list), overriding the strategy's.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    /// Timeframes (comma list), overriding the strategy's.
    #[arg(long, value_delimiter = ',')]
    pub timeframes: Option<Vec<String>>,
    /// First bar used.
    #[arg(long)]
    pub start: Option<String>,
    /// End of the bars used.
    #[arg(long)]
    pub end: Option<String>,
}

/// `hostbridge ops ...`.
#[derive(Subcommand, Debug)]
pub enum OpsCommand {
    /// List operations, newest first.
    List {
        /// pending, running, completed, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// data_load or training.
        #[arg(long = "type")]
        operation_type: Option<String>,
        /// Only pending and running ones.
        #[arg(long)]
        active: bool,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One operation in full.
    Show {
        /// Operation id.
        id: String,
    },
    /// Cancel an operation (a training run is stopped on its host).
    Cancel {
        /// Operation id.
        id: String,
        /// Why (recorded on the operation).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Follow an operation to its end with a progress bar.
    Watch {
        /// Operation id.
        id: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        // clap's own checks (conflicting names, bad defaults) run here, not at a user's
        // first command.
        Cli::command().debug_assert();
    }

    #[test]
    fn a_load_becomes_the_gateway_request() {
        let cli = Cli::try_parse_from([
            "hostbridge",
            "data",
            "load",
            "AAPL",
            "1h",
            "--mode",
            "backfill",
            "--start",
            "2024-01-01",
        ])
        .expect("parses");
        let Command::Data(DataCommand::Load { load, no_wait }) = cli.command else {
            panic!("not a load: {:?}", cli.command);
        };
        assert!(!no_wait);
        let request = load.request();
        assert_eq!(request.symbol, "AAPL");
        assert_eq!(request.timeframe, "1h");
        assert_eq!(request.mode.as_deref(), Some("backfill"));
        assert_eq!(request.start_date.as_deref(), Some("2024-01-01"));
        assert_eq!(request.end_date, None);
    }

    #[test]
    fn global_flags_and_defaults() {
        let cli = Cli::try_parse_from(["hostbridge", "ops", "list", "--json", "--active"])
            .expect("parses");
        assert!(cli.json);
        let Command::Ops(OpsCommand::List { active, limit, .. }) = cli.command else {
            panic!("not ops list: {:?}", cli.command);
        };
        assert!(active);
        assert_eq!(limit, 20);
    }

    #[test]
    fn a_strategy_is_a_name_or_a_file() {
        let overrides = TrainingOverrides {
            symbols: Some(vec!["AAPL".into(), "MSFT".into()]),
            ..TrainingOverrides::default()
        };
        let body = train_body("neuro_mean_reversion", &overrides).expect("a name");
        assert_eq!(body["strategy_name"], "neuro_mean_reversion");
        assert_eq!(body["symbols"], json!(["AAPL", "MSFT"]));
        assert!(body.get("strategy_yaml").is_none());

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, "name: s\n").expect("write");
        let body = train_body(&file.to_string_lossy(), &overrides).expect("a file");
        assert_eq!(body["strategy_yaml"], "name: s\n");
        assert!(body.get("strategy_name").is_none());

        let missing = dir.path().join("missing.yaml");
        let err = train_body(&missing.to_string_lossy(), &overrides).expect_err("unreadable");
        assert!(
            matches!(err, HostError::BadRequest { field: Some(ref f), .. } if f == "strategy"),
            "{err:?}"
        );
    }
}
