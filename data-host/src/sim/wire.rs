//! TWS API framing: the handshake, length-prefixed frames, and the message id that
//! opens every frame body (ids above 200 mark a protobuf body).

use std::io;

use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::proto::{ErrorMessage, msg};

/// The largest frame either side accepts (IB's `MaxMsgSize`, 16 MiB - 1).
pub(crate) const MAX_FRAME: usize = 0x00FF_FFFF;
/// Added to the message id of a protobuf-encoded message.
pub(crate) const PROTOBUF_OFFSET: i32 = 200;
/// The handshake's version string is tiny; anything longer is not a TWS client.
const MAX_HANDSHAKE: usize = 1024;

/// Reads one length-prefixed frame of at most `max` bytes. A longer (or empty) frame
/// is an `InvalidData` error: the stream cannot be re-synchronised after it.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Vec<u8>> {
    let len = reader.read_u32().await? as usize;
    if len == 0 || len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len} outside 1..={max}"),
        ));
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads the client's greeting, `API\0` then a frame `v<min>..<max>` (optionally
/// followed by connect options), and returns the client's version range.
pub(crate) async fn read_handshake<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<(i32, i32)> {
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).await?;
    if &magic != b"API\0" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "handshake does not start with API\\0",
        ));
    }
    let body = read_frame(reader, MAX_HANDSHAKE).await?;
    let text = String::from_utf8_lossy(&body);
    parse_version_range(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad handshake version string {text:?}"),
        )
    })
}

fn parse_version_range(text: &str) -> Option<(i32, i32)> {
    let range = text
        .trim_end_matches('\0')
        .split_whitespace()
        .next()?
        .strip_prefix('v')?;
    match range.split_once("..") {
        Some((min, max)) => Some((min.parse().ok()?, max.parse().ok()?)),
        None => range.parse().ok().map(|v| (v, v)),
    }
}

/// The gateway's answer to the handshake: a text frame `<version>\0<time>\0`, the time
/// as `YYYYMMDD HH:MM:SS <zone>` (the simulator's zone is UTC).
pub(crate) fn handshake_reply(server_version: i32) -> Vec<u8> {
    let now = Utc::now().format("%Y%m%d %H:%M:%S UTC");
    let body = format!("{server_version}\0{now}\0");
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body.as_bytes());
    frame
}

/// A frame body split into its message id and payload.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// The message id with the protobuf offset removed.
    pub(crate) id: i32,
    /// Whether the payload is protobuf (else NUL-separated text fields).
    pub(crate) protobuf: bool,
    pub(crate) payload: Vec<u8>,
}

impl Incoming {
    /// `None` if the body cannot hold the 4-byte message id.
    pub(crate) fn split(mut body: Vec<u8>) -> Option<Self> {
        let header: [u8; 4] = body.get(..4)?.try_into().ok()?;
        let raw = i32::from_be_bytes(header);
        body.drain(..4);
        let protobuf = raw > PROTOBUF_OFFSET;
        let id = if protobuf { raw - PROTOBUF_OFFSET } else { raw };
        Some(Self {
            id,
            protobuf,
            payload: body,
        })
    }
}

/// A frame too large for the client to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameTooLarge(pub(crate) usize);

/// Frames a protobuf message: length, `msg_id + 200`, the encoded message.
pub(crate) fn encode<M: prost::Message>(
    msg_id: i32,
    message: &M,
) -> Result<Vec<u8>, FrameTooLarge> {
    let body_len = 4 + message.encoded_len();
    if body_len > MAX_FRAME {
        return Err(FrameTooLarge(body_len));
    }
    let mut frame = Vec::with_capacity(body_len + 4);
    frame.extend_from_slice(&(body_len as u32).to_be_bytes());
    frame.extend_from_slice(&(msg_id + PROTOBUF_OFFSET).to_be_bytes());
    message.encode_raw(&mut frame);
    Ok(frame)
}

/// The sending side of one connection; frames go to its writer task in order.
#[derive(Debug, Clone)]
pub(crate) struct Outbox(mpsc::Sender<Vec<u8>>);

impl Outbox {
    pub(crate) fn new(sender: mpsc::Sender<Vec<u8>>) -> Self {
        Self(sender)
    }

    /// Queues a framed message; `false` once the connection is gone.
    pub(crate) async fn send_frame(&self, frame: Vec<u8>) -> bool {
        self.0.send(frame).await.is_ok()
    }

    /// Queues a protobuf message. One too large to frame is logged and dropped (only
    /// bar answers can be that large, and those are checked before).
    pub(crate) async fn send<M: prost::Message>(&self, msg_id: i32, message: &M) -> bool {
        match encode(msg_id, message) {
            Ok(frame) => self.send_frame(frame).await,
            Err(FrameTooLarge(len)) => {
                tracing::error!(msg_id, len, "ib-sim: message too large to frame; dropped");
                true
            }
        }
    }

    /// Queues an IB error message: `id` is the request id (-1 for none).
    pub(crate) async fn error(&self, id: i32, code: i32, text: impl Into<String>) -> bool {
        let text = text.into();
        tracing::debug!(id, code, text, "ib-sim: sending error");
        let message = ErrorMessage {
            id: Some(id),
            error_time: Some(Utc::now().timestamp_millis()),
            error_code: Some(code),
            error_msg: Some(text),
        };
        self.send(msg::ERR_MSG, &message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_ranges() {
        assert_eq!(parse_version_range("v213..226"), Some((213, 226)));
        assert_eq!(parse_version_range("v100..151 +PACEAPI"), Some((100, 151)));
        assert_eq!(parse_version_range("v176"), Some((176, 176)));
        assert_eq!(parse_version_range("213..226"), None);
        assert_eq!(parse_version_range("vx..y"), None);
    }

    #[test]
    fn splits_protobuf_and_text_ids() {
        let mut body = (20 + PROTOBUF_OFFSET).to_be_bytes().to_vec();
        body.extend_from_slice(b"xy");
        let incoming = Incoming::split(body).expect("splits");
        assert_eq!(
            (incoming.id, incoming.protobuf, incoming.payload.as_slice()),
            (20, true, &b"xy"[..])
        );
        let text = Incoming::split(Vec::from(49i32.to_be_bytes())).expect("splits");
        assert_eq!((text.id, text.protobuf), (49, false));
        assert!(Incoming::split(vec![1, 2]).is_none());
    }

    #[tokio::test]
    async fn refuses_oversized_frames() {
        let mut data: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF, 0];
        let err = read_frame(&mut data, MAX_FRAME)
            .await
            .expect_err("too long");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
