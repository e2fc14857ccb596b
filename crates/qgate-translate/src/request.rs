//! Anthropic `MessagesRequest` → Amazon Q `GenerateAssistantResponse` body.
//!
//! The output must never be one the service rejects (`400 Improperly formed request` in
//! long Claude Code sessions is the top complaint against every peer gateway), so the
//! translator *repairs* rather than forwards: it converts blocks ([`convert`]), collects
//! the system prompt and thinking directive into a leading history pair ([`system`]),
//! fixes the turn structure and tool pairing ([`normalize`]), cleans tool definitions
//! ([`tools`]) and records every fix as a [`Repair`]. Only what cannot be repaired without
//! guessing the client's intent (no user message, remote or corrupt images) is a
//! [`TranslateError`].
//!
//! Fields with no wire equivalent (`max_tokens`, `temperature`, `top_p`, `top_k`,
//! `stop_sequences`, `tool_choice`, `metadata` apart from the session id,
//! `context_management`, `output_config`, `cache_control`) are accepted and ignored.

mod convert;
mod error;
mod images;
mod normalize;
mod repair;
mod system;
mod tools;

pub use error::TranslateError;
pub use repair::Repair;

use crate::ToolNameMap;
use crate::tokens;
use convert::{PendingResult, Turn, UserTurn};
use qgate_amazonq::{
    AssistantResponseMessage, ChatMessage, ConversationState, CurrentMessage,
    GenerateAssistantResponseRequest, ToolList, ToolResult, ToolResultContent, ToolResultStatus,
    UserInputMessage, UserInputMessageContext,
};
use qgate_anthropic::{MessagesRequest, Role};
use sha2::{Digest, Sha256};

/// Images per request the service accepts.
pub const MAX_IMAGES: usize = 10;
/// Decoded bytes per image the service accepts.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// History items the service accepts.
pub const MAX_HISTORY_ITEMS: usize = 10_000;
/// Bytes of a tool description (the service's limit is 10 240 characters; counting bytes
/// keeps non-ASCII descriptions under it too).
pub const MAX_TOOL_DESCRIPTION_LEN: usize = 10_240;
/// Bytes of one tool result's text.
pub const MAX_TOOL_RESULT_LEN: usize = 800_000;

/// The result text of a tool call the client never answered.
pub const INTERRUPTED_TOOL_RESULT: &str = "Tool call was interrupted; no result was recorded.";
/// The current message when the client's last message was the assistant's (prefill).
pub const CONTINUE_TEXT: &str = "Continue.";
/// The user turn put before a conversation that starts with the assistant.
const LEADING_USER_TEXT: &str = "(The conversation continues from an earlier point.)";
/// User content when a turn carries only tool results: the results are the message, and
/// the service accepts empty content beside them (kiro.rs sends the same), so no
/// placeholder text is put in front of the model on every turn of a tool loop.
const TOOL_RESULTS_CONTENT: &str = "";
/// User content when a turn carries only images.
const IMAGES_ONLY_CONTENT: &str = "(see the attached image)";
/// User content when a turn carries nothing at all.
const EMPTY_USER_CONTENT: &str = "(empty message)";
/// Assistant content of a turn that only calls tools; the service rejects empty content.
const TOOL_CALLS_ONLY_CONTENT: &str = " ";

/// Per-request settings from the gateway.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// Upstream `modelId`, already resolved by the model map.
    pub model_id: &'a str,
    /// `"CLI"` (Q-CLI dialect) or `"AI_EDITOR"` (Kiro).
    pub origin: &'a str,
    pub profile_arn: Option<&'a str>,
    /// From `metadata.user_id`; `None` → a random conversation id.
    pub session_id: Option<&'a str>,
}

/// A translated request.
#[derive(Debug, Clone)]
pub struct Translated {
    pub body: GenerateAssistantResponseRequest,
    /// Shortened upstream tool name → the client's name.
    pub tool_names: ToolNameMap,
    /// A thinking directive was added (the response side parses `<thinking>`).
    pub thinking: bool,
    /// [`tokens::estimate_request`] of `body`, before calibration.
    pub input_tokens: u64,
    /// What was fixed, for debug logs.
    pub repairs: Vec<Repair>,
}

impl Translated {
    /// Re-targets the body at another account (a retry after failover): `origin` on every
    /// user message and the top-level `profileArn`.
    pub fn set_account(&mut self, origin: &str, profile_arn: Option<&str>) {
        let state = &mut self.body.conversation_state;
        state.current_message.user_input_message.origin = Some(origin.to_owned());
        for item in &mut state.history {
            match item {
                ChatMessage::UserInputMessage(user) => user.origin = Some(origin.to_owned()),
                ChatMessage::AssistantResponseMessage(_) => {}
            }
        }
        self.body.profile_arn = profile_arn.map(str::to_owned);
    }
}

/// Translates and repairs a Messages request.
pub fn translate(
    req: &MessagesRequest,
    opts: &RequestOptions<'_>,
) -> Result<Translated, TranslateError> {
    if req.messages.is_empty() {
        return Err(TranslateError::NoMessages);
    }
    if !req.messages.iter().any(|m| m.role == Role::User) {
        return Err(TranslateError::NoUserMessage);
    }
    let mut repairs = Vec::new();
    // Declared tools take their names first, so a history call to a declared tool can
    // never be the one that gets a collision-avoiding longer name.
    let declaration = tools::declare(req.tools.as_ref(), &mut repairs);
    let mut names = declaration.names;
    let declared = declaration.declared;
    let mut specs = declared.specs;
    let converted = convert::convert_messages(&req.messages, &mut names, &mut repairs)?;
    let section = system::section(
        req.system.as_ref(),
        &converted.system_entries,
        req.thinking.as_ref(),
        req.output_config.as_ref().and_then(|o| o.effort.as_deref()),
        &declared.documentation,
    );
    let mut turns = normalize::normalize(converted.turns, &mut repairs);
    normalize::enforce_image_limit(&mut turns, &mut repairs)?;
    tools::declare_used(&mut specs, &mut turns, &mut repairs);
    let body = assemble(turns, specs, section.text, opts, &mut repairs);
    let input_tokens = tokens::estimate_request_with(&body, declaration.known);
    Ok(Translated {
        body,
        tool_names: names.build(),
        thinking: section.thinking,
        input_tokens,
        repairs,
    })
}

/// The upstream `conversationId` for a client session: a UUID session id is used as is,
/// any other string maps to a stable UUID-formatted hash (one upstream conversation per
/// client session), and no session gets a random v4 UUID.
pub fn conversation_id(session_id: Option<&str>) -> String {
    match session_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(session) if session.len() == 36 && uuid::Uuid::parse_str(session).is_ok() => {
            session.to_owned()
        }
        Some(session) => {
            let digest = Sha256::digest(session.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes)
                .into_uuid()
                .to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    }
}

fn assemble(
    mut turns: Vec<Turn>,
    specs: ToolList,
    system: Option<String>,
    opts: &RequestOptions<'_>,
    repairs: &mut Vec<Repair>,
) -> GenerateAssistantResponseRequest {
    // `normalize` ends the list with a user turn; the fallback only keeps this total.
    let current = match turns.pop() {
        Some(Turn::User(user)) => user,
        Some(other) => {
            turns.push(other);
            UserTurn::text(CONTINUE_TEXT)
        }
        None => UserTurn::text(CONTINUE_TEXT),
    };
    let mut history = Vec::with_capacity(turns.len() + 2);
    if let Some(text) = system {
        history.push(ChatMessage::UserInputMessage(user_message(text, opts)));
        history.push(ChatMessage::AssistantResponseMessage(
            AssistantResponseMessage {
                content: system::SYSTEM_ACKNOWLEDGEMENT.to_owned(),
                ..Default::default()
            },
        ));
    }
    for turn in turns {
        history.push(match turn {
            Turn::User(user) => {
                ChatMessage::UserInputMessage(wire_user(user, ToolList::default(), opts, repairs))
            }
            Turn::Assistant(assistant) => {
                let text = joined(&assistant.parts);
                let content = if text.trim().is_empty() {
                    TOOL_CALLS_ONLY_CONTENT.to_owned()
                } else {
                    text
                };
                ChatMessage::AssistantResponseMessage(AssistantResponseMessage {
                    content,
                    tool_uses: assistant.tool_uses,
                    ..Default::default()
                })
            }
        });
    }
    let current = wire_user(current, specs, opts, repairs);
    GenerateAssistantResponseRequest {
        conversation_state: ConversationState {
            conversation_id: conversation_id(opts.session_id),
            history,
            current_message: CurrentMessage {
                user_input_message: current,
            },
            chat_trigger_type: "MANUAL".to_owned(),
            agent_continuation_id: Some(uuid::Uuid::new_v4().to_string()),
            agent_task_type: Some("vibe".to_owned()),
        },
        profile_arn: opts.profile_arn.map(str::to_owned),
    }
}

fn user_message(content: String, opts: &RequestOptions<'_>) -> UserInputMessage {
    UserInputMessage {
        content,
        model_id: Some(opts.model_id.to_owned()),
        origin: Some(opts.origin.to_owned()),
        images: Vec::new(),
        user_input_message_context: None,
    }
}

fn wire_user(
    turn: UserTurn,
    tools: ToolList,
    opts: &RequestOptions<'_>,
    repairs: &mut Vec<Repair>,
) -> UserInputMessage {
    let text = joined(&turn.texts);
    let content = if !text.trim().is_empty() {
        text
    } else if !turn.results.is_empty() {
        TOOL_RESULTS_CONTENT.to_owned()
    } else if !turn.images.is_empty() {
        IMAGES_ONLY_CONTENT.to_owned()
    } else {
        repairs.push(Repair::FilledEmptyContent);
        EMPTY_USER_CONTENT.to_owned()
    };
    let tool_results: Vec<ToolResult> = turn
        .results
        .into_iter()
        .map(|result| wire_result(result, repairs))
        .collect();
    let context =
        (!tools.is_empty() || !tool_results.is_empty()).then_some(UserInputMessageContext {
            env_state: None,
            tools,
            tool_results,
        });
    UserInputMessage {
        images: turn.images,
        user_input_message_context: context,
        ..user_message(content, opts)
    }
}

fn wire_result(result: PendingResult, repairs: &mut Vec<Repair>) -> ToolResult {
    let text = if !result.text.trim().is_empty() {
        if result.text.len() > MAX_TOOL_RESULT_LEN {
            repairs.push(Repair::TruncatedToolResult {
                id: result.id.clone(),
            });
            const NOTE: &str = "\n[Output truncated to fit the service's limit.]";
            let kept = tools::truncate_to(&result.text, MAX_TOOL_RESULT_LEN - NOTE.len());
            format!("{kept}{NOTE}")
        } else {
            result.text
        }
    } else if result.had_images {
        IMAGES_ONLY_CONTENT.to_owned()
    } else {
        repairs.push(Repair::FilledEmptyToolResult {
            id: result.id.clone(),
        });
        if result.is_error {
            "(the tool failed without output)".to_owned()
        } else {
            "(no output)".to_owned()
        }
    };
    ToolResult {
        tool_use_id: result.id,
        content: vec![ToolResultContent::Text(text)],
        status: if result.is_error {
            ToolResultStatus::Error
        } else {
            ToolResultStatus::Success
        },
    }
}

/// Non-empty parts joined with line breaks (empty blocks would leave blank lines).
fn joined(parts: &[String]) -> String {
    let mut text = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(part);
    }
    text
}

#[cfg(test)]
mod tests;
