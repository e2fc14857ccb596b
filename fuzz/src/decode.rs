//! The event-stream decoder (`qgate_amazonq::EventStreamDecoder`) under hostile bytes.
//!
//! Three shapes of input, because raw bytes alone almost never get past the prelude CRC:
//!
//! * **raw** bytes — the decoder must not panic, and cutting the same bytes into other
//!   chunks must not change what it yields;
//! * **structured** frames — arbitrary headers (every value type, names and values from
//!   the protocol's vocabulary or anything) and payloads, encoded with valid CRCs so the
//!   header parser and the event interpreter see them; same properties;
//! * **valid** frames — events, exceptions, error frames and unknown events encoded by our
//!   own encoders: they decode to exactly what was encoded, stopping at the first
//!   exception or error frame; a byte flipped inside a frame is an error at that frame,
//!   with every earlier event delivered and nothing invented.

use arbitrary::{Arbitrary, Unstructured};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use aws_smithy_types::{DateTime, str_bytes::StrBytes};
use bytes::Bytes;
use qgate_amazonq::codec::{DecodeFailure, encode_event_frame, encode_message};
use qgate_amazonq::{DecodeError, Event, EventStreamDecoder, StreamError};

mod specs;

pub use specs::{EventSpec, FrameSpec};

/// Everything one decoding run produced.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub end: End,
}

/// How a decoding run ended.
#[derive(Debug, PartialEq)]
pub enum End {
    /// All bytes consumed, nothing left over.
    Clean,
    /// `next_event` failed (in-band exception, or bytes that are not an event stream).
    Failed(DecodeFailure),
    /// The input ended inside a frame.
    Cut(DecodeError),
}

/// One fuzz input.
#[derive(Debug)]
enum Input {
    Raw(Vec<u8>),
    Structured(Vec<Vec<Header>>, Vec<Bytes>),
    Valid {
        frames: Vec<FrameSpec>,
        corrupt: Option<(usize, u8)>,
    },
}

/// The `event_stream_decode` target.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mode) = u.int_in_range(0u8..=2) else {
        return;
    };
    let Ok(chunks) = chunk_lengths(&mut u) else {
        return;
    };
    let input = match mode {
        0 => Input::Raw(u.take_rest().to_vec()),
        1 => match structured(&mut u) {
            Ok((headers, payloads)) => Input::Structured(headers, payloads),
            Err(_) => return,
        },
        _ => {
            let Ok(frames) = Vec::<FrameSpec>::arbitrary(&mut u) else {
                return;
            };
            let corrupt = match u.arbitrary::<Option<(u32, u8)>>() {
                Ok(Some((at, xor))) if xor != 0 => Some((at as usize, xor)),
                _ => None,
            };
            Input::Valid { frames, corrupt }
        }
    };
    match input {
        Input::Raw(bytes) => same_in_any_chunks(&bytes, &chunks),
        Input::Structured(headers, payloads) => {
            let bytes: Vec<u8> = headers
                .into_iter()
                .zip(payloads)
                .flat_map(|(h, p)| encode_message(&Message::new_from_parts(h, p)).to_vec())
                .collect();
            same_in_any_chunks(&bytes, &chunks);
        }
        Input::Valid { frames, corrupt } => valid_frames(&frames, corrupt, &chunks),
    }
}

/// Chunk lengths (1..=256, cycled); empty means "one chunk".
fn chunk_lengths(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<usize>> {
    let n = u.int_in_range(0usize..=8)?;
    (0..n)
        .map(|_| Ok(usize::from(u.arbitrary::<u8>()?) + 1))
        .collect()
}

/// Decodes `bytes` pushed in chunks of the given lengths, draining events after each push
/// as the gateway's relay does.
pub fn decode_in_chunks(bytes: &[u8], lengths: &[usize]) -> Outcome {
    let mut decoder = EventStreamDecoder::new();
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut next_length = lengths.iter().copied().cycle();
    loop {
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(failure) => {
                    return Outcome {
                        events,
                        end: End::Failed(failure),
                    };
                }
            }
        }
        if rest.is_empty() {
            break;
        }
        let n = next_length.next().unwrap_or(rest.len()).min(rest.len());
        decoder.push(&rest[..n]);
        rest = &rest[n..];
    }
    Outcome {
        events,
        end: match decoder.finish() {
            Ok(()) => End::Clean,
            Err(e) => End::Cut(e),
        },
    }
}

fn same_in_any_chunks(bytes: &[u8], lengths: &[usize]) {
    let whole = decode_in_chunks(bytes, &[]);
    let chunked = decode_in_chunks(bytes, lengths);
    assert_eq!(whole, chunked, "chunking changed the decoded stream");
    let bytewise = decode_in_chunks(bytes, &[1]);
    assert_eq!(whole, bytewise, "byte-at-a-time decoding differs");
}

/// Encodes valid frames, optionally flips one byte, and checks the decoder's answer
/// against what was encoded.
fn valid_frames(frames: &[FrameSpec], corrupt: Option<(usize, u8)>, lengths: &[usize]) {
    let encoded: Vec<Bytes> = frames.iter().map(FrameSpec::encode).collect();
    for (spec, frame) in frames.iter().zip(&encoded) {
        assert!(
            !frame.is_empty(),
            "our encoder produced no frame for {spec:?}"
        );
    }
    let mut bytes: Vec<u8> = encoded.iter().flat_map(|f| f.to_vec()).collect();
    // The frame a flipped byte lands in, if any.
    let corrupted_frame = corrupt.filter(|_| !bytes.is_empty()).map(|(at, xor)| {
        let at = at % bytes.len();
        bytes[at] ^= xor;
        let mut end = 0;
        encoded
            .iter()
            .position(|f| {
                end += f.len();
                at < end
            })
            .unwrap_or(encoded.len())
    });
    let got = decode_in_chunks(&bytes, lengths);

    // What must come out: events of the frames before the first stopping frame (or the
    // corrupted one), then that frame's failure.
    let mut expected = Vec::new();
    let mut expected_end = End::Clean;
    for (index, spec) in frames.iter().enumerate() {
        if corrupted_frame == Some(index) {
            // The message or prelude CRC catches every single-byte change.
            match &got.end {
                End::Failed(DecodeFailure::Decode(
                    DecodeError::PreludeChecksum
                    | DecodeError::Frame(_)
                    | DecodeError::FrameTooLarge(_)
                    | DecodeError::FrameTooSmall(_),
                )) => {}
                other => panic!("a corrupted frame {index} was not reported: {other:?}"),
            }
            assert_eq!(got.events, expected, "events before the corrupted frame");
            return;
        }
        match spec.expected() {
            Expected::Event(event) => expected.push(event),
            Expected::Ignored => {}
            Expected::Stop(failure) => {
                expected_end = End::Failed(DecodeFailure::Stream(failure));
                break;
            }
        }
    }
    assert_eq!(
        got,
        Outcome {
            events: expected,
            end: expected_end
        }
    );
    same_in_any_chunks(&bytes, lengths);
}

/// What one valid frame decodes to.
pub enum Expected {
    Event(Event),
    Ignored,
    Stop(StreamError),
}

/// Header names and string values the protocol uses, so structured frames often look
/// real; anything else is just as welcome.
const HEADER_NAMES: &[&str] = &[
    ":message-type",
    ":event-type",
    ":exception-type",
    ":error-code",
    ":error-message",
    ":content-type",
];
const HEADER_STRINGS: &[&str] = &[
    "event",
    "exception",
    "error",
    "initial-response",
    "assistantResponseEvent",
    "toolUseEvent",
    "reasoningContentEvent",
    "contextUsageEvent",
    "meteringEvent",
    "metadataEvent",
    "messageMetadataEvent",
    "invalidStateEvent",
    "codeReferenceEvent",
    "ThrottlingException",
    "application/json",
];
const PAYLOADS: &[&str] = &[
    "{}",
    "",
    "null",
    "[]",
    "{\"content\":\"hi\"}",
    "{\"content\":null}",
    "{\"content\":5}",
    "{\"toolUseId\":\"t\",\"name\":\"Bash\",\"input\":\"{\\\"a\\\":\",\"stop\":false}",
    "{\"toolUseId\":\"t\",\"name\":\"Bash\",\"input\":{\"a\":1},\"stop\":true}",
    "{\"contextUsagePercentage\":1e400}",
    "{\"contextUsagePercentage\":-3.5}",
    "{\"unit\":\"credit\",\"usage\":\"x\"}",
    "{\"tokenUsage\":{\"uncachedInputTokens\":18446744073709551615,\"outputTokens\":-1}}",
    "{\"tokenUsage\":null}",
    "{\"message\":\"m\",\"reason\":\"R\"}",
    "{\"Message\":\"m\"}",
    "{\"reason\":\"INVALID\",\"message\":\"x\"}",
];

fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<(Vec<Vec<Header>>, Vec<Bytes>)> {
    let frames = u.int_in_range(0usize..=6)?;
    let mut headers = Vec::with_capacity(frames);
    let mut payloads = Vec::with_capacity(frames);
    for _ in 0..frames {
        let count = u.int_in_range(0usize..=5)?;
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            let name = pick_or_any(u, HEADER_NAMES)?;
            list.push(Header::new(name, header_value(u)?));
        }
        headers.push(list);
        payloads.push(if u.arbitrary()? {
            Bytes::from(pick_or_any(u, PAYLOADS)?)
        } else {
            Bytes::from(Vec::<u8>::arbitrary(u)?)
        });
    }
    Ok((headers, payloads))
}

fn header_value(u: &mut Unstructured<'_>) -> arbitrary::Result<HeaderValue> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => HeaderValue::Bool(u.arbitrary()?),
        1 => HeaderValue::Byte(u.arbitrary()?),
        2 => HeaderValue::Int16(u.arbitrary()?),
        3 => HeaderValue::Int32(u.arbitrary()?),
        4 => HeaderValue::Int64(u.arbitrary()?),
        5 => HeaderValue::ByteArray(Bytes::from(Vec::<u8>::arbitrary(u)?)),
        6 => HeaderValue::Timestamp(DateTime::from_millis(u.arbitrary()?)),
        7 => HeaderValue::Uuid(u.arbitrary()?),
        _ => HeaderValue::String(StrBytes::from(pick_or_any(u, HEADER_STRINGS)?)),
    })
}

/// A word from `vocabulary` most of the time, else any string.
pub fn pick_or_any(u: &mut Unstructured<'_>, vocabulary: &[&str]) -> arbitrary::Result<String> {
    if u.ratio(3u8, 4u8)? {
        Ok((*u.choose(vocabulary)?).to_owned())
    } else {
        String::arbitrary(u)
    }
}

/// An `event` frame of a type the decoder does not know (it must be skipped).
pub fn unknown_event_frame(event_type: &str, payload: &[u8]) -> Bytes {
    encode_event_frame(&format!("x-unknown-{event_type}"), payload)
}
