//! Tool specification rules: names, descriptions and schemas of declared tools, and the
//! rule that every tool used in history is declared on the current message.

use super::{Limits, Violation, ViolationKind};
use crate::request::{ChatMessage, ConversationState, Tool, UserInputMessage};
use serde_json::Value;

fn declared_tools(message: &UserInputMessage) -> &[Tool] {
    message
        .user_input_message_context
        .as_ref()
        .map_or(&[], |c| c.tools.as_slice())
}

fn invalid_spec(detail: String) -> Violation {
    Violation::new(ViolationKind::InvalidToolSpec, detail)
}

/// Checks every tool a user message declares.
pub(super) fn check_tool_specs(
    message: &UserInputMessage,
    limits: &Limits,
) -> Result<(), Violation> {
    let tools = declared_tools(message);
    for (i, tool) in tools.iter().enumerate() {
        let spec = &tool.tool_specification;
        let name = spec.name.as_str();
        if name.is_empty() {
            return Err(invalid_spec(format!("tool #{i} has an empty name")));
        }
        // The charset is ASCII, so bytes are characters once it is checked.
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(invalid_spec(format!(
                "tool name {name:?} contains {bad:?}; allowed are [A-Za-z0-9_-]"
            )));
        }
        if name.len() > limits.max_tool_name_chars {
            return Err(invalid_spec(format!(
                "tool name {name:?} has {} characters, more than {}",
                name.len(),
                limits.max_tool_name_chars
            )));
        }
        if spec.description.is_empty() {
            return Err(invalid_spec(format!(
                "tool {name:?} has an empty description"
            )));
        }
        if spec.description.len() > limits.max_tool_description_chars {
            let chars = spec.description.chars().count();
            if chars > limits.max_tool_description_chars {
                return Err(invalid_spec(format!(
                    "tool {name:?} has a description of {chars} characters, more than {}",
                    limits.max_tool_description_chars
                )));
            }
        }
        match &spec.input_schema.json {
            Value::Object(schema) => match schema.get("type") {
                None | Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(invalid_spec(format!(
                        "tool {name:?} has a schema whose type is not a string: {other}"
                    )));
                }
            },
            other => {
                return Err(invalid_spec(format!(
                    "tool {name:?} has an inputSchema.json that is not an object: {}",
                    json_kind(other)
                )));
            }
        }
        if tools[..i]
            .iter()
            .any(|t| t.tool_specification.name.eq_ignore_ascii_case(name))
        {
            return Err(Violation::malformed(format!(
                "tool {name:?} is declared twice"
            )));
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every tool used in history must be declared on the current message (names compared
/// case-insensitively, as the service does).
pub(super) fn check_tools_declared(state: &ConversationState) -> Result<(), Violation> {
    let declared = declared_tools(&state.current_message.user_input_message);
    for (index, item) in state.history.iter().enumerate() {
        let assistant = match item {
            ChatMessage::AssistantResponseMessage(a) => a,
            ChatMessage::UserInputMessage(_) => continue,
        };
        for tool_use in &assistant.tool_uses {
            let known = declared.iter().any(|t| {
                t.tool_specification
                    .name
                    .eq_ignore_ascii_case(&tool_use.name)
            });
            if !known {
                return Err(Violation::new(
                    ViolationKind::ToolConfigMissing,
                    format!(
                        "history[{index}] uses tool {:?}, which currentMessage does not declare",
                        tool_use.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
