//! Reading one event-stream frame in place: the checks of `aws-smithy-eventstream`'s
//! `read_message_from` (prelude and message CRC, header and payload bounds, every header
//! value type, UTF-8 of names and strings), without copying. `read_message_from` wraps
//! its input to checksum as it reads, so each header name and value and the payload
//! become a fresh allocation — seven per frame, a third of all allocations of a streamed
//! request (docs/benchmarks.md). Here a frame is the slice it arrived in; headers are
//! looked up by name in it. The tests hold this reader to the crate's: on any bytes both
//! accept the same frames and agree on every string header and the payload.

use super::{DecodeError, MIN_FRAME_LEN, PRELUDE_LEN};

const TYPE_TRUE: u8 = 0;
const TYPE_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_INT16: u8 = 3;
const TYPE_INT32: u8 = 4;
const TYPE_INT64: u8 = 5;
const TYPE_BYTE_ARRAY: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// A whole, checked frame, borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame<'a> {
    headers: &'a [u8],
    pub payload: &'a [u8],
    /// The value of the first `:message-type` header, if it is a string (raw bytes: the
    /// decoder only compares it with three names).
    pub message_type: Option<&'a [u8]>,
    /// The value of the first `:event-type` header, if it is a string.
    pub event_type: Option<&'a str>,
}

impl<'a> Frame<'a> {
    /// Checks `bytes`, exactly one frame (its length already read from the prelude).
    #[cfg(test)]
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        let total = bytes.len();
        if total < MIN_FRAME_LEN as usize {
            return Err(invalid("message length"));
        }
        if word(bytes, 0) as usize != total {
            return Err(invalid("message length"));
        }
        let prelude_crc = crc32fast::hash(&bytes[..8]);
        if prelude_crc != word(bytes, 8) {
            return Err(DecodeError::PreludeChecksum);
        }
        Self::parse_after_prelude(bytes, prelude_crc)
    }

    /// [`Frame::parse`] for a caller that has already checked the prelude of `bytes`:
    /// its total length (equal to `bytes.len()`, at least the minimum) and its checksum,
    /// `prelude_crc`, the CRC of its first 8 bytes. The message checksum covers the whole
    /// frame before it, so it goes on from `prelude_crc` rather than reading those 8 bytes
    /// again.
    pub fn parse_after_prelude(
        bytes: &'a [u8],
        prelude_crc: u32,
    ) -> Result<Frame<'a>, DecodeError> {
        let total = bytes.len();
        let header_len = word(bytes, 4) as usize;
        // Empty, or at least one header's worth; within the frame.
        if header_len == 1 || header_len > total - MIN_FRAME_LEN as usize {
            return Err(invalid("headers length"));
        }
        let crc_at = total - 4;
        let mut message_crc = crc32fast::Hasher::new_with_initial(prelude_crc);
        message_crc.update(&bytes[8..crc_at]);
        if message_crc.finalize() != word(bytes, crc_at) {
            return Err(invalid("message checksum"));
        }
        let mut frame = Frame {
            headers: &bytes[PRELUDE_LEN..PRELUDE_LEN + header_len],
            payload: &bytes[PRELUDE_LEN + header_len..crc_at],
            message_type: None,
            event_type: None,
        };
        frame.check_headers()?;
        Ok(frame)
    }

    /// One walk over the headers: every one well formed, names and string values UTF-8
    /// (all at once when the whole block is ASCII, as the service's frames are), and the
    /// two headers every frame is read by picked out on the way. Looking them up
    /// afterwards walked the headers twice more and checked every string again: 1.6 k of a
    /// frame's instructions (docs/benchmarks.md, sixth round).
    fn check_headers(&mut self) -> Result<(), DecodeError> {
        let ascii = self.headers.is_ascii();
        let (mut seen_message_type, mut seen_event_type) = (false, false);
        let mut raw = self.header_iter();
        while !raw.rest.is_empty() {
            let (name, value) = raw.read_raw()?;
            if !ascii {
                utf8(name)?;
                if let Some(v) = value {
                    utf8(v)?;
                }
            }
            if name == b":message-type" && !seen_message_type {
                seen_message_type = true;
                self.message_type = value;
            } else if name == b":event-type" && !seen_event_type {
                seen_event_type = true;
                self.event_type = value.map(utf8).transpose()?;
            }
        }
        Ok(())
    }

    /// The value of string header `name`, if the frame has one. `parse` has checked every
    /// header, so the lookup compares raw name bytes and converts only the value it
    /// returns.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        let mut raw = self.header_iter();
        while !raw.rest.is_empty() {
            let (n, v) = raw.read_raw().ok()?;
            if n == name.as_bytes() {
                return v.and_then(|v| std::str::from_utf8(v).ok());
            }
        }
        None
    }

    /// Each header's name and, for strings, its value.
    pub(super) fn header_iter(&self) -> Headers<'a> {
        Headers { rest: self.headers }
    }
}

/// The big-endian word at `at`.
fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

pub(super) struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Headers<'a> {
    type Item = Result<(&'a str, Option<&'a str>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.read();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Headers<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(invalid("header"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn read(&mut self) -> Result<(&'a str, Option<&'a str>), DecodeError> {
        let (name, value) = self.read_raw()?;
        Ok((utf8(name)?, value.map(utf8).transpose()?))
    }

    /// One header's name and, for strings, its value bytes, unchecked as UTF-8.
    fn read_raw(&mut self) -> Result<(&'a [u8], Option<&'a [u8]>), DecodeError> {
        let name_len = self.take(1)?[0] as usize;
        let name = self.take(name_len)?;
        let value_type = self.take(1)?[0];
        let value = match value_type {
            TYPE_TRUE | TYPE_FALSE => None,
            TYPE_BYTE => self.take(1).map(|_| None)?,
            TYPE_INT16 => self.take(2).map(|_| None)?,
            TYPE_INT32 => self.take(4).map(|_| None)?,
            TYPE_INT64 | TYPE_TIMESTAMP => self.take(8).map(|_| None)?,
            TYPE_UUID => self.take(16).map(|_| None)?,
            TYPE_BYTE_ARRAY | TYPE_STRING => {
                let len = self.take(2)?;
                let bytes = self.take(u16::from_be_bytes([len[0], len[1]]) as usize)?;
                (value_type == TYPE_STRING).then_some(bytes)
            }
            other => return Err(invalid(&format!("header value type {other}"))),
        };
        Ok((name, value))
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| invalid("header: not UTF-8"))
}

fn invalid(what: &str) -> DecodeError {
    DecodeError::Frame(format!("invalid {what}"))
}
