use serde_json::json;

use super::*;
use crate::codec::{MsgPack, Serde};

#[test]
fn new_envelopes_have_v7_ids_and_ms_timestamps() {
    let a = Envelope::new("operation.started", "api-gateway", json!({"x": 1})).expect("valid");
    let b = Envelope::new("operation.started", "api-gateway", json!(null)).expect("valid");
    assert_eq!(a.id.get_version_num(), 7);
    assert!(a.id < b.id, "v7 ids sort by time");
    let text = String::from_utf8(a.to_json()).expect("utf8");
    let v: Value = serde_json::from_str(&text).expect("json");
    let ts = v["timestamp"].as_str().expect("timestamp");
    // 2026-12-02T18:00:00.123Z
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(ts.ends_with('Z'));
    assert_eq!(v["type"], "operation.started");
    assert_eq!(v["correlation_id"], Value::Null);
    assert_eq!(v["subject"], Value::Null);
}

#[test]
fn correlation_propagates_along_a_chain() {
    let root = Envelope::new("data.load.requested", "scheduler", json!({})).expect("valid");
    let child =
        Envelope::caused_by(&root, "operation.started", "api-gateway", json!({})).expect("valid");
    let grandchild = Envelope::caused_by(&child, "operation.completed", "api-gateway", json!({}))
        .expect("valid");
    assert_eq!(child.correlation_id, Some(root.id.to_string()));
    assert_eq!(grandchild.correlation_id, Some(root.id.to_string()));
}

#[test]
fn unknown_fields_survive_a_round_trip_in_both_formats() {
    let text = r#"{"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"data.loaded",
        "timestamp":"2026-12-02T18:00:00.123+01:00","source":"x","correlation_id":null,
        "subject":"AAPL","data":{"bars":12345678901234567890,"name":"Zürich"},
        "schema_version":3,"trace":{"span":"abc"}}"#;
    let env = Envelope::from_json(text.as_bytes()).expect("parses");
    assert_eq!(env.extra["schema_version"], 3);
    assert_eq!(env.timestamp.to_rfc3339(), "2026-12-02T17:00:00.123+00:00");
    let back: Value = serde_json::from_slice(&env.to_json()).expect("json");
    assert_eq!(back["trace"]["span"], "abc");
    assert_eq!(back["data"]["bars"].as_u64(), Some(12345678901234567890));
    assert_eq!(back["data"]["name"], "Zürich");
    let packed = MsgPack.to_bytes(&env).expect("msgpack");
    let unpacked: Envelope = MsgPack.from_bytes(&packed).expect("msgpack back");
    assert_eq!(unpacked, env);
}

#[test]
fn bad_envelopes_name_the_field() {
    let cases = [
        (
            r#"{"id":"nope","type":"a.b","timestamp":"2026-01-01T00:00:00Z","source":"s"}"#,
            "id",
        ),
        (
            r#"{"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"Nope","timestamp":"2026-01-01T00:00:00Z","source":"s"}"#,
            "type",
        ),
        (
            r#"{"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"a.b","timestamp":"yesterday","source":"s"}"#,
            "timestamp",
        ),
        (
            r#"{"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"a.b","timestamp":"2026-01-01T00:00:00Z"}"#,
            "source",
        ),
    ];
    for (text, field) in cases {
        let err = Envelope::from_json(text.as_bytes())
            .expect_err(text)
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn a_message_is_keyed_by_subject_with_headers() {
    let env = Envelope::new("operation.progress", "api-gateway", json!({}))
        .expect("valid")
        .with_subject("op-1")
        .with_correlation_id(Some("c-9".into()));
    let id = env.id.to_string();
    let m = env.into_message();
    assert_eq!(m.key.as_deref(), Some("op-1"));
    assert_eq!(m.headers.get_str(header::TYPE), Some("operation.progress"));
    assert_eq!(m.headers.get_str(header::ID), Some(id.as_str()));
    assert_eq!(m.headers.get_str(header::CORRELATION_ID), Some("c-9"));
}
