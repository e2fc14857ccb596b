//! The Amazon Q service's request rules (protocol doc §2.3), as a pure validator.
//!
//! The simulator rejects exactly what this module rejects, and the translator's tests run
//! their output through it, so "passes against the simulator" means "satisfies the rules
//! we know the real service enforces". Each rule maps to the error the service answers
//! with ([`ViolationKind`]); where the real service's choice is unknown, the closest
//! documented one is used and said so next to the rule.
//!
//! Checks run in a fixed order (envelope, history shape, tool specs, tool pairing, tool
//! declarations, images, sizes) and the first violation wins.
//!
//! Cost matters: the simulator validates every request of a benchmark, so the checks
//! avoid allocation on the happy path and count characters only when byte lengths say a
//! limit might be crossed.

use crate::request::{
    AssistantResponseMessage, ChatMessage, ConversationState, GenerateAssistantResponseRequest,
    ToolResult, UserInputMessage,
};

mod content;
mod specs;

/// The service's size limits (chat-cli `consts.rs`, "internal undocumented service values").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Characters of one user message's `content`.
    pub max_user_message_chars: usize,
    /// Characters of one tool result (all its content blocks).
    pub max_tool_result_chars: usize,
    /// Characters of all text in the request: messages, tool uses, tool results, tool specs.
    pub max_total_chars: usize,
    /// Images in the whole request.
    pub max_images: usize,
    /// Decoded bytes of one image.
    pub max_image_bytes: usize,
    /// Items in `history`.
    pub max_history: usize,
    /// Characters of a tool name.
    pub max_tool_name_chars: usize,
    /// Characters of a tool description.
    pub max_tool_description_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_user_message_chars: 600_000,
            max_tool_result_chars: 800_000,
            max_total_chars: 800_000,
            max_images: 10,
            max_image_bytes: 10 * 1024 * 1024,
            max_history: 10_000,
            max_tool_name_chars: 64,
            max_tool_description_chars: 10_240,
        }
    }
}

/// A broken rule: which error the service answers with, and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {detail}", kind.message(), kind.reason().unwrap_or("no reason"))]
pub struct Violation {
    pub kind: ViolationKind,
    /// Human-readable, for test diagnostics and simulator logs; never sent as the
    /// service's `message` (the real service does not say this much).
    pub detail: String,
}

impl Violation {
    fn new(kind: ViolationKind, detail: impl Into<String>) -> Self {
        Violation {
            kind,
            detail: detail.into(),
        }
    }

    fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ViolationKind::Malformed, detail)
    }
}

/// The service's `ValidationException` flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// `400 {"message":"Improperly formed request.","reason":null}`.
    Malformed,
    /// `400 {"message":"Invalid tool use format.","reason":"REQUEST_BODY_INVALID"}`.
    InvalidToolSpec,
    /// `400` reason `TOOL_CONFIG_MISSING`: history uses a tool the request does not declare.
    ToolConfigMissing,
    /// `400 {"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}`.
    TooLong,
}

impl ViolationKind {
    /// The `message` of the service's error body.
    pub fn message(&self) -> &'static str {
        match self {
            // The service gives no distinct message for a missing tool config; only the
            // reason tells it apart.
            ViolationKind::Malformed | ViolationKind::ToolConfigMissing => {
                "Improperly formed request."
            }
            ViolationKind::InvalidToolSpec => "Invalid tool use format.",
            ViolationKind::TooLong => "Input is too long.",
        }
    }

    /// The `reason` of the service's error body (`null` for a plain malformed request).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ViolationKind::Malformed => None,
            ViolationKind::InvalidToolSpec => Some("REQUEST_BODY_INVALID"),
            ViolationKind::ToolConfigMissing => Some("TOOL_CONFIG_MISSING"),
            ViolationKind::TooLong => Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        }
    }
}

/// `chatTriggerType` values of the service model.
const CHAT_TRIGGER_TYPES: &[&str] = &["MANUAL", "DIAGNOSTIC", "INLINE_CHAT"];

/// `origin` values of the service model (`Origin` enum of the generated client).
const ORIGINS: &[&str] = &[
    "AI_EDITOR",
    "CHATBOT",
    "CLI",
    "CONSOLE",
    "DOCUMENTATION",
    "GITLAB",
    "IDE",
    "INLINE_CHAT",
    "KIRO_CLI",
    "KIRO_CONSOLE",
    "KIRO_WEB",
    "MARKETING",
    "MD",
    "MD_CE",
    "MD_IDE",
    "MOBILE",
    "OPENSEARCH_DASHBOARD",
    "Q_DEV_BEXT",
    "SAGE_MAKER",
    "SERVICE_INTERNAL",
    "SM_AI_STUDIO_IDE",
    "UNIFIED_SEARCH",
    "UNKNOWN",
];

/// Checks a parsed request against every known rule.
pub fn validate(req: &GenerateAssistantResponseRequest, limits: &Limits) -> Result<(), Violation> {
    let state = &req.conversation_state;
    check_envelope(state, limits)?;
    check_history_shape(state)?;
    for message in user_messages(state) {
        specs::check_tool_specs(message, limits)?;
    }
    check_tool_pairing(state)?;
    specs::check_tools_declared(state)?;
    content::check_images(state, limits)?;
    content::check_sizes(state, limits)
}

/// Parses a request body and validates it. A body that is not JSON or not shaped like a
/// request is [`ViolationKind::Malformed`] (the real service answers
/// `SerializationException`, which callers treat the same way).
pub fn validate_json(
    body: &[u8],
    limits: &Limits,
) -> Result<GenerateAssistantResponseRequest, Violation> {
    let req: GenerateAssistantResponseRequest = serde_json::from_slice(body)
        .map_err(|e| Violation::malformed(format!("body is not a request: {e}")))?;
    validate(&req, limits)?;
    Ok(req)
}

/// Every user message of the request: history items first, then the current message.
fn user_messages(state: &ConversationState) -> impl Iterator<Item = &UserInputMessage> {
    state
        .history
        .iter()
        .filter_map(|item| match item {
            ChatMessage::UserInputMessage(u) => Some(u),
            ChatMessage::AssistantResponseMessage(_) => None,
        })
        .chain(std::iter::once(&state.current_message.user_input_message))
}

fn tool_results(message: &UserInputMessage) -> &[ToolResult] {
    message
        .user_input_message_context
        .as_ref()
        .map_or(&[], |c| c.tool_results.as_slice())
}

fn check_envelope(state: &ConversationState, limits: &Limits) -> Result<(), Violation> {
    if state.conversation_id.is_empty() {
        return Err(Violation::malformed("conversationId is empty"));
    }
    if !CHAT_TRIGGER_TYPES.contains(&state.chat_trigger_type.as_str()) {
        return Err(Violation::malformed(format!(
            "chatTriggerType {:?} is not one of {CHAT_TRIGGER_TYPES:?}",
            state.chat_trigger_type
        )));
    }
    // chat-cli keeps history under this bound because longer ones are refused as too much
    // input; the service's exact answer is not documented, and "too long" is what a
    // gateway must treat it as (a client fault, never an account's).
    if state.history.len() > limits.max_history {
        return Err(Violation::new(
            ViolationKind::TooLong,
            format!(
                "history has {} items, more than {}",
                state.history.len(),
                limits.max_history
            ),
        ));
    }
    for message in user_messages(state) {
        if let Some(origin) = message.origin.as_deref()
            && !ORIGINS.contains(&origin)
        {
            return Err(Violation::malformed(format!(
                "origin {origin:?} is not a known Origin value"
            )));
        }
    }
    Ok(())
}

fn check_history_shape(state: &ConversationState) -> Result<(), Violation> {
    for (index, item) in state.history.iter().enumerate() {
        let user_expected = index % 2 == 0;
        match item {
            ChatMessage::UserInputMessage(_) if !user_expected => {
                return Err(Violation::malformed(format!(
                    "history[{index}] is a user message after a user message"
                )));
            }
            ChatMessage::AssistantResponseMessage(_) if user_expected => {
                return Err(Violation::malformed(if index == 0 {
                    "history starts with an assistant message".to_owned()
                } else {
                    format!("history[{index}] is an assistant message after an assistant message")
                }));
            }
            ChatMessage::AssistantResponseMessage(a) if a.content.is_empty() => {
                return Err(Violation::malformed(format!(
                    "history[{index}] is an assistant message with empty content"
                )));
            }
            ChatMessage::UserInputMessage(_) | ChatMessage::AssistantResponseMessage(_) => {}
        }
    }
    if state.history.len() % 2 == 1 {
        return Err(Violation::malformed(
            "history ends with a user message; the current message must follow an assistant one",
        ));
    }
    let current = &state.current_message.user_input_message;
    if current.content.is_empty() && tool_results(current).is_empty() && current.images.is_empty() {
        return Err(Violation::malformed(
            "current message has empty content, no toolResults and no images",
        ));
    }
    Ok(())
}

/// The assistant item right before history item `index` (or before the current message
/// when `index == history.len()`). Only meaningful once the history shape is checked.
fn preceding_assistant(
    state: &ConversationState,
    index: usize,
) -> Option<&AssistantResponseMessage> {
    match index.checked_sub(1).and_then(|i| state.history.get(i)) {
        Some(ChatMessage::AssistantResponseMessage(a)) => Some(a),
        Some(ChatMessage::UserInputMessage(_)) | None => None,
    }
}

/// The user message answering history item `index`: the next history item, or the
/// current message for the last one.
fn following_user(state: &ConversationState, index: usize) -> Option<&UserInputMessage> {
    match state.history.get(index + 1) {
        Some(ChatMessage::UserInputMessage(u)) => Some(u),
        Some(ChatMessage::AssistantResponseMessage(_)) => None,
        None => Some(&state.current_message.user_input_message),
    }
}

fn check_tool_pairing(state: &ConversationState) -> Result<(), Violation> {
    let mut tool_use_ids = std::collections::HashSet::new();
    for (index, item) in state.history.iter().enumerate() {
        match item {
            ChatMessage::UserInputMessage(user) => {
                let place = format!("history[{index}]");
                check_results_answer(
                    &place,
                    tool_results(user),
                    preceding_assistant(state, index),
                )?;
            }
            ChatMessage::AssistantResponseMessage(assistant) => {
                let answers = following_user(state, index).map_or(&[][..], tool_results);
                for tool_use in &assistant.tool_uses {
                    if !tool_use_ids.insert(tool_use.tool_use_id.as_str()) {
                        return Err(Violation::malformed(format!(
                            "toolUseId {:?} appears twice",
                            tool_use.tool_use_id
                        )));
                    }
                    if !answers
                        .iter()
                        .any(|r| r.tool_use_id == tool_use.tool_use_id)
                    {
                        return Err(Violation::malformed(format!(
                            "toolUse {:?} in history[{index}] has no toolResult in the next user message",
                            tool_use.tool_use_id
                        )));
                    }
                }
            }
        }
    }
    let current = &state.current_message.user_input_message;
    check_results_answer(
        "currentMessage",
        tool_results(current),
        preceding_assistant(state, state.history.len()),
    )
}

/// Every result must answer a tool use of the assistant message right before it, once.
fn check_results_answer(
    place: &str,
    results: &[ToolResult],
    previous: Option<&AssistantResponseMessage>,
) -> Result<(), Violation> {
    if results.is_empty() {
        return Ok(());
    }
    let asked = previous.map_or(&[][..], |a| a.tool_uses.as_slice());
    if asked.is_empty() {
        return Err(Violation::malformed(format!(
            "{place} carries toolResults but no assistant message with toolUses precedes it"
        )));
    }
    for (i, result) in results.iter().enumerate() {
        if results[..i]
            .iter()
            .any(|r| r.tool_use_id == result.tool_use_id)
        {
            return Err(Violation::malformed(format!(
                "{place} answers toolUseId {:?} twice",
                result.tool_use_id
            )));
        }
        if !asked.iter().any(|u| u.tool_use_id == result.tool_use_id) {
            return Err(Violation::malformed(format!(
                "{place} has a toolResult for {:?}, which the preceding assistant message did not use",
                result.tool_use_id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
