//! Large answers written on the blocking pool and sent while they are being written.

use std::convert::Infallible;
use std::io;

use axum::body::Body;
use bytes::Bytes;

/// Bytes per chunk a producer is asked for: large enough that per-chunk costs vanish,
/// small enough that the few in flight are nothing beside what is being encoded.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks made ahead of the socket; the producer waits while the client reads slowly.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A response body made by `produce` on the blocking pool, a chunk at a time: each call
/// appends about [`CHUNK_BYTES`] (more is fine, at least one byte unless it is done) and
/// returns whether more remains. The first chunk is sent as soon as it is made, the
/// producer runs at most a few chunks ahead of the client, and it is not called again
/// once the response is dropped (the client went away), so CPU-heavy encodings of any
/// size leave the async threads free and memory flat.
pub fn blocking_body<F>(mut produce: F) -> Body
where
    F: FnMut(&mut Vec<u8>) -> bool + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
            let more = produce(&mut chunk);
            // A closed channel: the response was dropped; stop producing.
            if tx.blocking_send(Bytes::from(chunk)).is_err() || !more {
                return;
            }
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Body::from_stream(chunks)
}

/// A response body written by `write` on the blocking pool through an [`io::Write`]
/// that sends every [`CHUNK_BYTES`] as a chunk: for encoders that push their output
/// (an Arrow IPC writer) rather than being asked for the next piece. As with
/// [`blocking_body`], the first chunk leaves as soon as it is full, the writer runs a
/// few chunks ahead of the client at most, and a write after the response was dropped
/// fails with [`io::ErrorKind::BrokenPipe`], which ends the encoding. An error from
/// `write` ends the body early (the client sees it cut short, so give the response a
/// Content-Length when it can be known: a cut answer is then an error to the client).
pub fn blocking_writer_body<F>(write: F) -> Body
where
    F: FnOnce(&mut dyn io::Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx,
            chunk: Vec::with_capacity(CHUNK_BYTES),
        };
        match write(&mut out).and_then(|()| out.send()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => tracing::warn!(error = %e, "a streamed answer failed part-way"),
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Body::from_stream(chunks)
}

/// The [`io::Write`] of [`blocking_writer_body`].
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    chunk: Vec<u8>,
}

impl ChunkWriter {
    /// Sends what is gathered, if anything.
    fn send(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES));
        self.tx
            .blocking_send(Bytes::from(full))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the response was dropped"))
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        // Large writes (a whole column) are cut into chunks, so none exceeds CHUNK_BYTES
        // and the client gets bytes while the rest is copied.
        while !data.is_empty() {
            let room = CHUNK_BYTES - self.chunk.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.chunk.extend_from_slice(now);
            data = later;
            if self.chunk.len() == CHUNK_BYTES {
                self.send()?;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks go when full or at the end: a flush mid-way (the IPC writer flushes
        // after each message) would send tiny chunks.
        Ok(())
    }
}

/// An [`io::Write`] that only counts: the length an encoding will have, found by
/// running it without keeping its bytes (for a Content-Length before streaming).
#[derive(Debug, Default)]
pub struct CountingWriter {
    /// Bytes written so far.
    pub bytes: u64,
}

impl io::Write for CountingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.bytes += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn chunks_arrive_in_order_and_whole() {
        let mut n = 0u32;
        let body = blocking_body(move |out| {
            out.extend_from_slice(format!("{n},").as_bytes());
            n += 1;
            n < 1000
        });
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        let expected: String = (0..1000).map(|i| format!("{i},")).collect();
        assert_eq!(bytes, expected.as_bytes());
    }

    #[tokio::test]
    async fn a_dropped_body_stops_the_producer() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let body = blocking_body(move |out| {
            counted.fetch_add(1, Ordering::SeqCst);
            out.extend_from_slice(&[b'x'; 1024]);
            true // endless unless stopped
        });
        drop(body);
        // The producer notices the closed channel at its next send.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let stopped_at = calls.load(Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(calls.load(Ordering::SeqCst), stopped_at, "still producing");
        assert!(
            stopped_at <= CHUNKS_IN_FLIGHT + 2,
            "{stopped_at} chunks made for nobody"
        );
    }

    #[tokio::test]
    async fn a_written_body_arrives_whole_in_bounded_chunks() {
        use futures::StreamExt;
        use io::Write;
        let expected: Vec<u8> = (0..3 * CHUNK_BYTES + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let source = expected.clone();
        let mut counted = CountingWriter::default();
        counted.write_all(&source).expect("count");
        assert_eq!(counted.bytes, expected.len() as u64);
        let body = blocking_writer_body(move |out| {
            // One small write, one huge one, then the rest: as an encoder does.
            out.write_all(&source[..10])?;
            out.flush()?;
            out.write_all(&source[10..2 * CHUNK_BYTES + 5])?;
            out.write_all(&source[2 * CHUNK_BYTES + 5..])
        });
        let mut stream = body.into_data_stream();
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            assert!(chunk.len() <= CHUNK_BYTES, "a chunk of {}", chunk.len());
            got.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert_eq!(got, expected);
        assert_eq!(chunks, 4);
    }

    #[tokio::test]
    async fn a_dropped_written_body_stops_the_writer() {
        let (tx, rx) = std::sync::mpsc::channel();
        let body = blocking_writer_body(move |out| {
            let mut written = 0usize;
            let result = loop {
                if let Err(e) = out.write_all(&[b'x'; 4096]) {
                    break Err(e);
                }
                written += 4096;
            };
            let _ = tx.send((written, result.as_ref().map_err(io::Error::kind).err()));
            result
        });
        drop(body);
        let (written, error) = tokio::task::spawn_blocking(move || rx.recv())
            .await
            .expect("join")
            .expect("the writer ended");
        assert_eq!(error, Some(io::ErrorKind::BrokenPipe));
        assert!(
            written <= (CHUNKS_IN_FLIGHT + 2) * CHUNK_BYTES,
            "{written} bytes written for nobody"
        );
    }
}
