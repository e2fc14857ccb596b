//! Typed events of the `GenerateAssistantResponse` response stream, and the exception /
//! error frames it may carry.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A decoded, recognised event. Event types the translator has no use for
/// (`codeReferenceEvent`, `followupPromptEvent`, ...) are skipped by the decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Q-CLI dialect only, first in the stream.
    InitialResponse { conversation_id: Option<String> },
    /// A text delta.
    AssistantResponse { content: String },
    /// A fragment of a tool call; fragments of one id are concatenated until `stop`.
    ToolUse {
        tool_use_id: String,
        name: String,
        input: String,
        stop: bool,
    },
    /// Native reasoning content (official model; thinking usually arrives as tags).
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    /// Kiro-specific: how full the context window is, 0–100.
    ContextUsage { percentage: f64 },
    /// Credits used.
    Metering { unit: Option<String>, usage: f64 },
    /// Token usage from `metadataEvent.tokenUsage`.
    TokenUsage {
        uncached_input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        cache_read_input_tokens: Option<u64>,
        cache_write_input_tokens: Option<u64>,
    },
    /// `messageMetadataEvent`.
    MessageMetadata {
        conversation_id: Option<String>,
        utterance_id: Option<String>,
    },
    /// `invalidStateEvent`: the service could not continue.
    InvalidState { reason: String, message: String },
}

/// An in-band failure: an `exception` frame (`:exception-type`) or an `error` frame
/// (`:error-code`), received after the HTTP 200.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamError {
    #[error("upstream exception {exception_type}: {message}")]
    Exception {
        exception_type: String,
        message: String,
        reason: Option<String>,
    },
    #[error("upstream error frame {code}: {message}")]
    Service { code: String, message: String },
}

impl StreamError {
    /// `ContentLengthExceededException`: the output budget ran out; not a failure.
    pub fn is_output_limit(&self) -> bool {
        matches!(self, StreamError::Exception { exception_type, .. }
            if exception_type == "ContentLengthExceededException")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssistantPayload {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUsePayload {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    stop: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningPayload {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContextUsagePayload {
    #[serde(default)]
    context_usage_percentage: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeteringPayload {
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    usage: f64,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct TokenUsagePayload {
    #[serde(default)]
    uncached_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataPayload {
    #[serde(default)]
    token_usage: Option<TokenUsagePayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationPayload {
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    utterance_id: Option<String>,
}

#[derive(Deserialize)]
struct InvalidStatePayload {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The text of an `assistantResponseEvent` payload of exactly the form
/// `{"content":"..."}` whose string needs no unescaping (no `"`, `\` or control
/// characters) — what nearly every text event is. Anything else is `None` and goes
/// through serde, which reads such a payload to the same string: the derived reader
/// spent ~1 k instructions on each event, 7 % of a streamed request (docs/benchmarks.md,
/// sixth round).
fn plain_content(payload: &[u8]) -> Option<&str> {
    let inner = payload
        .strip_prefix(br#"{"content":""#)?
        .strip_suffix(br#""}"#)?;
    // A fold, not `any`: without the early exit the compiler checks 32 bytes at a time.
    let needs_unescaping = inner.iter().fold(false, |found, &b| {
        found | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if needs_unescaping {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// Why a recognised event's payload could not be read.
pub type PayloadError = serde_json::Error;

impl Event {
    /// Decodes the payload of an `event` frame. `Ok(None)` for event types we ignore.
    pub fn from_payload(event_type: &str, payload: &[u8]) -> Result<Option<Event>, PayloadError> {
        let ev = match event_type {
            "assistantResponseEvent" => {
                let content = match plain_content(payload) {
                    Some(content) => content.to_owned(),
                    None => serde_json::from_slice::<AssistantPayload>(payload)?
                        .content
                        .unwrap_or_default(),
                };
                Event::AssistantResponse { content }
            }
            "toolUseEvent" => {
                let p: ToolUsePayload = serde_json::from_slice(payload)?;
                let input = match p.input {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s,
                    // Tolerated: some captures carry the input as an object.
                    Some(other) => other.to_string(),
                };
                Event::ToolUse {
                    tool_use_id: p.tool_use_id,
                    name: p.name,
                    input,
                    stop: p.stop.unwrap_or(false),
                }
            }
            "reasoningContentEvent" => {
                let p: ReasoningPayload = serde_json::from_slice(payload)?;
                Event::Reasoning {
                    text: p.text.unwrap_or_default(),
                    signature: p.signature,
                }
            }
            "contextUsageEvent" => {
                let p: ContextUsagePayload = serde_json::from_slice(payload)?;
                Event::ContextUsage {
                    percentage: p.context_usage_percentage,
                }
            }
            "meteringEvent" => {
                let p: MeteringPayload = serde_json::from_slice(payload)?;
                Event::Metering {
                    unit: p.unit,
                    usage: p.usage,
                }
            }
            "metadataEvent" => {
                let p: MetadataPayload = serde_json::from_slice(payload)?;
                let Some(u) = p.token_usage else {
                    return Ok(None);
                };
                Event::TokenUsage {
                    uncached_input_tokens: u.uncached_input_tokens,
                    output_tokens: u.output_tokens,
                    cache_read_input_tokens: u.cache_read_input_tokens,
                    cache_write_input_tokens: u.cache_write_input_tokens,
                }
            }
            "messageMetadataEvent" => {
                let p: ConversationPayload = serde_json::from_slice(payload)?;
                Event::MessageMetadata {
                    conversation_id: p.conversation_id,
                    utterance_id: p.utterance_id,
                }
            }
            "initial-response" => {
                let p: ConversationPayload =
                    serde_json::from_slice(payload).unwrap_or(ConversationPayload {
                        conversation_id: None,
                        utterance_id: None,
                    });
                Event::InitialResponse {
                    conversation_id: p.conversation_id,
                }
            }
            "invalidStateEvent" => {
                let p: InvalidStatePayload = serde_json::from_slice(payload)?;
                Event::InvalidState {
                    reason: p.reason.unwrap_or_default(),
                    message: p.message.unwrap_or_default(),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(ev))
    }

    /// The `:event-type` header value of this event.
    pub const fn event_type(&self) -> &'static str {
        match self {
            Event::InitialResponse { .. } => "initial-response",
            Event::AssistantResponse { .. } => "assistantResponseEvent",
            Event::ToolUse { .. } => "toolUseEvent",
            Event::Reasoning { .. } => "reasoningContentEvent",
            Event::ContextUsage { .. } => "contextUsageEvent",
            Event::Metering { .. } => "meteringEvent",
            Event::TokenUsage { .. } => "metadataEvent",
            Event::MessageMetadata { .. } => "messageMetadataEvent",
            Event::InvalidState { .. } => "invalidStateEvent",
        }
    }

    /// The JSON payload the service sends for this event.
    pub fn payload(&self) -> Value {
        match self {
            Event::InitialResponse { conversation_id } => {
                json!({"conversationId": conversation_id})
            }
            Event::AssistantResponse { content } => json!({"content": content}),
            Event::ToolUse {
                tool_use_id,
                name,
                input,
                stop,
            } => {
                let mut v = json!({"toolUseId": tool_use_id, "name": name, "input": input});
                if *stop {
                    v["stop"] = Value::Bool(true);
                }
                v
            }
            Event::Reasoning { text, signature } => json!({"text": text, "signature": signature}),
            Event::ContextUsage { percentage } => json!({"contextUsagePercentage": percentage}),
            Event::Metering { unit, usage } => {
                json!({"unit": unit, "unitPlural": unit.as_ref().map(|u| format!("{u}s")), "usage": usage})
            }
            Event::TokenUsage {
                uncached_input_tokens,
                output_tokens,
                cache_read_input_tokens,
                cache_write_input_tokens,
            } => json!({"tokenUsage": TokenUsagePayload {
                uncached_input_tokens: *uncached_input_tokens,
                output_tokens: *output_tokens,
                cache_read_input_tokens: *cache_read_input_tokens,
                cache_write_input_tokens: *cache_write_input_tokens,
            }}),
            Event::MessageMetadata {
                conversation_id,
                utterance_id,
            } => json!({"conversationId": conversation_id, "utteranceId": utterance_id}),
            Event::InvalidState { reason, message } => {
                json!({"reason": reason, "message": message})
            }
        }
    }

    /// This event as one CRC-valid event-stream frame.
    pub fn to_frame(&self) -> Bytes {
        let payload = serde_json::to_vec(&self.payload()).unwrap_or_default();
        crate::codec::encode_event_frame(self.event_type(), &payload)
    }
}

impl StreamError {
    /// This error as one CRC-valid frame (`exception` or `error` message type).
    pub fn to_frame(&self) -> Bytes {
        match self {
            StreamError::Exception {
                exception_type,
                message,
                reason,
            } => {
                let mut v = json!({"message": message});
                if let Some(r) = reason {
                    v["reason"] = Value::String(r.clone());
                }
                crate::codec::encode_exception_frame(
                    exception_type,
                    &serde_json::to_vec(&v).unwrap_or_default(),
                )
            }
            StreamError::Service { code, message } => {
                crate::codec::encode_error_frame(code, message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn through_serde(payload: &[u8]) -> Option<String> {
        serde_json::from_slice::<AssistantPayload>(payload)
            .ok()
            .map(|p| p.content.unwrap_or_default())
    }

    #[test]
    fn plain_text_events_are_read_directly_and_others_left_to_serde() {
        assert_eq!(
            plain_content(br#"{"content":"Hello, world"}"#),
            Some("Hello, world")
        );
        assert_eq!(plain_content(br#"{"content":""}"#), Some(""));
        assert_eq!(
            plain_content("{\"content\":\"caf\u{e9} \u{1F600}\"}".as_bytes()),
            Some("caf\u{e9} \u{1F600}")
        );
        // Escapes, other fields, whitespace, null: serde's.
        assert_eq!(plain_content(br#"{"content":"a\nb"}"#), None);
        assert_eq!(plain_content(br#"{"content":"x","modelId":"m"}"#), None);
        assert_eq!(plain_content(br#"{ "content":"x"}"#), None);
        assert_eq!(plain_content(br#"{"content":null}"#), None);
        // Not JSON (a raw control character, a quote inside, invalid UTF-8): serde's
        // verdict, an error.
        assert_eq!(plain_content(b"{\"content\":\"a\x01b\"}"), None);
        assert_eq!(plain_content(br#"{"content":"a"b"}"#), None);
        assert_eq!(plain_content(b"{\"content\":\"\xff\"}"), None);
        assert!(Event::from_payload("assistantResponseEvent", b"{\"content\":\"\xff\"}").is_err());
    }

    proptest! {
        /// Whatever the text, the event reads as serde reads its JSON encoding.
        #[test]
        fn any_text_event_reads_as_serde_reads_it(text in any::<String>(), escaped in r#"["\\\x00-\x1fa-z\x7f é]{0,12}"#) {
            for text in [text, escaped] {
                let payload = serde_json::to_vec(&serde_json::json!({ "content": text })).unwrap();
                let ev = Event::from_payload("assistantResponseEvent", &payload).unwrap();
                prop_assert_eq!(ev, Some(Event::AssistantResponse { content: text.clone() }));
            }
        }

        /// On any bytes inside the frame's JSON shell, the direct reading agrees with serde
        /// whenever it answers, and events read the same (or fail alike) either way.
        #[test]
        fn the_direct_reading_never_disagrees_with_serde(inner in prop::collection::vec(any::<u8>(), 0..24)) {
            let mut payload = br#"{"content":""#.to_vec();
            payload.extend_from_slice(&inner);
            payload.extend_from_slice(br#""}"#);
            if let Some(direct) = plain_content(&payload) {
                prop_assert_eq!(Some(direct.to_owned()), through_serde(&payload));
            }
            let ours = Event::from_payload("assistantResponseEvent", &payload).ok().flatten();
            let theirs = through_serde(&payload).map(|content| Event::AssistantResponse { content });
            prop_assert_eq!(ours, theirs);
        }
    }
}
