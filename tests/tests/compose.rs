//! `docker-compose.yml` and the `Dockerfile` checked against the binaries they run. There
//! is no Docker engine here, so this is what stands between the compose file and a stack
//! that does not start:
//!
//! - every service runs the project image, and its command is a binary the image
//!   installs, a subcommand of it, and flags that subcommand accepts — read from the real
//!   binary's `--help`, never from a list kept here;
//! - every environment variable is one the subcommand reads (`[env: NAME` in its help)
//!   or one the libraries read (logging; the gateway's mode variables);
//! - every HTTP service binds 0.0.0.0 explicitly, has a healthcheck that runs the same
//!   binary's `healthcheck` subcommand (exec form, no curl) against the port it binds,
//!   and publishes / exposes only that port (published ports on loopback by default);
//! - `depends_on` waits for health where the dependency has a healthcheck, and a
//!   dependency that a profile may disable is not required;
//! - volumes, networks and fixed addresses are declared and consistent;
//! - the Dockerfile is multi-stage, builds all four binaries with `--locked`, and its
//!   runtime stage has no curl and runs as a non-root user.
//!
//! Values are resolved as `docker compose` would with no `.env` and no variables set:
//! every `${VAR}` must have a default.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hostbridge_tests::bins::{self, BINARIES};
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------
// Problems: every failed check of one test, reported together.

struct Problems {
    what: String,
    list: Vec<String>,
}

impl Problems {
    fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            list: Vec::new(),
        }
    }

    fn push(&mut self, problem: impl Into<String>) {
        self.list.push(problem.into());
    }

    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.list.push(problem());
        }
    }

    fn assert_none(self) {
        assert!(
            self.list.is_empty(),
            "{}:\n  - {}",
            self.what,
            self.list.join("\n  - ")
        );
    }
}

fn root() -> PathBuf {
    bins::workspace_root()
}

// ---------------------------------------------------------------------------------------
// The binaries' own help, parsed.

/// One `--flag` of a clap help text.
#[derive(Debug, Clone)]
struct CliOption {
    long: String,
    takes_value: bool,
    env: Option<String>,
    possible_values: Vec<String>,
}

/// What a clap `--help` lists: options (with their env variables) and subcommands.
#[derive(Debug, Clone, Default)]
struct Help {
    options: Vec<CliOption>,
    commands: Vec<String>,
}

impl Help {
    fn option(&self, long: &str) -> Option<&CliOption> {
        self.options.iter().find(|o| o.long == long)
    }

    fn option_for_env(&self, env: &str) -> Option<&CliOption> {
        self.options.iter().find(|o| o.env.as_deref() == Some(env))
    }

    fn flags(&self) -> String {
        self.options
            .iter()
            .map(|o| o.long.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The variable of a `[env: NAME=value]` (or `[env: NAME]`) in an option's help.
fn env_in(block: &str) -> Option<String> {
    let rest = &block[block.find("[env: ")? + "[env: ".len()..];
    let end = rest.find(['=', ']'])?;
    Some(rest[..end].trim().to_owned())
}

/// `[possible values: a, b]`, or the `Possible values:` list of a long help.
fn possible_values_in(block: &str) -> Vec<String> {
    if let Some(start) = block.find("[possible values: ") {
        let rest = &block[start + "[possible values: ".len()..];
        let end = rest.find(']').unwrap_or(rest.len());
        return rest[..end]
            .split(',')
            .map(|v| v.trim().to_owned())
            .collect();
    }
    let Some(start) = block.find("Possible values:") else {
        return Vec::new();
    };
    block[start..]
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|line| line.starts_with("- "))
        .map(|line| {
            let item = &line[2..];
            item.split(':').next().unwrap_or(item).trim().to_owned()
        })
        .collect()
}

fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut blocks: Vec<(CliOption, String)> = Vec::new();
    let mut current: Option<usize> = None;
    let mut section = "";
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            // `Options:`, `Commands:`, `Arguments:` open a section; `Usage: ...` and the
            // about text close it.
            section = trimmed.strip_suffix(':').unwrap_or("");
            current = None;
            continue;
        }
        match section {
            "Commands" if indent == 2 => {
                if let Some(name) = trimmed.split_whitespace().next()
                    && name != "help"
                {
                    help.commands.push(name.to_owned());
                }
            }
            "Options" => {
                // An option line starts at the option column (`  -h, --help`,
                // `      --bind <BIND>`); descriptions and `- value:` lists sit deeper.
                let starts_option =
                    indent <= 6 && trimmed.starts_with('-') && !trimmed.starts_with("- ");
                if starts_option {
                    let spec = trimmed.split("  ").next().unwrap_or(trimmed);
                    let long = spec
                        .split_whitespace()
                        .map(|t| t.trim_end_matches(','))
                        .find(|t| t.starts_with("--"));
                    current = long.map(|long| {
                        let option = CliOption {
                            long: long.to_owned(),
                            takes_value: spec.contains('<'),
                            env: None,
                            possible_values: Vec::new(),
                        };
                        blocks.push((option, trimmed.to_owned()));
                        blocks.len() - 1
                    });
                } else if let Some(i) = current {
                    blocks[i].1.push('\n');
                    blocks[i].1.push_str(trimmed);
                }
            }
            _ => {}
        }
    }
    for (mut option, block) in blocks {
        option.env = env_in(&block);
        option.possible_values = possible_values_in(&block);
        help.options.push(option);
    }
    help
}

/// `<binary> [<subcommand>] --help`, run with an empty environment (so `[env: X=]` shows
/// no values), parsed; built on demand and cached per process.
fn try_help(binary: &str, subcommand: Option<&str>) -> Result<Help, String> {
    type Cache = Mutex<HashMap<(String, Option<String>), Result<Help, String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    // Held while building, so two tests never run two cargo builds at once.
    let mut cache = CACHE
        .get_or_init(Cache::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = (binary.to_owned(), subcommand.map(str::to_owned));
    cache
        .entry(key)
        .or_insert_with(|| {
            let path = bins::try_binary(binary).map_err(|e| format!("binary {binary}: {e}"))?;
            let mut command = Command::new(&path);
            command.args(subcommand).arg("--help").env_clear();
            let shown = format!("`{binary} {} --help`", subcommand.unwrap_or_default());
            let output = command
                .output()
                .map_err(|e| format!("running {shown}: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "{shown} failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(parse_help(&String::from_utf8_lossy(&output.stdout)))
        })
        .clone()
}

fn help(binary: &str, subcommand: Option<&str>) -> Help {
    try_help(binary, subcommand).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn help_parser_reads_flags_envs_and_values_of_both_help_layouts() {
    let long = "\
Serve the HTTP API

Usage: data-host serve [OPTIONS]

Options:
      --bind <BIND>
          Address to listen on

          [env: DATA_HOST_BIND=]
          [default: 127.0.0.1:5001]

      --source <SOURCE>
          Where bars come from

          Possible values:
          - ib:    Fetch from TWS
          - local: Answer from the local store

          [env: DATA_HOST_SOURCE=]

  -h, --help
          Print help (see a summary with '-h')
";
    let help = parse_help(long);
    assert_eq!(help.flags(), "--bind --source --help");
    let source = help.option("--source").expect("--source");
    assert!(source.takes_value);
    assert_eq!(source.env.as_deref(), Some("DATA_HOST_SOURCE"));
    assert_eq!(source.possible_values, ["ib", "local"]);
    assert!(!help.option("--help").expect("--help").takes_value);

    let short = "\
Usage: data-host ib-sim [OPTIONS]

Options:
      --data-dir <DATA_DIR>  Store directory [env: DATA_DIR=] [default: data]
      --format <FORMAT>      Format [default: csv] [possible values: csv, parquet]
      --key <KEY>            Secret [env: API_KEY]
      --no-pacing            Do not enforce IB's pacing rules
  -h, --help                 Print help
";
    let help = parse_help(short);
    assert_eq!(help.flags(), "--data-dir --format --key --no-pacing --help");
    assert_eq!(
        help.option_for_env("DATA_DIR").map(|o| o.long.as_str()),
        Some("--data-dir")
    );
    assert_eq!(
        help.option("--format").expect("--format").possible_values,
        ["csv", "parquet"]
    );
    assert_eq!(
        help.option("--key").expect("--key").env.as_deref(),
        Some("API_KEY")
    );
    assert!(!help.option("--no-pacing").expect("--no-pacing").takes_value);

    let top = "\
Usage: data-host <COMMAND>

Commands:
  serve        Serve the HTTP API
  ib-sim       Run the IB Gateway simulator
  healthcheck  Exit 0 when healthy
  help         Print this message

Options:
  -h, --help     Print help
";
    assert_eq!(parse_help(top).commands, ["serve", "ib-sim", "healthcheck"]);
}

// ---------------------------------------------------------------------------------------
// Variables: `${NAME:-default}` as docker compose resolves it with nothing set.

fn interpolate(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body_and_rest) = after.strip_prefix('{') else {
            return Err(format!(
                "`$` without braces in {text:?}: write ${{NAME:-default}} (or $$ for a $)"
            ));
        };
        let mut depth = 1;
        let mut end = None;
        for (j, c) in body_and_rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let body = &body_and_rest[..end];
        let (name, default) = body
            .split_once(":-")
            .or_else(|| body.split_once('-'))
            .ok_or_else(|| {
                format!("`${{{body}}}` in {text:?} has no default: the file must work with no .env")
            })?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{body}}}` in {text:?}: only ${{NAME:-default}} is used here"
            ));
        }
        out.push_str(&interpolate(default)?);
        rest = &body_and_rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn interpolation_resolves_defaults_and_rejects_variables_without_one() {
    assert_eq!(
        interpolate("${A:-127.0.0.1}:${B-8000}:8000").as_deref(),
        Ok("127.0.0.1:8000:8000")
    );
    assert_eq!(interpolate("${KEY:-}").as_deref(), Ok(""));
    assert_eq!(interpolate("${A:-${B:-x}}y$$").as_deref(), Ok("xy$"));
    assert!(interpolate("${A}").is_err());
    assert!(interpolate("$A").is_err());
    assert!(interpolate("${A:?set A}").is_err());
}

// ---------------------------------------------------------------------------------------
// The compose file.

fn compose() -> &'static Value {
    static COMPOSE: OnceLock<Value> = OnceLock::new();
    COMPOSE.get_or_init(|| {
        let path = root().join("docker-compose.yml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        // `<<: *anchor` merge keys, as Compose applies them.
        yaml.apply_merge()
            .unwrap_or_else(|e| panic!("{}: merge keys: {e}", path.display()));
        serde_json::to_value(&yaml)
            .unwrap_or_else(|e| panic!("{}: not a compose document: {e}", path.display()))
    })
}

fn top(key: &str) -> &'static Map<String, Value> {
    static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
    match compose().get(key) {
        Some(Value::Object(map)) => map,
        Some(other) => panic!("docker-compose.yml: `{key}` is not a mapping: {other}"),
        None => EMPTY.get_or_init(Map::new),
    }
}

fn service(name: &str) -> &'static Map<String, Value> {
    match top("services").get(name) {
        Some(Value::Object(map)) => map,
        _ => panic!("docker-compose.yml has no service `{name}`"),
    }
}

/// A scalar as a string, interpolated.
fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => interpolate(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("not a scalar: {other}")),
    }
}

/// The service's command in exec form, interpolated.
fn command_of(name: &str) -> Result<Vec<String>, String> {
    match service(name).get("command") {
        Some(Value::Array(items)) => items.iter().map(scalar).collect(),
        Some(other) => Err(format!(
            "command must be a list (exec form), not {other}: a string is re-split by Compose"
        )),
        None => Err("has no command (the image has no entrypoint)".to_owned()),
    }
}

/// The value of `--name value` / `--name=value` in a command line.
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == flag {
            return iter.next().cloned();
        }
        if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            return Some(value.to_owned());
        }
    }
    None
}

/// Where the service listens: its `--bind` flag.
fn bind_of(name: &str) -> Option<SocketAddr> {
    flag_value(&command_of(name).ok()?, "--bind")?.parse().ok()
}

/// The environment of a service (mapping or `NAME=value` list), raw and interpolated.
fn environment_of(name: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut vars = Vec::new();
    match service(name).get("environment") {
        None => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let raw = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                vars.push((key.clone(), raw, scalar(value)?));
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                let Some(entry) = item.as_str() else {
                    return Err(format!("environment entry {item} is not NAME=value"));
                };
                let (key, raw) = entry.split_once('=').unwrap_or((entry, ""));
                vars.push((key.to_owned(), raw.to_owned(), interpolate(raw)?));
            }
        }
        Some(other) => {
            return Err(format!(
                "environment is neither a mapping nor a list: {other}"
            ));
        }
    }
    Ok(vars)
}

fn env_value(name: &str, var: &str) -> Option<(String, String)> {
    environment_of(name)
        .ok()?
        .into_iter()
        .find(|(key, _, _)| key == var)
        .map(|(_, raw, value)| (raw, value))
}

fn has_healthcheck(name: &str) -> bool {
    match service(name).get("healthcheck") {
        Some(Value::Object(hc)) => hc.get("disable") != Some(&Value::Bool(true)),
        _ => false,
    }
}

fn profiles_of(name: &str) -> BTreeSet<String> {
    service(name)
        .get("profiles")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The fixed IPv4 addresses of a service, by network.
fn fixed_ips(name: &str) -> Vec<(String, Ipv4Addr)> {
    let mut ips = Vec::new();
    if let Some(Value::Object(networks)) = service(name).get("networks") {
        for (network, config) in networks {
            if let Some(ip) = config.get("ipv4_address").and_then(|v| scalar(v).ok())
                && let Ok(ip) = ip.parse()
            {
                ips.push((network.clone(), ip));
            }
        }
    }
    ips
}

/// An IPv4 network `a.b.c.d/len`.
#[derive(Debug, Clone, Copy)]
struct Subnet {
    base: Ipv4Addr,
    len: u32,
}

impl Subnet {
    fn parse(text: &str) -> Option<Self> {
        let (base, len) = text.split_once('/')?;
        let len = len.parse().ok().filter(|l| *l <= 32)?;
        Some(Self {
            base: base.parse().ok()?,
            len,
        })
    }

    fn contains(self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.base) & mask
    }
}

/// `(subnet, ip_range)` of each IPAM pool of a top-level network.
fn pools_of(network: &str) -> Vec<(Subnet, Option<Subnet>)> {
    let Some(config) = top("networks")
        .get(network)
        .and_then(|n| n.pointer("/ipam/config"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    config
        .iter()
        .filter_map(|pool| {
            let subnet = Subnet::parse(&scalar(pool.get("subnet")?).ok()?)?;
            let range = pool
                .get("ip_range")
                .and_then(|r| Subnet::parse(&scalar(r).ok()?));
            Some((subnet, range))
        })
        .collect()
}

/// The service that has fixed address `ip`.
fn service_with_ip(ip: Ipv4Addr) -> Option<&'static str> {
    top("services")
        .keys()
        .map(String::as_str)
        .find(|name| fixed_ips(name).iter().any(|(_, fixed)| *fixed == ip))
}

/// `http://host:port[/...]` → (host, port).
fn http_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// `10s`, `1m30s`, `500ms`: a Compose duration.
fn compose_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "us" => Duration::from_micros(1),
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return None,
        };
        total += unit * u32::try_from(number).ok()?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Subcommands that serve HTTP and so can be probed by the binaries' `healthcheck`.
/// (`data-host ib-sim` speaks the TWS API, not HTTP: an HTTP probe can never pass.)
const HTTP_SUBCOMMANDS: [&str; 1] = ["serve"];

fn is_http_service(name: &str) -> bool {
    command_of(name)
        .ok()
        .and_then(|args| args.get(1).cloned())
        .is_some_and(|sub| HTTP_SUBCOMMANDS.contains(&sub.as_str()))
}

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

// ---------------------------------------------------------------------------------------
// The Dockerfile.

#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug, Clone)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }
}

fn parse_dockerfile(text: &str) -> Vec<Stage> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comments (and parser directives) are dropped, also inside a continued line.
        if trimmed.starts_with('#') || (trimmed.is_empty() && !pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let full = full.trim();
        if full.is_empty() {
            continue;
        }
        let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
        instructions.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            };
            stages.push(Stage {
                base: words.first().copied().unwrap_or_default().to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        }
    }
    stages
}

fn dockerfile() -> &'static Vec<Stage> {
    static STAGES: OnceLock<Vec<Stage>> = OnceLock::new();
    STAGES.get_or_init(|| {
        let path = root().join("Dockerfile");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        parse_dockerfile(&text)
    })
}

fn runtime_stage() -> &'static Stage {
    dockerfile().last().expect("the Dockerfile has no FROM")
}

/// `COPY [--flags] src... dest` → (flags, sources, destination).
fn copy_parts(args: &str) -> (Vec<&str>, Vec<&str>, &str) {
    let words: Vec<&str> = args.split_whitespace().collect();
    let (flags, paths): (Vec<&str>, Vec<&str>) =
        words.into_iter().partition(|w| w.starts_with("--"));
    match paths.split_last() {
        Some((dest, sources)) => (flags, sources.to_vec(), dest),
        None => (flags, Vec::new(), ""),
    }
}

/// Paths the runtime stage provides: COPY destinations (a file copied into a directory
/// as `dir/name`), VOLUMEs and the WORKDIR.
fn image_paths() -> Vec<String> {
    let stage = runtime_stage();
    let mut paths = Vec::new();
    for copy in stage.all("COPY") {
        let (_, sources, dest) = copy_parts(&copy.args);
        if dest.ends_with('/') {
            for source in sources {
                let file = source.rsplit('/').next().unwrap_or(source);
                paths.push(format!("{dest}{file}"));
            }
        } else {
            paths.push(dest.to_owned());
        }
    }
    paths.extend(volumes_declared());
    paths.extend(stage.all("WORKDIR").map(|w| w.args.clone()));
    paths
}

/// The runtime stage's VOLUMEs.
fn volumes_declared() -> Vec<String> {
    runtime_stage()
        .all("VOLUME")
        .flat_map(|v| {
            v.args
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split([',', ' '])
                .map(|p| p.trim().trim_matches('"').to_owned())
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Binaries the image installs on the PATH (/usr/local/bin).
fn installed_binaries() -> BTreeSet<String> {
    image_paths()
        .iter()
        .filter_map(|p| p.strip_prefix("/usr/local/bin/"))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The minor version of a Rust `1.x[.y]`.
fn rust_minor(version: &str) -> Option<u32> {
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}

/// The newest `rust-version` (its minor) among the workspace and its locked dependencies
/// for Linux on this machine's architecture, and who asks for it (`cargo metadata`).
fn newest_rust_version() -> (u32, String) {
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let output = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
        ])
        .arg(&platform)
        .output()
        .unwrap_or_else(|e| panic!("running cargo metadata: {e}"));
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("cargo metadata output: {e}"));
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| {
            let minor = rust_minor(package["rust_version"].as_str()?)?;
            let name = package["name"].as_str()?;
            let version = package["version"].as_str()?;
            Some((minor, format!("{name} {version}")))
        })
        .max()
        .unwrap_or_else(|| panic!("cargo metadata lists no rust-version"))
}

// ---------------------------------------------------------------------------------------
// One service, checked against its binary.

/// Services that run someone else's image (checked by their own test, not against a
/// project binary).
const THIRD_PARTY: [&str; 1] = ["kafka"];

fn check_service(name: &str) {
    let mut p = Problems::new(format!("docker-compose.yml service `{name}`"));
    let svc = service(name);

    // The project image.
    match svc.get("build") {
        Some(Value::Object(build)) => {
            let context = build.get("context").map(scalar).transpose();
            let dockerfile = build.get("dockerfile").map(scalar).transpose();
            match (context, dockerfile) {
                (Ok(context), Ok(dockerfile)) => {
                    let context = root().join(context.unwrap_or_else(|| ".".to_owned()));
                    p.check(
                        context.canonicalize().ok() == root().canonicalize().ok(),
                        || {
                            format!(
                                "build context {} is not the repository root",
                                context.display()
                            )
                        },
                    );
                    let dockerfile = dockerfile.unwrap_or_else(|| "Dockerfile".to_owned());
                    p.check(
                        context.join(&dockerfile).canonicalize().ok()
                            == root().join("Dockerfile").canonicalize().ok(),
                        || format!("build dockerfile {dockerfile} is not the project Dockerfile"),
                    );
                }
                (Err(e), _) | (_, Err(e)) => p.push(format!("build: {e}")),
            }
        }
        _ => p.push("has no `build:` of the project Dockerfile"),
    }
    // The project's services share one image; the Kafka broker is a third party's.
    let images: BTreeSet<String> = top("services")
        .iter()
        .filter(|(name, _)| !THIRD_PARTY.contains(&name.as_str()))
        .map(|(_, s)| s.get("image").map(scalar).transpose().ok().flatten())
        .map(Option::unwrap_or_default)
        .collect();
    p.check(images.len() == 1, || {
        format!("services do not share one image: {images:?}")
    });
    p.check(svc.get("entrypoint").is_none(), || {
        "overrides the entrypoint; give the binary in `command`".to_owned()
    });
    p.check(
        svc.get("restart").and_then(Value::as_str) == Some("unless-stopped"),
        || "restart is not `unless-stopped`".to_owned(),
    );

    // The command: binary, subcommand, flags.
    let args = match command_of(name) {
        Ok(args) => args,
        Err(e) => {
            p.push(e);
            return p.assert_none();
        }
    };
    let (Some(binary), Some(subcommand)) = (args.first(), args.get(1)) else {
        p.push(format!(
            "command {args:?} is not `<binary> <subcommand> ...`"
        ));
        return p.assert_none();
    };
    if bins::package_of(binary).is_none() {
        p.push(format!(
            "command runs {binary:?}, not a workspace binary ({})",
            BINARIES.map(|(b, _)| b).join(", ")
        ));
        return p.assert_none();
    }
    p.check(installed_binaries().contains(binary), || {
        format!("the Dockerfile does not install {binary} in /usr/local/bin")
    });
    let top_help = help(binary, None);
    if !top_help.commands.contains(subcommand) {
        p.push(format!(
            "`{binary}` has no subcommand {subcommand:?} (its --help lists: {})",
            top_help.commands.join(", ")
        ));
        return p.assert_none();
    }
    let sub_help = help(binary, Some(subcommand));
    let given = check_arguments(&mut p, binary, subcommand, &args[2..], &sub_help);
    let image_paths = image_paths();
    let mounts = mounts_of(&mut p, name);
    for (flag, value) in &given {
        if value.starts_with('/') {
            p.check(
                mounts.iter().any(|(_, target)| under(value, target))
                    || image_paths.iter().any(|dir| under(value, dir)),
                || format!("{flag} {value}: neither a volume of this service nor in the image"),
            );
        }
    }

    // Environment: every variable is read by the subcommand (clap `env`) or a library.
    let library = library_variables(binary);
    match environment_of(name) {
        Err(e) => p.push(format!("environment: {e}")),
        Ok(vars) => {
            for (var, _raw, value) in &vars {
                match sub_help.option_for_env(var) {
                    Some(option) => {
                        p.check(!given.iter().any(|(f, _)| *f == option.long), || {
                            format!(
                                "{var} and {} both set the same thing (the flag wins)",
                                option.long
                            )
                        });
                        p.check(
                            option.possible_values.is_empty()
                                || option.possible_values.contains(value),
                            || {
                                format!(
                                    "{var}={value:?} is not one of {:?}",
                                    option.possible_values
                                )
                            },
                        );
                    }
                    None => p.check(library.contains(&var.as_str()), || {
                        format!(
                            "{var} is read by neither `{binary} {subcommand}` (no `[env: {var}` in \
                             its --help) nor the libraries ({})",
                            library.join(", ")
                        )
                    }),
                }
            }
        }
    }

    // Addresses it talks to: service URLs need the service healthy first; fixed
    // addresses must be a service's fixed IP and bound port.
    let settings: Vec<(String, String)> = given
        .iter()
        .filter(|(flag, _)| flag != "--bind")
        .cloned()
        .chain(
            environment_of(name)
                .unwrap_or_default()
                .into_iter()
                .map(|(var, _, value)| (var, value)),
        )
        .collect();
    let depends = depends_on(&mut p, name);
    for (setting, value) in &settings {
        for item in value.split(',').map(str::trim) {
            if let Some((host, port)) = http_host_port(item) {
                if top("services").contains_key(&host) {
                    p.check(bind_of(&host).map(|b| b.port()) == Some(port), || {
                        format!("{setting}: {item} is not the port {host} binds")
                    });
                    p.check(
                        depends
                            .iter()
                            .any(|(dep, cond, _)| *dep == host && cond == "service_healthy"),
                        || format!("{setting} uses {host}, but does not wait for it healthy"),
                    );
                } else {
                    p.push(format!("{setting}: {item} is not a service of this file"));
                }
            } else if let Ok(SocketAddr::V4(addr)) = item.parse::<SocketAddr>() {
                let in_a_subnet = top("networks").keys().any(|network| {
                    pools_of(network)
                        .iter()
                        .any(|(subnet, _)| subnet.contains(*addr.ip()))
                });
                if in_a_subnet {
                    match service_with_ip(*addr.ip()) {
                        Some(target) => p.check(
                            bind_of(target).map(|b| b.port()) == Some(addr.port()),
                            || format!("{setting}: {item} is not the port {target} binds"),
                        ),
                        None => p.push(format!(
                            "{setting}: {item} is in a compose subnet but no service has that \
                             fixed address"
                        )),
                    }
                }
            }
        }
    }

    // Where it listens, and the ports it opens.
    let bind = if sub_help.option("--bind").is_some() {
        match flag_value(&args, "--bind").map(|b| b.parse::<SocketAddr>()) {
            Some(Ok(bind)) => {
                p.check(bind.ip().is_unspecified(), || {
                    format!("--bind {bind}: in a container bind 0.0.0.0, not a single address")
                });
                Some(bind)
            }
            Some(Err(e)) => {
                p.push(format!("--bind: {e}"));
                None
            }
            None => {
                p.push("does not pass --bind (the default, loopback, is unreachable)");
                None
            }
        }
    } else {
        None
    };
    check_ports(&mut p, name, bind);

    // Healthcheck: the binary's own, against the bound port.
    if is_http_service(name) {
        check_healthcheck(&mut p, name, binary, bind);
    } else {
        p.check(!has_healthcheck(name), || {
            format!(
                "`{binary} {subcommand}` is not an HTTP service: the binaries' healthcheck (an \
                 HTTP probe) can never pass against it"
            )
        });
    }

    // Volumes and networks it uses exist.
    for (source, target) in &mounts {
        if let Some(volume) = source {
            p.check(top("volumes").contains_key(volume), || {
                format!("volume {volume} is not declared at the top level")
            });
            p.check(volumes_declared().contains(target), || {
                format!(
                    "{target} is not a VOLUME of the Dockerfile (a fresh volume would be owned by \
                     root, unwritable for the service user)"
                )
            });
        }
    }
    check_networks(&mut p, name);

    p.assert_none();
}

/// Checks `args` (after the subcommand) against the subcommand's help; returns the flags
/// given, with their values.
fn check_arguments(
    p: &mut Problems,
    binary: &str,
    subcommand: &str,
    args: &[String],
    help: &Help,
) -> Vec<(String, String)> {
    let shown = format!("`{binary} {subcommand}`");
    let mut given: Vec<(String, String)> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if !arg.starts_with("--") {
            p.push(format!(
                "{shown}: unexpected argument {arg:?} (only --long flags are used here)"
            ));
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        if flag == "--help" || flag == "--version" {
            p.push(format!("{shown} {flag} would exit instead of serving"));
            continue;
        }
        let Some(option) = help.option(flag) else {
            p.push(format!(
                "{shown} has no flag {flag} (its --help lists: {})",
                help.flags()
            ));
            continue;
        };
        let value = if option.takes_value {
            match inline.or_else(|| iter.next().cloned()) {
                Some(value) if !value.starts_with("--") => value,
                _ => {
                    p.push(format!("{shown} {flag} needs a value"));
                    continue;
                }
            }
        } else {
            if inline.is_some() {
                p.push(format!("{shown} {flag} takes no value"));
            }
            String::new()
        };
        if !option.possible_values.is_empty() && !option.possible_values.contains(&value) {
            p.push(format!(
                "{shown} {flag} {value:?} is not one of {:?}",
                option.possible_values
            ));
        }
        if given.iter().any(|(f, _)| f == flag) {
            p.push(format!("{shown} {flag} is given twice"));
        }
        given.push((flag.to_owned(), value));
    }
    given
}

/// The service's mounts: (named volume or `None` for a bind mount, target).
fn mounts_of(p: &mut Problems, name: &str) -> Vec<(Option<String>, String)> {
    let Some(items) = service(name).get("volumes").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut mounts = Vec::new();
    for item in items {
        let (source, target) = match item {
            Value::String(_) => match scalar(item) {
                Ok(text) => {
                    let mut parts = text.split(':');
                    match (parts.next(), parts.next()) {
                        (Some(source), Some(target)) => (source.to_owned(), target.to_owned()),
                        _ => (String::new(), text.clone()),
                    }
                }
                Err(e) => {
                    p.push(format!("volumes: {e}"));
                    continue;
                }
            },
            Value::Object(long) => (
                long.get("source")
                    .and_then(|s| scalar(s).ok())
                    .unwrap_or_default(),
                long.get("target")
                    .and_then(|s| scalar(s).ok())
                    .unwrap_or_default(),
            ),
            other => {
                p.push(format!("volumes: unreadable entry {other}"));
                continue;
            }
        };
        let named = !(source.is_empty()
            || source.starts_with('.')
            || source.starts_with('/')
            || source.starts_with('~'));
        mounts.push((named.then_some(source), target));
    }
    mounts
}

/// The service's `depends_on`: (service, condition, required).
fn depends_on(p: &mut Problems, name: &str) -> Vec<(String, String, bool)> {
    let mut deps = Vec::new();
    match service(name).get("depends_on") {
        None => {}
        Some(Value::Object(map)) => {
            for (dep, config) in map {
                let condition = config
                    .get("condition")
                    .and_then(Value::as_str)
                    .unwrap_or("service_started")
                    .to_owned();
                let required = config
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                deps.push((dep.clone(), condition, required));
            }
        }
        Some(other) => p.push(format!(
            "depends_on must be a mapping with a condition per service, not {other}"
        )),
    }
    let own_profiles = profiles_of(name);
    for (dep, condition, required) in &deps {
        if !top("services").contains_key(dep) {
            p.push(format!("depends on {dep}, which is not a service"));
            continue;
        }
        if has_healthcheck(dep) {
            p.check(condition == "service_healthy", || {
                format!("depends on {dep} with {condition}, not service_healthy")
            });
        } else {
            p.check(condition == "service_started", || {
                format!(
                    "depends on {dep} with {condition}, but {dep} has no healthcheck \
                     (service_healthy would fail)"
                )
            });
        }
        // A dependency that a profile can disable while this service runs must not be
        // required, or `docker compose up` without that profile refuses the file.
        let dep_profiles = profiles_of(dep);
        let may_be_disabled = !dep_profiles.is_empty()
            && (own_profiles.is_empty() || !own_profiles.is_subset(&dep_profiles));
        p.check(*required != may_be_disabled, || {
            if may_be_disabled {
                format!(
                    "depends on {dep} (profiles {dep_profiles:?}) without `required: false`: \
                     without the profile Compose rejects the file"
                )
            } else {
                format!("depends on {dep} with `required: false`, but {dep} always runs")
            }
        });
    }
    deps
}

fn check_ports(p: &mut Problems, name: &str, bind: Option<SocketAddr>) {
    let svc = service(name);
    let port = bind.map(|b| b.port());
    for entry in svc
        .get("expose")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let exposed = scalar(entry).ok().and_then(|e| {
            e.split('/')
                .next()
                .and_then(|port| port.parse::<u16>().ok())
        });
        p.check(exposed.is_some() && exposed == port, || {
            format!("expose {entry} is not the bound port {port:?}")
        });
    }
    for entry in svc
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (host_ip, target) = match entry {
            Value::Object(long) => (
                long.get("host_ip").and_then(|v| scalar(v).ok()),
                long.get("target").and_then(|v| scalar(v).ok()),
            ),
            other => match scalar(other) {
                Ok(text) => {
                    let text = text.split('/').next().unwrap_or_default().to_owned();
                    let parts: Vec<&str> = text.rsplitn(3, ':').collect();
                    (
                        parts.get(2).map(|ip| (*ip).to_owned()),
                        parts.first().map(|t| (*t).to_owned()),
                    )
                }
                Err(e) => {
                    p.push(format!("ports: {e}"));
                    continue;
                }
            },
        };
        let target = target.and_then(|t| t.parse::<u16>().ok());
        p.check(target.is_some() && target == port, || {
            format!("ports {entry}: container port is not the bound port {port:?}")
        });
        let loopback = host_ip
            .as_deref()
            .map(|ip| ip.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback());
        p.check(loopback, || {
            format!("ports {entry}: publish on the host's loopback by default (e.g. 127.0.0.1:)")
        });
    }
}

fn check_healthcheck(p: &mut Problems, name: &str, binary: &str, bind: Option<SocketAddr>) {
    let Some(Value::Object(hc)) = service(name).get("healthcheck") else {
        p.push(format!(
            "has no healthcheck (`{binary} healthcheck --url ...`)"
        ));
        return;
    };
    let test: Vec<String> = match hc.get("test") {
        Some(Value::Array(items)) => items.iter().filter_map(|v| scalar(v).ok()).collect(),
        other => {
            p.push(format!(
                "healthcheck test must be [\"CMD\", \"{binary}\", \"healthcheck\", ...], not {other:?}"
            ));
            return;
        }
    };
    p.check(
        !test
            .iter()
            .any(|t| t.contains("curl") || t.contains("wget")),
        || format!("healthcheck {test:?} uses curl/wget; the image has neither"),
    );
    match test.as_slice() {
        [cmd, bin, sub, rest @ ..] if cmd == "CMD" && bin == binary && sub == "healthcheck" => {
            let help = help(binary, Some("healthcheck"));
            let given = check_arguments(p, binary, "healthcheck", rest, &help);
            let url = given.iter().find(|(f, _)| f == "--url").map(|(_, v)| v);
            match url.and_then(|u| http_host_port(u)) {
                Some((host, port)) => {
                    p.check(host == "127.0.0.1" || host == "localhost", || {
                        format!("healthcheck probes {host}, not the container itself")
                    });
                    p.check(Some(port) == bind.map(|b| b.port()), || {
                        format!("healthcheck probes port {port}, the service binds {bind:?}")
                    });
                }
                None => p.push(format!(
                    "healthcheck {test:?} has no --url http://127.0.0.1:<bound port>"
                )),
            }
        }
        _ => p.push(format!(
            "healthcheck test {test:?} is not [\"CMD\", \"{binary}\", \"healthcheck\", ...] \
             (exec form, the service's own binary)"
        )),
    }
    let duration = |key: &str| {
        hc.get(key)
            .and_then(|v| scalar(v).ok())
            .and_then(|v| compose_duration(&v))
    };
    for key in ["interval", "timeout", "start_period"] {
        p.check(duration(key).is_some(), || {
            format!("healthcheck has no valid {key}")
        });
    }
    if let (Some(interval), Some(timeout)) = (duration("interval"), duration("timeout")) {
        p.check(timeout < interval, || {
            "healthcheck timeout is not shorter than its interval".to_owned()
        });
    }
    p.check(
        hc.get("retries")
            .and_then(Value::as_u64)
            .is_some_and(|r| r >= 1),
        || "healthcheck has no retries".to_owned(),
    );
}

fn check_networks(p: &mut Problems, name: &str) {
    let networks: Vec<String> = match service(name).get("networks") {
        None => {
            p.push("is on no network of this file (fixed addresses need the project network)");
            return;
        }
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        Some(other) => {
            p.push(format!("networks: unreadable {other}"));
            return;
        }
    };
    for network in &networks {
        p.check(top("networks").contains_key(network), || {
            format!("network {network} is not declared at the top level")
        });
    }
    for (network, ip) in fixed_ips(name) {
        let pools = pools_of(&network);
        p.check(pools.iter().any(|(subnet, _)| subnet.contains(ip)), || {
            format!("ipv4_address {ip} is outside the subnet of {network}")
        });
        p.check(
            pools
                .iter()
                .all(|(_, range)| range.is_some_and(|r| !r.contains(ip))),
            || {
                format!(
                    "ipv4_address {ip} must sit outside the ip_range of {network}, or a container \
                     started earlier can take it"
                )
            },
        );
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn compose_has_the_four_services_and_the_simulator_is_a_profile() {
    let mut p = Problems::new("docker-compose.yml");
    let names: BTreeSet<&str> = top("services").keys().map(String::as_str).collect();
    p.check(
        names
            == BTreeSet::from([
                "api-gateway",
                "data-host",
                "ib-sim",
                "kafka",
                "training-host",
            ]),
        || format!("services are {names:?}; each needs a test below"),
    );
    for name in ["api-gateway", "data-host", "training-host"] {
        p.check(profiles_of(name).is_empty(), || {
            format!("{name} must always run (no profiles)")
        });
    }
    p.check(
        profiles_of("ib-sim") == BTreeSet::from(["sim".to_owned()]),
        || "ib-sim must be in the `sim` profile only".to_owned(),
    );
    p.check(
        profiles_of("kafka") == BTreeSet::from(["kafka".to_owned()]),
        || "kafka must be in the `kafka` profile only".to_owned(),
    );
    p.assert_none();
}

#[test]
fn data_host_service() {
    check_service("data-host");
}

#[test]
fn training_host_service() {
    check_service("training-host");
}

#[test]
fn ib_sim_service() {
    check_service("ib-sim");
}

#[test]
fn api_gateway_service() {
    check_service("api-gateway");
}

#[test]
fn api_gateway_runs_in_host_mode_against_the_host_services() {
    use api_gateway::config::{
        IB_HOST_SERVICE_URL, TRAINING_HOST_SERVICE_URL, USE_IB_HOST_SERVICE,
        USE_TRAINING_HOST_SERVICE,
    };
    let mut p = Problems::new("docker-compose.yml service `api-gateway`");
    for (switch, url_var, host) in [
        (USE_IB_HOST_SERVICE, IB_HOST_SERVICE_URL, "data-host"),
        (
            USE_TRAINING_HOST_SERVICE,
            TRAINING_HOST_SERVICE_URL,
            "training-host",
        ),
    ] {
        let on = env_value("api-gateway", switch).map(|(_, v)| v.to_ascii_lowercase());
        p.check(
            matches!(on.as_deref(), Some("true" | "1" | "yes" | "on")),
            || {
                format!(
                    "{switch} is {on:?}, not true: the gateway would run {host}'s work in-process"
                )
            },
        );
        let urls = env_value("api-gateway", url_var).map(|(_, v)| v);
        let hosts: Vec<String> = urls
            .iter()
            .flat_map(|u| u.split(','))
            .filter_map(|u| http_host_port(u.trim()).map(|(h, _)| h))
            .collect();
        p.check(!hosts.is_empty() && hosts.iter().all(|h| h == host), || {
            format!("{url_var} is {urls:?}, not http://{host}:<port>")
        });
    }
    p.assert_none();
}

#[test]
fn shared_volumes_hold_the_store_and_the_models() {
    let mut p = Problems::new("docker-compose.yml volumes");
    for (volume, flag, services) in [
        (
            "market-data",
            "--data-dir",
            &["data-host", "training-host", "api-gateway"][..],
        ),
        (
            "models",
            "--models-dir",
            &["training-host", "api-gateway"][..],
        ),
    ] {
        p.check(top("volumes").contains_key(volume), || {
            format!("no top-level volume {volume}")
        });
        for name in services {
            let dir = command_of(name)
                .ok()
                .and_then(|args| flag_value(&args, flag));
            let mounts = mounts_of(&mut p, name);
            p.check(
                dir.as_ref().is_some_and(|dir| {
                    mounts
                        .iter()
                        .any(|(source, target)| source.as_deref() == Some(volume) && target == dir)
                }),
                || format!("{name}: {flag} {dir:?} is not where volume {volume} is mounted"),
            );
        }
    }
    p.assert_none();
}

#[test]
fn ib_sim_has_a_fixed_address_that_ib_address_defaults_to() {
    let mut p = Problems::new("docker-compose.yml IB address");
    let sim_ips = fixed_ips("ib-sim");
    let sim_port = bind_of("ib-sim").map(|b| b.port());
    p.check(sim_ips.len() == 1, || {
        format!("ib-sim needs exactly one fixed ipv4_address, has {sim_ips:?}")
    });
    let expected = sim_ips
        .first()
        .zip(sim_port)
        .map(|((_, ip), port)| format!("{ip}:{port}"));
    for name in ["data-host", "api-gateway"] {
        let Some((raw, value)) = env_value(name, "IB_ADDRESS") else {
            p.check(name != "data-host", || {
                "data-host sets no IB_ADDRESS".to_owned()
            });
            continue;
        };
        p.check(raw.starts_with("${IB_ADDRESS:-"), || {
            format!("{name}: IB_ADDRESS is {raw:?}, not ${{IB_ADDRESS:-<sim address>}}")
        });
        p.check(Some(&value) == expected.as_ref(), || {
            format!("{name}: IB_ADDRESS defaults to {value}, ib-sim is at {expected:?}")
        });
    }
    let after_sim = depends_on(&mut p, "data-host")
        .iter()
        .any(|(dep, _, _)| dep == "ib-sim");
    p.check(after_sim, || {
        "data-host does not start after ib-sim (when the sim profile is on)".to_owned()
    });
    // The simulator serves the sample bars the Dockerfile copies from the repository.
    let sim_dir = command_of("ib-sim")
        .ok()
        .and_then(|args| flag_value(&args, "--data-dir"));
    let sample = runtime_stage()
        .all("COPY")
        .map(|c| copy_parts(&c.args))
        .find(|(flags, sources, _)| flags.is_empty() && sources.as_slice() == ["data"])
        .map(|(_, _, dest)| dest.trim_end_matches('/').to_owned());
    p.check(sim_dir.is_some() && sim_dir == sample, || {
        format!("ib-sim serves {sim_dir:?}, the image has the repository's data/ at {sample:?}")
    });
    p.assert_none();
}

#[test]
fn dockerfile_is_multi_stage_builds_every_binary_locked_and_runs_without_curl_as_non_root() {
    let mut p = Problems::new("Dockerfile");
    let stages = dockerfile();
    p.check(stages.len() >= 2, || {
        format!(
            "{} FROM; a multi-stage build needs at least 2",
            stages.len()
        )
    });
    let runtime = runtime_stage();

    // Builder: a Rust image at least the newest rust-version of the workspace and its
    // locked dependencies (`cargo build --locked` fails on an older one), on the runtime's
    // Debian release (the binaries link against its glibc).
    let (required, required_by) = newest_rust_version();
    let builder = stages
        .iter()
        .find(|s| s.all("RUN").any(|r| r.args.contains("cargo build")));
    let Some(builder) = builder else {
        p.push("no stage runs `cargo build`");
        return p.assert_none();
    };
    let release = runtime
        .base
        .strip_prefix("debian:")
        .and_then(|tag| tag.strip_suffix("-slim"));
    p.check(release.is_some(), || {
        format!(
            "runtime stage is {}, not debian:<release>-slim",
            runtime.base
        )
    });
    match builder.base.strip_prefix("rust:") {
        Some(tag) => {
            let (version, suite) = tag.split_once('-').unwrap_or((tag, ""));
            p.check(Some(suite) == release, || {
                format!(
                    "builder {} and runtime {} are different Debian releases",
                    builder.base, runtime.base
                )
            });
            p.check(rust_minor(version).is_some_and(|v| v >= required), || {
                format!(
                    "builder {} is older than Rust 1.{required}, the rust-version of \
                         {required_by}",
                    builder.base
                )
            });
        }
        None => p.push(format!(
            "builder stage is {}, not rust:<1.x>-<release>",
            builder.base
        )),
    }

    // The build: all four binaries, locked, release, with cache mounts.
    let build = builder
        .all("RUN")
        .find(|r| r.args.contains("cargo build"))
        .map(|r| r.args.clone())
        .unwrap_or_default();
    let words: Vec<&str> = build.split_whitespace().collect();
    for flag in ["--release", "--locked"] {
        p.check(words.contains(&flag), || {
            format!("cargo build without {flag}")
        });
    }
    for (binary, _) in BINARIES {
        p.check(words.windows(2).any(|w| w == ["--bin", binary]), || {
            format!("cargo build does not build --bin {binary}")
        });
        p.check(installed_binaries().contains(binary), || {
            format!("the runtime stage does not install {binary} in /usr/local/bin")
        });
    }
    p.check(build.contains("--mount=type=cache"), || {
        "cargo build has no BuildKit cache mount".to_owned()
    });
    for copy in runtime.all("COPY") {
        let (flags, sources, _) = copy_parts(&copy.args);
        if let Some(from) = flags.iter().find_map(|f| f.strip_prefix("--from=")) {
            p.check(
                stages.iter().any(|s| s.name.as_deref() == Some(from)),
                || format!("COPY --from={from}: no such stage"),
            );
        } else {
            for source in sources {
                p.check(root().join(source).exists(), || {
                    format!("COPY {source}: not in the repository")
                });
            }
        }
    }

    // Runtime: ca-certificates, no curl/wget, a non-root user, the volumes.
    let runtime_text: String = runtime
        .instructions
        .iter()
        .map(|i| format!("{} {}\n", i.keyword, i.args))
        .collect();
    for tool in ["curl", "wget"] {
        p.check(!runtime_text.contains(tool), || {
            format!("the runtime stage mentions {tool}; healthchecks use the binaries")
        });
    }
    p.check(
        runtime
            .all("RUN")
            .any(|r| r.args.contains("apt-get install") && r.args.contains("ca-certificates")),
        || "the runtime stage does not install ca-certificates".to_owned(),
    );
    let user = runtime.all("USER").last().map(|u| u.args.clone());
    p.check(
        user.as_deref().is_some_and(|u| {
            let name = u.split(':').next().unwrap_or(u);
            name != "root" && name != "0"
        }),
        || format!("the runtime stage runs as {user:?}, not a non-root user"),
    );
    for volume in ["/app/data", "/app/models"] {
        p.check(volumes_declared().iter().any(|v| v == volume), || {
            format!("no VOLUME {volume}")
        });
    }
    p.check(
        runtime.all("WORKDIR").last().map(|w| w.args.as_str()) == Some("/app"),
        || "WORKDIR is not /app".to_owned(),
    );

    // The context leaves out build output and local state.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap_or_default();
    let entries: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for entry in ["target", ".git", "models", "*.redb"] {
        p.check(entries.contains(&entry), || {
            format!(".dockerignore does not exclude {entry}")
        });
    }
    p.assert_none();
}

#[test]
fn compose_durations_parse_like_compose() {
    assert_eq!(compose_duration("10s"), Some(Duration::from_secs(10)));
    assert_eq!(compose_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(compose_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(compose_duration("10"), None);
    assert_eq!(compose_duration(""), None);
}
