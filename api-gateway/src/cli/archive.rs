//! `hostbridge events archive --to DIR`: the platform's audit log. Consumes the events
//! topic through an event-stream `StreamService` (its second real consumer, after the
//! gateway's commands) and appends each envelope, unchanged, as one JSON line to
//! `DIR/YYYY-MM-DD.ndjson` (the day of its `timestamp`, UTC).
//!
//! At-least-once without duplicates: a line is on disk (fsync) before its offset can be
//! committed, and a message delivered again after a crash is recognised by its id in the
//! day's file (read once per day when first needed), so a restart never writes a line
//! twice and misses none. A torn last line from a crash is left as it is (readers skip
//! it) and the next line starts on a line of its own.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use event_stream::Envelope;
use event_stream::kafka::ProducerSettings;
use event_stream::kafka::catalogue::{ENV_EVENTS_TOPIC, EVENTS_TOPIC};
use event_stream::stream::{
    Consume, Dedup, HandleError, Handler, KafkaTransport, RedisStore, StoreFailure, StreamService,
};
use uuid::Uuid;

use super::stream::{Brokers, StreamCliError, cancel_on_ctrl_c};

/// `hostbridge events archive`.
#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    /// The directory of the day files (created if missing).
    #[arg(long)]
    pub to: PathBuf,
    /// The events topic.
    #[arg(long, env = ENV_EVENTS_TOPIC, default_value = EVENTS_TOPIC)]
    pub topic: String,
    /// The consumer group (its committed offsets are where a restart resumes).
    #[arg(long, default_value = "hostbridge-archive")]
    pub group: String,
    /// Redis for dedup shared with other archivers of the same group.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Stop once no event came for this long (for scripts; default: run until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_exit: Option<Duration>,
    /// Kafka brokers.
    #[command(flatten)]
    pub brokers: Brokers,
}

/// One day's file and the ids it holds.
struct Day {
    file: File,
    ids: HashSet<Uuid>,
}

/// Appends envelopes to day files, each id once.
#[derive(Debug)]
pub struct Archive {
    dir: PathBuf,
    days: Arc<Mutex<HashMap<NaiveDate, Day>>>,
    written: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Day").field("ids", &self.ids.len()).finish()
    }
}

/// Days kept open at once; an older one is closed (and read again if an event of it
/// comes late).
const OPEN_DAYS: usize = 4;

impl Archive {
    /// An archive in `dir` (created if missing).
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            days: Arc::default(),
            written: 0.into(),
            skipped: 0.into(),
        })
    }

    /// Lines written and events found already archived, so far.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.written.load(Relaxed), self.skipped.load(Relaxed))
    }

    /// The file of `day`.
    pub fn path_of(dir: &Path, day: NaiveDate) -> PathBuf {
        dir.join(format!("{}.ndjson", day.format("%Y-%m-%d")))
    }

    /// Appends `envelope` unless its id is in its day's file; true when written.
    fn append(&self, envelope: &Envelope) -> std::io::Result<bool> {
        let day = envelope.timestamp.date_naive();
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        if !days.contains_key(&day) {
            if days.len() >= OPEN_DAYS
                && let Some(oldest) = days.keys().min().copied()
            {
                days.remove(&oldest);
            }
            days.insert(day, open_day(&Self::path_of(&self.dir, day))?);
        }
        let Some(open) = days.get_mut(&day) else {
            return Err(std::io::Error::other("day file vanished"));
        };
        if open.ids.contains(&envelope.id) {
            return Ok(false);
        }
        let mut line = envelope.to_json();
        line.push(b'\n');
        open.file.write_all(&line)?;
        // On disk before the offset may be committed.
        open.file.sync_data()?;
        open.ids.insert(envelope.id);
        Ok(true)
    }
}

/// Opens a day file for appending with the ids it holds; a torn last line (a crash
/// mid-write) gets a line break so the next line stands alone.
fn open_day(path: &Path) -> std::io::Result<Day> {
    let mut ids = HashSet::new();
    if let Ok(existing) = File::open(path) {
        for line in BufReader::new(existing).lines() {
            let line = line?;
            if let Ok(envelope) = Envelope::from_json(line.as_bytes()) {
                ids.insert(envelope.id);
            }
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(Day { file, ids })
}

/// The handler: archive I/O runs on the blocking pool.
struct ArchiveHandler(Arc<Archive>);

#[async_trait]
impl Handler for ArchiveHandler {
    async fn handle(&self, envelope: Envelope) -> Result<(), HandleError> {
        let archive = self.0.clone();
        let written = tokio::task::spawn_blocking(move || archive.append(&envelope))
            .await
            .map_err(|e| HandleError::transient(format!("archive task: {e}")))?
            // A full disk or a permission problem may be fixed: retried, then the DLQ.
            .map_err(|e| HandleError::transient(format!("writing the archive: {e}")))?;
        let counter = if written {
            &self.0.written
        } else {
            &self.0.skipped
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Runs the archiver until Ctrl-C (or `--idle-exit`), then stops it cleanly.
pub async fn run(args: ArchiveArgs) -> Result<(), StreamCliError> {
    let config = args.brokers.config()?;
    let archive = Arc::new(
        Archive::new(&args.to)
            .map_err(|e| StreamCliError::BadFlag(format!("--to {}: {e}", args.to.display())))?,
    );
    let mut dedup = Dedup::local(100_000);
    if let Some(url) = &args.redis_url {
        let store = RedisStore::new(url)
            .map_err(|e| StreamCliError::BadFlag(format!("--redis-url: {}", e.message)))?;
        dedup = dedup.with_shared(
            Arc::new(store),
            StoreFailure::Open,
            Duration::from_secs(8 * 24 * 3600),
        );
    }
    let transport = KafkaTransport::new(config.clone(), ProducerSettings::default())
        .with_session_timeout_ms(6_000);
    let service = StreamService::builder("events-archive")
        .transport(Arc::new(transport))
        .dedup(dedup)
        .consumer(Consume::new(
            "archive",
            args.group.clone(),
            &[args.topic.as_str()],
            ArchiveHandler(archive.clone()),
        ))
        .build()?
        .start()?;
    eprintln!(
        "archiving {} (group {}) to {}",
        args.topic,
        args.group,
        args.to.display()
    );
    let stop = cancel_on_ctrl_c();
    let mut last_seen = (0, tokio::time::Instant::now());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if let Some(idle) = args.idle_exit {
            let received = service.report().consumers[0].received;
            if received != last_seen.0 {
                last_seen = (received, tokio::time::Instant::now());
            } else if received > 0 && last_seen.1.elapsed() >= idle {
                break;
            }
        }
    }
    let report = service.stop().await?;
    let (written, skipped) = archive.counts();
    let consumer = &report.consumers[0];
    eprintln!(
        "archived {written} event(s) to {} ({skipped} already there, {} duplicate(s), {} dead-lettered)",
        args.to.display(),
        consumer.duplicates,
        consumer.dead_lettered
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(day: &str) -> Envelope {
        let mut e = Envelope::new("operation.completed", "test", json!({"n": 1})).expect("e");
        e.timestamp = format!("{day}T12:00:00.000Z").parse().expect("time");
        e
    }

    fn lines(dir: &Path, day: &str) -> Vec<String> {
        std::fs::read_to_string(dir.join(format!("{day}.ndjson")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn each_event_goes_once_to_the_file_of_its_day_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (
            event("2026-12-01"),
            event("2026-12-01"),
            event("2026-12-02"),
        );
        let first = Archive::new(dir.path()).expect("archive");
        assert!(first.append(&a).expect("a"));
        assert!(first.append(&c).expect("c"));
        assert!(!first.append(&a).expect("a again"));
        drop(first);
        // A new process: the ids come from the files.
        let second = Archive::new(dir.path()).expect("archive");
        assert!(!second.append(&a).expect("a after the restart"));
        assert!(second.append(&b).expect("b"));
        let day1 = lines(dir.path(), "2026-12-01");
        assert_eq!(day1.len(), 2);
        assert_eq!(
            Envelope::from_json(day1[0].as_bytes()).expect("line").id,
            a.id
        );
        assert_eq!(lines(dir.path(), "2026-12-02").len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_left_and_the_next_starts_on_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("2026-12-01.ndjson");
        let kept = event("2026-12-01");
        let mut text = kept.to_json();
        text.extend_from_slice(b"\n{\"id\": \"torn");
        std::fs::write(&path, text).expect("write");
        let archive = Archive::new(dir.path()).expect("archive");
        assert!(!archive.append(&kept).expect("known"));
        let next = event("2026-12-01");
        assert!(archive.append(&next).expect("new"));
        let day = lines(dir.path(), "2026-12-01");
        assert_eq!(day.len(), 3, "{day:?}");
        assert_eq!(day[1], "{\"id\": \"torn");
        assert_eq!(
            Envelope::from_json(day[2].as_bytes()).expect("line").id,
            next.id
        );
    }
}
