//! `Serde<T>`: how a value becomes bytes and back, kept apart from every transport.
//!
//! A transport moves bytes; a [`crate::typed::TypedWriter`] or
//! [`crate::typed::TypedReader`] puts one `Serde` for the key and one for the value in
//! front of it. Formats here: [`Json`], [`MsgPack`] (compact binary), [`RawBytes`] and
//! [`Utf8`].

mod json;
mod msgpack;
mod raw;

pub use json::Json;
pub use msgpack::MsgPack;
pub use raw::{RawBytes, Utf8};

use bytes::Bytes;

use crate::error::SerdeError;

/// Turns a `T` into bytes and back. Implementations are stateless and cheap to share.
pub trait Serde<T>: Send + Sync {
    /// Encodes `value`.
    fn to_bytes(&self, value: &T) -> Result<Bytes, SerdeError>;
    /// Decodes `bytes`; an error names what did not fit.
    // `to_bytes`/`from_bytes` are the contract's names (DESIGN.md), kept over the lint.
    #[allow(clippy::wrong_self_convention)]
    fn from_bytes(&self, bytes: &[u8]) -> Result<T, SerdeError>;
    /// The MIME type of the encoded form (sent as the `content-type` header by writers
    /// that carry headers).
    fn content_type(&self) -> &'static str;
}

#[cfg(test)]
mod tests;
