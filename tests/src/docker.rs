//! The Docker engine and the compose tool, driven through their own command-line tools the
//! way an operator would: the engine checked for, the project image built from the
//! Dockerfile's `prebuilt` target, and a compose project started, inspected and removed.
//!
//! Where no engine is reachable a test is skipped with the reason printed; with
//! `CI_REQUIRE_DOCKER` set (`.ci/run` sets it when `docker info` answers) it fails instead.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bins::{self, BINARIES};

/// The runtime base the `prebuilt` image starts from: `scripts/docker-base-image.sh` makes
/// it from Debian's packages (no registry needed). `HOSTBRIDGE_DOCKER_RUNTIME_IMAGE`
/// names another (e.g. `debian:bookworm-slim` where a registry is reachable).
pub const DEFAULT_RUNTIME_IMAGE: &str = "hostbridge-base:bookworm";

/// Why a Docker test cannot run here: printed and skipped, or a failure under
/// `CI_REQUIRE_DOCKER`.
pub fn skip_or_fail(reason: &str) {
    assert!(
        std::env::var_os("CI_REQUIRE_DOCKER").is_none(),
        "CI_REQUIRE_DOCKER is set but {reason}"
    );
    eprintln!("skipping: {reason}");
}

/// Runs `program args`, capturing both outputs.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Output, String> {
    Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))
}

/// Runs `program args` and returns its stdout, or an error with its stderr.
pub fn run_ok(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let output = run(program, args, env)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `docker args` → stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    run_ok("docker", args, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether an engine answers (`docker info`), or why not.
pub fn engine() -> Result<(), String> {
    let output = run("docker", &["info", "--format", "{{.ServerVersion}}"], &[])?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "no Docker engine is reachable (`docker info`: {})",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The compose tool this machine has: Compose v2 (`docker compose`) or v1
/// (`docker-compose`), in that order.
#[derive(Debug, Clone)]
pub struct ComposeTool {
    program: &'static str,
    prefix: &'static [&'static str],
}

impl ComposeTool {
    pub fn detect() -> Result<Self, String> {
        let candidates: [(&'static str, &'static [&'static str]); 2] =
            [("docker", &["compose"]), ("docker-compose", &[])];
        for (program, prefix) in candidates {
            let mut args = prefix.to_vec();
            args.push("version");
            if run(program, &args, &[]).is_ok_and(|o| o.status.success()) {
                return Ok(Self { program, prefix });
            }
        }
        Err("neither `docker compose` nor `docker-compose` is installed".into())
    }

    /// How it is called, for messages.
    pub fn name(&self) -> String {
        std::iter::once(self.program)
            .chain(self.prefix.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `compose args` with `env` added to the environment.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Output, String> {
        let mut all = self.prefix.to_vec();
        all.extend_from_slice(args);
        run(self.program, &all, env)
    }

    pub fn run_ok(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
        let mut all = self.prefix.to_vec();
        all.extend_from_slice(args);
        run_ok(self.program, &all, env)
    }
}

/// The tag of the image the tests build and run.
pub const TEST_IMAGE: &str = "hostbridge:compose-test";

/// The image the tests run: the Dockerfile's `prebuilt` target on the local runtime base,
/// holding the workspace binaries this test run built (copied to `target/docker-bin`,
/// debug info stripped). Built once per test process and kept afterwards (the next run
/// replaces it), so an operator can look at what was tested.
#[derive(Debug)]
pub struct TestImage {
    pub tag: String,
}

impl TestImage {
    /// The image, built on first use, or why it cannot be built here.
    pub fn shared() -> Result<&'static Self, String> {
        static IMAGE: OnceLock<Result<TestImage, String>> = OnceLock::new();
        IMAGE
            .get_or_init(|| Self::build(TEST_IMAGE))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build(tag: &str) -> Result<Self, String> {
        let base = std::env::var("HOSTBRIDGE_DOCKER_RUNTIME_IMAGE")
            .unwrap_or_else(|_| DEFAULT_RUNTIME_IMAGE.to_owned());
        if run_ok("docker", &["image", "inspect", &base], &[]).is_err() {
            return Err(format!(
                "the runtime base image {base} is missing: make it with \
                 scripts/docker-base-image.sh (or set HOSTBRIDGE_DOCKER_RUNTIME_IMAGE)"
            ));
        }
        let root = bins::workspace_root();
        let staging = root.join("target/docker-bin");
        std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
        for name in BINARIES.iter().map(|(name, _)| *name) {
            let built = bins::try_binary(name).map_err(|e| e.to_string())?;
            stage_binary(&built, &staging.join(name))?;
        }
        // The previous run's image would stay behind untagged.
        let _ = run("docker", &["image", "rm", tag], &[]);
        let started = Instant::now();
        let root = root.to_str().ok_or("the workspace path is not UTF-8")?;
        let base_arg = format!("RUNTIME_IMAGE={base}");
        let args = [
            "build",
            "--quiet",
            "--target",
            "prebuilt",
            "--build-arg",
            &base_arg,
            "--tag",
            tag,
            root,
        ];
        // BuildKit where the CLI can drive it; the docker CLI 23+ needs the buildx plugin
        // for that, which Debian's packages lack, and then the legacy builder builds the
        // `prebuilt` target just as well (it never reaches the stages after it, whose
        // cache mounts need BuildKit). A failing Dockerfile is a failure, not a skip.
        let built = match run_ok("docker", &args, &[("DOCKER_BUILDKIT", "1")]) {
            Err(e) if e.contains("buildx") => {
                eprintln!("no buildx: building with the legacy builder");
                run_ok("docker", &args, &[("DOCKER_BUILDKIT", "0")])
            }
            other => other,
        };
        if let Err(e) = built {
            panic!("the image does not build: {e}");
        }
        eprintln!(
            "built {tag} (prebuilt target on {base}) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Self {
            tag: tag.to_owned(),
        })
    }

    /// The image's size in bytes, as `docker image inspect` reports it.
    pub fn size(&self) -> u64 {
        docker(&["image", "inspect", "--format", "{{.Size}}", &self.tag])
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

/// Copies a binary without its debug information (objcopy where it exists: a debug build's
/// line tables are most of its size and of no use in an image).
fn stage_binary(from: &Path, to: &Path) -> Result<(), String> {
    let (Some(from_s), Some(to_s)) = (from.to_str(), to.to_str()) else {
        return Err(format!("non-UTF-8 path {}", from.display()));
    };
    let stripped =
        run("objcopy", &["--strip-debug", from_s, to_s], &[]).is_ok_and(|o| o.status.success());
    if !stripped {
        std::fs::copy(from, to).map_err(|e| format!("copy {} → {}: {e}", from.display(), to_s))?;
    }
    Ok(())
}

/// A compose project of the repository's `docker-compose.yml`, under its own project name
/// with its own environment; `down -v` (containers, network, volumes) when dropped.
#[derive(Debug)]
pub struct Project {
    pub tool: ComposeTool,
    pub name: String,
    file: String,
    profiles: Vec<String>,
    env: Vec<(String, String)>,
}

impl Project {
    pub fn new(tool: ComposeTool, name: &str, profiles: &[&str], env: &[(&str, &str)]) -> Self {
        let file = bins::workspace_root().join("docker-compose.yml");
        Self {
            tool,
            name: name.to_owned(),
            file: file.to_string_lossy().into_owned(),
            profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--project-name", &self.name, "--file", &self.file];
        for profile in &self.profiles {
            args.extend(["--profile", profile]);
        }
        args.extend_from_slice(rest);
        args
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// `compose … args` → its output (whatever the exit status).
    pub fn run(&self, args: &[&str]) -> Output {
        self.tool
            .run(&self.args(args), &self.env())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `compose … args` → stdout; panics with its output on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        self.tool
            .run_ok(&self.args(args), &self.env())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The container id of `service` (empty if it has none).
    pub fn container(&self, service: &str) -> String {
        self.ok(&["ps", "--all", "--quiet", service])
            .trim()
            .to_owned()
    }

    /// `docker inspect` of the container of `service`.
    pub fn inspect(&self, service: &str) -> Value {
        let id = self.container(service);
        assert!(!id.is_empty(), "{service} has no container");
        inspect_container(&id)
    }

    /// The health status of `service`'s container (`starting`, `healthy`, `unhealthy`),
    /// its state (`running`, `exited`, …) when it has no healthcheck or no container.
    pub fn health(&self, service: &str) -> String {
        // One `ps` per call: the id is not cached, since `down`/`up` make new containers.
        let id = self.container(service);
        if id.is_empty() {
            return "absent".into();
        }
        let state = &inspect_container(&id)["State"];
        state["Health"]["Status"]
            .as_str()
            .or(state["Status"].as_str())
            .unwrap_or("unknown")
            .to_owned()
    }

    /// Waits until every service in `services` is `healthy`; the time it took.
    pub fn wait_healthy(&self, services: &[&str], limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let states: Vec<(String, String)> = services
                .iter()
                .map(|s| ((*s).to_owned(), self.health(s)))
                .collect();
            if states.iter().all(|(_, h)| h == "healthy") {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "not healthy after {limit:?}: {states:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every service's log, for failure messages.
    pub fn logs(&self) -> String {
        let output = self.run(&["logs", "--no-color", "--tail", "60"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `exec -T service command…` → (exit code, stdout, stderr).
    pub fn exec(&self, service: &str, command: &[&str]) -> (i32, String, String) {
        let mut args = vec!["exec", "-T", service];
        args.extend_from_slice(command);
        let output = self.run(&args);
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let output = self.run(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        if !output.status.success() {
            eprintln!(
                "compose down of {} failed: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// `docker inspect` of one container.
fn inspect_container(id: &str) -> Value {
    let text = docker(&["inspect", id]);
    let all: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    all.get(0).cloned().unwrap_or(Value::Null)
}
