//! Amazon Q response events → Anthropic stream events: one state machine for both modes.
//!
//! [`StreamTranslator`] consumes decoded [`qgate_amazonq::Event`]s and appends
//! [`StreamEvent`]s in exactly the order real Anthropic SDKs accept: `message_start`,
//! then per content block `content_block_start` → deltas → `content_block_stop`, then
//! `message_delta` and `message_stop` (or a single `error` after the commit point).
//! Streaming writes these events as SSE; non-streaming folds the very same events with
//! [`MessageAccumulator`], so both modes share every decision made here.
//!
//! Decisions that are not obvious from the event types:
//!
//! * **Tool calls are held back until whole.** A call's input is buffered until its
//!   `stop: true` fragment (or, at the end of the stream, until it parses as a JSON
//!   object) and then sent as one block. A call cut off by the upstream's output limit is
//!   dropped and replaced by a text notice, with `stop_reason: max_tokens`, because a
//!   client would otherwise execute the tool with partial arguments. An empty input is
//!   `{}` when the call was stopped, and cut off when the stream ended before `stop`.
//! * **Thinking signatures.** The upstream has none for `<thinking>` text. The thinking
//!   `content_block_start` already carries `"signature": ""` (as the real API's does), the
//!   SDK probes in `real-clients.md` found no need for a `signature_delta`, and an empty
//!   one would only restate that; so a `signature_delta` is sent only when a
//!   `reasoningContentEvent` supplied a real signature.
//! * **`reasoningContentEvent`** becomes a thinking block only when the client asked for
//!   thinking; otherwise it is dropped, as the real API never returns thinking unasked.
//! * **`model_context_window_exceeded` is never used.** A stream that ends normally is a
//!   finished turn, whatever `contextUsageEvent` said about the window; when output really
//!   is cut short the upstream raises `ContentLengthExceededException`, which becomes
//!   `max_tokens`. Reporting the window as exceeded on a complete answer would make
//!   clients treat it as truncated, and a too-full context surfaces on the next request
//!   as "prompt is too long", which is what Claude Code compacts on.
//! * **`invalidStateEvent`** ends the stream with an `api_error` event. The gateway should
//!   intercept it before the commit point to fail over; this is the fallback.

mod accumulator;
mod blocks;
mod tool_calls;
mod usage;

pub use accumulator::MessageAccumulator;

use crate::ToolNameMap;
use crate::thinking::{Piece, ThinkingSplitter};
use blocks::BlockWriter;
use qgate_amazonq::Event;
use qgate_anthropic::stream::{DeltaUsage, MessageDeltaBody};
use qgate_anthropic::{ApiError, ErrorKind, MessageResponse, StopReason, StreamEvent, Usage};
use tool_calls::{Finished, ToolCalls};
use usage::UpstreamUsage;

/// Per-request settings of a [`StreamTranslator`].
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `msg_` followed by 24 or more hex/base62 characters, made by the caller.
    pub message_id: String,
    /// The model name the client asked for, echoed back.
    pub model: String,
    /// Local estimate of the prompt, sent in `message_start`.
    pub input_tokens: u64,
    /// Whether a leading `<thinking>` section becomes a thinking block.
    pub thinking: bool,
    /// Maps shortened upstream tool names back to the client's names.
    pub tool_names: ToolNameMap,
    /// The model's context window, to turn `contextUsageEvent` percentages into tokens.
    pub context_window: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Streaming,
    Finished,
}

/// The Amazon Q → Anthropic stream state machine of one response.
#[derive(Debug)]
pub struct StreamTranslator {
    cfg: StreamConfig,
    phase: Phase,
    /// Present while the reply may still open with a `<thinking>` section.
    leading_thinking: Option<ThinkingSplitter>,
    /// Scratch space for the splitter's output, kept to avoid an allocation per chunk.
    pieces: Vec<Piece>,
    blocks: BlockWriter,
    tool_calls: ToolCalls,
    called_a_tool: bool,
    dropped_a_tool_call: bool,
    generated_tool_ids: u32,
    stop_reason: Option<StopReason>,
    upstream_usage: UpstreamUsage,
}

impl StreamTranslator {
    pub fn new(cfg: StreamConfig) -> Self {
        let leading_thinking = cfg.thinking.then(ThinkingSplitter::new);
        Self {
            cfg,
            phase: Phase::NotStarted,
            leading_thinking,
            pieces: Vec::new(),
            blocks: BlockWriter::default(),
            tool_calls: ToolCalls::default(),
            called_a_tool: false,
            dropped_a_tool_call: false,
            generated_tool_ids: 0,
            stop_reason: None,
            upstream_usage: UpstreamUsage::default(),
        }
    }

    /// Emits `message_start` once; later calls do nothing.
    pub fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if self.phase != Phase::NotStarted {
            return;
        }
        self.phase = Phase::Streaming;
        out.push(StreamEvent::MessageStart {
            message: MessageResponse::start(
                self.cfg.message_id.clone(),
                self.cfg.model.clone(),
                self.cfg.input_tokens,
            ),
        });
    }

    /// Translates one upstream event. Events after the end are ignored.
    pub fn on_event(&mut self, event: Event, out: &mut Vec<StreamEvent>) {
        if self.phase == Phase::Finished {
            return;
        }
        self.start(out);
        match event {
            Event::InitialResponse { .. } | Event::MessageMetadata { .. } => {}
            Event::AssistantResponse { content } => self.text(content, out),
            Event::ToolUse {
                tool_use_id,
                name,
                input,
                stop,
            } => {
                if let Some(finished) = self.tool_calls.push(tool_use_id, name, &input, stop) {
                    self.release_tool_calls(vec![finished], out);
                }
            }
            Event::Reasoning { text, signature } => self.reasoning(text, signature, out),
            usage @ (Event::Metering { .. }
            | Event::ContextUsage { .. }
            | Event::TokenUsage { .. }) => {
                self.upstream_usage.record(&usage, self.cfg.context_window);
            }
            Event::InvalidState { reason, .. } => {
                self.fail(&invalid_state_error(&reason), out);
            }
        }
    }

    /// `ContentLengthExceededException`: the upstream's output budget ran out. Ends the
    /// message with `stop_reason: max_tokens`.
    pub fn on_output_limit(&mut self, out: &mut Vec<StreamEvent>) {
        self.end_message(true, out);
    }

    /// The upstream stream ended normally: closes blocks, sends `message_delta` and
    /// `message_stop`. Idempotent.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.end_message(false, out);
    }

    /// A failure after the commit point: exactly one `error` event, nothing after it.
    /// Open blocks stay open, as in the real API's mid-stream errors.
    pub fn fail(&mut self, err: &ApiError, out: &mut Vec<StreamEvent>) {
        if self.phase == Phase::Finished {
            return;
        }
        self.phase = Phase::Finished;
        out.push(StreamEvent::Error {
            error: err.detail(),
        });
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether any content block was started: from then on the response is committed.
    pub fn has_content(&self) -> bool {
        self.blocks.started_any()
    }

    /// Usage as it stands: upstream-reported numbers where there are any, else the
    /// context-usage derived input and the local estimates.
    pub fn usage(&self) -> Usage {
        self.upstream_usage
            .usage(self.cfg.input_tokens, self.blocks.output_tokens())
    }

    /// Set once the message ended normally or by the output limit; `None` after `fail`.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason
    }

    /// The prompt size as the upstream saw it (all input including cached tokens), to
    /// calibrate the local estimator: `metadataEvent` when sent, else derived from
    /// `contextUsageEvent`.
    pub fn upstream_input_tokens(&self) -> Option<u64> {
        self.upstream_usage.input_tokens()
    }

    /// Credits reported by `meteringEvent`s so far.
    pub fn metering_credits(&self) -> f64 {
        self.upstream_usage.credits()
    }

    fn text(&mut self, content: String, out: &mut Vec<StreamEvent>) {
        let Some(splitter) = &mut self.leading_thinking else {
            self.blocks.text(content, out);
            return;
        };
        splitter.push(&content, &mut self.pieces);
        if splitter.is_passthrough() {
            self.leading_thinking = None;
        }
        self.write_pieces(out);
    }

    fn reasoning(&mut self, text: String, signature: Option<String>, out: &mut Vec<StreamEvent>) {
        if !self.cfg.thinking {
            return;
        }
        self.end_leading_thinking(out);
        self.blocks.thinking(text, out);
        if let Some(signature) = signature.filter(|s| !s.is_empty()) {
            self.blocks.thinking_signature(signature);
        }
    }

    /// Any content other than reply text means the reply no longer starts with thinking:
    /// flush what the splitter holds, in order, and stop looking for tags.
    fn end_leading_thinking(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(mut splitter) = self.leading_thinking.take() {
            splitter.finish(&mut self.pieces);
            self.write_pieces(out);
        }
    }

    fn write_pieces(&mut self, out: &mut Vec<StreamEvent>) {
        for piece in self.pieces.drain(..) {
            match piece {
                Piece::Thinking(thinking) => self.blocks.thinking(thinking, out),
                Piece::Text(text) => self.blocks.text(text, out),
            }
        }
    }

    fn release_tool_calls(&mut self, finished: Vec<Finished>, out: &mut Vec<StreamEvent>) {
        if finished.is_empty() {
            return;
        }
        self.end_leading_thinking(out);
        let mut cut_off = Vec::new();
        for call in finished {
            match call {
                Finished::Complete {
                    id,
                    name,
                    input_json,
                } => {
                    let id = if id.is_empty() {
                        self.generated_tool_id()
                    } else {
                        id
                    };
                    let name = self.cfg.tool_names.original(&name).to_owned();
                    self.blocks.tool_use(id, name, &input_json, out);
                    self.called_a_tool = true;
                }
                Finished::CutOff { name } => {
                    cut_off.push(self.cfg.tool_names.original(&name).to_owned());
                }
                // Found by fuzzing (fuzz/regressions/stream_translator/nameless_tool_call.json):
                // a `tool_use` with an empty name is not a valid block.
                Finished::Unnamed => {
                    self.blocks.separate_text(UNNAMED_TOOL_NOTICE, out);
                }
            }
        }
        if !cut_off.is_empty() {
            self.dropped_a_tool_call = true;
            self.blocks.separate_text(&cut_off_notice(&cut_off), out);
        }
    }

    fn generated_tool_id(&mut self) -> String {
        self.generated_tool_ids += 1;
        let message = self
            .cfg
            .message_id
            .strip_prefix("msg_")
            .unwrap_or(&self.cfg.message_id);
        format!("toolu_{message}{:03}", self.generated_tool_ids)
    }

    fn end_message(&mut self, output_limit: bool, out: &mut Vec<StreamEvent>) {
        if self.phase == Phase::Finished {
            return;
        }
        self.start(out);
        self.end_leading_thinking(out);
        let pending = self.tool_calls.drain();
        self.release_tool_calls(pending, out);
        self.blocks.close(out);
        let stop_reason = if output_limit || self.dropped_a_tool_call {
            StopReason::MaxTokens
        } else if self.called_a_tool {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        };
        self.stop_reason = Some(stop_reason);
        self.phase = Phase::Finished;
        let usage = self.usage();
        out.push(StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(stop_reason),
                stop_sequence: None,
            },
            usage: DeltaUsage {
                input_tokens: Some(usage.input_tokens),
                output_tokens: usage.output_tokens,
            },
        });
        out.push(StreamEvent::MessageStop);
    }
}

/// The text that replaces dropped tool calls. It is written for the model as much as for
/// the user: the model sees it in the next turn and should retry in smaller steps.
/// Shown instead of a tool call the upstream sent without a tool name.
const UNNAMED_TOOL_NOTICE: &str =
    "[The upstream model produced a tool call without a tool name, so it was not executed.]";

fn cut_off_notice(tool_names: &[String]) -> String {
    let calls = tool_names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let (what, its, it_was) = if tool_names.len() == 1 {
        ("call to the tool", "its", "it was")
    } else {
        ("calls to the tools", "their", "they were")
    };
    format!(
        "[The upstream output limit cut off the {what} {calls} before {its} input was \
         complete, so {it_was} not executed. Retry with smaller input, for example by \
         splitting the content across several calls.]"
    )
}

/// The client-facing error for `invalidStateEvent`. Only an identifier-like reason is
/// quoted: the upstream's free-text message is not passed through.
fn invalid_state_error(reason: &str) -> ApiError {
    let is_identifier = !reason.is_empty()
        && reason.len() <= 64
        && reason
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    let message = if is_identifier {
        format!("Amazon Q could not continue the response ({reason})")
    } else {
        "Amazon Q could not continue the response".to_owned()
    };
    ApiError::new(ErrorKind::Api, message)
}

#[cfg(test)]
mod tests;
