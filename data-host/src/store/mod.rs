//! The local store: `{data_dir}/{SYMBOL}_{TIMEFRAME}.csv` (or `.parquet`), one file per
//! symbol and timeframe, read into and written from bars frames.
//!
//! - Symbols are validated ([`Symbol`]) before any path is formed.
//! - New files are named with the upper-case symbol (`AAPL_1d.csv`). A file another tool
//!   wrote in another case (`aapl_1d.csv`, `Aapl_1d.csv`) is still the symbol's file:
//!   lookup prefers the upper-case name and otherwise takes the file whose symbol part
//!   matches ignoring ASCII case (the first in byte order, should there be several), and
//!   merges write back to the file that was read, so a series never splits in two. The
//!   timeframe part is matched exactly: `1m` (minute) and `1M` (month) differ only in case.
//! - Writes are atomic (temporary file, fsync, rename); a crash leaves the old file.
//! - [`Store::merge`] never drops a stored bar; a fetched bar with the same timestamp
//!   replaces the stored one; files stay sorted with unique timestamps.
//! - Calls block on disk I/O: async callers run them in `spawn_blocking`.
//! - Parsed frames are cached by bytes ([`DEFAULT_CACHE_BYTES`], least recently used
//!   out first; [`Store::with_cache_bytes`]), so memory stays bounded however many
//!   series a long-running service is asked for.
//! - One writer per data directory: merges of the same file inside one process are
//!   serialised; separate processes must not write the same directory at once.

mod atomic;
pub(crate) mod cache;
pub mod csv;
mod gaps;
mod merge;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use polars::prelude::*;

pub use gaps::{Gap, GapPolicy, find_gaps};
pub use merge::{MergeReport, merge, normalize};

use crate::bars::{self, FrameError};
use crate::symbol::Symbol;
use crate::timeframe::Timeframe;

/// File format of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreFormat {
    /// `{SYMBOL}_{TIMEFRAME}.csv` (the KTRDR layout).
    #[default]
    Csv,
    /// `{SYMBOL}_{TIMEFRAME}.parquet`.
    Parquet,
}

impl StoreFormat {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored file is not in the store layout.
    #[error("{file}: line {line}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A frame is not in the bars layout.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Parquet encoding or decoding failed.
    #[error("parquet {file}: {message}")]
    Parquet {
        /// File name.
        file: String,
        /// polars' message.
        message: String,
    },
}

/// What the store holds for one symbol and timeframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// First bar.
    pub first: DateTime<Utc>,
    /// Last bar.
    pub last: DateTime<Utc>,
    /// Number of bars.
    pub rows: usize,
}

/// The bytes of parsed frames a store keeps in memory by default: a few years of
/// minute bars of a handful of symbols, well under what a host can spare.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// A parsed file and the file state it was parsed from.
#[derive(Debug, Clone)]
struct Cached {
    modified: std::time::SystemTime,
    len: u64,
    frame: DataFrame,
}

type FrameCache = cache::ByteLru<PathBuf, Cached>;

/// A directory of bar files.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    format: StoreFormat,
    /// One lock per file, so concurrent merges of the same file cannot lose bars.
    locks: Arc<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>>,
    /// Parsed frames keyed by path, bounded by their estimated bytes; an entry is used
    /// only while the file's mtime and length are unchanged, so edits by other programs
    /// are seen on the next load.
    cache: Arc<Mutex<FrameCache>>,
}

impl Store {
    /// A store in `dir` writing `format` (files of either format are read).
    pub fn new(dir: impl Into<PathBuf>, format: StoreFormat) -> Self {
        Self {
            dir: dir.into(),
            format,
            locks: Arc::default(),
            cache: Arc::new(Mutex::new(FrameCache::new(DEFAULT_CACHE_BYTES))),
        }
    }

    /// The same store keeping at most `bytes` of parsed frames in memory (0: none); a
    /// frame larger than that is read from disk on every load. Starts with an empty
    /// cache of its own.
    #[must_use]
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache = Arc::new(Mutex::new(FrameCache::new(bytes)));
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a new file of `symbol` at `timeframe` is written (the upper-case name); an
    /// existing file in another case is found by [`Store::load`] and kept by
    /// [`Store::merge`].
    pub fn path(&self, symbol: &Symbol, timeframe: Timeframe) -> PathBuf {
        self.path_in(symbol, timeframe, self.format)
    }

    fn path_in(&self, symbol: &Symbol, timeframe: Timeframe, format: StoreFormat) -> PathBuf {
        self.dir
            .join(format!("{symbol}_{timeframe}.{}", format.extension()))
    }

    /// The existing file of `symbol` at `timeframe` in `format`: the upper-case name when
    /// it exists, else a name whose symbol part differs only in ASCII case (the first in
    /// byte order, so the choice is the same on every call); `None` when there is none.
    fn locate(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        format: StoreFormat,
    ) -> Result<Option<(PathBuf, std::fs::Metadata)>, StoreError> {
        let exact = self.path_in(symbol, timeframe, format);
        match std::fs::metadata(&exact) {
            Ok(meta) => return Ok(Some((exact, meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    path: exact,
                    source,
                });
            }
        }
        // Only a miss scans the directory: a series the store holds under the
        // upper-case name costs one metadata call, as before.
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let suffix = format!("_{timeframe}.{}", format.extension());
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| {
                name.strip_suffix(&suffix)
                    .is_some_and(|stem| stem.eq_ignore_ascii_case(symbol.as_str()))
            })
            .collect();
        names.sort();
        for name in names {
            let path = self.dir.join(name);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => return Ok(Some((path, meta))),
                // Gone or replaced since the listing: try the next spelling.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Io { path, source }),
            }
        }
        Ok(None)
    }

    /// Where a write of `symbol` at `timeframe` goes: the existing file in the store's
    /// format, whatever its case, else the upper-case name.
    fn write_path(&self, symbol: &Symbol, timeframe: Timeframe) -> Result<PathBuf, StoreError> {
        Ok(self
            .locate(symbol, timeframe, self.format)?
            .map_or_else(|| self.path(symbol, timeframe), |(path, _)| path))
    }

    /// The stored bars, sorted and unique by time; `None` when there is no file.
    pub fn load(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
    ) -> Result<Option<DataFrame>, StoreError> {
        let other = match self.format {
            StoreFormat::Csv => StoreFormat::Parquet,
            StoreFormat::Parquet => StoreFormat::Csv,
        };
        for format in [self.format, other] {
            let Some((path, meta)) = self.locate(symbol, timeframe, format)? else {
                continue;
            };
            let stamp = (meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta.len());
            if let Some(frame) = self.cached(&path, stamp) {
                return Ok(Some(frame));
            }
            let frame = normalize(&read_file(&path, format)?)?;
            self.remember(path, stamp, frame.clone());
            return Ok(Some(frame));
        }
        Ok(None)
    }

    fn cached(
        &self,
        path: &Path,
        (modified, len): (std::time::SystemTime, u64),
    ) -> Option<DataFrame> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.get(path)?;
        if entry.modified == modified && entry.len == len {
            // Frames share their column buffers: this clone copies no bars.
            return Some(entry.frame.clone());
        }
        // The file changed: its old frame is of no further use, free it now.
        cache.remove(path);
        None
    }

    fn remember(
        &self,
        path: PathBuf,
        (modified, len): (std::time::SystemTime, u64),
        frame: DataFrame,
    ) {
        let size = frame.estimated_size();
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                path,
                Cached {
                    modified,
                    len,
                    frame,
                },
                size,
            );
    }

    /// Stored bars with open time in `[start, end)` (empty when none).
    pub fn load_range(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DataFrame, StoreError> {
        match self.load(symbol, timeframe)? {
            Some(frame) => Ok(bars::slice_range(&frame, start, end)?),
            None => Ok(bars::empty_frame()),
        }
    }

    /// First and last stored bar, if any.
    pub fn coverage(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
    ) -> Result<Option<Coverage>, StoreError> {
        let Some(frame) = self.load(symbol, timeframe)? else {
            return Ok(None);
        };
        let rows = frame.height();
        if rows == 0 {
            return Ok(None);
        }
        // The first and last rows only (the frame is sorted): asked on every head
        // timestamp, this must not copy a column of a million bars.
        let end = |offset: i64| -> Result<DateTime<Utc>, StoreError> {
            let ms = bars::timestamps_ms(&frame.slice(offset, 1))?
                .first()
                .copied()
                .ok_or_else(|| FrameError::Layout("an empty slice of a non-empty frame".into()))?;
            Ok(DateTime::from_timestamp_millis(ms).ok_or(FrameError::TimestampRange(ms))?)
        };
        Ok(Some(Coverage {
            first: end(0)?,
            last: end(-1)?,
            rows,
        }))
    }

    /// Replaces the stored bars with `frame` (sorted and de-duplicated first).
    pub fn save(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        frame: &DataFrame,
    ) -> Result<(), StoreError> {
        let path = self.write_path(symbol, timeframe)?;
        let lock = self.lock_for(&path);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_locked(&path, &normalize(frame)?)
    }

    /// Merges `fetched` into the stored bars and writes the result atomically.
    pub fn merge(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        fetched: &DataFrame,
    ) -> Result<MergeReport, StoreError> {
        let path = self.write_path(symbol, timeframe)?;
        let lock = self.lock_for(&path);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = self
            .load(symbol, timeframe)?
            .unwrap_or_else(bars::empty_frame);
        let (merged, report) = merge(&stored, fetched)?;
        if report.added > 0 || report.replaced > 0 {
            self.write_locked(&path, &merged)?;
        }
        Ok(report)
    }

    /// Every `(symbol, timeframe)` with a file in the store.
    pub fn list(&self) -> Result<Vec<(Symbol, Timeframe)>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut found: Vec<(Symbol, Timeframe)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name
                    .strip_suffix(".csv")
                    .or_else(|| name.strip_suffix(".parquet"))?;
                let (symbol, timeframe) = stem.rsplit_once('_')?;
                Some((Symbol::parse(symbol).ok()?, timeframe.parse().ok()?))
            })
            .collect();
        found.sort();
        found.dedup();
        Ok(found)
    }

    fn lock_for(&self, path: &Path) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Locks nobody holds are dropped, so the map holds the files being written
        // now, not every file ever written. Taking a clone happens under the map's
        // lock, so a lock in use always has a second holder and stays.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(path.to_path_buf()).or_default().clone()
    }

    fn write_locked(&self, path: &Path, frame: &DataFrame) -> Result<(), StoreError> {
        // Never serve the old frame after our own write, whatever the file clock says.
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path);
        let file = file_name(path);
        atomic::replace(path, |out| match self.format {
            StoreFormat::Csv => csv::write(frame, out),
            StoreFormat::Parquet => {
                let mut frame = frame.clone();
                ParquetWriter::new(out)
                    .finish(&mut frame)
                    .map(|_| ())
                    .map_err(|e| StoreError::Parquet {
                        file: file.clone(),
                        message: e.to_string(),
                    })
            }
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_file(path: &Path, format: StoreFormat) -> Result<DataFrame, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = file_name(path);
    match format {
        StoreFormat::Csv => {
            let bytes = std::fs::read(path).map_err(io)?;
            csv::parse(&bytes, &file)
        }
        StoreFormat::Parquet => {
            let handle = File::open(path).map_err(io)?;
            let frame = ParquetReader::new(handle)
                .finish()
                .map_err(|e| StoreError::Parquet {
                    file: file.clone(),
                    message: e.to_string(),
                })?;
            // Check the layout here, so a foreign file fails with a clear message.
            bars::timestamps_ms(&frame)?;
            Ok(frame)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(days: &[i64], close: f64) -> DataFrame {
        let ts = days.iter().map(|d| d * 86_400_000).collect();
        bars::frame_from_columns(ts, std::array::from_fn(|_| vec![close; days.len()]))
            .expect("frame")
    }

    #[test]
    fn loads_see_writes_by_us_and_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), StoreFormat::Csv);
        let aapl = Symbol::parse("AAPL").expect("symbol");
        assert!(store.load(&aapl, Timeframe::D1).expect("load").is_none());
        store
            .save(&aapl, Timeframe::D1, &frame(&[1, 2], 1.0))
            .expect("save");
        assert_eq!(
            store.load(&aapl, Timeframe::D1).expect("load"),
            Some(frame(&[1, 2], 1.0))
        );
        let report = store
            .merge(&aapl, Timeframe::D1, &frame(&[2, 3], 2.0))
            .expect("merge");
        assert_eq!((report.added, report.replaced, report.after), (1, 1, 3));
        let merged = store
            .load(&aapl, Timeframe::D1)
            .expect("load")
            .expect("file");
        assert_eq!(
            bars::value_column(&merged, "close").expect("close"),
            vec![1.0, 2.0, 2.0]
        );
        // Another program rewrites the file: the next load sees it.
        std::fs::write(
            store.path(&aapl, Timeframe::D1),
            "timestamp,open,high,low,close,volume\n1970-01-05T00:00:00Z,9,9,9,9,9\n",
        )
        .expect("write");
        assert_eq!(
            store.load(&aapl, Timeframe::D1).expect("load"),
            Some(frame(&[4], 9.0))
        );
    }

    fn cache_state(store: &Store, path: &Path) -> (bool, usize) {
        let mut cache = store.cache.lock().unwrap_or_else(PoisonError::into_inner);
        (cache.get(path).is_some(), cache.bytes())
    }

    #[test]
    fn the_frame_cache_keeps_to_its_byte_budget_oldest_out_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let days: Vec<i64> = (0..2_000).collect();
        let symbols: Vec<Symbol> = ["AAA", "BBB", "CCC"]
            .iter()
            .map(|s| Symbol::parse(s).expect("symbol"))
            .collect();
        let probe = Store::new(dir.path(), StoreFormat::Csv);
        for symbol in &symbols {
            probe
                .save(symbol, Timeframe::D1, &frame(&days, 1.0))
                .expect("save");
        }
        probe.load(&symbols[0], Timeframe::D1).expect("load");
        let one = cache_state(&probe, &probe.path(&symbols[0], Timeframe::D1)).1;
        assert!(
            one > days.len() * 6 * 8,
            "an entry is charged its frame: {one}"
        );

        // Room for two frames, not three: loading the third evicts the oldest.
        let budget = one * 5 / 2;
        let store = Store::new(dir.path(), StoreFormat::Csv).with_cache_bytes(budget);
        let paths: Vec<PathBuf> = symbols
            .iter()
            .map(|s| store.path(s, Timeframe::D1))
            .collect();
        for symbol in &symbols {
            store.load(symbol, Timeframe::D1).expect("load");
        }
        let (first, total) = cache_state(&store, &paths[0]);
        assert!(!first, "the least recently loaded frame was evicted");
        assert!(cache_state(&store, &paths[1]).0 && cache_state(&store, &paths[2]).0);
        assert!(total <= budget, "{total} > {budget}");
        assert_eq!(total, 2 * one);

        // A frame larger than the whole budget is not cached, and evicts nothing.
        let small = Store::new(dir.path(), StoreFormat::Csv).with_cache_bytes(one - 1);
        assert_eq!(
            small.load(&symbols[0], Timeframe::D1).expect("load"),
            Some(frame(&days, 1.0))
        );
        assert_eq!(cache_state(&small, &paths[0]), (false, 0));
    }

    #[test]
    fn a_cached_frame_is_replaced_when_its_file_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), StoreFormat::Csv).with_cache_bytes(1 << 20);
        let aapl = Symbol::parse("AAPL").expect("symbol");
        let path = store.path(&aapl, Timeframe::D1);
        store
            .save(&aapl, Timeframe::D1, &frame(&[1], 1.0))
            .expect("save");
        store.load(&aapl, Timeframe::D1).expect("load");
        let (held, bytes) = cache_state(&store, &path);
        assert!(held);
        // Another program appends a bar: the length differs, the hit is refused.
        std::fs::write(
            &path,
            "timestamp,open,high,low,close,volume\n1970-01-02T00:00:00Z,1,1,1,1,1\n\
             1970-01-03T00:00:00Z,1,1,1,1,1\n",
        )
        .expect("another tool appends");
        assert_eq!(
            store.load(&aapl, Timeframe::D1).expect("load"),
            Some(frame(&[1, 2], 1.0))
        );
        // The new frame replaced the stale one in the cache.
        let (held, after) = cache_state(&store, &path);
        assert!(held && after > bytes, "{after} vs {bytes}");
        let cache = store.cache.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn write_locks_are_kept_only_while_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), StoreFormat::Csv);
        for symbol in ["AAA", "BBB", "CCC"] {
            let symbol = Symbol::parse(symbol).expect("symbol");
            store
                .merge(&symbol, Timeframe::D1, &frame(&[1], 1.0))
                .expect("merge");
        }
        let _held = store.lock_for(&dir.path().join("DDD_1d.csv"));
        let locks = store.locks.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(locks.len(), 1, "only the lock in use is kept");
    }

    #[test]
    fn parquet_round_trips_and_csv_is_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let aapl = Symbol::parse("AAPL").expect("symbol");
        Store::new(dir.path(), StoreFormat::Csv)
            .save(&aapl, Timeframe::H1, &frame(&[1], 1.0))
            .expect("csv");
        let store = Store::new(dir.path(), StoreFormat::Parquet);
        assert_eq!(
            store.load(&aapl, Timeframe::H1).expect("falls back to csv"),
            Some(frame(&[1], 1.0))
        );
        store
            .save(&aapl, Timeframe::D1, &frame(&[1, 5, 3], 4.5))
            .expect("parquet");
        assert_eq!(
            store.load(&aapl, Timeframe::D1).expect("load"),
            Some(frame(&[1, 3, 5], 4.5))
        );
        assert!(
            store
                .path(&aapl, Timeframe::D1)
                .extension()
                .is_some_and(|e| e == "parquet")
        );
        assert_eq!(store.list().expect("list").len(), 2);
    }

    #[test]
    fn a_file_stored_in_another_case_is_found_and_merged_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), StoreFormat::Csv);
        let aapl = Symbol::parse("aapl").expect("symbol");
        let lower = dir.path().join("aapl_1d.csv");
        std::fs::write(
            &lower,
            "timestamp,open,high,low,close,volume\n1970-01-02T00:00:00Z,1,1,1,1,1\n",
        )
        .expect("another tool writes");
        assert_eq!(
            store.load(&aapl, Timeframe::D1).expect("load"),
            Some(frame(&[1], 1.0))
        );
        // Only the symbol's case is loose: `1M` (month) is not `1m` (minute).
        std::fs::copy(&lower, dir.path().join("aapl_1m.csv")).expect("copy");
        assert!(store.load(&aapl, Timeframe::Mo1).expect("load").is_none());
        std::fs::remove_file(dir.path().join("aapl_1m.csv")).expect("remove");
        let report = store
            .merge(&aapl, Timeframe::D1, &frame(&[2], 2.0))
            .expect("merge");
        assert_eq!(report.added, 1);
        // Written back where it was read: one file, not a second upper-case one.
        assert!(!store.path(&aapl, Timeframe::D1).exists());
        assert_eq!(
            store
                .load(&aapl, Timeframe::D1)
                .expect("load")
                .map(|f| f.height()),
            Some(2)
        );
        assert_eq!(store.list().expect("list"), vec![(aapl, Timeframe::D1)]);
    }

    #[test]
    fn the_upper_case_file_wins_over_other_spellings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), StoreFormat::Csv);
        let aapl = Symbol::parse("AAPL").expect("symbol");
        let row = |close: u8| {
            format!(
                "timestamp,open,high,low,close,volume\n1970-01-02T00:00:00Z,{close},{close},{close},{close},1\n"
            )
        };
        std::fs::write(dir.path().join("aapl_1d.csv"), row(7)).expect("write");
        std::fs::write(dir.path().join("Aapl_1d.csv"), row(6)).expect("write");
        let close = || {
            let loaded = store
                .load(&aapl, Timeframe::D1)
                .expect("load")
                .expect("file");
            bars::value_column(&loaded, "close").expect("close")
        };
        // Byte order among the other spellings: `Aapl` before `aapl`.
        assert_eq!(close(), vec![6.0]);
        std::fs::write(store.path(&aapl, Timeframe::D1), row(5)).expect("write");
        assert_eq!(close(), vec![5.0]);
    }
}
