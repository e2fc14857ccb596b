//! `POST /v1/messages` and `POST /v1/messages/count_tokens` request bodies.
//!
//! Tolerant by design: unknown fields are ignored, unknown content-block types become
//! [`ContentBlock::Unknown`], and fields that real clients send as `null` are accepted.
//! Fields the Amazon Q upstream has no equivalent for (`temperature`, `top_p`,
//! `stop_sequences`, `context_management`, `output_config`, `cache_control`, ...) are
//! parsed only as far as needed to accept them.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

mod tool_list;

pub use tool_list::Tools;

/// The body of `POST /v1/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Tools>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
}

/// `output_config`: only `effort` is used (adaptive thinking); `format` is accepted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
}

impl MessagesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The tool list (empty when absent or `null`).
    pub fn tools(&self) -> &[Tool] {
        self.tools.as_deref().unwrap_or_default()
    }

    /// The client session id Claude Code puts in `metadata.user_id`.
    pub fn session_id(&self) -> Option<String> {
        self.metadata.as_ref().and_then(Metadata::session_id)
    }
}

/// The body of `POST /v1/messages/count_tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountTokensRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Tools>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
}

impl From<CountTokensRequest> for MessagesRequest {
    fn from(c: CountTokensRequest) -> Self {
        MessagesRequest {
            model: c.model,
            messages: c.messages,
            max_tokens: 1,
            system: c.system,
            tools: c.tools,
            tool_choice: c.tool_choice,
            stream: None,
            thinking: c.thinking,
            metadata: None,
            temperature: None,
            top_p: None,
            top_k: None,
            stop_sequences: None,
            output_config: c.output_config,
        }
    }
}

/// `metadata`; only `user_id` is used (for the session id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Metadata {
    /// Claude Code sends `user_id` as a JSON *string* `{"device_id":..,"session_id":..}`;
    /// older versions used `user_<hash>_account_<uuid>_session_<uuid>`.
    pub fn session_id(&self) -> Option<String> {
        let raw = self.user_id.as_deref()?.trim();
        if raw.is_empty() {
            return None;
        }
        if raw.starts_with('{')
            && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(raw)
            && let Some(Value::String(s)) = map.get("session_id")
            && !s.is_empty()
        {
            return Some(s.clone());
        }
        if let Some(pos) = raw.rfind("session_") {
            let s = &raw[pos + "session_".len()..];
            if !s.is_empty() {
                return Some(s.to_owned());
            }
        }
        Some(raw.to_owned())
    }
}

/// `thinking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingConfig {
    Enabled {
        #[serde(default)]
        budget_tokens: Option<u64>,
    },
    Adaptive {},
    Disabled {},
    #[serde(other)]
    Unknown,
}

/// A message role. `system` entries inside `messages` are sent by Claude Code
/// (beta `mid-conversation-system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
}

/// One entry of `messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: MessageContent,
}

/// Message content: a plain string or an array of blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl MessageContent {
    /// The content as blocks (a string becomes one text block).
    pub fn blocks(&self) -> std::borrow::Cow<'_, [ContentBlock]> {
        match self {
            MessageContent::Text(t) => {
                std::borrow::Cow::Owned(vec![ContentBlock::Text { text: t.clone() }])
            }
            MessageContent::Blocks(b) => std::borrow::Cow::Borrowed(b),
        }
    }
}

/// A content block. Unknown types are kept as [`ContentBlock::Unknown`] and skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        #[serde(default, deserialize_with = "null_as_default")]
        text: String,
    },
    Image {
        source: ImageSource,
    },
    Document {
        #[serde(default)]
        source: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
    },
    Thinking {
        #[serde(default, deserialize_with = "null_as_default")]
        thinking: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    #[serde(other)]
    Unknown,
}

/// `image.source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    #[serde(other)]
    Unknown,
}

/// `tool_result.content`: a string or blocks (text and images).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// `system`: a string or an array of text blocks (`cache_control` ignored).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl SystemPrompt {
    /// The text blocks joined with `\n`.
    pub fn text(&self) -> String {
        match self {
            SystemPrompt::Text(t) => t.clone(),
            SystemPrompt::Blocks(blocks) => {
                let texts: Vec<&str> = blocks
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                texts.join("\n")
            }
        }
    }
}

/// A tool definition. Server tools (`{"type":"web_search_20250305","name":"web_search"}`)
/// have no `input_schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes "a string or an array of content blocks" with a clear error message
/// (serde's untagged enums only say "did not match any variant").
struct StringOrBlocks<T>(std::marker::PhantomData<T>, &'static str);

trait FromStringOrBlocks: Sized {
    fn from_text(s: String) -> Self;
    fn from_blocks(b: Vec<ContentBlock>) -> Self;
}

impl<'de, T: FromStringOrBlocks> Visitor<'de> for StringOrBlocks<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a string or an array of content blocks", self.1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<T, E> {
        Ok(T::from_text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(1024));
        while let Some(b) = seq.next_element::<ContentBlock>()? {
            blocks.push(b);
        }
        Ok(T::from_blocks(blocks))
    }
}

macro_rules! string_or_blocks {
    ($ty:ident, $what:literal) => {
        impl FromStringOrBlocks for $ty {
            fn from_text(s: String) -> Self {
                $ty::Text(s)
            }
            fn from_blocks(b: Vec<ContentBlock>) -> Self {
                $ty::Blocks(b)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(StringOrBlocks::<$ty>(std::marker::PhantomData, $what))
            }
        }
    };
}

string_or_blocks!(MessageContent, "message content");
string_or_blocks!(ToolResultContent, "tool_result content");
string_or_blocks!(SystemPrompt, "system");

#[cfg(test)]
mod tests;
