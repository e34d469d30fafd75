//! The `hostbridge` command line: `serve` runs the whole system in one process; every
//! other command is a client of a running gateway, using one HTTP client for the whole
//! command.

pub mod archive;
pub mod client;
pub mod commands;
pub mod dlq;
pub mod events;
pub mod serve;
pub mod sse;
pub mod stream;
pub mod topics;
pub mod watch;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use host_service_base::HostError;
use host_service_base::operations::OperationInfo;
use serde_json::{Value, json};

use client::GatewayClient;
use serve::ServeArgs;
use watch::{Ended, encode, exit_code, fetch, follow};

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
    Serve(ServeArgs),
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

/// Prints one line of a stream's output. A reader that went away (`| head`) ends the
/// command quietly, as Unix tools do, instead of panicking on the broken pipe.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("hostbridge: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Success, or the error printed and a failure.
fn exit_code_of<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostbridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    if let Command::Serve(args) = cli.command {
        return match serve::run(args).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("hostbridge: shutdown deadline passed with work still running");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("hostbridge: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Stream(command) = cli.command {
        return exit_code_of(stream::run(command).await);
    }
    if let Command::Commands(command) = cli.command {
        return exit_code_of(commands::run(command, cli.json).await);
    }
    if let Command::Dlq(command) = cli.command {
        return exit_code_of(dlq::run(command, cli.json).await);
    }
    if let Command::Topics(args) = cli.command {
        return match topics::run(args, cli.json).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hostbridge: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let client = match GatewayClient::new(&cli.url, cli.api_key.as_deref()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("hostbridge: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Events(command) = cli.command {
        return exit_code_of(events::run(command, &client, cli.json).await);
    }
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    match client_command(&client, cli.command, out).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("hostbridge: {}", explain(&e, &client));
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    fn print_json(self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// An error message a user can act on.
fn explain(e: &HostError, client: &GatewayClient) -> String {
    match e {
        HostError::Unavailable { service, .. } if service == crate::SERVICE_NAME => format!(
            "no gateway answers at {} — start one with `hostbridge serve` (or set --url / HOSTBRIDGE_URL)",
            client.base_url()
        ),
        other => other.to_string(),
    }
}

async fn client_command(
    client: &GatewayClient,
    command: Command,
    out: Output,
) -> Result<u8, HostError> {
    match command {
        Command::Serve(_)
        | Command::Stream(_)
        | Command::Topics(_)
        | Command::Events(_)
        | Command::Commands(_)
        | Command::Dlq(_) => Ok(2),
        Command::Health => health(client, out).await,
        Command::Data(DataCommand::Load { load, no_wait }) => {
            let body = json!(load.request());
            let answer: Value = client.post("/api/v1/data/load", &body).await?;
            let id = answer["data"]["operation_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            start_and_follow(client, &id, no_wait, out, "load").await
        }
        Command::Data(DataCommand::Show {
            symbol,
            timeframe,
            start,
            end,
            last,
        }) => show(client, symbol, timeframe, start, end, last, out).await,
        Command::Train(args) => {
            let body = train_body(&args.strategy, &args.training)?;
            let answer: Value = client.post("/api/v1/trainings/start", &body).await?;
            let id = answer["task_id"].as_str().unwrap_or_default().to_owned();
            start_and_follow(client, &id, args.no_wait, out, "training").await
        }
        Command::Ops(OpsCommand::List {
            status,
            operation_type,
            active,
            limit,
        }) => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(t) = operation_type {
                query.push(("operation_type", t));
            }
            if active {
                query.push(("active_only", "true".to_owned()));
            }
            let answer: Value = client.get("/api/v1/operations", &query).await?;
            if out.json {
                out.print_json(&answer);
                return Ok(0);
            }
            let ops = answer["data"].as_array().cloned().unwrap_or_default();
            println!(
                "{:<44} {:<10} {:<10} {:>5}  STEP",
                "OPERATION", "TYPE", "STATUS", "%"
            );
            for op in &ops {
                println!(
                    "{:<44} {:<10} {:<10} {:>5.0}  {}",
                    op["operation_id"].as_str().unwrap_or("?"),
                    op["operation_type"].as_str().unwrap_or("?"),
                    op["status"].as_str().unwrap_or("?"),
                    op["progress_percentage"]
                        .as_f64()
                        .or_else(|| op["progress"]["percentage"].as_f64())
                        .unwrap_or(0.0),
                    op["current_step"]
                        .as_str()
                        .or_else(|| op["progress"]["current_step"].as_str())
                        .unwrap_or(""),
                );
            }
            println!(
                "{} of {} shown, {} active",
                ops.len(),
                answer["total_count"],
                answer["active_count"]
            );
            Ok(0)
        }
        Command::Ops(OpsCommand::Show { id }) => {
            let info = fetch(client, &id).await?;
            if out.json {
                out.print_json(&serde_json::to_value(&info).unwrap_or_default());
            } else {
                print_outcome(&info);
            }
            Ok(0)
        }
        Command::Ops(OpsCommand::Cancel { id, reason }) => {
            let answer = client
                .delete(
                    &format!("/api/v1/operations/{}", encode(&id)),
                    &json!({ "reason": reason }),
                )
                .await?;
            if out.json {
                out.print_json(&answer);
            } else {
                println!("cancelled {id}");
            }
            Ok(0)
        }
        Command::Ops(OpsCommand::Watch { id }) => {
            start_and_follow(client, &id, false, out, "operation").await
        }
    }
}

async fn health(client: &GatewayClient, out: Output) -> Result<u8, HostError> {
    let answer: Value = client.get("/api/v1/health", &[]).await?;
    if out.json {
        out.print_json(&answer);
    } else {
        println!(
            "gateway {} — {}",
            client.base_url(),
            answer["status"].as_str().unwrap_or("?")
        );
        for name in ["data", "training"] {
            let s = &answer["services"][name];
            let state = if s["healthy"] == true {
                "healthy"
            } else {
                "DOWN"
            };
            let latency = s["latency_ms"]
                .as_f64()
                .map(|l| format!(" {l:.1} ms"))
                .unwrap_or_default();
            println!(
                "  {name:<9} {:<6} {state}{latency}",
                s["mode"].as_str().unwrap_or("?")
            );
            if let Some(e) = s["error"].as_str() {
                println!("            {e}");
            }
        }
    }
    Ok(if answer["status"] == "healthy" { 0 } else { 1 })
}

async fn show(
    client: &GatewayClient,
    symbol: Option<String>,
    timeframe: Option<String>,
    start: Option<String>,
    end: Option<String>,
    last: usize,
    out: Output,
) -> Result<u8, HostError> {
    let (Some(symbol), Some(timeframe)) = (symbol, timeframe) else {
        let answer: Value = client.get("/api/v1/data", &[]).await?;
        if out.json {
            out.print_json(&answer);
            return Ok(0);
        }
        println!(
            "{:<10} {:<4} {:>8}  {:<25} LAST",
            "SYMBOL", "TF", "BARS", "FIRST"
        );
        for s in answer["data"].as_array().cloned().unwrap_or_default() {
            println!(
                "{:<10} {:<4} {:>8}  {:<25} {}",
                s["symbol"].as_str().unwrap_or("?"),
                s["timeframe"].as_str().unwrap_or("?"),
                s["rows"].as_u64().unwrap_or(0),
                show_time(s["first"].as_str()),
                show_time(s["last"].as_str()),
            );
        }
        return Ok(0);
    };
    let mut query = Vec::new();
    if let Some(s) = start {
        query.push(("start", s));
    }
    if let Some(e) = end {
        query.push(("end", e));
    }
    let path = format!("/api/v1/data/{}/{}", encode(&symbol), encode(&timeframe));
    let answer: Value = client.get(&path, &query).await?;
    if out.json {
        out.print_json(&answer);
        return Ok(0);
    }
    let data = &answer["data"];
    println!(
        "{} {}: {} bars from {} to {}",
        symbol,
        timeframe,
        data["points"],
        show_time(data["start"].as_str()),
        show_time(data["end"].as_str())
    );
    let dates = data["dates"].as_array().cloned().unwrap_or_default();
    let ohlcv = data["ohlcv"].as_array().cloned().unwrap_or_default();
    let from = dates.len().saturating_sub(last);
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "TIME", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"
    );
    for (date, bar) in dates.iter().zip(&ohlcv).skip(from) {
        let v = |i: usize| bar[i].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<26} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.0}",
            show_time(date.as_str()),
            v(0),
            v(1),
            v(2),
            v(3),
            v(4)
        );
    }
    Ok(0)
}

async fn start_and_follow(
    client: &GatewayClient,
    id: &str,
    no_wait: bool,
    out: Output,
    what: &str,
) -> Result<u8, HostError> {
    if no_wait {
        if out.json {
            out.print_json(&json!({ "operation_id": id }));
        } else {
            println!("{what} started: {id}  (follow it with `hostbridge ops watch {id}`)");
        }
        return Ok(0);
    }
    if !out.json {
        eprintln!("{what} {id} started; Ctrl-C cancels it");
    }
    let info = match follow(client, id, out.quiet || out.json).await? {
        Ended::Finished(info) => info,
        Ended::Interrupted(info) => {
            eprintln!("cancelled {what} {id} at your request (Ctrl-C)");
            info
        }
    };
    if out.json {
        out.print_json(&serde_json::to_value(&*info).unwrap_or_default());
    } else {
        print_outcome(&info);
    }
    Ok(exit_code(info.status))
}

fn print_outcome(info: &OperationInfo) {
    println!(
        "{} {} — {}",
        info.operation_type,
        info.operation_id,
        info.status.as_str()
    );
    if let Some(e) = &info.error_message {
        println!("  error: {e}");
    }
    for w in &info.warnings {
        println!("  warning: {w}");
    }
    let Some(r) = &info.result_summary else {
        if let Some(step) = &info.progress.current_step {
            println!("  {:.0}% {step}", info.progress.percentage);
        }
        return;
    };
    if info.operation_type == crate::data::LOAD_OPERATION {
        println!(
            "  {} {} ({}): +{} bars ({} fetched in {} of {} segments; {} replaced); store: {} bars, {} → {}",
            r["symbol"].as_str().unwrap_or("?"),
            r["timeframe"].as_str().unwrap_or("?"),
            r["mode"].as_str().unwrap_or("?"),
            r["bars_added"],
            r["bars_fetched"],
            r["segments_fetched"],
            r["segments_total"],
            r["bars_replaced"],
            r["bars_after"],
            show_time(r["first_bar"].as_str()),
            show_time(r["last_bar"].as_str()),
        );
    } else if info.operation_type == crate::training::TRAINING_OPERATION {
        let t = &r["training_metrics"];
        let m = &r["test_metrics"];
        println!(
            "  {} epochs, final train loss {}, val accuracy {}; test accuracy {}, F1 {}",
            t["epochs_trained"],
            figure(&t["final_train_loss"], 4),
            figure(&t["final_val_accuracy"], 3),
            figure(&m["test_accuracy"], 3),
            figure(&m["f1_score"], 3),
        );
        if let Some(message) = m["message"].as_str() {
            println!("  {message}");
        }
        if let Some(path) = r["model_path"].as_str() {
            println!("  model: {path}");
        }
    } else {
        println!("  {r}");
    }
}

/// A result figure with `decimals`, or `n/a` where the result has none (`null`: no
/// validation or test split, or stopped before the first epoch ended).
fn figure(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

/// One form for every time the CLI prints: RFC 3339 in UTC ending in `Z`, as the
/// gateway's JSON writes times (its bar dates carry `+00:00`; both mean UTC).
fn show_time(text: Option<&str>) -> String {
    match text.map(|t| (t, chrono::DateTime::parse_from_rfc3339(t))) {
        Some((_, Ok(time))) => time
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Some((t, Err(_))) => t.to_owned(),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{figure, show_time};

    #[test]
    fn every_time_is_shown_in_one_form() {
        for (given, shown) in [
            (Some("2025-01-02T00:00:00+00:00"), "2025-01-02T00:00:00Z"),
            (Some("2025-01-02T00:00:00Z"), "2025-01-02T00:00:00Z"),
            (Some("2025-01-02T01:00:00+01:00"), "2025-01-02T00:00:00Z"),
            (Some("not a time"), "not a time"),
            (None, "-"),
        ] {
            assert_eq!(show_time(given), shown, "{given:?}");
        }
    }

    #[test]
    fn a_missing_result_figure_reads_n_a_not_nan() {
        assert_eq!(figure(&json!(0.12345), 3), "0.123");
        assert_eq!(figure(&json!(null), 3), "n/a");
        assert_eq!(figure(&json!(1), 4), "1.0000");
    }
}
