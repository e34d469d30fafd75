//! Raw bytes and UTF-8 text: no format at all, or just "valid UTF-8".

use bytes::Bytes;

use super::Serde;
use crate::error::SerdeError;

/// Bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl Serde<Bytes> for RawBytes {
    fn to_bytes(&self, value: &Bytes) -> Result<Bytes, SerdeError> {
        Ok(value.clone())
    }

    fn from_bytes(&self, bytes: &[u8]) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(bytes))
    }

    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }
}

impl Serde<Vec<u8>> for RawBytes {
    fn to_bytes(&self, value: &Vec<u8>) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(value))
    }

    fn from_bytes(&self, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }

    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }
}

/// UTF-8 text; decoding invalid UTF-8 is an error that says where.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Serde<String> for Utf8 {
    fn to_bytes(&self, value: &String) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }

    fn from_bytes(&self, bytes: &[u8]) -> Result<String, SerdeError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| SerdeError::Decode {
            format: "utf8",
            message: e.to_string(),
        })
    }

    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }
}
