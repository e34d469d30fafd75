//! The NDJSON append writer.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::record;
use crate::error::StreamError;
use crate::message::RawMessage;
use crate::writer::Writer;

/// Appends messages to an NDJSON file. `write` buffers; `flush` writes the buffer and
/// fsyncs, so a flushed message survives a power cut.
#[derive(Debug)]
pub struct FileWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    line: Vec<u8>,
}

impl FileWriter {
    /// Opens `path` for appending (created if missing). A torn last line left by a
    /// crashed writer is ended first, so the next line starts clean.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StreamError> {
        let path = path.as_ref().to_path_buf();
        let ctx = |what: &str| format!("{what} {}", path.display());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| StreamError::io(ctx("opening"), e))?;
        let len = file
            .metadata()
            .map_err(|e| StreamError::io(ctx("reading metadata of"), e))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| StreamError::io(ctx("reading"), e))?;
            if last[0] != b'\n' {
                tracing::warn!(path = %path.display(), "file ends in a torn line; ending it before appending");
                file.write_all(b"\n")
                    .map_err(|e| StreamError::io(ctx("writing"), e))?;
            }
        }
        Ok(FileWriter {
            path,
            out: Some(BufWriter::with_capacity(64 * 1024, file)),
            line: Vec::with_capacity(512),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn out(&mut self) -> Result<&mut BufWriter<File>, StreamError> {
        self.out.as_mut().ok_or(StreamError::Closed("file writer"))
    }
}

impl Writer<Bytes, Bytes> for FileWriter {
    fn write(&mut self, message: RawMessage) -> Result<(), StreamError> {
        let timestamp = message
            .timestamp_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let encoded = record::encode(&message, timestamp, &mut line);
        let result = encoded.map_err(StreamError::from).and_then(|()| {
            let path = self.path.display().to_string();
            self.out()?
                .write_all(&line)
                .map_err(|e| StreamError::io(format!("writing {path}"), e))
        });
        self.line = line;
        result
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        let path = self.path.display().to_string();
        let out = self.out()?;
        out.flush()
            .and_then(|()| out.get_ref().sync_data())
            .map_err(|e| StreamError::io(format!("flushing {path}"), e))
    }

    fn close(&mut self) -> Result<(), StreamError> {
        if self.out.is_none() {
            return Ok(());
        }
        let flushed = self.flush();
        self.out = None;
        flushed
    }
}
