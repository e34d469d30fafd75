//! The NDJSON line of one message, both ways.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::SerdeError;
use crate::message::{Headers, RawMessage};

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default, borrow)]
    key: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_encoding: Option<Encoding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(String, HeaderValue)>,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_encoding: Option<Encoding>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    Utf8,
    Base64,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum HeaderValue {
    Text(String),
    Binary { base64: String },
}

/// Appends the line of `message` (with its newline) to `out`.
pub(super) fn encode(
    message: &RawMessage,
    timestamp_ms: i64,
    out: &mut Vec<u8>,
) -> Result<(), SerdeError> {
    let (key, key_encoding) = match &message.key {
        None => (None, None),
        Some(k) => match std::str::from_utf8(k) {
            Ok(text) => (Some(std::borrow::Cow::Borrowed(text)), None),
            Err(_) => (
                Some(std::borrow::Cow::Owned(B64.encode(k))),
                Some(Encoding::Base64),
            ),
        },
    };
    let encode_err = |e: serde_json::Error| SerdeError::Encode {
        format: "ndjson",
        message: e.to_string(),
    };
    let value_text: String;
    let (value, value_encoding) = match serde_json::from_slice::<&RawValue>(&message.value) {
        Ok(raw) if !raw.get().contains(['\n', '\r']) => (raw, None),
        Ok(raw) => {
            // Outside strings a line break in JSON is whitespace (inside one it must be
            // escaped), so a space keeps the value and the one-line format.
            value_text = raw.get().replace(['\n', '\r'], " ");
            (serde_json::from_str(&value_text).map_err(encode_err)?, None)
        }
        Err(_) => {
            let (text, encoding) = match std::str::from_utf8(&message.value) {
                Ok(text) => (text.to_owned(), Encoding::Utf8),
                Err(_) => (B64.encode(&message.value), Encoding::Base64),
            };
            value_text = serde_json::to_string(&text).map_err(encode_err)?;
            (
                serde_json::from_str(&value_text).map_err(encode_err)?,
                Some(encoding),
            )
        }
    };
    let headers = message
        .headers
        .iter()
        .map(|(name, v)| {
            let value = match std::str::from_utf8(v) {
                Ok(text) => HeaderValue::Text(text.to_owned()),
                Err(_) => HeaderValue::Binary {
                    base64: B64.encode(v),
                },
            };
            (name.to_owned(), value)
        })
        .collect();
    let line = Line {
        timestamp: Some(timestamp_ms),
        key,
        key_encoding,
        headers,
        value,
        value_encoding,
    };
    serde_json::to_writer(&mut *out, &line).map_err(encode_err)?;
    out.push(b'\n');
    Ok(())
}

/// Parses one line (without its newline).
pub(super) fn decode(line: &[u8]) -> Result<RawMessage, SerdeError> {
    let decode_err = |message: String| SerdeError::Decode {
        format: "ndjson",
        message,
    };
    let parsed: Line<'_> = serde_json::from_slice(line).map_err(|e| decode_err(e.to_string()))?;
    let key = match (parsed.key, parsed.key_encoding) {
        (None, _) => None,
        (Some(k), Some(Encoding::Base64)) => Some(Bytes::from(
            B64.decode(k.as_bytes())
                .map_err(|e| decode_err(format!("`key`: {e}")))?,
        )),
        (Some(k), _) => Some(Bytes::copy_from_slice(k.as_bytes())),
    };
    let value = match parsed.value_encoding {
        None => Bytes::copy_from_slice(parsed.value.get().as_bytes()),
        Some(encoding) => {
            let text: String = serde_json::from_str(parsed.value.get())
                .map_err(|e| decode_err(format!("`value`: {e}")))?;
            match encoding {
                Encoding::Utf8 => Bytes::from(text),
                Encoding::Base64 => Bytes::from(
                    B64.decode(text.as_bytes())
                        .map_err(|e| decode_err(format!("`value`: {e}")))?,
                ),
            }
        }
    };
    let mut headers = Headers::new();
    for (name, value) in parsed.headers {
        let value = match value {
            HeaderValue::Text(text) => Bytes::from(text),
            HeaderValue::Binary { base64 } => Bytes::from(
                B64.decode(base64.as_bytes())
                    .map_err(|e| decode_err(format!("`headers.{name}`: {e}")))?,
            ),
        };
        headers.push(name, value);
    }
    Ok(RawMessage {
        key,
        value,
        headers,
        position: None,
        timestamp_ms: parsed.timestamp,
    })
}
