//! `docker-compose.yml` and the `Dockerfile`, run for real on the machine's Docker engine
//! with its compose tool, the way an operator would:
//!
//! - the compose file is resolved by the compose tool itself, and every command a service
//!   runs (its command and its healthcheck) is accepted by the binary it names, with the
//!   same arguments; every variable it sets is one that binary reads;
//! - the image is built from the Dockerfile (its `prebuilt` target, on a runtime base made
//!   from Debian's packages: no registry here) and the `sim` profile brought up: health
//!   through the services' own healthchecks, a load and a training from the gateway
//!   container's CLI, a host container killed and brought back, the gateway restarted, the
//!   whole stack stopped and started again on the same volumes.
//!
//! Without a compose tool or an engine the tests say so and skip; `.ci/run` sets
//! `CI_REQUIRE_DOCKER` so that cannot pass quietly there.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hostbridge_tests::bins::{self, BINARIES};
use hostbridge_tests::docker::{self, ComposeTool, Project, TestImage, skip_or_fail};
use hostbridge_tests::stack::{END, START, get, post, train_body};
use serde_json::Value;

/// The services every stack runs and the profile the test adds.
const HOSTS: [&str; 2] = ["data-host", "training-host"];
const GATEWAY: &str = "api-gateway";

/// Variables read by the libraries rather than by clap, per binary.
fn library_variables(binary: &str) -> Vec<&'static str> {
    let mut vars = vec![
        host_service_base::telemetry::RUST_LOG_ENV,
        host_service_base::telemetry::LOG_FORMAT_ENV,
    ];
    if bins::package_of(binary) == Some("api-gateway") {
        vars.extend(api_gateway::config::ENV_VARS);
        vars.extend(api_gateway::events::config::ENV_VARS);
        vars.extend(api_gateway::commands::config::ENV_VARS);
    }
    vars
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `binary args… --help`: clap reads the arguments in order and refuses an unknown flag
/// or a bad value before it reaches `--help`, so exit 0 means every argument is accepted.
/// Returns the help text.
fn accepted(binary: &str, args: &[String]) -> Result<String, String> {
    let path = bins::binary(binary);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.push("--help");
    docker::run_ok(path.to_str().unwrap_or_default(), &all, &[])
}

#[test]
fn every_service_command_and_variable_is_read_by_its_binary() {
    let tool = match ComposeTool::detect() {
        Ok(tool) => tool,
        Err(reason) => return skip_or_fail(&reason),
    };
    let file = bins::workspace_root().join("docker-compose.yml");
    let resolved = tool
        .run_ok(
            &[
                "--file",
                file.to_str().unwrap_or_default(),
                "--profile",
                "sim",
                "config",
            ],
            &[],
        )
        .unwrap_or_else(|e| panic!("the compose file does not resolve: {e}"));
    let config: Value = serde_yaml_ng::from_str(&resolved).expect("compose config is YAML");
    let services = config["services"].as_object().expect("services");
    let project: BTreeSet<&str> = BINARIES.iter().map(|(name, _)| *name).collect();

    // The check can fail: a flag the binary lacks is refused.
    assert!(accepted("data-host", &["serve".into(), "--no-such-flag".into()]).is_err());

    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, service) in services {
        let command = strings(&service["command"]);
        let Some(binary) = command.first().filter(|b| project.contains(b.as_str())) else {
            continue; // Not the project image (the kafka profile's broker).
        };
        let mut commands = vec![command.clone()];
        let health = strings(&service["healthcheck"]["test"]);
        match health.split_first() {
            Some((kind, rest)) if kind == "CMD" && rest.first() == Some(binary) => {
                commands.push(rest.to_vec());
            }
            Some(_) => problems.push(format!("{name}: healthcheck is not the binary's own")),
            None if name != "ib-sim" => problems.push(format!("{name}: no healthcheck")),
            None => {}
        }
        let mut help = String::new();
        for command in &commands {
            match accepted(binary, &command[1..]) {
                Ok(text) => help.push_str(&text),
                Err(e) => problems.push(format!("{name}: {e}")),
            }
            checked += 1;
        }
        let libraries = library_variables(binary);
        let environment = service["environment"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for var in environment.keys() {
            if !help.contains(&format!("[env: {var}")) && !libraries.contains(&var.as_str()) {
                problems.push(format!("{name}: {var} is read by nothing in {binary}"));
            }
        }
    }
    assert!(checked >= 7, "only {checked} commands checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The engine, the compose tool and the image, or why not (printed and skipped).
fn setup() -> Option<(ComposeTool, &'static TestImage)> {
    let ready = docker::engine()
        .and_then(|()| ComposeTool::detect())
        .and_then(|tool| Ok((tool, TestImage::shared()?)));
    match ready {
        Ok(ready) => Some(ready),
        Err(reason) => {
            skip_or_fail(&reason);
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `url` until `ready` holds for its JSON; the answer and how long it took.
async fn poll(url: &str, limit: Duration, ready: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (_, body) = get(url).await;
        if ready(&body) {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{url} not ready after {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn started_at(project: &Project, service: &str) -> String {
    project.inspect(service)["State"]["StartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The first successful healthcheck still in the container's health log (RFC 3339).
fn first_healthy(project: &Project, service: &str) -> String {
    project.inspect(service)["State"]["Health"]["Log"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["ExitCode"] == 0)
        .filter_map(|entry| entry["End"].as_str())
        .min()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sim_profile_runs_heals_restarts_and_keeps_its_volumes() {
    let pid = std::process::id();
    let Some((tool, image)) = setup() else {
        return;
    };
    eprintln!("image {}: {:.1} MB", image.tag, image.size() as f64 / 1e6);
    let port = free_port().to_string();
    let project = Project::new(
        tool,
        &format!("hostbridge-test-{pid}"),
        &["sim"],
        &[
            ("HOSTBRIDGE_IMAGE", image.tag.as_str()),
            ("API_GATEWAY_PORT", port.as_str()),
        ],
    );
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let limit = Duration::from_secs(120);

    // Up: every service healthy by its own healthcheck, the gateway only after both hosts.
    project.ok(&["up", "--detach", "--no-build"]);
    let took = project.wait_healthy(&[HOSTS[0], HOSTS[1], GATEWAY], limit);
    eprintln!("all healthy {took:?} after `up`");
    let gateway_started = started_at(&project, GATEWAY);
    for host in HOSTS {
        let healthy = first_healthy(&project, host);
        assert!(
            !healthy.is_empty() && gateway_started >= healthy,
            "the gateway started at {gateway_started}, before {host} was healthy ({healthy})"
        );
    }
    let (health, _) = poll(&format!("{api}/health"), limit, |h| {
        h["status"] == "healthy"
    })
    .await;
    assert_eq!(health["services"]["data"]["mode"], "host", "{health}");
    assert_eq!(health["services"]["training"]["mode"], "host", "{health}");

    // The CLI in the gateway container: a load from the simulator through data-host, a
    // training through training-host; bars in the shared volume, the model in models.
    let (code, out, err) = project.exec(
        GATEWAY,
        &[
            "hostbridge",
            "--quiet",
            "data",
            "load",
            "AAPL",
            "1h",
            "--mode",
            "full",
            "--start",
            START,
            "--end",
            END,
        ],
    );
    assert_eq!(code, 0, "data load: {out}{err}");
    let (code, out, err) = project.exec("training-host", &["ls", "/app/data"]);
    assert!(
        code == 0 && out.contains("AAPL_1h"),
        "market-data volume: {out}{err}"
    );
    let (code, out, err) = project.exec(
        GATEWAY,
        &[
            "hostbridge",
            "--quiet",
            "train",
            "rsi_macd_mlp",
            "--symbols",
            "AAPL",
            "--timeframes",
            "1h",
            "--start",
            START,
            "--end",
            END,
        ],
    );
    assert_eq!(code, 0, "train: {out}{err}");
    let (code, out, err) = project.exec(
        "training-host",
        &["find", "/app/models/rsi_macd_mlp", "-type", "f"],
    );
    assert!(
        code == 0 && !out.trim().is_empty(),
        "models volume: {out}{err}"
    );
    let (_, ops) = get(&format!("{api}/operations")).await;
    let finished = ops["data"].as_array().map(Vec::len).unwrap_or(0);
    assert!(finished >= 2, "{ops}");

    // data-host killed: the gateway names it down within seconds, the rest answers; the
    // container started again is routed to again, with no restart of the gateway.
    project.ok(&["kill", "data-host"]);
    let (health, took) = poll(&format!("{api}/health"), Duration::from_secs(10), |h| {
        h["services"]["data"]["healthy"] == false
    })
    .await;
    eprintln!("data-host named down {took:?} after the kill");
    assert_eq!(health["status"], "degraded", "{health}");
    let (status, _) = get(&format!("{api}/operations")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&format!("{api}/strategies")).await;
    assert_eq!(status, 200);
    let (status, refused) = post(
        &format!("{api}/data/load"),
        &serde_json::json!({"symbol": "AAPL", "timeframe": "1d", "mode": "full"}),
    )
    .await;
    assert_eq!(status, 503, "{refused}");

    project.ok(&["start", "data-host"]);
    project.wait_healthy(&["data-host"], limit);
    let (_, took) = poll(&format!("{api}/health"), limit, |h| {
        h["services"]["data"]["healthy"] == true
    })
    .await;
    eprintln!("data-host routed to again {took:?} after it was healthy");
    let (status, head) = get(&format!("{api}/data/AAPL/1h/head-timestamp")).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        started_at(&project, GATEWAY),
        gateway_started,
        "the gateway restarted"
    );

    // The gateway restarted mid-training: finished operations are still listed, the
    // running one is `failed` with its reason.
    let (status, answer) = post(&format!("{api}/trainings/start"), &train_body(10_000)).await;
    assert_eq!(status, 202, "{answer}");
    let running = answer["task_id"].as_str().expect("task id").to_owned();
    poll(&format!("{api}/operations/{running}"), limit, |op| {
        op["data"]["status"] == "running"
    })
    .await;
    project.ok(&["restart", GATEWAY]);
    project.wait_healthy(&[GATEWAY], limit);
    let (op, _) = poll(&format!("{api}/operations/{running}"), limit, |op| {
        op["success"] == true
    })
    .await;
    assert_eq!(op["data"]["status"], "failed", "{op}");
    assert!(
        op["data"]["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("shut down")),
        "{op}"
    );
    let (_, ops) = get(&format!("{api}/operations?status=completed")).await;
    assert!(
        ops["data"].as_array().map(Vec::len).unwrap_or(0) >= 2,
        "{ops}"
    );

    // Stop: every container ends within its grace period on SIGTERM, exit code 0.
    let stopping = Instant::now();
    project.ok(&["stop"]);
    let took = stopping.elapsed();
    eprintln!("`stop` took {took:?}");
    for service in ["ib-sim", HOSTS[0], HOSTS[1], GATEWAY] {
        let state = &project.inspect(service)["State"];
        assert_eq!(state["ExitCode"], 0, "{service}: {state}");
        assert_eq!(state["OOMKilled"], false, "{service}: {state}");
    }
    assert!(took < Duration::from_secs(15), "stop took {took:?}");

    // Down and up again: the volumes' data is all there.
    project.ok(&["down"]);
    project.ok(&["up", "--detach", "--no-build"]);
    project.wait_healthy(&[HOSTS[0], HOSTS[1], GATEWAY], limit);
    let (ops, _) = poll(&format!("{api}/operations"), limit, |o| {
        o["success"] == true
    })
    .await;
    let ids: Vec<&str> = ops["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|op| op["operation_id"].as_str())
        .collect();
    assert!(ids.contains(&running.as_str()) && ids.len() >= 3, "{ops}");
    let (status, bars) = get(&format!("{api}/data/AAPL/1h")).await;
    assert_eq!(status, 200, "{}", bars["error"]);
    // The first half of 2025 in hourly bars, as loaded before the restarts.
    let points = bars["data"]["points"].as_u64().unwrap_or(0);
    assert!(points > 800, "{points} bars after down/up");
    let (code, out, _) = project.exec(GATEWAY, &["find", "/app/models/rsi_macd_mlp", "-type", "f"]);
    assert!(
        code == 0 && !out.trim().is_empty(),
        "models after down/up: {out}"
    );
}

#[test]
fn the_image_runs_as_non_root_without_network_tools() {
    let Some((_, image)) = setup() else {
        return;
    };
    eprintln!("image {}: {:.1} MB", image.tag, image.size() as f64 / 1e6);
    let user = docker::docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        &image.tag,
    ]);
    assert_eq!(user.trim(), "10001:10001");
    let id = docker::docker(&["run", "--rm", &image.tag, "id", "-u"]);
    assert_eq!(id.trim(), "10001");
    // Tools an attacker inside the container would want; none is needed by the services.
    // (apt stays, as in debian:bookworm-slim, for images derived from this one; it cannot
    // install anything as the non-root user.)
    let probe = "for t in curl wget nc ncat socat ssh scp telnet ftp gcc cc python3 sudo; \
                 do command -v $t; done; true";
    let found = docker::docker(&["run", "--rm", &image.tag, "sh", "-c", probe]);
    assert!(found.trim().is_empty(), "tools in the image: {found}");
    // No set-uid or set-gid file (su, passwd, …) for the service user to climb through.
    let privileged = docker::docker(&[
        "run", "--rm", "--user", "0", &image.tag, "find", "/", "-xdev", "-type", "f", "-perm",
        "/6000",
    ]);
    assert!(
        privileged.trim().is_empty(),
        "set-uid/gid files: {privileged}"
    );
    // Every binary runs in the image (its glibc is the one it was built against).
    for (binary, _) in BINARIES {
        let help = docker::docker(&["run", "--rm", &image.tag, binary, "--version"]);
        assert!(
            !help.trim().is_empty(),
            "{binary} --version printed nothing"
        );
    }
}
