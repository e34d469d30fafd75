use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::error::HandlerError;
use crate::memory::{MemoryBus, Overflow, TopicConfig};
use crate::message::{Message, Position};
use crate::reader::{AsyncReader, Handler, ReadEnd, ReadSummary, Reader, ShouldStop};
use crate::writer::{AsyncWriter, Writer};

/// A sync writer that records calls and can be told to fail its flush.
#[derive(Debug, Default)]
struct Recording {
    log: Arc<Mutex<Vec<String>>>,
    fail_flush: bool,
}

impl Writer<String, u32> for Recording {
    fn write(&mut self, message: Message<String, u32>) -> Result<(), StreamError> {
        self.log
            .lock()
            .expect("log")
            .push(format!("write {}", message.value));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        self.log.lock().expect("log").push("flush".into());
        if self.fail_flush {
            return Err(StreamError::Undelivered {
                undelivered: 2,
                first_error: Some("broker gone".into()),
            });
        }
        Ok(())
    }
    fn close(&mut self) -> Result<(), StreamError> {
        self.log.lock().expect("log").push("close".into());
        Ok(())
    }
}

/// A sync reader over a list; records what was acknowledged.
struct ListReader {
    items: VecDeque<u32>,
    acked: Arc<Mutex<Vec<u32>>>,
    end_when_empty: bool,
}

impl ListReader {
    fn new(n: u32, end_when_empty: bool) -> (Self, Arc<Mutex<Vec<u32>>>) {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let reader = ListReader {
            items: (0..n).collect(),
            acked: acked.clone(),
            end_when_empty,
        };
        (reader, acked)
    }
}

impl Reader<String, u32> for ListReader {
    fn read(
        &mut self,
        stop: &dyn ShouldStop,
        handler: &mut Handler<'_, String, u32>,
    ) -> Result<ReadSummary, StreamError> {
        let mut handled = 0;
        loop {
            if stop.should_stop() {
                return Ok(ReadSummary {
                    end: ReadEnd::Stopped,
                    handled,
                });
            }
            let Some(item) = self.items.pop_front() else {
                if self.end_when_empty {
                    return Ok(ReadSummary {
                        end: ReadEnd::EndOfInput,
                        handled,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let mut m = Message::new(item);
            m.position = Some(Position {
                topic: "list".into(),
                partition: 0,
                offset: item.into(),
            });
            match handler(m) {
                Ok(()) => {
                    handled += 1;
                    self.acked.lock().expect("acked").push(item);
                }
                Err(e) => {
                    self.items.push_front(item);
                    return Err(StreamError::Handler(e));
                }
            }
        }
    }
    fn close(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_writer_calls_through_and_propagates_errors() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut w = BlockingWriter::new(Recording {
        log: log.clone(),
        fail_flush: false,
    });
    AsyncWriter::write(&mut w, Message::new(1))
        .await
        .expect("write");
    AsyncWriter::<String, u32>::flush(&mut w)
        .await
        .expect("flush");
    AsyncWriter::<String, u32>::close(&mut w)
        .await
        .expect("close");
    assert_eq!(*log.lock().expect("log"), ["write 1", "flush", "close"]);

    let mut failing = BlockingWriter::new(Recording {
        log,
        fail_flush: true,
    });
    let err = AsyncWriter::<String, u32>::flush(&mut failing)
        .await
        .expect_err("fails");
    assert!(
        matches!(err, StreamError::Undelivered { undelivered: 2, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reader_commits_only_what_was_acked() {
    let (reader, acked) = ListReader::new(5, false);
    let token = CancellationToken::new();
    let mut r = BlockingReader::new(reader, token.clone());
    for expected in 0..3u32 {
        let m = r.next().await.expect("open").expect("ok");
        assert_eq!(m.value, expected);
        if expected < 2 {
            r.ack(m.position.as_ref().expect("position")).expect("ack");
        }
    }
    // The third message is out but not acked: stopping must not count it.
    token.cancel();
    while r.next().await.is_some() {}
    assert_eq!(*acked.lock().expect("acked"), vec![0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reader_ends_with_the_source_and_auto_acks() {
    let (reader, acked) = ListReader::new(4, true);
    let r = BlockingReader::auto_ack(reader, CancellationToken::new());
    let got: Vec<u32> = r.map(|m| m.expect("ok").value).collect().await;
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert_eq!(acked.lock().expect("acked").len(), 4);
}

fn bus() -> MemoryBus<String, u32> {
    MemoryBus::new(TopicConfig {
        capacity: 16,
        overflow: Overflow::Wait,
    })
}

#[test]
fn sync_writer_from_a_plain_thread() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bus = bus();
    let mut sub = rt.block_on(async { bus.subscribe("t", CancellationToken::new()) });
    let mut w = SyncWriter::new(bus.writer("t"), rt.handle().clone());
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..3 {
                Writer::write(&mut w, Message::new(i)).expect("write");
            }
            Writer::<String, u32>::close(&mut w).expect("close");
        });
    });
    let got = rt.block_on(async {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(sub.next().await.expect("open").expect("ok").value);
        }
        got
    });
    assert_eq!(got, vec![0, 1, 2]);
}

#[tokio::test(flavor = "current_thread")]
async fn sync_writer_refuses_to_stall_a_current_thread_runtime() {
    let bus = bus();
    let mut w = SyncWriter::new(bus.writer("t"), tokio::runtime::Handle::current());
    let err = Writer::write(&mut w, Message::new(1)).expect_err("refused");
    assert!(matches!(err, StreamError::WouldBlockRuntime(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_writer_steps_out_of_a_multi_thread_worker() {
    let bus = bus();
    let mut sub = bus.subscribe("t", CancellationToken::new());
    let mut w = SyncWriter::new(bus.writer("t"), tokio::runtime::Handle::current());
    Writer::write(&mut w, Message::new(7)).expect("write");
    assert_eq!(sub.next().await.expect("open").expect("ok").value, 7);
}

#[test]
fn sync_reader_stops_on_its_signal_and_reports_handler_errors() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bus = bus();
    let token = CancellationToken::new();
    let sub = rt.block_on(async { bus.subscribe("t", token.clone()) });
    let mut w = bus.writer("t");
    for i in 0..5 {
        Writer::write(&mut w, Message::new(i)).expect("write");
    }
    let mut reader = SyncReader::new(sub, rt.handle().clone());
    let mut seen = Vec::new();
    let err = reader
        .read(&|| false, &mut |m: Message<String, u32>| {
            if m.value == 3 {
                return Err::<(), HandlerError>("poison".into());
            }
            seen.push(m.value);
            Ok(())
        })
        .expect_err("handler failed");
    assert!(matches!(err, StreamError::Handler(_)), "{err}");
    assert_eq!(seen, vec![0, 1, 2]);

    let stop_after = std::sync::atomic::AtomicBool::new(false);
    let summary = reader
        .read(
            &|| stop_after.load(std::sync::atomic::Ordering::Relaxed),
            &mut |_m| {
                stop_after.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            },
        )
        .expect("stops");
    assert_eq!(
        summary,
        ReadSummary {
            end: ReadEnd::Stopped,
            handled: 1
        }
    );
}

use crate::error::StreamError;
