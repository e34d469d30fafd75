//! The workspace's binaries, for tests that run them as processes.
//!
//! [`binary`] returns the path of `target/<profile>/<name>` next to the running test
//! executable, building it first with `cargo build --workspace --bins` (from the
//! workspace root, into the same target directory and profile) when it is not there, or
//! when a file of its package (`Cargo.toml`, `src/`, `ui/`) is newer than it, so a test
//! never runs a binary that predates its own flags (or, for the gateway, its page). (Changes in the libraries it depends on
//! alone are not noticed: `cargo build` the binary, or run `cargo test --workspace`.)

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The binaries of the workspace and the package that builds each.
pub const BINARIES: [(&str, &str); 4] = [
    ("data-host", "data-host"),
    ("training-host", "training-host"),
    ("api-gateway", "api-gateway"),
    ("hostbridge", "api-gateway"),
];

/// Why a binary could not be provided.
#[derive(Debug)]
pub enum BinaryError {
    /// The name is not one of [`BINARIES`].
    Unknown(String),
    /// The test executable's path does not sit in `target/<profile>/deps/`.
    Layout(String),
    /// `cargo build` could not be started.
    Spawn(std::io::Error),
    /// `cargo build` failed.
    Build {
        /// The binary.
        name: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// `cargo build` succeeded but the binary is not where it was expected.
    Missing(PathBuf),
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(name) => write!(
                f,
                "no workspace binary named {name:?} (known: {})",
                BINARIES.map(|(bin, _)| bin).join(", ")
            ),
            Self::Layout(why) => write!(f, "cannot locate the target directory: {why}"),
            Self::Spawn(e) => write!(f, "cannot run cargo: {e}"),
            Self::Build { name, status } => {
                write!(
                    f,
                    "`cargo build --workspace --bins` (for {name}) failed ({status}); see its output above"
                )
            }
            Self::Missing(path) => write!(f, "{} is missing after cargo build", path.display()),
        }
    }
}

impl std::error::Error for BinaryError {}

/// The package that builds binary `name`.
pub fn package_of(name: &str) -> Option<&'static str> {
    BINARIES
        .iter()
        .find(|(bin, _)| *bin == name)
        .map(|(_, package)| *package)
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The profile directory (`target/debug` for a dev build) of the running test executable,
/// which cargo puts in `target/<profile>/deps/`.
fn profile_dir() -> Result<PathBuf, BinaryError> {
    let exe =
        std::env::current_exe().map_err(|e| BinaryError::Layout(format!("current_exe: {e}")))?;
    let deps = exe
        .parent()
        .ok_or_else(|| BinaryError::Layout(format!("{} has no parent", exe.display())))?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent()
    } else {
        Some(deps)
    };
    dir.map(Path::to_path_buf)
        .ok_or_else(|| BinaryError::Layout(format!("{} has no parent", deps.display())))
}

/// Newest modification time of `path` and, for a directory, of everything under it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut latest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(time) = newest(&entry.path()) {
                latest = latest.max(time);
            }
        }
    }
    Some(latest)
}

/// The workspace's library crates a binary may link: a change in one of them makes
/// every binary stale, though the binary's own package did not change.
const LIBRARIES: [&str; 4] = [
    "host-service-base",
    "event-stream",
    "data-host",
    "training-host",
];

/// Whether `binary` exists and is at least as new as the manifests, sources and embedded
/// assets of its package and of the workspace libraries it may link, and the lock file.
fn up_to_date(binary: &Path, package: &str) -> bool {
    let Some(built) = std::fs::metadata(binary).and_then(|m| m.modified()).ok() else {
        return false;
    };
    let root = workspace_root();
    let crates = std::iter::once(package).chain(LIBRARIES.into_iter().filter(|l| *l != package));
    // `ui/`: the gateway compiles its operations page in (`include_str!`).
    let inputs = crates
        .flat_map(|dir| ["Cargo.toml", "src", "ui"].map(|p| root.join(dir).join(p)))
        .chain([root.join("Cargo.toml"), root.join("Cargo.lock")]);
    inputs
        .filter_map(|path| newest(&path))
        .all(|changed| changed <= built)
}

/// Path of workspace binary `name`, built with `cargo build --workspace --bins` when
/// absent or older than its package's sources.
pub fn try_binary(name: &str) -> Result<PathBuf, BinaryError> {
    let package = package_of(name).ok_or_else(|| BinaryError::Unknown(name.to_owned()))?;
    let profile_dir = profile_dir()?;
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() && up_to_date(&path, package) {
        return Ok(path);
    }
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| BinaryError::Layout(format!("{} has no parent", profile_dir.display())))?;
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(workspace_root())
        // Every binary of the workspace at once, with the workspace's feature set: a
        // single-package build would unify features differently and compile polars
        // again, and concurrent tests would queue one build each.
        .args(["build", "--workspace", "--bins", "--target-dir"])
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(profile) => {
            cargo.args(["--profile", profile]);
        }
    }
    let status = cargo.status().map_err(BinaryError::Spawn)?;
    if !status.success() {
        return Err(BinaryError::Build {
            name: name.to_owned(),
            status,
        });
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(BinaryError::Missing(path))
    }
}

/// Path of workspace binary `name` (see [`try_binary`]); panics with the reason when it
/// cannot be provided. For tests.
pub fn binary(name: &str) -> PathBuf {
    match try_binary(name) {
        Ok(path) => path,
        Err(e) => panic!("binary {name}: {e}"),
    }
}
