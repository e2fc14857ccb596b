//! The `GenerateAssistantResponse` request body (identical in both dialects).
//!
//! Field names follow the Smithy-generated serializer (`protocol_serde/shape_*.rs`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::ops::Deref;
use std::sync::Arc;

/// Top level body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateAssistantResponseRequest {
    pub conversation_state: ConversationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_arn: Option<String>,
}

/// `conversationState`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState {
    pub conversation_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<ChatMessage>,
    pub current_message: CurrentMessage,
    pub chat_trigger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_continuation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_task_type: Option<String>,
}

/// `conversationState.currentMessage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentMessage {
    pub user_input_message: UserInputMessage,
}

/// A history item: an object with exactly one of the two keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChatMessage {
    UserInputMessage(UserInputMessage),
    AssistantResponseMessage(AssistantResponseMessage),
}

/// `userInputMessage`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessage {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_input_message_context: Option<UserInputMessageContext>,
}

/// `userInputMessageContext`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessageContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_state: Option<EnvState>,
    #[serde(default, skip_serializing_if = "ToolList::is_empty")]
    pub tools: ToolList,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ToolResult>,
}

/// `tools[]` of a `userInputMessageContext`. A list the translator sends on every request
/// of a session is shared (one [`Arc`], not a copy per request) together with its JSON,
/// written once ([`ToolList::with_json`]); any change drops the JSON and copies the list.
#[derive(Debug, Clone, Default)]
pub struct ToolList {
    tools: Arc<Vec<Tool>>,
    /// The compact JSON of `tools`, when worked out in advance.
    json: Option<Arc<RawValue>>,
}

impl ToolList {
    pub fn new(tools: Vec<Tool>) -> Self {
        ToolList {
            tools: Arc::new(tools),
            json: None,
        }
    }

    /// The list with its JSON written now, for a list that will be sent many times.
    pub fn with_json(self) -> Self {
        let json = serde_json::to_string(&*self.tools)
            .ok()
            .and_then(|text| RawValue::from_string(text).ok())
            .map(Arc::from);
        ToolList { json, ..self }
    }

    pub fn as_slice(&self) -> &[Tool] {
        &self.tools
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn push(&mut self, tool: Tool) {
        Arc::make_mut(&mut self.tools).push(tool);
        self.json = None;
    }
}

impl Deref for ToolList {
    type Target = [Tool];

    fn deref(&self) -> &[Tool] {
        &self.tools
    }
}

impl From<Vec<Tool>> for ToolList {
    fn from(tools: Vec<Tool>) -> Self {
        ToolList::new(tools)
    }
}

impl PartialEq for ToolList {
    fn eq(&self, other: &ToolList) -> bool {
        self.tools == other.tools
    }
}

impl Serialize for ToolList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.json {
            Some(json) => json.serialize(serializer),
            None => self.tools.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ToolList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Tool>::deserialize(deserializer).map(ToolList::new)
    }
}

/// `envState`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_working_directory: Option<String>,
}

/// `tools[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub tool_specification: ToolSpecification,
}

/// `toolSpecification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpecification {
    pub name: String,
    pub description: String,
    pub input_schema: InputSchema,
}

/// `inputSchema` wraps the JSON schema in `json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSchema {
    pub json: Value,
}

/// `toolResults[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    pub tool_use_id: String,
    pub content: Vec<ToolResultContent>,
    pub status: ToolResultStatus,
}

/// A tool result content block: `{"text": ..}` or `{"json": ..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent {
    Text(String),
    Json(Value),
}

/// `toolResults[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultStatus {
    Success,
    Error,
}

/// `images[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    pub source: ImageSource,
}

/// `images[].source`; the blob is base64 in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSource {
    pub bytes: String,
}

/// `assistantResponseMessage` (history only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantResponseMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_uses: Vec<ToolUse>,
}

/// `toolUses[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    pub tool_use_id: String,
    pub name: String,
    pub input: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_with_wire_names() {
        let req = GenerateAssistantResponseRequest {
            conversation_state: ConversationState {
                conversation_id: "c".into(),
                history: vec![
                    ChatMessage::UserInputMessage(UserInputMessage {
                        content: "hi".into(),
                        ..Default::default()
                    }),
                    ChatMessage::AssistantResponseMessage(AssistantResponseMessage {
                        content: " ".into(),
                        tool_uses: vec![ToolUse {
                            tool_use_id: "t1".into(),
                            name: "Bash".into(),
                            input: json!({"command":"ls"}),
                        }],
                        ..Default::default()
                    }),
                ],
                current_message: CurrentMessage {
                    user_input_message: UserInputMessage {
                        content: String::new(),
                        model_id: Some("claude-sonnet-4.5".into()),
                        origin: Some("AI_EDITOR".into()),
                        user_input_message_context: Some(UserInputMessageContext {
                            tool_results: vec![ToolResult {
                                tool_use_id: "t1".into(),
                                content: vec![ToolResultContent::Text("ok".into())],
                                status: ToolResultStatus::Success,
                            }],
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                },
                chat_trigger_type: "MANUAL".into(),
                agent_continuation_id: None,
                agent_task_type: None,
            },
            profile_arn: Some("arn:p".into()),
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({"conversationState":{"conversationId":"c","history":[
                {"userInputMessage":{"content":"hi"}},
                {"assistantResponseMessage":{"content":" ","toolUses":[{"toolUseId":"t1","name":"Bash","input":{"command":"ls"}}]}}],
                "currentMessage":{"userInputMessage":{"content":"","modelId":"claude-sonnet-4.5","origin":"AI_EDITOR",
                  "userInputMessageContext":{"toolResults":[{"toolUseId":"t1","content":[{"text":"ok"}],"status":"success"}]}}},
                "chatTriggerType":"MANUAL"},"profileArn":"arn:p"})
        );
        let back: GenerateAssistantResponseRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, req);
    }

    fn tool(name: &str) -> Tool {
        Tool {
            tool_specification: ToolSpecification {
                name: name.into(),
                description: format!("Does \"{name}\" things.\nWith ✓ and \\ escapes."),
                input_schema: InputSchema {
                    json: json!({"type": "object", "properties": {"p": {"type": "string"}}}),
                },
            },
        }
    }

    #[test]
    fn a_tool_list_with_its_json_written_serialises_as_without() {
        let plain = ToolList::new(vec![tool("Read"), tool("Write")]);
        let written = plain.clone().with_json();
        assert!(written.json.is_some());
        assert_eq!(
            serde_json::to_string(&written).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
        assert_eq!(written, plain);
        let back: ToolList =
            serde_json::from_str(&serde_json::to_string(&written).unwrap()).unwrap();
        assert_eq!(back, plain);
    }

    #[test]
    fn a_changed_shared_tool_list_is_copied_and_serialised_anew() {
        let shared = ToolList::new(vec![tool("Read")]).with_json();
        let mut changed = shared.clone();
        changed.push(tool("Placeholder"));
        assert_eq!(shared.len(), 1, "the shared list is untouched");
        assert_eq!(changed.len(), 2);
        let text = serde_json::to_string(&changed).unwrap();
        assert!(text.contains("Placeholder"), "{text}");
        assert!(
            !serde_json::to_string(&shared)
                .unwrap()
                .contains("Placeholder")
        );
    }
}
