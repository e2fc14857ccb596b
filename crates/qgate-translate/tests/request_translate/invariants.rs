//! The service's request rules (protocol doc §2.3) as checked on a translated body.

use qgate_amazonq::validate::{Limits, validate};
use qgate_amazonq::{
    ChatMessage, GenerateAssistantResponseRequest, ToolResultContent, UserInputMessage,
};
use std::collections::HashSet;

/// The service's validator with default limits, then every further rule the translator
/// promises (stricter than the service); the first violation is returned as text.
pub fn check(body: &GenerateAssistantResponseRequest) -> Result<(), String> {
    validate(body, &Limits::default()).map_err(|violation| format!("validator: {violation}"))?;
    let state = &body.conversation_state;
    let current = &state.current_message.user_input_message;
    if state.history.len() > 10_000 {
        return Err(format!("history has {} items", state.history.len()));
    }
    if !state.history.len().is_multiple_of(2) {
        return Err("history does not end with an assistant item".into());
    }
    let mut users: Vec<&UserInputMessage> = Vec::new();
    let mut calls: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (index, item) in state.history.iter().enumerate() {
        match (index % 2, item) {
            (0, ChatMessage::UserInputMessage(user)) => users.push(user),
            (1, ChatMessage::AssistantResponseMessage(assistant)) => {
                if assistant.content.is_empty() {
                    return Err(format!("history[{index}]: empty assistant content"));
                }
                calls.push(
                    assistant
                        .tool_uses
                        .iter()
                        .map(|u| (u.tool_use_id.clone(), u.name.clone()))
                        .collect(),
                );
                for tool_use in &assistant.tool_uses {
                    if !tool_use.input.is_object() {
                        return Err(format!(
                            "tool use {} input is not an object",
                            tool_use.tool_use_id
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "history[{index}] breaks user/assistant alternation"
                ));
            }
        }
    }
    users.push(current);
    let mut all_ids = HashSet::new();
    for call in calls.iter().flatten() {
        if !all_ids.insert(call.0.clone()) {
            return Err(format!("tool use id {} used twice", call.0));
        }
    }
    let mut images = 0;
    for (user, expected) in users.iter().zip(&calls) {
        if user.model_id.as_deref().is_none_or(str::is_empty) || user.origin.is_none() {
            return Err("user message without modelId/origin".into());
        }
        images += user.images.len();
        for image in &user.images {
            if !["png", "jpeg", "gif", "webp"].contains(&image.format.as_str())
                || image.source.bytes.is_empty()
            {
                return Err(format!("bad image {}", image.format));
            }
        }
        let results = user
            .user_input_message_context
            .as_ref()
            .map(|c| c.tool_results.as_slice())
            .unwrap_or_default();
        let answered: Vec<&str> = results.iter().map(|r| r.tool_use_id.as_str()).collect();
        let wanted: Vec<&str> = expected.iter().map(|(id, _)| id.as_str()).collect();
        if user.content.trim().is_empty() && answered.is_empty() {
            return Err("empty user content without tool results".into());
        }
        if answered != wanted {
            return Err(format!(
                "results {answered:?} do not answer calls {wanted:?}"
            ));
        }
        for result in results {
            let has_text = result.content.iter().any(|c| match c {
                ToolResultContent::Text(t) => !t.trim().is_empty(),
                ToolResultContent::Json(_) => true,
            });
            if !has_text {
                return Err(format!("empty result for {}", result.tool_use_id));
            }
        }
    }
    if images > 10 {
        return Err(format!("{images} images"));
    }
    let tools = current
        .user_input_message_context
        .as_ref()
        .map(|c| c.tools.as_slice())
        .unwrap_or_default();
    let mut declared = HashSet::new();
    for tool in tools {
        let spec = &tool.tool_specification;
        let valid_name = !spec.name.is_empty()
            && spec.name.len() <= 64
            && spec
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(format!("invalid tool name {:?}", spec.name));
        }
        if !declared.insert(spec.name.to_ascii_lowercase()) {
            return Err(format!("tool {} declared twice", spec.name));
        }
        if spec.description.trim().is_empty() || spec.description.chars().count() > 10_240 {
            return Err(format!("bad description for {}", spec.name));
        }
        let schema = &spec.input_schema.json;
        if !schema.is_object() || !schema["type"].is_string() || !schema["properties"].is_object() {
            return Err(format!("bad schema for {}", spec.name));
        }
    }
    let exact: HashSet<&str> = tools
        .iter()
        .map(|t| t.tool_specification.name.as_str())
        .collect();
    for (_, name) in calls.iter().flatten() {
        if !exact.contains(name.as_str()) {
            return Err(format!("tool {name} used in history is not declared"));
        }
    }
    Ok(())
}
