//! Content rules: images (count, format, base64, decoded size) and text sizes (per user
//! message, per tool result, whole request).
//!
//! Sizes are measured in bytes first: a string's byte length bounds its character count,
//! so characters are only counted when the byte measure crosses a limit.

use super::{Limits, Violation, ViolationKind, user_messages};
use crate::request::{ChatMessage, ConversationState, Tool, ToolResult, ToolResultContent};
use serde_json::Value;

const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];

pub(super) fn check_images(state: &ConversationState, limits: &Limits) -> Result<(), Violation> {
    let count: usize = user_messages(state).map(|m| m.images.len()).sum();
    if count > limits.max_images {
        return Err(Violation::malformed(format!(
            "request carries {count} images, more than {}",
            limits.max_images
        )));
    }
    for (i, image) in user_messages(state).flat_map(|m| &m.images).enumerate() {
        if !IMAGE_FORMATS.contains(&image.format.as_str()) {
            return Err(Violation::malformed(format!(
                "image #{i} has format {:?}, not one of {IMAGE_FORMATS:?}",
                image.format
            )));
        }
        let Some(decoded) = base64_decoded_len(&image.source.bytes) else {
            return Err(Violation::malformed(format!(
                "image #{i} bytes are not valid base64"
            )));
        };
        if decoded > limits.max_image_bytes {
            return Err(Violation::new(
                ViolationKind::TooLong,
                format!(
                    "image #{i} is {decoded} bytes, more than {}",
                    limits.max_image_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// The decoded length of standard-alphabet base64, `None` when it is not valid base64.
/// Padding is optional, as in the JVM decoder the service's blobs go through.
pub(super) fn base64_decoded_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let unpadded = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="))
        .unwrap_or(bytes);
    let padding = bytes.len() - unpadded.len();
    if padding > 0 && !bytes.len().is_multiple_of(4) {
        return None;
    }
    if !unpadded
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
    {
        return None;
    }
    let whole_groups = unpadded.len() / 4;
    let tail = match unpadded.len() % 4 {
        0 => 0,
        // A single leftover character cannot encode a byte.
        1 => return None,
        2 => 1,
        _ => 2,
    };
    Some(whole_groups * 3 + tail)
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Bytes,
    Chars,
}

impl Unit {
    fn of(self, s: &str) -> usize {
        match self {
            Unit::Bytes => s.len(),
            Unit::Chars => s.chars().count(),
        }
    }
}

/// The size in characters when it exceeds `limit`, `None` when within it.
fn over_limit(limit: usize, size_in: impl Fn(Unit) -> usize) -> Option<usize> {
    if size_in(Unit::Bytes) <= limit {
        return None;
    }
    let chars = size_in(Unit::Chars);
    (chars > limit).then_some(chars)
}

pub(super) fn check_sizes(state: &ConversationState, limits: &Limits) -> Result<(), Violation> {
    for message in user_messages(state) {
        if let Some(chars) = over_limit(limits.max_user_message_chars, |u| u.of(&message.content)) {
            return Err(Violation::new(
                ViolationKind::TooLong,
                format!(
                    "a user message has {chars} characters, more than {}",
                    limits.max_user_message_chars
                ),
            ));
        }
        let results = message
            .user_input_message_context
            .as_ref()
            .map_or(&[][..], |c| c.tool_results.as_slice());
        for result in results {
            if let Some(chars) =
                over_limit(limits.max_tool_result_chars, |u| result_size(result, u))
            {
                return Err(Violation::new(
                    ViolationKind::TooLong,
                    format!(
                        "toolResult {:?} has {chars} characters, more than {}",
                        result.tool_use_id, limits.max_tool_result_chars
                    ),
                ));
            }
        }
    }
    if let Some(chars) = over_limit(limits.max_total_chars, |u| total_size(state, u)) {
        return Err(Violation::new(
            ViolationKind::TooLong,
            format!(
                "the request holds {chars} characters of text, more than {}",
                limits.max_total_chars
            ),
        ));
    }
    Ok(())
}

fn result_size(result: &ToolResult, unit: Unit) -> usize {
    result
        .content
        .iter()
        .map(|block| match block {
            ToolResultContent::Text(text) => unit.of(text),
            ToolResultContent::Json(value) => json_size(value, unit),
        })
        .sum()
}

fn tool_spec_size(tool: &Tool, unit: Unit) -> usize {
    let spec = &tool.tool_specification;
    unit.of(&spec.name) + unit.of(&spec.description) + json_size(&spec.input_schema.json, unit)
}

fn total_size(state: &ConversationState, unit: Unit) -> usize {
    let users: usize = user_messages(state)
        .map(|m| {
            let context = m.user_input_message_context.as_ref();
            let results: usize = context.map_or(0, |c| {
                c.tool_results.iter().map(|r| result_size(r, unit)).sum()
            });
            let specs: usize =
                context.map_or(0, |c| c.tools.iter().map(|t| tool_spec_size(t, unit)).sum());
            unit.of(&m.content) + results + specs
        })
        .sum();
    let assistants: usize = state
        .history
        .iter()
        .map(|item| match item {
            ChatMessage::AssistantResponseMessage(a) => {
                unit.of(&a.content)
                    + a.tool_uses
                        .iter()
                        .map(|t| unit.of(&t.name) + json_size(&t.input, unit))
                        .sum::<usize>()
            }
            ChatMessage::UserInputMessage(_) => 0,
        })
        .sum();
    users + assistants
}

/// Roughly the length of `value` serialized compactly, without serializing it. Escapes are
/// not counted: the limit is about text the model reads, not JSON syntax.
fn json_size(value: &Value, unit: Unit) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => unit.of(s) + 2,
        Value::Array(items) => {
            2 + items.len() + items.iter().map(|v| json_size(v, unit)).sum::<usize>()
        }
        Value::Object(map) => {
            2 + map.len()
                + map
                    .iter()
                    .map(|(k, v)| unit.of(k) + 3 + json_size(v, unit))
                    .sum::<usize>()
        }
    }
}
