use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bar {
    symbol: String,
    close: f64,
    volume: u64,
    big: i128,
    tags: BTreeMap<String, String>,
}

fn bar() -> Bar {
    Bar {
        symbol: "Nestlé ÆØÅ 日本".to_owned(),
        close: 0.1 + 0.2,
        volume: u64::MAX,
        big: -170_141_183_460_469_231_731_687_303_715_884_105_728,
        tags: [("emoji".to_owned(), "📈".to_owned())].into(),
    }
}

fn round_trip<S: Serde<Bar>>(serde: &S) {
    let value = bar();
    let bytes = serde.to_bytes(&value).expect("encodes");
    assert_eq!(serde.from_bytes(&bytes).expect("decodes"), value);
}

#[test]
fn json_round_trips_non_ascii_big_numbers_and_exact_floats() {
    round_trip(&Json);
    let bytes = Serde::<f64>::to_bytes(&Json, &(0.1 + 0.2)).expect("encodes");
    assert_eq!(&bytes[..], b"0.30000000000000004");
}

#[test]
fn msgpack_round_trips_and_is_smaller_than_json() {
    round_trip(&MsgPack);
    let json = Serde::<Bar>::to_bytes(&Json, &bar()).expect("json");
    let mp = Serde::<Bar>::to_bytes(&MsgPack, &bar()).expect("msgpack");
    assert!(mp.len() < json.len(), "{} vs {}", mp.len(), json.len());
}

#[test]
fn json_decode_errors_name_the_field() {
    let err = Serde::<Bar>::from_bytes(
        &Json,
        br#"{"symbol":"A","close":"x","volume":1,"big":1,"tags":{}}"#,
    )
    .expect_err("close is a string");
    let text = err.to_string();
    assert!(text.contains("`close`"), "{text}");
}

#[test]
fn msgpack_rejects_garbage() {
    assert!(Serde::<Bar>::from_bytes(&MsgPack, &[0xc1, 0xff]).is_err());
}

#[test]
fn raw_and_utf8() {
    let b = Bytes::from_static(&[0, 255, 1]);
    assert_eq!(
        RawBytes
            .from_bytes(&RawBytes.to_bytes(&b).expect("raw"))
            .ok(),
        Some(b)
    );
    let s = "grüße".to_owned();
    assert_eq!(
        Utf8.from_bytes(&Utf8.to_bytes(&s).expect("utf8")).ok(),
        Some(s)
    );
    assert!(Serde::<String>::from_bytes(&Utf8, &[0xff, 0xfe]).is_err());
}
