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
}

impl<'a> Frame<'a> {
    /// Checks `bytes`, exactly one frame (its length already read from the prelude).
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        let total = bytes.len();
        if total < MIN_FRAME_LEN as usize {
            return Err(invalid("message length"));
        }
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(0) as usize != total {
            return Err(invalid("message length"));
        }
        if crc32fast::hash(&bytes[..8]) != word(8) {
            return Err(DecodeError::PreludeChecksum);
        }
        let header_len = word(4) as usize;
        // Empty, or at least one header's worth; within the frame.
        if header_len == 1 || header_len > total - MIN_FRAME_LEN as usize {
            return Err(invalid("headers length"));
        }
        let crc_at = total - 4;
        if crc32fast::hash(&bytes[..crc_at]) != word(crc_at) {
            return Err(invalid("message checksum"));
        }
        let frame = Frame {
            headers: &bytes[PRELUDE_LEN..PRELUDE_LEN + header_len],
            payload: &bytes[PRELUDE_LEN + header_len..crc_at],
        };
        for header in frame.header_iter() {
            header?;
        }
        Ok(frame)
    }

    /// The value of string header `name`, if the frame has one. `parse` has checked every
    /// header, so the lookup compares raw name bytes and converts only the value it
    /// returns (per frame, two lookups used to re-check all names and strings).
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        let mut raw = Headers { rest: self.headers };
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
