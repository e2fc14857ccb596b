//! Valid frames to encode: every recognised event, in-band exceptions and error frames,
//! and event types the decoder must skip. Floats are exact decimals so the JSON round
//! trip is lossless and events can be compared with `==`.

use super::{Expected, unknown_event_frame};
use crate::exact_float;
use arbitrary::Arbitrary;
use bytes::Bytes;
use qgate_amazonq::{Event, StreamError};

/// One frame of a valid stream.
#[derive(Debug, Arbitrary)]
pub enum FrameSpec {
    Event(EventSpec),
    Exception {
        exception_type: String,
        message: String,
        reason: Option<String>,
    },
    Error {
        code: String,
        message: String,
    },
    Unknown {
        event_type: String,
        payload: Vec<u8>,
    },
}

/// An [`Event`] with every field arbitrary (floats as exact decimals).
#[derive(Debug, Arbitrary)]
pub enum EventSpec {
    InitialResponse(Option<String>),
    AssistantResponse(String),
    ToolUse {
        tool_use_id: String,
        name: String,
        input: String,
        stop: bool,
    },
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    ContextUsage(i32),
    Metering {
        unit: Option<String>,
        usage: i32,
    },
    TokenUsage([Option<u64>; 4]),
    MessageMetadata {
        conversation_id: Option<String>,
        utterance_id: Option<String>,
    },
    InvalidState {
        reason: String,
        message: String,
    },
}

impl EventSpec {
    pub fn event(&self) -> Event {
        match self {
            EventSpec::InitialResponse(conversation_id) => Event::InitialResponse {
                conversation_id: conversation_id.clone(),
            },
            EventSpec::AssistantResponse(content) => Event::AssistantResponse {
                content: content.clone(),
            },
            EventSpec::ToolUse {
                tool_use_id,
                name,
                input,
                stop,
            } => Event::ToolUse {
                tool_use_id: tool_use_id.clone(),
                name: name.clone(),
                input: input.clone(),
                stop: *stop,
            },
            EventSpec::Reasoning { text, signature } => Event::Reasoning {
                text: text.clone(),
                signature: signature.clone(),
            },
            EventSpec::ContextUsage(milli) => Event::ContextUsage {
                percentage: exact_float(*milli),
            },
            EventSpec::Metering { unit, usage } => Event::Metering {
                unit: unit.clone(),
                usage: exact_float(*usage),
            },
            EventSpec::TokenUsage([uncached, output, read, write]) => Event::TokenUsage {
                uncached_input_tokens: *uncached,
                output_tokens: *output,
                cache_read_input_tokens: *read,
                cache_write_input_tokens: *write,
            },
            EventSpec::MessageMetadata {
                conversation_id,
                utterance_id,
            } => Event::MessageMetadata {
                conversation_id: conversation_id.clone(),
                utterance_id: utterance_id.clone(),
            },
            EventSpec::InvalidState { reason, message } => Event::InvalidState {
                reason: reason.clone(),
                message: message.clone(),
            },
        }
    }
}

/// Header strings are length-prefixed with a `u16`; the service's are short. Keeping ours
/// short too means a failed encode is a real finding, not an input out of range.
fn header_text(s: &str) -> String {
    let mut end = s.len().min(512);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl FrameSpec {
    fn stream_error(&self) -> Option<StreamError> {
        match self {
            FrameSpec::Exception {
                exception_type,
                message,
                reason,
            } => Some(StreamError::Exception {
                exception_type: header_text(exception_type),
                message: message.clone(),
                reason: reason.clone(),
            }),
            FrameSpec::Error { code, message } => Some(StreamError::Service {
                code: header_text(code),
                message: header_text(message),
            }),
            FrameSpec::Event(_) | FrameSpec::Unknown { .. } => None,
        }
    }

    /// The frame's bytes, from the crate's own encoders.
    pub fn encode(&self) -> Bytes {
        match self {
            FrameSpec::Event(spec) => spec.event().to_frame(),
            FrameSpec::Unknown {
                event_type,
                payload,
            } => unknown_event_frame(&header_text(event_type), payload),
            FrameSpec::Exception { .. } | FrameSpec::Error { .. } => self
                .stream_error()
                .map(|e| e.to_frame())
                .unwrap_or_default(),
        }
    }

    /// What the decoder must make of this frame.
    pub fn expected(&self) -> Expected {
        match self {
            // A `metadataEvent` without `tokenUsage` would be skipped; ours always has it.
            FrameSpec::Event(spec) => Expected::Event(spec.event()),
            FrameSpec::Unknown { .. } => Expected::Ignored,
            FrameSpec::Exception { .. } | FrameSpec::Error { .. } => match self.stream_error() {
                Some(error) => Expected::Stop(error),
                None => Expected::Ignored,
            },
        }
    }
}
