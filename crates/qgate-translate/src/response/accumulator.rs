//! The non-streaming response: the same [`StreamEvent`]s a streaming client would get,
//! folded into one message object, so both modes agree on every block by construction.

use qgate_anthropic::{
    ApiError, BlockStart, Delta, ErrorKind, MessageResponse, ResponseBlock, StreamEvent,
};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug)]
enum PartialBlock {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        /// The input sent in `content_block_start`, used when no JSON followed.
        initial_input: Value,
        partial_json: String,
    },
}

/// Builds a [`MessageResponse`] from stream events.
#[derive(Debug, Default)]
pub struct MessageAccumulator {
    message: Option<MessageResponse>,
    blocks: BTreeMap<usize, PartialBlock>,
    stopped: bool,
    error: Option<ApiError>,
}

impl MessageAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds in one event.
    pub fn apply(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::MessageStart { message } => {
                self.message = Some(message.clone());
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                self.blocks
                    .insert(*index, PartialBlock::from(content_block));
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                if let Some(block) = self.blocks.get_mut(index) {
                    block.apply(delta);
                }
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping => {}
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(message) = &mut self.message {
                    message.stop_reason = delta.stop_reason;
                    message.stop_sequence.clone_from(&delta.stop_sequence);
                    message.usage.output_tokens = usage.output_tokens;
                    if let Some(input_tokens) = usage.input_tokens {
                        message.usage.input_tokens = input_tokens;
                    }
                }
            }
            StreamEvent::MessageStop => self.stopped = true,
            StreamEvent::Error { error } => {
                // The first failure is the cause; nothing valid follows it.
                if self.error.is_none() {
                    self.error = Some(ApiError::new(error.kind, error.message.clone()));
                }
            }
        }
    }

    /// The finished message; `Err` when an `error` event was applied or the stream did
    /// not reach `message_stop` (a partial message must not pass as a whole one).
    pub fn finish(self) -> Result<MessageResponse, ApiError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let Some(mut message) = self.message else {
            return Err(ApiError::new(
                ErrorKind::Api,
                "the upstream response ended before the message started",
            ));
        };
        if !self.stopped {
            return Err(ApiError::new(
                ErrorKind::Api,
                "the upstream response ended before the message was complete",
            ));
        }
        message.content = self
            .blocks
            .into_values()
            .map(PartialBlock::finish)
            .collect();
        Ok(message)
    }
}

impl From<&BlockStart> for PartialBlock {
    fn from(start: &BlockStart) -> Self {
        match start {
            BlockStart::Text { text } => PartialBlock::Text(text.clone()),
            BlockStart::Thinking {
                thinking,
                signature,
            } => PartialBlock::Thinking {
                thinking: thinking.clone(),
                signature: signature.clone(),
            },
            BlockStart::ToolUse { id, name, input } => PartialBlock::ToolUse {
                id: id.clone(),
                name: name.clone(),
                initial_input: input.clone(),
                partial_json: String::new(),
            },
        }
    }
}

impl PartialBlock {
    /// A delta of another block's kind cannot come from the translator and is ignored.
    fn apply(&mut self, delta: &Delta) {
        match delta {
            Delta::TextDelta { text } => {
                if let PartialBlock::Text(acc) = self {
                    acc.push_str(text);
                }
            }
            Delta::InputJsonDelta { partial_json } => {
                if let PartialBlock::ToolUse {
                    partial_json: acc, ..
                } = self
                {
                    acc.push_str(partial_json);
                }
            }
            Delta::ThinkingDelta { thinking } => {
                if let PartialBlock::Thinking { thinking: acc, .. } = self {
                    acc.push_str(thinking);
                }
            }
            Delta::SignatureDelta { signature } => {
                if let PartialBlock::Thinking { signature: acc, .. } = self {
                    acc.clone_from(signature);
                }
            }
        }
    }

    fn finish(self) -> ResponseBlock {
        match self {
            PartialBlock::Text(text) => ResponseBlock::Text { text },
            PartialBlock::Thinking {
                thinking,
                signature,
            } => ResponseBlock::Thinking {
                thinking,
                signature,
            },
            PartialBlock::ToolUse {
                id,
                name,
                initial_input,
                partial_json,
            } => {
                let input = if partial_json.trim().is_empty() {
                    initial_input
                } else {
                    // The translator only sends whole JSON objects; `{}` is the documented
                    // fallback should anything else ever arrive.
                    serde_json::from_str(&partial_json)
                        .unwrap_or_else(|_| Value::Object(serde_json::Map::new()))
                };
                ResponseBlock::ToolUse { id, name, input }
            }
        }
    }
}
