//! The NDJSON reader: replay a file, optionally follow it as it grows.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::record;
use crate::error::StreamError;
use crate::message::Position;
use crate::reader::{Handler, ReadEnd, ReadSummary, Reader, ShouldStop};

/// Where and how to read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Keep reading as the file grows (like `tail -f`) instead of ending at its end.
    pub follow: bool,
    /// The first line to deliver (0 = the start): resume after line `n - 1`.
    pub start_line: i64,
    /// How often a following reader looks for new lines.
    pub poll: Duration,
    /// Longest line accepted; a longer one is skipped and reported.
    pub max_line: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            follow: false,
            start_line: 0,
            poll: Duration::from_millis(50),
            max_line: 16 * 1024 * 1024,
        }
    }
}

/// What a reader skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileReaderStats {
    /// Complete lines that are not a message (corrupt, or too long).
    pub skipped: u64,
    /// An unfinished last line found at the end of a replayed file.
    pub torn: u64,
}

/// Reads messages from an NDJSON file.
#[derive(Debug)]
pub struct FileReader {
    path: PathBuf,
    topic: String,
    input: BufReader<File>,
    options: ReadOptions,
    // Line number of the next complete line.
    line_no: i64,
    // Bytes read so far in the current line.
    pos: u64,
    partial: Vec<u8>,
    oversized: bool,
    stats: FileReaderStats,
}

impl FileReader {
    /// Opens `path`.
    pub fn open(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self, StreamError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)
            .map_err(|e| StreamError::io(format!("opening {}", path.display()), e))?;
        if options.start_line < 0 {
            return Err(StreamError::config("start_line", "must be 0 or more"));
        }
        Ok(FileReader {
            topic: path.display().to_string(),
            path,
            input: BufReader::with_capacity(64 * 1024, file),
            options,
            line_no: 0,
            pos: 0,
            partial: Vec::new(),
            oversized: false,
            stats: FileReaderStats::default(),
        })
    }

    /// What was skipped so far.
    pub fn stats(&self) -> FileReaderStats {
        self.stats
    }

    /// The line number the next message will have.
    pub fn next_line(&self) -> i64 {
        self.line_no.max(self.options.start_line)
    }

    /// Reads the next complete line into `self.partial`; `Ok(false)` at the end of the
    /// data written so far (any unfinished line stays in `partial`).
    fn next_line_bytes(&mut self) -> Result<bool, StreamError> {
        loop {
            let room = self
                .options
                .max_line
                .saturating_sub(self.partial.len())
                .max(1) as u64;
            let mut limited = (&mut self.input).take(room);
            let n = if self.oversized {
                // Discard the rest of an oversized line without keeping it.
                let mut sink = Vec::new();
                let n = limited.read_until(b'\n', &mut sink);
                let n = n.map_err(|e| self.io_err(e))?;
                if sink.last() == Some(&b'\n') {
                    self.oversized = false;
                    self.pos += n as u64;
                    self.stats.skipped += 1;
                    self.line_no += 1;
                    tracing::warn!(path = %self.path.display(), line = self.line_no - 1, max = self.options.max_line, "skipped a line longer than the limit");
                    continue;
                }
                n
            } else {
                limited
                    .read_until(b'\n', &mut self.partial)
                    .map_err(|e| self.io_err(e))?
            };
            self.pos += n as u64;
            if n == 0 {
                return Ok(false);
            }
            if self.partial.last() == Some(&b'\n') {
                return Ok(true);
            }
            if !self.oversized && self.partial.len() >= self.options.max_line {
                self.partial.clear();
                self.oversized = true;
            }
        }
    }

    fn io_err(&self, e: std::io::Error) -> StreamError {
        StreamError::io(format!("reading {}", self.path.display()), e)
    }

    /// A following reader whose file shrank (truncated or replaced) starts over.
    fn check_truncation(&mut self) -> Result<(), StreamError> {
        let len = std::fs::metadata(&self.path)
            .map_err(|e| self.io_err(e))?
            .len();
        if len < self.pos {
            tracing::warn!(path = %self.path.display(), "file shrank; reading it again from the start");
            let file = File::open(&self.path).map_err(|e| self.io_err(e))?;
            self.input = BufReader::with_capacity(64 * 1024, file);
            self.input
                .seek(SeekFrom::Start(0))
                .map_err(|e| self.io_err(e))?;
            self.pos = 0;
            self.line_no = 0;
            self.partial.clear();
            self.oversized = false;
        }
        Ok(())
    }
}

impl Reader<Bytes, Bytes> for FileReader {
    fn read(
        &mut self,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, Bytes, Bytes>,
    ) -> Result<ReadSummary, StreamError> {
        let mut handled = 0;
        loop {
            if stop.should_stop() {
                return Ok(ReadSummary {
                    end: ReadEnd::Stopped,
                    handled,
                });
            }
            if !self.next_line_bytes()? {
                if self.options.follow {
                    std::thread::sleep(self.options.poll);
                    self.check_truncation()?;
                    continue;
                }
                if !self.partial.is_empty() || self.oversized {
                    self.stats.torn += 1;
                    tracing::warn!(path = %self.path.display(), line = self.line_no, bytes = self.partial.len(), "skipped a torn last line");
                    self.partial.clear();
                    self.oversized = false;
                }
                return Ok(ReadSummary {
                    end: ReadEnd::EndOfInput,
                    handled,
                });
            }
            let line_no = self.line_no;
            self.line_no += 1;
            let line = std::mem::take(&mut self.partial);
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if line_no < self.options.start_line || body.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut message = match record::decode(body) {
                Ok(message) => message,
                Err(e) => {
                    self.stats.skipped += 1;
                    tracing::warn!(path = %self.path.display(), line = line_no, error = %e, "skipped a line that is not a message");
                    continue;
                }
            };
            message.position = Some(Position {
                topic: self.topic.clone(),
                partition: 0,
                offset: line_no,
            });
            if let Err(e) = handler(message) {
                // Not acknowledged: the next read starts at this line again.
                self.line_no = line_no;
                self.reopen_at_line(line_no)?;
                return Err(StreamError::Handler(e));
            }
            handled += 1;
        }
    }

    fn close(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

impl FileReader {
    /// Positions the reader so that `line_no` is the next line read.
    fn reopen_at_line(&mut self, line_no: i64) -> Result<(), StreamError> {
        let file = File::open(&self.path).map_err(|e| self.io_err(e))?;
        self.input = BufReader::with_capacity(64 * 1024, file);
        self.pos = 0;
        self.line_no = 0;
        self.partial.clear();
        self.oversized = false;
        // The read loop skips the lines before (a handler error is the rare path).
        self.options.start_line = self.options.start_line.max(line_no);
        Ok(())
    }
}
