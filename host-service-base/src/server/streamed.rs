//! Large answers written on the blocking pool and sent while they are being written.

use std::convert::Infallible;

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
}
