//! Input-token estimate over a *translated* Amazon Q request: what the model actually
//! reads, including the repairs and the system pair the translator added, so the number
//! tracks the upstream context usage that calibrates it.

use super::estimate_milli;
use qgate_amazonq::{
    AssistantResponseMessage, ChatMessage, GenerateAssistantResponseRequest, Tool,
    ToolResultContent, UserInputMessage,
};
use qgate_anthropic::recent::Recent;
use serde_json::Value;
use std::cell::RefCell;

/// Fixed cost of one image. Anthropic bills `width × height / 750` tokens, capped near
/// 1 600 for the largest images the API keeps; the bytes are not decoded here, so every
/// image is charged as a large one.
pub const IMAGE_TOKENS: u64 = 1_600;

/// Role markers and separators the model sees around each message.
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// Framing of one tool definition (name/description/schema wrappers).
pub const TOOL_OVERHEAD_TOKENS: u64 = 8;

/// Texts at least this long have their estimate remembered per thread, by their exact
/// bytes: a client sends the whole conversation on every turn, so without this each turn
/// estimated every earlier message again — at ~12–20 instructions a byte, the costliest
/// of the passes a request's body gets (docs/benchmarks.md, twelfth round). Shorter texts
/// cost less to estimate than to look up.
const REMEMBER_FROM: usize = 1024;
/// Texts remembered per thread, and their bytes together; least recently used out first.
const MAX_REMEMBERED: usize = 256;
const MAX_REMEMBERED_BYTES: usize = 1024 * 1024;

thread_local! {
    static ESTIMATES: RefCell<Recent<Box<str>, u64>> =
        const { RefCell::new(Recent::new(MAX_REMEMBERED, MAX_REMEMBERED_BYTES)) };
}

/// [`estimate_milli`] of a message's text, remembered for long texts: the same answer,
/// found by comparing bytes (never a hash) when the text was estimated before.
fn text_milli(text: &str) -> u64 {
    if text.len() < REMEMBER_FROM {
        return estimate_milli(text);
    }
    ESTIMATES.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some(&milli) = cache.get(|kept| **kept == *text) {
            return milli;
        }
        let milli = estimate_milli(text);
        cache.insert(text.into(), milli, text.len());
        milli
    })
}

/// Estimated input tokens of a translated request: every message's content, tool
/// specifications (name, description, schema JSON), tool results, tool uses (name and
/// input JSON), a per-message overhead and a fixed cost per image.
pub fn estimate_request(body: &GenerateAssistantResponseRequest) -> u64 {
    estimate_request_with(body, KnownTools::default())
}

/// The estimate of the first `count` tool specifications of the current message, worked
/// out before (the translator remembers it for a tool list every request repeats).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KnownTools {
    pub count: usize,
    /// [`tool_specs_milli`] of those specifications.
    pub milli: u64,
}

/// [`estimate_request`], taking the estimate of the current message's first tools as
/// given.
pub(crate) fn estimate_request_with(
    body: &GenerateAssistantResponseRequest,
    known: KnownTools,
) -> u64 {
    let state = &body.conversation_state;
    let mut milli: u64 = 0;
    let mut buffer = Vec::new();
    for item in &state.history {
        milli += match item {
            ChatMessage::UserInputMessage(user) => {
                user_milli(user, KnownTools::default(), &mut buffer)
            }
            ChatMessage::AssistantResponseMessage(assistant) => {
                assistant_milli(assistant, &mut buffer)
            }
        };
    }
    milli += user_milli(
        &state.current_message.user_input_message,
        known,
        &mut buffer,
    );
    milli.div_ceil(1000)
}

/// Thousandths of a token for tool specifications: framing, name, description, schema.
pub(crate) fn tool_specs_milli(specs: &[Tool]) -> u64 {
    let mut buffer = Vec::new();
    specs.iter().map(|tool| tool_milli(tool, &mut buffer)).sum()
}

fn tool_milli(tool: &Tool, buffer: &mut Vec<u8>) -> u64 {
    let spec = &tool.tool_specification;
    TOOL_OVERHEAD_TOKENS * 1000
        + estimate_milli(&spec.name)
        + estimate_milli(&spec.description)
        + json_milli(&spec.input_schema.json, buffer)
}

fn user_milli(user: &UserInputMessage, known: KnownTools, buffer: &mut Vec<u8>) -> u64 {
    let mut milli = MESSAGE_OVERHEAD_TOKENS * 1000 + text_milli(&user.content);
    milli += user.images.len() as u64 * IMAGE_TOKENS * 1000;
    let Some(context) = &user.user_input_message_context else {
        return milli;
    };
    // `known` describes a prefix of these tools (never more than there are).
    let rest = match context.tools.get(known.count..) {
        Some(rest) => {
            milli += known.milli;
            rest
        }
        None => &context.tools[..],
    };
    for tool in rest {
        milli += tool_milli(tool, buffer);
    }
    for result in &context.tool_results {
        milli += MESSAGE_OVERHEAD_TOKENS * 1000;
        for block in &result.content {
            milli += match block {
                ToolResultContent::Text(text) => text_milli(text),
                ToolResultContent::Json(value) => json_milli(value, buffer),
            };
        }
    }
    milli
}

fn assistant_milli(assistant: &AssistantResponseMessage, buffer: &mut Vec<u8>) -> u64 {
    let mut milli = MESSAGE_OVERHEAD_TOKENS * 1000 + text_milli(&assistant.content);
    for tool_use in &assistant.tool_uses {
        milli += MESSAGE_OVERHEAD_TOKENS * 1000 + estimate_milli(&tool_use.name);
        milli += json_milli(&tool_use.input, buffer);
    }
    milli
}

/// Tokens of a JSON value as the model reads it: its compact serialisation, which is
/// what the weights were fitted on (structure merges into few tokens, `":"` and `"},{"`).
fn json_milli(value: &Value, buffer: &mut Vec<u8>) -> u64 {
    buffer.clear();
    match serde_json::to_writer(&mut *buffer, value) {
        Ok(()) => estimate_milli(&String::from_utf8_lossy(buffer)),
        // Serialising a `Value` into memory cannot fail; an estimate of zero is still a
        // usable answer if it ever did.
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_estimate_is_the_estimate_of_exactly_that_text() {
        // Same length, different texts: one long word, many short ones, digits.
        let texts = [
            "a".repeat(3000),
            "a ".repeat(1500),
            "1".repeat(3000),
            format!("{}é", "a ".repeat(1499)),
        ];
        for round in 0..2 {
            for text in &texts {
                assert_eq!(
                    text_milli(text),
                    estimate_milli(text),
                    "round {round}: {:?}…",
                    &text[..8]
                );
            }
        }
        let distinct: std::collections::HashSet<u64> =
            texts.iter().map(|t| text_milli(t)).collect();
        assert_eq!(distinct.len(), texts.len(), "the texts are told apart");
        // Short texts are estimated, not remembered.
        let before = ESTIMATES.with(|c| c.borrow().len());
        assert_eq!(text_milli("short text"), estimate_milli("short text"));
        assert_eq!(ESTIMATES.with(|c| c.borrow().len()), before);
    }

    #[test]
    fn remembered_estimates_stay_within_their_bounds() {
        for i in 0..600 {
            let text = format!("{i} {}", "word ".repeat(1000));
            assert_eq!(text_milli(&text), estimate_milli(&text));
            ESTIMATES.with(|c| {
                let c = c.borrow();
                assert!(c.len() <= MAX_REMEMBERED);
                assert!(c.bytes() <= MAX_REMEMBERED_BYTES);
            });
        }
    }
}
