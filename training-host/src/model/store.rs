//! The model store: `models/{strategy}/{timeframes}_v{N}/` plus a `latest` pointer.
//!
//! Writes are atomic: a model is written into a hidden temp directory inside the
//! strategy directory (every file fsynced), then renamed into place, so a reader sees
//! either no version directory or a complete one. Version numbers never collide, even
//! between concurrent saves in several processes: the next `v{N}` is reserved with
//! `create_dir` (which fails on `AlreadyExists`, and then the next number is tried),
//! and the temp directory is renamed over the empty reservation (POSIX `rename`
//! replaces an empty directory atomically). A crash can leave an empty reserved
//! directory or a hidden temp directory behind; neither is ever loaded or counted as
//! the latest model.
//!
//! `latest_{timeframes}` in the strategy directory is a small file holding the newest
//! finished version's directory name (no symlinks, so it works everywhere), replaced
//! atomically (temp file + rename) and only moved forward. Checkpoints of stopped
//! sessions are saved as versions like any other model but do not move `latest`,
//! because a predictor asking for the latest model wants a finished one. Two saves
//! finishing at the same instant could still leave `latest` one version behind
//! (read-compare-write is not locked); the version directories themselves are safe.
//!
//! Names become path components, so strategy names and timeframe labels must match
//! `[A-Za-z0-9._-]+` without a leading dot (no `..`, no separators, no hidden files).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use data_host::Timeframe;
use host_service_base::names::{SAFE_NAME, printable};

use super::TrainError;
use super::artifacts::{
    CONFIG_FILE, FEATURES_FILE, METADATA_FILE, METRICS_FILE, ModelArtifacts, WEIGHTS_FILE,
};

/// Gives up reserving a version after this many collisions (only reachable if
/// something keeps creating directories faster than we can).
const MAX_RESERVE_ATTEMPTS: usize = 1000;

/// The label of a model's timeframes in its directory name: the single timeframe
/// (`1d`), or all of them joined by `-` (`1h-1d`).
pub fn timeframe_label(timeframes: &[Timeframe]) -> String {
    timeframes
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks that `name` is safe as one path component ([`SAFE_NAME`], the rule every
/// service uses), as the store's own error.
pub fn validate_name(what: &str, name: &str) -> Result<(), TrainError> {
    SAFE_NAME.check(name).map_err(|e| {
        TrainError::InvalidConfig(format!(
            "{what} \"{}\" cannot be used in a path ({e}): use {}",
            printable(name),
            SAFE_NAME.allowed()
        ))
    })
}

/// A saved model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedModel {
    /// Its directory.
    pub path: PathBuf,
    /// `N` of `v{N}`.
    pub version: u32,
    /// The directory name (`1d_v3`).
    pub name: String,
}

/// The model store rooted at a `models` directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

impl ModelStore {
    /// A store under `root` (created on the first save).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn strategy_dir(&self, strategy: &str, label: &str) -> Result<PathBuf, TrainError> {
        validate_name("strategy name", strategy)?;
        validate_name("timeframe label", label)?;
        Ok(self.root.join(strategy))
    }

    /// Saves `artifacts` as the next version of its strategy and timeframes.
    pub fn save(&self, artifacts: &ModelArtifacts) -> Result<SavedModel, TrainError> {
        let label = timeframe_label(&artifacts.config.timeframes);
        let dir = self.strategy_dir(&artifacts.config.strategy_name, &label)?;
        fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let tmp = dir.join(format!(".tmp-{label}-{}", unique_suffix()));
        fs::create_dir(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        let saved =
            write_files(&tmp, artifacts).and_then(|()| reserve_and_move(&dir, &label, &tmp));
        let saved = match saved {
            Ok(saved) => saved,
            Err(e) => {
                // Best effort: the temp dir is hidden and never loaded anyway.
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        if !artifacts.metadata.checkpoint {
            self.advance_latest(&dir, &label, &saved)?;
        }
        tracing::info!(path = %saved.path.display(), checkpoint = artifacts.metadata.checkpoint, "model saved");
        Ok(saved)
    }

    /// Existing versions of `strategy` / `label`, ascending.
    pub fn versions(&self, strategy: &str, label: &str) -> Result<Vec<u32>, TrainError> {
        let dir = self.strategy_dir(strategy, label)?;
        scan_versions(&dir, label)
    }

    /// The directory the `latest` pointer names, if there is one.
    pub fn latest(&self, strategy: &str, label: &str) -> Result<Option<PathBuf>, TrainError> {
        let dir = self.strategy_dir(strategy, label)?;
        Ok(read_pointer(&dir, label)?.map(|(name, _)| dir.join(name)))
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// `N` of a directory called `{label}_v{N}`.
fn parse_version(name: &str, label: &str) -> Option<u32> {
    let digits = name.strip_prefix(label)?.strip_prefix("_v")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn scan_versions(dir: &Path, label: &str) -> Result<Vec<u32>, TrainError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(dir, e)),
    };
    let mut versions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        if let Some(v) = entry
            .file_name()
            .to_str()
            .and_then(|n| parse_version(n, label))
        {
            versions.push(v);
        }
    }
    versions.sort_unstable();
    Ok(versions)
}

fn write_files(tmp: &Path, artifacts: &ModelArtifacts) -> Result<(), TrainError> {
    let weights_path = tmp.join(WEIGHTS_FILE);
    let tensors: HashMap<&str, _> = artifacts
        .weights
        .tensors
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    candle_core::safetensors::save(&tensors, &weights_path)?;
    sync_file(&weights_path)?;
    write_json(&tmp.join(CONFIG_FILE), &artifacts.config)?;
    write_json(&tmp.join(METRICS_FILE), &artifacts.metrics)?;
    write_json(&tmp.join(FEATURES_FILE), &artifacts.features)?;
    write_json(&tmp.join(METADATA_FILE), &artifacts.metadata)?;
    sync_dir(tmp);
    Ok(())
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| TrainError::Corrupt {
        path: path.to_path_buf(),
        message: format!("cannot serialise: {e}"),
    })?;
    let mut file = File::create(path).map_err(|e| TrainError::io(path, e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TrainError::io(path, e))
}

/// fsync of a file.
fn sync_file(path: &Path) -> Result<(), TrainError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainError::io(path, e))
}

/// fsync of a directory, so the entries just created or renamed in it are durable.
/// Best effort: some platforms cannot open a directory as a file.
fn sync_dir(path: &Path) {
    let _ = File::open(path).and_then(|f| f.sync_all());
}

/// Reserves the next free `{label}_v{N}` and renames `tmp` onto it.
fn reserve_and_move(dir: &Path, label: &str, tmp: &Path) -> Result<SavedModel, TrainError> {
    for _ in 0..MAX_RESERVE_ATTEMPTS {
        let version = scan_versions(dir, label)?
            .last()
            .map_or(1, |v| v.saturating_add(1));
        let name = format!("{label}_v{version}");
        let path = dir.join(&name);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TrainError::io(&path, e)),
        }
        if let Err(first) = fs::rename(tmp, &path) {
            // Platforms whose rename cannot replace an empty directory: drop our own
            // reservation and rename again; if someone else takes the name in
            // between, the rename fails and the next number is tried.
            if fs::remove_dir(&path).is_err() {
                return Err(TrainError::io(&path, first));
            }
            if fs::rename(tmp, &path).is_err() {
                continue;
            }
        }
        sync_dir(dir);
        return Ok(SavedModel {
            path,
            version,
            name,
        });
    }
    Err(TrainError::io(
        dir,
        std::io::Error::other("could not reserve a free version directory"),
    ))
}

fn pointer_path(dir: &Path, label: &str) -> PathBuf {
    dir.join(format!("latest_{label}"))
}

/// The pointer's directory name and version; a missing or unreadable pointer is none.
fn read_pointer(dir: &Path, label: &str) -> Result<Option<(String, u32)>, TrainError> {
    let path = pointer_path(dir, label);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::io(&path, e)),
    };
    let name = text.trim();
    // The content is validated like a path component before it is joined to a path.
    Ok(parse_version(name, label)
        .filter(|_| validate_name("pointer", name).is_ok())
        .map(|v| (name.to_owned(), v)))
}

impl ModelStore {
    fn advance_latest(
        &self,
        dir: &Path,
        label: &str,
        saved: &SavedModel,
    ) -> Result<(), TrainError> {
        if read_pointer(dir, label)?.is_some_and(|(_, v)| v >= saved.version) {
            return Ok(());
        }
        let target = pointer_path(dir, label);
        let tmp = dir.join(format!(".latest_{label}.tmp-{}", unique_suffix()));
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(saved.name.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(TrainError::io(&target, e));
        }
        sync_dir(dir);
        Ok(())
    }
}
