//! NDJSON files: an append writer (fsync on flush) and a reader that replays a file and
//! can follow it as it grows.
//!
//! One message per line: `{"timestamp":ms,"key":..,"headers":[[name,value]..],"value":..}`.
//! A value that is JSON is stored as JSON (so `jq` reads the file); other bytes are
//! stored as text (`"value_encoding":"utf8"`) or base64 (`"value_encoding":"base64"`),
//! so any message round-trips exactly. A message's position is the file's path and its
//! line number (from 0).
//!
//! Crashes: a writer that died mid-line leaves a torn last line. A reader skips it and
//! reports it (counted, logged), never panics; a writer opening such a file first ends
//! the torn line, so what it appends stays readable. One writer per file.

mod reader;
mod record;
mod writer;

pub use reader::{FileReader, FileReaderStats, ReadOptions};
pub use writer::FileWriter;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::adapt::{BlockingReader, BlockingWriter};
use crate::error::StreamError;

/// An async NDJSON append writer (the file work runs on the blocking pool).
pub fn async_writer(
    path: impl AsRef<std::path::Path>,
) -> Result<BlockingWriter<FileWriter>, StreamError> {
    Ok(BlockingWriter::new(FileWriter::open(path)?))
}

/// An async reader of an NDJSON file. Positions are line numbers the caller keeps (a
/// file has no consumer group), so each message counts as acknowledged when handed over.
pub fn async_reader(
    path: impl AsRef<std::path::Path>,
    options: ReadOptions,
    cancel: CancellationToken,
) -> Result<BlockingReader<Bytes, Bytes>, StreamError> {
    Ok(BlockingReader::auto_ack(
        FileReader::open(path, options)?,
        cancel,
    ))
}

#[cfg(test)]
mod tests;
