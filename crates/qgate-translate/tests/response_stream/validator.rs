//! Checks that a sequence of stream events is a stream real Anthropic SDKs accept, and
//! reads back what it says, independently of the crate's own accumulator.

use qgate_anthropic::{BlockStart, Delta, ResponseBlock, StopReason, StreamEvent};
use serde_json::Value;

/// A content block as the stream spelled it out.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Block {
    pub fn to_response(&self) -> ResponseBlock {
        match self {
            Block::Text(text) => ResponseBlock::Text { text: text.clone() },
            Block::Thinking {
                thinking,
                signature,
            } => ResponseBlock::Thinking {
                thinking: thinking.clone(),
                signature: signature.clone(),
            },
            Block::ToolUse { id, name, input } => ResponseBlock::ToolUse {
                id: id.clone(),
                name: name.clone(),
                input: input.clone(),
            },
        }
    }
}

/// What a valid stream said.
#[derive(Debug)]
pub struct Summary {
    pub blocks: Vec<Block>,
    pub stop_reason: Option<StopReason>,
    pub output_tokens: u64,
    /// Ended with an `error` event.
    pub errored: bool,
}

enum Open {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
}

/// Validates `events` against the rules SDKs rely on (see `real-clients.md` §3):
/// `message_start` first with empty content and usage; blocks started, fed and stopped
/// one at a time with consecutive indices and deltas of their own kind; text and thinking
/// starts empty, tool starts with `input: {}`; tool JSON a whole object; one
/// `message_delta` with a stop reason after all blocks; `message_stop` last, or a single
/// `error` as the last event (or as the only one).
pub fn validate(events: &[StreamEvent], thinking_allowed: bool) -> Result<Summary, String> {
    let Some((first, rest)) = events.split_first() else {
        return Err("empty stream".into());
    };
    if let (StreamEvent::Error { .. }, []) = (first, rest) {
        // A failure before anything was sent is a stream of one `error` event.
        return Ok(Summary {
            blocks: Vec::new(),
            stop_reason: None,
            output_tokens: 0,
            errored: true,
        });
    }
    let StreamEvent::MessageStart { message } = first else {
        return Err(format!("first event is {}", first.name()));
    };
    if !message.content.is_empty() || message.stop_reason.is_some() {
        return Err("message_start must have empty content and no stop_reason".into());
    }
    if message.kind != "message" || message.role != "assistant" || !message.id.starts_with("msg_") {
        return Err(format!("bad message_start header: {message:?}"));
    }
    let mut summary = Summary {
        blocks: Vec::new(),
        stop_reason: None,
        output_tokens: message.usage.output_tokens,
        errored: false,
    };
    let mut open: Option<(usize, Open)> = None;
    let mut delta_seen = false;
    let mut ended = false;
    for (position, event) in rest.iter().enumerate() {
        let is_last = position + 1 == rest.len();
        if ended {
            return Err(format!("{} after the end", event.name()));
        }
        match event {
            StreamEvent::MessageStart { .. } => return Err("second message_start".into()),
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if open.is_some() || delta_seen {
                    return Err(format!(
                        "block {index} starts while another is open or late"
                    ));
                }
                if *index != summary.blocks.len() {
                    return Err(format!(
                        "block index {index}, expected {}",
                        summary.blocks.len()
                    ));
                }
                open = Some((*index, open_block(content_block, thinking_allowed)?));
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let Some((open_index, block)) = &mut open else {
                    return Err(format!("delta for block {index} with no open block"));
                };
                if open_index != index {
                    return Err(format!(
                        "delta for block {index} while {open_index} is open"
                    ));
                }
                apply_delta(block, delta)?;
            }
            StreamEvent::ContentBlockStop { index } => {
                let Some((open_index, block)) = open.take() else {
                    return Err(format!("stop of block {index} with no open block"));
                };
                if open_index != *index {
                    return Err(format!("stop of block {index} while {open_index} is open"));
                }
                summary.blocks.push(close_block(block)?);
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if open.is_some() || delta_seen {
                    return Err("message_delta with a block open, or twice".into());
                }
                if delta.stop_reason.is_none() || delta.stop_sequence.is_some() {
                    return Err(format!("bad message_delta: {delta:?}"));
                }
                delta_seen = true;
                summary.stop_reason = delta.stop_reason;
                summary.output_tokens = usage.output_tokens;
            }
            StreamEvent::MessageStop => {
                if !delta_seen || !is_last {
                    return Err("message_stop without message_delta, or not last".into());
                }
                ended = true;
            }
            StreamEvent::Ping => {}
            StreamEvent::Error { .. } => {
                if !is_last {
                    return Err("error event is not the last event".into());
                }
                summary.errored = true;
                ended = true;
            }
        }
    }
    if !ended {
        return Err("stream ends without message_stop or error".into());
    }
    Ok(summary)
}

fn open_block(start: &BlockStart, thinking_allowed: bool) -> Result<Open, String> {
    match start {
        BlockStart::Text { text } if text.is_empty() => Ok(Open::Text(String::new())),
        BlockStart::Thinking {
            thinking,
            signature,
        } if thinking.is_empty() && signature.is_empty() && thinking_allowed => {
            Ok(Open::Thinking {
                thinking: String::new(),
                signature: String::new(),
            })
        }
        BlockStart::ToolUse { id, name, input }
            if !id.is_empty()
                && !name.is_empty()
                && *input == Value::Object(Default::default()) =>
        {
            Ok(Open::ToolUse {
                id: id.clone(),
                name: name.clone(),
                json: String::new(),
            })
        }
        other => Err(format!("bad content_block_start: {other:?}")),
    }
}

fn apply_delta(block: &mut Open, delta: &Delta) -> Result<(), String> {
    match (block, delta) {
        (Open::Text(acc), Delta::TextDelta { text }) if !text.is_empty() => acc.push_str(text),
        (Open::Thinking { thinking: acc, .. }, Delta::ThinkingDelta { thinking })
            if !thinking.is_empty() =>
        {
            acc.push_str(thinking)
        }
        (Open::Thinking { signature: acc, .. }, Delta::SignatureDelta { signature }) => {
            acc.clone_from(signature)
        }
        (Open::ToolUse { json, .. }, Delta::InputJsonDelta { partial_json }) => {
            json.push_str(partial_json)
        }
        (_, delta) => return Err(format!("delta {delta:?} does not fit the open block")),
    }
    Ok(())
}

fn close_block(block: Open) -> Result<Block, String> {
    match block {
        Open::Text(text) if !text.is_empty() => Ok(Block::Text(text)),
        Open::Text(_) => Err("empty text block".into()),
        Open::Thinking {
            thinking,
            signature,
        } => Ok(Block::Thinking {
            thinking,
            signature,
        }),
        Open::ToolUse { id, name, json } => match serde_json::from_str::<Value>(&json) {
            Ok(input @ Value::Object(_)) => Ok(Block::ToolUse { id, name, input }),
            Ok(_) | Err(_) => Err(format!(
                "tool_use {id} has input that is not an object: {json}"
            )),
        },
    }
}
