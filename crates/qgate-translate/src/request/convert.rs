//! Anthropic messages → a flat list of [`Turn`]s, block by block, before any repair.
//!
//! `role:"system"` entries are taken out here (they go to the system section, see
//! [`super::system`]); everything else becomes a user or assistant turn holding exactly what
//! the service can carry: text, images, tool results (text only; their images are lifted
//! to the turn) and tool calls (names already mapped to upstream names).

use super::{Repair, TranslateError, images, tools};
use crate::tool_names::ToolNameMapBuilder;
use qgate_amazonq::{Image, ToolUse};
use qgate_anthropic::{ContentBlock, Message, MessageContent, Role, ToolResultContent};
use serde_json::Value;

/// A user turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct UserTurn {
    pub texts: Vec<String>,
    pub images: Vec<Image>,
    pub results: Vec<PendingResult>,
}

impl UserTurn {
    pub fn text(text: &str) -> Self {
        Self {
            texts: vec![text.to_owned()],
            ..Self::default()
        }
    }
}

/// A tool result as the client sent it, before pairing.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PendingResult {
    pub id: String,
    pub text: String,
    pub is_error: bool,
    /// Images were lifted out of it (so empty text does not mean "no output").
    pub had_images: bool,
}

/// An assistant turn: text parts (thinking already wrapped in tags) and tool calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct AssistantTurn {
    pub parts: Vec<String>,
    pub tool_uses: Vec<ToolUse>,
}

impl AssistantTurn {
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.trim().is_empty()) && self.tool_uses.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Turn {
    User(UserTurn),
    Assistant(AssistantTurn),
}

/// The conversation split into system text and turns.
#[derive(Debug, Default)]
pub(super) struct Converted {
    /// Text of every `role:"system"` entry, in order.
    pub system_entries: Vec<String>,
    pub turns: Vec<Turn>,
}

pub(super) fn convert_messages(
    messages: &[Message],
    names: &mut ToolNameMapBuilder,
    repairs: &mut Vec<Repair>,
) -> Result<Converted, TranslateError> {
    let mut converted = Converted::default();
    for (index, message) in messages.iter().enumerate() {
        match message.role {
            Role::System => converted.system_entries.push(system_text(&message.content)),
            Role::User => {
                let turn = user_turn(&message.content, index, repairs)?;
                converted.turns.push(Turn::User(turn));
            }
            Role::Assistant => {
                let turn = assistant_turn(&message.content, names, repairs);
                converted.turns.push(Turn::Assistant(turn));
            }
        }
    }
    Ok(converted)
}

fn system_text(content: &MessageContent) -> String {
    match content {
        MessageContent::Text(text) => text.clone(),
        MessageContent::Blocks(blocks) => blocks
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn user_turn(
    content: &MessageContent,
    index: usize,
    repairs: &mut Vec<Repair>,
) -> Result<UserTurn, TranslateError> {
    let mut turn = UserTurn::default();
    let blocks = match content {
        MessageContent::Text(text) => {
            turn.texts.push(text.clone());
            return Ok(turn);
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    for block in blocks {
        match block {
            ContentBlock::Text { text } => turn.texts.push(text.clone()),
            ContentBlock::Image { source } => turn.images.push(images::convert(source, index)?),
            ContentBlock::Document { source, title } => {
                if let Some(text) = document_text(source.as_ref(), title.as_deref(), repairs) {
                    turn.texts.push(text);
                }
            }
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let result = tool_result(
                    tool_use_id,
                    content.as_ref(),
                    *is_error,
                    index,
                    &mut turn,
                    repairs,
                )?;
                turn.results.push(result);
            }
            ContentBlock::ToolUse { .. } => unsupported(repairs, "tool_use in a user message"),
            ContentBlock::Thinking { .. } => unsupported(repairs, "thinking in a user message"),
            ContentBlock::RedactedThinking { .. } => {
                unsupported(repairs, "redacted_thinking in a user message")
            }
            ContentBlock::Unknown => unsupported(repairs, "unknown"),
        }
    }
    Ok(turn)
}

fn tool_result(
    id: &str,
    content: Option<&ToolResultContent>,
    is_error: Option<bool>,
    index: usize,
    turn: &mut UserTurn,
    repairs: &mut Vec<Repair>,
) -> Result<PendingResult, TranslateError> {
    let mut texts: Vec<String> = Vec::new();
    let mut had_images = false;
    match content {
        None => {}
        Some(ToolResultContent::Text(text)) => texts.push(text.clone()),
        Some(ToolResultContent::Blocks(blocks)) => {
            for block in blocks {
                match block {
                    ContentBlock::Text { text } => texts.push(text.clone()),
                    // `toolResults[].content` is text-only upstream; the message can carry
                    // images, so the picture still reaches the model next to the result.
                    ContentBlock::Image { source } => {
                        turn.images.push(images::convert(source, index)?);
                        had_images = true;
                        repairs.push(Repair::LiftedToolResultImage { id: id.to_owned() });
                    }
                    ContentBlock::Document { source, title } => {
                        if let Some(text) =
                            document_text(source.as_ref(), title.as_deref(), repairs)
                        {
                            texts.push(text);
                        }
                    }
                    ContentBlock::ToolUse { .. }
                    | ContentBlock::ToolResult { .. }
                    | ContentBlock::Thinking { .. }
                    | ContentBlock::RedactedThinking { .. }
                    | ContentBlock::Unknown => {
                        unsupported(repairs, "non-text block in a tool_result")
                    }
                }
            }
        }
    }
    Ok(PendingResult {
        id: id.to_owned(),
        text: texts.join("\n"),
        is_error: is_error.unwrap_or(false),
        had_images,
    })
}

fn assistant_turn(
    content: &MessageContent,
    names: &mut ToolNameMapBuilder,
    repairs: &mut Vec<Repair>,
) -> AssistantTurn {
    let mut turn = AssistantTurn::default();
    let blocks = match content {
        MessageContent::Text(text) => {
            turn.parts.push(text.clone());
            return turn;
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    for block in blocks {
        match block {
            ContentBlock::Text { text } => turn.parts.push(text.clone()),
            // The model reads its earlier reasoning in the same tagged form it writes it
            // (the response side parses `<thinking>` out of the text stream).
            ContentBlock::Thinking { thinking, .. } => {
                if !thinking.trim().is_empty() {
                    turn.parts
                        .push(format!("<thinking>\n{thinking}\n</thinking>"));
                }
            }
            // Encrypted; nothing the upstream model could read.
            ContentBlock::RedactedThinking { .. } => {}
            ContentBlock::ToolUse { id, name, input } => {
                let name = tools::upstream_name(names, name, repairs);
                let input = tool_input(input, id, repairs);
                turn.tool_uses.push(ToolUse {
                    tool_use_id: id.clone(),
                    name,
                    input,
                });
            }
            ContentBlock::Image { .. } => unsupported(repairs, "image in an assistant message"),
            ContentBlock::Document { .. } => {
                unsupported(repairs, "document in an assistant message")
            }
            ContentBlock::ToolResult { .. } => {
                unsupported(repairs, "tool_result in an assistant message")
            }
            ContentBlock::Unknown => unsupported(repairs, "unknown"),
        }
    }
    turn
}

/// Tool inputs are documents that must be JSON objects upstream.
fn tool_input(input: &Value, id: &str, repairs: &mut Vec<Repair>) -> Value {
    if input.is_object() {
        return input.clone();
    }
    repairs.push(Repair::NormalisedToolInput { id: id.to_owned() });
    match input {
        Value::Null => Value::Object(serde_json::Map::new()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => serde_json::json!({ "input": text }),
        },
        other => serde_json::json!({ "input": other }),
    }
}

/// A `document` block with a plain-text source becomes text; others cannot be carried.
fn document_text(
    source: Option<&Value>,
    title: Option<&str>,
    repairs: &mut Vec<Repair>,
) -> Option<String> {
    let source = source.and_then(Value::as_object);
    let is_text = source.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("text");
    let data = source.and_then(|s| s.get("data")).and_then(Value::as_str);
    match (is_text, data) {
        (true, Some(data)) => {
            repairs.push(Repair::InlinedDocument);
            Some(match title {
                Some(title) if !title.trim().is_empty() => format!("{title}\n\n{data}"),
                _ => data.to_owned(),
            })
        }
        _ => {
            unsupported(repairs, "document");
            None
        }
    }
}

fn unsupported(repairs: &mut Vec<Repair>, kind: &'static str) {
    repairs.push(Repair::DroppedUnsupportedBlock { kind });
}
