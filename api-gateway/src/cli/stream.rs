//! `hostbridge stream`: replay stored bars into a writer, tail any reader.
//!
//! The work is event-stream's ([`event_stream::replay`]); this module only reads the
//! data-host store, picks the transport the flags name, and wires Ctrl-C to the token.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use data_host::bars::frame_to_bars;
use data_host::store::{Store, StoreFormat};
use event_stream::codec::{Json, Utf8};
use event_stream::file::{self, ReadOptions};
use event_stream::kafka::{
    ConsumerSettings, ENV_BOOTSTRAP_SERVERS, KafkaConfig, KafkaReader, KafkaWriter,
    MARKET_DATA_TOPIC, OffsetReset, ProducerSettings,
};
use event_stream::replay::{self, MarketBar, ReplayOptions, StdoutWriter};
use event_stream::typed::{Codecs, TypedWriter};
use event_stream::{AsyncWriter, Envelope, StreamError};
use tokio_util::sync::CancellationToken;

use crate::data::{parse_symbol, parse_time, parse_timeframe};

/// Extra wait for the first message of an `--idle-exit` tail (a consumer group join).
const FIRST_MESSAGE_GRACE: Duration = Duration::from_secs(30);

/// `hostbridge stream ...`.
#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Replay stored bars as `market.bar` envelopes (key = symbol) into a writer.
    Replay(ReplayArgs),
    /// Print the messages of a Kafka topic or an NDJSON file, one per line.
    Tail(TailArgs),
}

/// Where `replay` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sink {
    /// The Kafka topic `--topic`.
    Kafka,
    /// The NDJSON file `--file` (appended).
    File,
    /// One envelope per line on stdout.
    Stdout,
}

/// Where `tail` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// The Kafka topic `--topic`.
    Kafka,
    /// The NDJSON file `--file`.
    File,
}

/// Flags shared by both commands.
#[derive(clap::Args, Debug, Clone)]
pub struct Transport {
    /// Kafka topic.
    #[arg(long, default_value = MARKET_DATA_TOPIC)]
    pub topic: String,
    /// NDJSON file.
    #[arg(long, default_value = "market-data.ndjson")]
    pub file: PathBuf,
    /// Kafka brokers.
    #[command(flatten)]
    pub brokers: Brokers,
}

/// The brokers flag of every command that talks to Kafka.
#[derive(clap::Args, Debug, Clone)]
pub struct Brokers {
    /// Kafka brokers (host:port, comma list).
    #[arg(long, visible_alias = "brokers", env = ENV_BOOTSTRAP_SERVERS, global = true)]
    pub bootstrap_servers: Option<String>,
}

impl Brokers {
    /// The client settings, or an error naming the flag and the variable.
    pub fn config(&self) -> Result<KafkaConfig, StreamCliError> {
        let servers = self.bootstrap_servers.clone().ok_or_else(|| {
            StreamCliError::BadFlag(
                "--bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS) is required for Kafka".into(),
            )
        })?;
        // Checks the host:port form, so a typo is named before any connection attempt.
        let config = KafkaConfig::from_lookup(|_| Some(servers.clone()))
            .map_err(|e| StreamCliError::BadFlag(format!("--bootstrap-servers: {e}")))?;
        Ok(config.with_client_id("hostbridge-cli"))
    }
}

/// A reader of `topic` in `group`, or in a fresh group of its own that nobody else
/// shares (what a tail wants: its commits disturb no one).
pub fn tail_reader(
    config: &KafkaConfig,
    topic: &str,
    group: Option<String>,
    start: OffsetReset,
    cancel: CancellationToken,
) -> Result<KafkaReader, StreamError> {
    let group = group.unwrap_or_else(|| format!("hostbridge-tail-{}", uuid::Uuid::new_v4()));
    // A short session lets the group form quickly (the broker waits up to a session
    // timeout for other members before the first assignment).
    let settings = ConsumerSettings::new(group)
        .with_session_timeout_ms(6000)
        .with_auto_offset_reset(start);
    KafkaReader::new(config, settings, &[topic], cancel)
}

/// `hostbridge stream replay SYMBOL TF`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Symbol, e.g. AAPL.
    pub symbol: String,
    /// Bar size, e.g. 1m.
    pub timeframe: String,
    /// Where to write.
    #[arg(long, value_enum, default_value = "stdout")]
    pub to: Sink,
    /// N times the bars' own clock (60 = a minute of bars per second); as fast as
    /// possible when absent.
    #[arg(long)]
    pub speed: Option<f64>,
    /// First bar (ISO date or time).
    #[arg(long)]
    pub start: Option<String>,
    /// End (exclusive).
    #[arg(long)]
    pub end: Option<String>,
    /// The store ({SYMBOL}_{TIMEFRAME}.csv).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Transport flags.
    #[command(flatten)]
    pub transport: Transport,
}

/// `hostbridge stream tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Where to read.
    #[arg(long, value_enum)]
    pub from: Source,
    /// Stop after this many messages.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Consumer group (Kafka). Without it a fresh group reads the topic from its start
    /// and commits nothing that matters to anyone else.
    #[arg(long)]
    pub group: Option<String>,
    /// Keep reading the file as it grows (a Kafka tail always follows).
    #[arg(long)]
    pub follow: bool,
    /// Stop after this long without a message (e.g. 5s), counted from the first one
    /// (the first may take up to 30 s more: joining a consumer group). Runs until
    /// Ctrl-C otherwise.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_exit: Option<Duration>,
    /// Transport flags.
    #[command(flatten)]
    pub transport: Transport,
}

/// Why a stream command failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamCliError {
    /// A flag has a bad value; names it.
    #[error("{0}")]
    BadFlag(String),
    /// The store could not be read.
    #[error("reading the store: {0}")]
    Store(String),
    /// The transport failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// Runs a `stream` command; Ctrl-C stops it cleanly (flushing and committing).
pub async fn run(command: StreamCommand) -> Result<(), StreamCliError> {
    let cancel = cancel_on_ctrl_c();
    match command {
        StreamCommand::Replay(args) => replay_command(args, cancel).await,
        StreamCommand::Tail(args) => tail_command(args, cancel).await,
    }
}

/// A token cancelled when the user presses Ctrl-C.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    cancel
}

fn bad(flag: &str, e: impl std::fmt::Display) -> StreamCliError {
    StreamCliError::BadFlag(format!("{flag}: {e}"))
}

/// The stored bars of `symbol`/`timeframe` in `[start, end)`.
pub fn stored_bars(
    data_dir: &std::path::Path,
    symbol: &str,
    timeframe: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<Vec<MarketBar>, StreamCliError> {
    let sym = parse_symbol("symbol", symbol).map_err(|e| bad("SYMBOL", e))?;
    let tf = parse_timeframe("timeframe", timeframe).map_err(|e| bad("TIMEFRAME", e))?;
    let start = start
        .map(|s| parse_time("start", s))
        .transpose()
        .map_err(|e| bad("--start", e))?
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let end = end
        .map(|s| parse_time("end", s))
        .transpose()
        .map_err(|e| bad("--end", e))?
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let store = Store::new(data_dir, StoreFormat::Csv);
    let frame = store
        .load_range(&sym, tf, start, end)
        .map_err(|e| StreamCliError::Store(e.to_string()))?;
    let bars = frame_to_bars(&frame).map_err(|e| StreamCliError::Store(e.to_string()))?;
    if bars.is_empty() {
        return Err(StreamCliError::Store(format!(
            "no {sym} {tf} bars in {} for that range",
            data_dir.display()
        )));
    }
    Ok(bars
        .into_iter()
        .map(|b| MarketBar {
            symbol: sym.to_string(),
            timeframe: tf.to_string(),
            timestamp: b.timestamp,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
        })
        .collect())
}

fn codecs() -> Codecs<String, Envelope> {
    Codecs::new(Utf8, Json)
}

async fn replay_command(args: ReplayArgs, cancel: CancellationToken) -> Result<(), StreamCliError> {
    let bars = stored_bars(
        &args.data_dir,
        &args.symbol,
        &args.timeframe,
        args.start.as_deref(),
        args.end.as_deref(),
    )?;
    let total = bars.len();
    let options = ReplayOptions {
        speed: args.speed,
        source: "hostbridge-cli".into(),
        cancel,
    };
    let writer: Box<dyn AsyncWriter<Bytes, Bytes>> = match args.to {
        Sink::Stdout => Box::new(StdoutWriter::default()),
        Sink::File => Box::new(file::async_writer(&args.transport.file)?),
        Sink::Kafka => {
            let config = args.transport.brokers.config()?;
            let settings = ProducerSettings::from_env()?;
            Box::new(KafkaWriter::new(&config, settings, &args.transport.topic)?)
        }
    };
    let stats = replay::replay(bars, TypedWriter::new(writer, codecs()), options).await?;
    let to = match args.to {
        Sink::Stdout => "stdout".to_owned(),
        Sink::File => args.transport.file.display().to_string(),
        Sink::Kafka => format!("kafka topic {}", args.transport.topic),
    };
    eprintln!(
        "replayed {} of {total} bars to {to}{}",
        stats.written,
        if stats.cancelled { " (stopped)" } else { "" }
    );
    Ok(())
}

async fn tail_command(args: TailArgs, cancel: CancellationToken) -> Result<(), StreamCliError> {
    let print = |m: &event_stream::RawMessage| {
        super::print_line(&replay::tail_line(m));
        Ok(())
    };
    let printed = match args.from {
        Source::File => {
            let options = ReadOptions {
                follow: args.follow,
                ..ReadOptions::default()
            };
            let reader = file::async_reader(&args.transport.file, options, cancel.clone())?;
            tail_with_idle(reader, args.limit, args.idle_exit, cancel, print).await?
        }
        Source::Kafka => {
            let config = args.transport.brokers.config()?;
            let reader = tail_reader(
                &config,
                &args.transport.topic,
                args.group.clone(),
                OffsetReset::Earliest,
                cancel.clone(),
            )?;
            tail_with_idle(reader, args.limit, args.idle_exit, cancel, print).await?
        }
    };
    eprintln!("{printed} message(s)");
    Ok(())
}

/// `tail`, with a watchdog that cancels the reader after `idle` without a message.
async fn tail_with_idle<R, P>(
    reader: R,
    limit: Option<u64>,
    idle: Option<Duration>,
    cancel: CancellationToken,
    mut print: P,
) -> Result<u64, StreamError>
where
    R: event_stream::AsyncReader<Bytes, Bytes>,
    P: FnMut(&event_stream::RawMessage) -> Result<(), StreamError> + Send,
{
    let Some(idle) = idle else {
        return replay::tail(reader, limit, print).await;
    };
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watchdog = tokio::spawn(async move {
        let mut wait = idle + FIRST_MESSAGE_GRACE;
        loop {
            match tokio::time::timeout(wait, seen_rx.recv()).await {
                Ok(Some(())) => wait = idle,
                Ok(None) => break,
                Err(_) => {
                    cancel.cancel();
                    break;
                }
            }
        }
    });
    let result = replay::tail(reader, limit, |m| {
        let _ = seen_tx.send(());
        print(m)
    })
    .await;
    drop(seen_tx);
    let _ = watchdog.await;
    result
}
