//! Running a parsed command line: `serve` and the Kafka commands run by themselves;
//! every other command is a client of a running gateway, through one HTTP client for
//! the whole command, printed by [`super::rendering`]. Each command's exit code is
//! decided here.

use std::process::ExitCode;

use host_service_base::HostError;
use serde_json::{Value, json};

use super::arguments::{Cli, Command, DataCommand, OpsCommand, train_body};
use super::client::GatewayClient;
use super::rendering::{
    Output, bars_table, health_text, operations_table, print_outcome, store_table,
};
use super::watch::{Ended, encode, exit_code, fetch, follow};
use super::{commands, dlq, events, serve, stream, topics};

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
        return match serve::run(*args).await {
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

/// An error message a user can act on: a gateway that does not answer gets the way to
/// start one or point elsewhere.
pub(super) fn explain(e: &HostError, client: &GatewayClient) -> String {
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
            let query = list_query(status, operation_type, active, limit);
            let answer: Value = client.get("/api/v1/operations", &query).await?;
            if out.json {
                out.print_json(&answer);
            } else {
                print!("{}", operations_table(&answer));
            }
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

/// The query of `ops list`: the limit always, the filters when given.
fn list_query(
    status: Option<String>,
    operation_type: Option<String>,
    active: bool,
    limit: usize,
) -> Vec<(&'static str, String)> {
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
    query
}

/// `health`: 0 when the gateway says healthy, 1 otherwise (scripts can test it).
async fn health(client: &GatewayClient, out: Output) -> Result<u8, HostError> {
    let answer: Value = client.get("/api/v1/health", &[]).await?;
    if out.json {
        out.print_json(&answer);
    } else {
        print!("{}", health_text(client.base_url().as_str(), &answer));
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
        } else {
            print!("{}", store_table(&answer));
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
    } else {
        print!("{}", bars_table(&symbol, &timeframe, &answer["data"], last));
    }
    Ok(0)
}

/// Prints the id and returns (`no_wait`), or follows the operation to its end and
/// exits with its status; Ctrl-C cancels it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_that_does_not_answer_is_explained() {
        let down = HostError::Unavailable {
            service: crate::SERVICE_NAME.to_owned(),
            source: "connection refused".into(),
        };
        let client = GatewayClient::new("http://127.0.0.1:8000", None).expect("a client");
        let text = explain(&down, &client);
        assert!(
            text.starts_with("no gateway answers at http://127.0.0.1:8000/"),
            "{text}"
        );
        assert!(text.contains("hostbridge serve"), "{text}");
        let other = HostError::bad_field("symbol", "bad");
        assert_eq!(explain(&other, &client), other.to_string());
        let upstream = HostError::Unavailable {
            service: "training-host".to_owned(),
            source: "connection refused".into(),
        };
        assert_eq!(explain(&upstream, &client), upstream.to_string());
    }

    #[test]
    fn the_list_query_carries_only_the_filters_given() {
        assert_eq!(
            list_query(None, None, false, 20),
            vec![("limit", "20".to_owned())]
        );
        assert_eq!(
            list_query(Some("running".into()), Some("training".into()), true, 5),
            vec![
                ("limit", "5".to_owned()),
                ("status", "running".to_owned()),
                ("operation_type", "training".to_owned()),
                ("active_only", "true".to_owned()),
            ]
        );
    }
}
