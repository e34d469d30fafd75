//! JSON through serde_json; decode errors carry the path of the offending field.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Serde;
use crate::error::SerdeError;

/// JSON (UTF-8, compact). Numbers round-trip exactly (serde_json's `float_roundtrip`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Serde<T> for Json {
    fn to_bytes(&self, value: &T) -> Result<Bytes, SerdeError> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| SerdeError::Encode {
                format: "json",
                message: e.to_string(),
            })
    }

    fn from_bytes(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        // Path tracking costs about half again on every decode; it is only needed to
        // name the field of a failure, so a failure is decoded a second time with it.
        if let Ok(value) = serde_json::from_slice(bytes) {
            return Ok(value);
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| SerdeError::Decode {
            format: "json",
            message: if e.path().iter().next().is_some() {
                format!("at `{}`: {}", e.path(), e.inner())
            } else {
                e.inner().to_string()
            },
        })
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }
}
