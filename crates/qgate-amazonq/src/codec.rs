//! Incremental decoding of the AWS event-stream (`application/vnd.amazon.eventstream`)
//! into typed [`Event`]s, and the encoder the simulator uses.
//!
//! Encoding is AWS's own `aws-smithy-eventstream`. Decoding reads each frame in place
//! (`codec/frame.rs`: the same checks as that crate's reader, held to it by tests, without
//! its per-header copies), and adds what a proxy needs: a hard cap on frame length checked
//! from the prelude (before buffering the frame), an early prelude-CRC check so a corrupt
//! length never makes us wait for bytes that will not come, and a truncation check at end
//! of input. A corrupt, truncated or oversized stream is an error, never a panic.

mod frame;

use crate::event::{Event, StreamError};
use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Buf, Bytes};
use frame::Frame;

/// Frames longer than this are rejected (the service's own limit is far below it).
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;
const PRELUDE_LEN: usize = 12;
/// The decoder's first allocation: the gateway reads the upstream body 4 KiB at a time.
const INITIAL_BUFFER: usize = 4096;
const MIN_FRAME_LEN: u32 = 16;

/// Why the byte stream could not be decoded. All are fatal for the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event-stream frame of {0} bytes exceeds the 16 MiB limit")]
    FrameTooLarge(u32),
    #[error("event-stream frame length {0} is below the 16-byte minimum")]
    FrameTooSmall(u32),
    #[error("event-stream prelude checksum mismatch")]
    PreludeChecksum,
    #[error("invalid event-stream frame: {0}")]
    Frame(String),
    #[error("event-stream ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
    #[error("event {event_type} has an unreadable payload: {reason}")]
    Payload { event_type: String, reason: String },
    #[error("event-stream frame without a :message-type header")]
    MissingMessageType,
}

/// What the decoder yields besides events.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeFailure {
    /// An in-band exception or error frame.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The bytes are not a valid event stream.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Feeds on arbitrary chunks, yields complete events in order.
///
/// The bytes not yet decoded are `buf[pos..]`. Decoded frames only move `pos`; the buffer
/// is emptied in place once everything in it is decoded (the usual case: the service's
/// reads end on frame boundaries), and compacted only when a chunk would not fit after a
/// partial frame. Its allocation, one read's worth, is reused while frames keep coming,
/// and given back while the caller waits (`release_if_drained`).
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
    pos: usize,
    frames: u64,
    ignored: u64,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.buf.capacity() == 0 {
            // One read's worth at least: a connection hands on all the frames of a read
            // (often a whole short reply) before any is decoded, and growing from the
            // first frame's size reallocated ~6 times for a 20-frame reply.
            self.buf.reserve_exact(chunk.len().max(INITIAL_BUFFER));
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < chunk.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Gives the buffer back when nothing is left in it to decode: for a caller about to
    /// wait for the network. A stream that waits (for its first event, or between
    /// events) then holds no buffer; the next push allocates one read's worth again.
    pub fn release_if_drained(&mut self) {
        if self.pos == self.buf.len() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// The bytes received and not yet decoded.
    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Frames decoded so far (including ignored ones).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames of event types we do not use, skipped.
    pub fn ignored_frames(&self) -> u64 {
        self.ignored
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeFailure> {
        loop {
            let Some((total, prelude_crc)) = self.buffered_frame()? else {
                return Ok(None);
            };
            // `buffered_frame` has checked the prelude.
            let event = interpret(&Frame::parse_after_prelude(
                &self.pending()[..total],
                prelude_crc,
            )?);
            self.pos += total;
            self.frames += 1;
            match event? {
                Some(ev) => return Ok(Some(ev)),
                None => self.ignored += 1,
            }
        }
    }

    /// Call at end of input: leftover bytes mean the stream was cut inside a frame.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.pending().len() {
            0 => Ok(()),
            left => Err(DecodeError::Truncated(left)),
        }
    }

    /// The length of the frame at the front of the buffer once all of it is there, with
    /// its prelude's checksum (checked).
    fn buffered_frame(&mut self) -> Result<Option<(usize, u32)>, DecodeError> {
        let buf = self.pending();
        if buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if total > MAX_FRAME_LEN {
            return Err(DecodeError::FrameTooLarge(total));
        }
        if total < MIN_FRAME_LEN {
            return Err(DecodeError::FrameTooSmall(total));
        }
        let prelude_crc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if crc32fast::hash(&buf[..8]) != prelude_crc {
            return Err(DecodeError::PreludeChecksum);
        }
        let (total, have) = (total as usize, buf.len());
        if have < total {
            self.buf.reserve(total - have);
            return Ok(None);
        }
        Ok(Some((total, prelude_crc)))
    }
}

fn interpret(frame: &Frame<'_>) -> Result<Option<Event>, DecodeFailure> {
    let message_type = frame.message_type.ok_or(DecodeError::MissingMessageType)?;
    match message_type {
        b"event" => {
            let event_type = frame.event_type.unwrap_or_default();
            Event::from_payload(event_type, frame.payload).map_err(|e| {
                DecodeFailure::Decode(DecodeError::Payload {
                    event_type: event_type.to_owned(),
                    reason: e.to_string(),
                })
            })
        }
        b"exception" => {
            let exception_type = frame
                .header_str(":exception-type")
                .unwrap_or("UnknownException")
                .to_owned();
            let (message_text, reason) = exception_payload(frame.payload);
            Err(StreamError::Exception {
                exception_type,
                message: message_text,
                reason,
            }
            .into())
        }
        b"error" => Err(StreamError::Service {
            code: frame
                .header_str(":error-code")
                .unwrap_or("UnknownError")
                .to_owned(),
            message: frame
                .header_str(":error-message")
                .unwrap_or_default()
                .to_owned(),
        }
        .into()),
        // Unknown message types are ignored like unknown events.
        _ => Ok(None),
    }
}

fn exception_payload(payload: &[u8]) -> (String, Option<String>) {
    #[derive(serde::Deserialize)]
    struct P {
        #[serde(default, alias = "Message")]
        message: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    }
    match serde_json::from_slice::<P>(payload) {
        Ok(p) => (p.message.unwrap_or_default(), p.reason),
        Err(_) => (String::from_utf8_lossy(payload).into_owned(), None),
    }
}

fn encode(message: &Message) -> Bytes {
    let mut out = Vec::with_capacity(message.payload().len() + 128);
    // Our headers are short and payloads far below the size limit, so this cannot fail;
    // if it ever did, an empty frame makes the receiving decoder fail loudly.
    let _ = write_message_to(message, &mut out);
    Bytes::from(out)
}

/// An `event` frame with a JSON payload.
pub fn encode_event_frame(event_type: &str, payload: &[u8]) -> Bytes {
    encode(&Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("event".into())),
            Header::new(
                ":event-type",
                HeaderValue::String(event_type.to_owned().into()),
            ),
            Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
        ],
        Bytes::copy_from_slice(payload),
    ))
}

/// An `exception` frame.
pub fn encode_exception_frame(exception_type: &str, payload: &[u8]) -> Bytes {
    encode(&Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("exception".into())),
            Header::new(
                ":exception-type",
                HeaderValue::String(exception_type.to_owned().into()),
            ),
            Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
        ],
        Bytes::copy_from_slice(payload),
    ))
}

/// An `error` frame.
pub fn encode_error_frame(code: &str, message: &str) -> Bytes {
    encode(&Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("error".into())),
            Header::new(":error-code", HeaderValue::String(code.to_owned().into())),
            Header::new(
                ":error-message",
                HeaderValue::String(message.to_owned().into()),
            ),
        ],
        Bytes::new(),
    ))
}

/// Encodes an arbitrary message (tests use it for frames with every header type).
pub fn encode_message(message: &Message) -> Bytes {
    encode(message)
}

/// Reads exactly one frame from the front of `bytes` (tests, tools).
pub fn decode_one(mut bytes: Bytes) -> Result<Message, DecodeError> {
    if bytes.remaining() < PRELUDE_LEN {
        return Err(DecodeError::Truncated(bytes.remaining()));
    }
    read_message_from(&mut bytes).map_err(|e| DecodeError::Frame(e.to_string()))
}

#[cfg(test)]
mod tests;
