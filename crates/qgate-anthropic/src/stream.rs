//! Server-sent events of a streaming `POST /v1/messages` response.
//!
//! Every event is written as `event: <name>\ndata: <json>\n\n` and its JSON repeats the
//! name in `type`: both official SDKs drop events without an `event:` line.

use crate::error::ErrorDetail;
use crate::response::{MessageResponse, StopReason};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessageResponse,
    },
    ContentBlockStart {
        index: usize,
        content_block: BlockStart,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: DeltaUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorDetail,
    },
}

impl StreamEvent {
    /// The SSE `event:` name (equal to the JSON `type`).
    pub const fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
            StreamEvent::Error { .. } => "error",
        }
    }

    /// Appends the event in SSE wire form (`event:` line, `data:` line, blank line).
    pub fn write_sse(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        self.write_json(out);
        out.extend_from_slice(b"\n\n");
    }

    /// Appends the event's JSON, byte for byte what `serde_json::to_writer` writes. The
    /// events of every chunk (deltas, block stops) are written directly, only their
    /// strings going through serde_json's escaping: the derived serializer spent ~1.5 k
    /// instructions on each, a tenth of a streamed request's (docs/benchmarks.md, sixth
    /// round). The rest, a few per message, go through serde.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            StreamEvent::ContentBlockDelta { index, delta } => {
                let (kind, field, value) = delta.parts();
                out.extend_from_slice(br#"{"type":"content_block_delta","index":"#);
                write_json_value(out, index);
                out.extend_from_slice(br#","delta":{"type":""#);
                out.extend_from_slice(kind.as_bytes());
                out.extend_from_slice(br#"",""#);
                out.extend_from_slice(field.as_bytes());
                out.extend_from_slice(br#"":"#);
                write_json_str(out, value);
                out.extend_from_slice(b"}}");
            }
            StreamEvent::ContentBlockStop { index } => {
                out.extend_from_slice(br#"{"type":"content_block_stop","index":"#);
                write_json_value(out, index);
                out.push(b'}');
            }
            StreamEvent::MessageStop => out.extend_from_slice(br#"{"type":"message_stop"}"#),
            StreamEvent::Ping => out.extend_from_slice(br#"{"type":"ping"}"#),
            _ => write_json_value(out, self),
        }
    }
}

/// A JSON string, byte for byte as serde_json writes it: copied between quotes when
/// nothing in it needs an escape (a model's text nearly always), else through serde_json.
/// serde_json looks up every byte in its escape table, ~10 instructions a byte of a text
/// delta (docs/benchmarks.md, fourteenth round).
fn write_json_str(out: &mut Vec<u8>, text: &str) {
    // A fold, not `any`: without the early exit the compiler checks many bytes at a time.
    let needs_escape = text.bytes().fold(false, |found, b| {
        found | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if needs_escape {
        write_json_value(out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Serializes a value into a `Vec`, which cannot fail for these types.
fn write_json_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// `content_block_start.content_block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockStart {
    /// Python's SDK needs `"text": ""` present.
    Text { text: String },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// `signature` is present (empty) as in the real API.
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
    },
}

/// `content_block_delta.delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    TextDelta { text: String },
    InputJsonDelta { partial_json: String },
    ThinkingDelta { thinking: String },
    SignatureDelta { signature: String },
}

impl Delta {
    /// Its JSON `type`, the name of its one field and that field's value.
    fn parts(&self) -> (&'static str, &'static str, &str) {
        match self {
            Delta::TextDelta { text } => ("text_delta", "text", text),
            Delta::InputJsonDelta { partial_json } => {
                ("input_json_delta", "partial_json", partial_json)
            }
            Delta::ThinkingDelta { thinking } => ("thinking_delta", "thinking", thinking),
            Delta::SignatureDelta { signature } => ("signature_delta", "signature", signature),
        }
    }
}

/// `message_delta.delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDeltaBody {
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
}

/// `message_delta.usage` (`output_tokens` is required by both SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    pub output_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any text, and often text full of what JSON escapes: quotes, backslashes, control
    /// characters, DEL and non-ASCII characters.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            r#"["\\\x00-\x1fa-z\x7f é😀\u{2028}]{0,16}"#
        ]
    }

    fn arb_delta() -> impl Strategy<Value = Delta> {
        prop_oneof![
            text().prop_map(|text| Delta::TextDelta { text }),
            text().prop_map(|partial_json| Delta::InputJsonDelta { partial_json }),
            text().prop_map(|thinking| Delta::ThinkingDelta { thinking }),
            text().prop_map(|signature| Delta::SignatureDelta { signature }),
        ]
    }

    fn arb_direct_event() -> impl Strategy<Value = StreamEvent> {
        prop_oneof![
            (any::<usize>(), arb_delta())
                .prop_map(|(index, delta)| StreamEvent::ContentBlockDelta { index, delta }),
            any::<usize>().prop_map(|index| StreamEvent::ContentBlockStop { index }),
            Just(StreamEvent::MessageStop),
            Just(StreamEvent::Ping),
        ]
    }

    proptest! {
        /// The events written directly are byte for byte what serde writes.
        #[test]
        fn directly_written_events_equal_serdes_output(event in arb_direct_event()) {
            let mut ours = Vec::new();
            event.write_json(&mut ours);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&event).unwrap());
        }
    }

    #[test]
    fn sse_has_event_line_and_type() {
        let mut out = Vec::new();
        StreamEvent::ContentBlockStart {
            index: 0,
            content_block: BlockStart::Text {
                text: String::new(),
            },
        }
        .write_sse(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        );
        let mut out = Vec::new();
        StreamEvent::MessageStop.write_sse(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }
}
