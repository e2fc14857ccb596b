//! Reads a reply to the end and judges it: an Amazon Q event stream, Anthropic SSE or an
//! Anthropic JSON message. Records when the first content arrived and, for every stamped
//! text chunk, how long it took from the simulator's send to our receive.

use super::{Protocol, now_ns};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use qgate_amazonq::codec::DecodeFailure;
use qgate_amazonq::{Event, EventStreamDecoder};
use serde::Serialize;

/// Why a request counts as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Any status but 200.
    Status,
    /// An SSE `event: error`, or an in-band exception frame.
    InBand,
    /// Connect, write or read failure, or a connection closed early.
    Transport,
    /// The reply did not finish in time.
    Timeout,
    /// Bytes that do not decode (event-stream frames, SSE, JSON).
    Malformed,
    /// The reply ended without its closing event, or carried no content.
    Incomplete,
}

/// One request's result.
#[derive(Debug, Clone)]
pub struct Observation {
    pub started_ns: u64,
    pub finished_ns: u64,
    /// When the first text or tool content arrived (streamed replies).
    pub first_content_ns: Option<u64>,
    /// Receive time minus stamp, per stamped chunk.
    pub chunk_delays_ns: Vec<u64>,
    pub error: Option<ErrorKind>,
}

impl Observation {
    pub fn failed(started_ns: u64, error: ErrorKind) -> Observation {
        Observation {
            started_ns,
            finished_ns: now_ns(),
            first_content_ns: None,
            chunk_delays_ns: Vec::new(),
            error: Some(error),
        }
    }
}

pub(super) async fn read(
    response: http::Response<Incoming>,
    protocol: Protocol,
    stream: bool,
    started_ns: u64,
) -> Observation {
    let mut observation = Observation {
        started_ns,
        finished_ns: 0,
        first_content_ns: None,
        chunk_delays_ns: Vec::new(),
        error: None,
    };
    if response.status() != http::StatusCode::OK {
        // Drain, so the connection stays usable.
        let _ = response.into_body().collect().await;
        observation.error = Some(ErrorKind::Status);
    } else {
        let mut body = response.into_body();
        let error = match (protocol, stream) {
            (Protocol::AmazonQ, _) => read_event_stream(&mut body, &mut observation).await,
            (Protocol::Anthropic, true) => read_sse(&mut body, &mut observation).await,
            (Protocol::Anthropic, false) => read_message(&mut body).await,
        };
        observation.error = error.err();
    }
    observation.finished_ns = now_ns();
    observation
}

/// The next body chunk; `Ok(None)` at the end.
async fn next_chunk(body: &mut Incoming) -> Result<Option<bytes::Bytes>, ErrorKind> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(_)) => return Err(ErrorKind::Transport),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

async fn read_event_stream(
    body: &mut Incoming,
    observation: &mut Observation,
) -> Result<(), ErrorKind> {
    let mut decoder = EventStreamDecoder::new();
    let mut saw_content = false;
    while let Some(chunk) = next_chunk(body).await? {
        let received = now_ns();
        decoder.push(&chunk);
        loop {
            match decoder.next_event() {
                Ok(None) => break,
                Ok(Some(Event::AssistantResponse { content })) => {
                    saw_content = true;
                    observation.first_content_ns.get_or_insert(received);
                    scan_stamps(
                        content.as_bytes(),
                        received,
                        &mut observation.chunk_delays_ns,
                    );
                }
                Ok(Some(Event::ToolUse { .. })) => {
                    saw_content = true;
                    observation.first_content_ns.get_or_insert(received);
                }
                Ok(Some(_)) => {}
                Err(DecodeFailure::Stream(_)) => return Err(ErrorKind::InBand),
                Err(DecodeFailure::Decode(_)) => return Err(ErrorKind::Malformed),
            }
        }
    }
    decoder.finish().map_err(|_| ErrorKind::Incomplete)?;
    if saw_content {
        Ok(())
    } else {
        Err(ErrorKind::Incomplete)
    }
}

async fn read_sse(body: &mut Incoming, observation: &mut Observation) -> Result<(), ErrorKind> {
    let mut pending: Vec<u8> = Vec::with_capacity(4096);
    let mut stopped = false;
    while let Some(chunk) = next_chunk(body).await? {
        let received = now_ns();
        pending.extend_from_slice(&chunk);
        let mut consumed = 0;
        while let Some(end) = find(&pending[consumed..], b"\n\n") {
            let event = &pending[consumed..consumed + end];
            consumed += end + 2;
            match sse_event_type(event) {
                Some(b"error") => return Err(ErrorKind::InBand),
                Some(b"content_block_delta") => {
                    observation.first_content_ns.get_or_insert(received);
                    if find(event, b"\"text_delta\"").is_some() {
                        scan_stamps(event, received, &mut observation.chunk_delays_ns);
                    }
                }
                Some(b"message_stop") => stopped = true,
                _ => {}
            }
        }
        pending.drain(..consumed);
    }
    if stopped && pending.iter().all(u8::is_ascii_whitespace) {
        Ok(())
    } else {
        Err(ErrorKind::Incomplete)
    }
}

async fn read_message(body: &mut Incoming) -> Result<(), ErrorKind> {
    let mut all = Vec::new();
    while let Some(chunk) = next_chunk(body).await? {
        all.extend_from_slice(&chunk);
    }
    let message: serde_json::Value =
        serde_json::from_slice(&all).map_err(|_| ErrorKind::Malformed)?;
    let is_message = message.get("type").and_then(|t| t.as_str()) == Some("message");
    let has_content = message
        .get("content")
        .and_then(|c| c.as_array())
        .is_some_and(|c| !c.is_empty());
    if is_message && has_content {
        Ok(())
    } else {
        Err(ErrorKind::Incomplete)
    }
}

/// The `event:` name of one SSE event block.
fn sse_event_type(event: &[u8]) -> Option<&[u8]> {
    event
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"event:"))
        .map(<[u8]>::trim_ascii)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Fewer digits than this after a `t` is a word, not a stamp (nanoseconds since boot
/// have at least ten digits after the first ten seconds of uptime).
const MIN_STAMP_DIGITS: usize = 10;

/// Finds every `t<digits> ` stamp in `text` and records `received - stamp`.
pub(crate) fn scan_stamps(text: &[u8], received_ns: u64, out: &mut Vec<u64>) {
    let mut at = 0;
    while let Some(offset) = text[at..].iter().position(|b| *b == b't') {
        let start = at + offset + 1;
        let digits = text[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        if digits >= MIN_STAMP_DIGITS && text.get(end) == Some(&b' ') {
            let stamp = std::str::from_utf8(&text[start..end])
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(stamp) = stamp {
                out.push(received_ns.saturating_sub(stamp));
            }
        }
        at = end.max(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_stamps_in_sse_data_and_plain_text() {
        let mut out = Vec::new();
        let sse = br#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\n\nt1000000000 word"}}"#;
        scan_stamps(sse, 1_000_000_500, &mut out);
        scan_stamps(b"t1000000100  two words", 1_000_000_500, &mut out);
        scan_stamps(b"text t123 tt 9999999999", 1_000_000_500, &mut out);
        assert_eq!(out, [500, 400]);
    }

    #[test]
    fn reads_sse_event_names() {
        assert_eq!(
            sse_event_type(b"event: message_stop\ndata: {}"),
            Some(&b"message_stop"[..])
        );
        assert_eq!(sse_event_type(b"data: {}"), None);
    }
}
