//! MessagePack through rmp-serde: the compact binary format.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Serde;
use crate::error::SerdeError;

/// MessagePack with named fields (a struct is a map, as in JSON), so a reader with an
/// added or reordered field still decodes what a writer of another version wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

impl<T: Serialize + DeserializeOwned> Serde<T> for MsgPack {
    fn to_bytes(&self, value: &T) -> Result<Bytes, SerdeError> {
        rmp_serde::to_vec_named(value)
            .map(Bytes::from)
            .map_err(|e| SerdeError::Encode {
                format: "msgpack",
                message: e.to_string(),
            })
    }

    fn from_bytes(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        rmp_serde::from_slice(bytes).map_err(|e| SerdeError::Decode {
            format: "msgpack",
            message: e.to_string(),
        })
    }

    fn content_type(&self) -> &'static str {
        "application/msgpack"
    }
}
