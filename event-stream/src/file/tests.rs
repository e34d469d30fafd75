use std::io::Write as _;

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::message::{Headers, Message, RawMessage};
use crate::reader::{ReadEnd, Reader};
use crate::writer::{AsyncWriter, Writer};

fn read_all(path: &std::path::Path) -> (Vec<RawMessage>, FileReaderStats) {
    let mut reader = FileReader::open(path, ReadOptions::default()).expect("open");
    let mut got = Vec::new();
    let summary = reader
        .read(&|| false, &mut |m| {
            got.push(m);
            Ok(())
        })
        .expect("read");
    assert_eq!(summary.end, ReadEnd::EndOfInput);
    (got, reader.stats())
}

#[test]
fn every_kind_of_message_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.ndjson");
    let cases: Vec<RawMessage> = vec![
        Message::keyed(
            Bytes::from("AAPL"),
            Bytes::from(r#"{"close":189.5,"n":"Zürich"}"#),
        ),
        Message::new(Bytes::from("plain text, not JSON")),
        Message::keyed(
            Bytes::from_static(&[0xff, 0x00]),
            Bytes::from_static(&[0, 159, 146, 150]),
        ),
        // Pretty JSON: its line breaks must not break the one-line format.
        Message::new(Bytes::from("{\n  \"a\": [1,\n 2],\n  \"s\": \"x\\ny\"\n}")),
        Message::new(Bytes::from("123456789012345678901234567890")),
    ];
    let mut headered = Message::new(Bytes::from("null"));
    headered.headers = Headers::new()
        .with("type", "a.b")
        .with("bin", Bytes::from_static(&[0xfe]));
    let mut w = FileWriter::open(&path).expect("open");
    for m in cases.iter().cloned().chain([headered.clone()]) {
        Writer::write(&mut w, m).expect("write");
    }
    Writer::close(&mut w).expect("close");

    let text = std::fs::read_to_string(&path).expect("utf8 file");
    assert_eq!(text.lines().count(), 6, "one line per message:\n{text}");
    let (got, stats) = read_all(&path);
    assert_eq!(stats, FileReaderStats::default());
    assert_eq!(got.len(), 6);
    for (i, (want, have)) in cases.iter().zip(&got).enumerate() {
        assert_eq!(have.key, want.key, "key {i}");
        if i == 3 {
            let a: serde_json::Value = serde_json::from_slice(&want.value).expect("json");
            let b: serde_json::Value = serde_json::from_slice(&have.value).expect("json");
            assert_eq!(a, b, "pretty JSON keeps its value");
        } else {
            assert_eq!(have.value, want.value, "value {i}");
        }
        assert_eq!(have.position.as_ref().map(|p| p.offset), Some(i as i64));
    }
    assert_eq!(got[5].headers, headered.headers);
    // A JSON value is stored as JSON, readable by jq.
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("json");
    assert_eq!(first["value"]["close"], 189.5);
}

#[test]
fn a_torn_last_line_is_skipped_and_reported_and_a_new_writer_ends_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("torn.ndjson");
    let mut w = FileWriter::open(&path).expect("open");
    for i in 0..3 {
        Writer::write(&mut w, Message::new(Bytes::from(i.to_string()))).expect("write");
    }
    Writer::close(&mut w).expect("close");
    // A crash mid-line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(br#"{"timestamp":1,"value":{"half"#))
        .expect("tear");
    let (got, stats) = read_all(&path);
    assert_eq!(got.len(), 3);
    assert_eq!(stats.torn, 1);

    // A writer restarting after the crash: its lines are readable, the fragment skipped.
    let mut w = FileWriter::open(&path).expect("reopen");
    Writer::write(&mut w, Message::new(Bytes::from("42"))).expect("write");
    Writer::close(&mut w).expect("close");
    let (got, stats) = read_all(&path);
    assert_eq!(
        got.iter().map(|m| m.value.clone()).collect::<Vec<_>>(),
        ["0", "1", "2", "42"]
    );
    assert_eq!((stats.skipped, stats.torn), (1, 0));
}

#[test]
fn corrupt_and_oversized_lines_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.ndjson");
    let long = format!("{{\"value\":\"{}\"}}\n", "x".repeat(200));
    std::fs::write(
        &path,
        format!("{{\"value\":1}}\nnot json\n\n{long}{{\"value\":{{\"k\":2}}}}\n{{\"value\":\"AA==\",\"value_encoding\":\"base64\"}}\n{{\"value\":\"!!\",\"value_encoding\":\"base64\"}}\n"),
    )
    .expect("write");
    let options = ReadOptions {
        max_line: 100,
        ..Default::default()
    };
    let mut reader = FileReader::open(&path, options).expect("open");
    let mut got = Vec::new();
    reader
        .read(&|| false, &mut |m| {
            got.push((m.position.map(|p| p.offset), m.value));
            Ok(())
        })
        .expect("read");
    assert_eq!(
        got,
        vec![
            (Some(0), Bytes::from("1")),
            (Some(4), Bytes::from(r#"{"k":2}"#)),
            (Some(5), Bytes::from_static(&[0])),
        ]
    );
    // "not json", the long line and the bad base64.
    assert_eq!(reader.stats().skipped, 3);
}

#[test]
fn a_handler_error_leaves_the_message_for_the_next_read_and_start_line_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("resume.ndjson");
    let mut w = FileWriter::open(&path).expect("open");
    for i in 0..5 {
        Writer::write(&mut w, Message::new(Bytes::from(i.to_string()))).expect("write");
    }
    Writer::close(&mut w).expect("close");
    let mut reader = FileReader::open(&path, ReadOptions::default()).expect("open");
    let mut seen = Vec::new();
    let err = reader.read(&|| false, &mut |m| {
        if m.value == "2" {
            return Err("not now".into());
        }
        seen.push(m.value);
        Ok(())
    });
    assert!(err.is_err());
    assert_eq!(reader.next_line(), 2);
    reader
        .read(&|| false, &mut |m| {
            seen.push(m.value);
            Ok(())
        })
        .expect("read");
    assert_eq!(seen, ["0", "1", "2", "3", "4"]);

    let resumed = ReadOptions {
        start_line: 3,
        ..Default::default()
    };
    let mut reader = FileReader::open(&path, resumed).expect("open");
    let mut rest = Vec::new();
    reader
        .read(&|| false, &mut |m| {
            rest.push(m.value);
            Ok(())
        })
        .expect("read");
    assert_eq!(rest, ["3", "4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_lines_appended_later_and_stops_on_cancel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("follow.ndjson");
    let mut w = async_writer(&path).expect("writer");
    w.write(Message::new(Bytes::from("1")))
        .await
        .expect("write");
    w.flush().await.expect("flush");
    let token = CancellationToken::new();
    let options = ReadOptions {
        follow: true,
        ..Default::default()
    };
    let mut r = async_reader(&path, options, token.clone()).expect("reader");
    let first = r.next().await.expect("open").expect("ok");
    assert_eq!(first.value, "1");
    w.write(Message::new(Bytes::from("2")))
        .await
        .expect("write");
    w.flush().await.expect("flush");
    let second = tokio::time::timeout(std::time::Duration::from_secs(5), r.next())
        .await
        .expect("the appended line arrives")
        .expect("open")
        .expect("ok");
    assert_eq!(second.value, "2");
    token.cancel();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), r.next())
        .await
        .expect("stops promptly");
    assert!(end.is_none());
}
