//! What a successful chat request streams back, as ready-to-send event-stream frames.
//!
//! Order, as the service sends it: `initial-response` (Q-CLI dialect only),
//! `messageMetadataEvent`, text as `assistantResponseEvent`s, tool calls as `toolUseEvent`
//! fragments, then `meteringEvent` and `contextUsageEvent`. The text is made of words
//! picked from the prompt by a hash, so the same prompt always gets the same reply.
//!
//! Frames are encoded once here, before the body starts; streaming them is then only
//! pacing (see `body`). The exception is `[[sim stamp=1]]`: a stamped word chunk must carry
//! its send time, so it is encoded when it is sent ([`PlannedFrame::StampedText`]).

use crate::fault::{FaultKind, FaultSpec};
use crate::script::{self, Parsed, Script, ToolCall};
use bytes::Bytes;
use qgate_amazonq::request::{
    ChatMessage, GenerateAssistantResponseRequest, Tool, ToolResultContent,
};
use qgate_amazonq::{Dialect, Event, StreamError};
use std::time::Duration;

mod frames;
mod words;

/// Words in a reply when the prompt does not say.
pub(crate) const DEFAULT_WORDS: usize = 20;
/// Words of the short text before a scripted tool call when the prompt does not say.
pub(crate) const DEFAULT_WORDS_BEFORE_TOOL: usize = 4;
/// Silence of a `slow_first_byte` fault that names no delay.
pub(crate) const DEFAULT_SLOW_FIRST_BYTE: Duration = Duration::from_secs(30);
/// Content events a mid-stream fault lets through before it strikes.
const EVENTS_BEFORE_MIDSTREAM_FAULT: usize = 2;
/// Quoted tool result text is cut after this many characters.
const QUOTE_CHARS: usize = 200;
/// The context window the `contextUsageEvent` percentage is relative to, in tokens:
/// 1 000 000 for Sonnet/Opus 4.6 and later and the 5 family (Kiro's change of
/// 2026-03, protocol doc §5), 200 000 for the rest.
fn context_window_tokens(model_id: Option<&str>) -> f64 {
    match model_id.unwrap_or_default() {
        "claude-sonnet-4.6" | "claude-opus-4.6" | "claude-opus-4.7" | "claude-opus-4.8"
        | "claude-sonnet-5" | "claude-opus-5" => 1_000_000.0,
        _ => 200_000.0,
    }
}

/// The thinking directive may sit in the current message or, where gateways put the
/// system prompt, in the first history item.
fn wants_thinking(request: &GenerateAssistantResponseRequest) -> bool {
    let state = &request.conversation_state;
    if script::wants_thinking(&state.current_message.user_input_message.content) {
        return true;
    }
    matches!(
        state.history.first(),
        Some(ChatMessage::UserInputMessage(first)) if script::wants_thinking(&first.content)
    )
}

/// How the body ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Complete,
    /// The connection is dropped inside the body.
    Reset,
}

/// One frame of a reply.
#[derive(Debug)]
pub(crate) enum PlannedFrame {
    Encoded(Bytes),
    /// An `assistantResponseEvent` whose text gets `t<CLOCK_MONOTONIC ns> ` in front when
    /// it is sent.
    StampedText(String),
}

impl PlannedFrame {
    /// The bytes to send now.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            PlannedFrame::Encoded(bytes) => bytes,
            PlannedFrame::StampedText(text) => {
                frames::text_frame(&format!("t{} {text}", monotonic_nanos()))
            }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock every process on the machine shares, so a
/// client can subtract a stamp from its own reading of it.
pub(crate) fn monotonic_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let nanos = i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec);
    u64::try_from(nanos).unwrap_or(0)
}

/// Frames and their pacing.
#[derive(Debug)]
pub(crate) struct ReplyPlan {
    pub frames: Vec<PlannedFrame>,
    /// Frames sent with the response head, before the first pause: the Q-CLI dialect's
    /// `initial-response`, which the service sends when the call starts, not as model
    /// output. Pacing (`first_ms`, `delay_ms`) applies to the frames after it, so both
    /// dialects carry their content with the same timing.
    pub unpaced: usize,
    pub first_delay: Duration,
    pub delay: Duration,
    pub ending: Ending,
}

/// What the reply is built from.
#[derive(Debug)]
pub(crate) struct ReplyInput<'a> {
    pub dialect: Dialect,
    pub request: &'a GenerateAssistantResponseRequest,
    /// The current message's directives and its text without them.
    pub parsed: &'a Parsed<'a>,
    /// Size of the request body: the input-token estimate is a quarter of it.
    pub body_len: usize,
    /// A fault that plays out inside the stream (account fault or `[[sim error=...]]`).
    pub fault: Option<&'a FaultSpec>,
    pub max_output_words: usize,
}

pub(crate) fn build(input: &ReplyInput<'_>) -> ReplyPlan {
    let state = &input.request.conversation_state;
    let current = &state.current_message.user_input_message;
    let parsed = input.parsed;
    let script = &parsed.script;
    let context = current.user_input_message_context.as_ref();
    let tool_results = context.map_or(&[][..], |c| c.tool_results.as_slice());
    let declared = context.map_or(&[][..], |c| c.tools.as_slice());
    let picker = words::Picker::new(&parsed.prose);

    let mut frames: Vec<Bytes> = Vec::with_capacity(8 + script.words.unwrap_or(DEFAULT_WORDS));
    let conversation_id = Some(state.conversation_id.clone());
    match input.dialect {
        Dialect::QCli => frames.push(
            Event::InitialResponse {
                conversation_id: conversation_id.clone(),
            }
            .to_frame(),
        ),
        Dialect::Kiro => {}
    }
    frames.push(
        Event::MessageMetadata {
            conversation_id,
            utterance_id: Some(uuid::Uuid::new_v4().to_string()),
        }
        .to_frame(),
    );
    let preamble = frames.len();

    let mut text = Vec::new();
    if wants_thinking(input.request) {
        thinking_pieces(&picker, &mut text);
    }
    for result in tool_results {
        text.push(quote(&result.tool_use_id, &result.content));
    }
    let calls_tools = tool_results.is_empty() && !script.tools.is_empty();
    let default_words = if calls_tools {
        DEFAULT_WORDS_BEFORE_TOOL
    } else {
        DEFAULT_WORDS
    };
    let wanted = script.words.unwrap_or(default_words);
    let truncated = wanted > input.max_output_words;
    let count = wanted.min(input.max_output_words);
    let first_word_piece = text.len();
    word_pieces(&picker, count, script.chunk.unwrap_or(1), &mut text);
    let stamped = if script.stamp {
        first_word_piece..text.len()
    } else {
        0..0
    };

    let mut tool_frames = Vec::new();
    if calls_tools && !truncated {
        for call in &script.tools {
            match find_tool(declared, &call.name) {
                Some(name) => tool_call_frames(name, call, &mut tool_frames),
                None => text.push(format!(
                    "\nTool {} is not declared in this request's tools, so I cannot call it.",
                    call.name
                )),
            }
        }
    }
    let mut frames: Vec<PlannedFrame> = frames.into_iter().map(PlannedFrame::Encoded).collect();
    let mut output_chars = 0;
    for (index, piece) in text.into_iter().enumerate() {
        output_chars += piece.len();
        frames.push(if stamped.contains(&index) {
            PlannedFrame::StampedText(piece)
        } else {
            PlannedFrame::Encoded(frames::text_frame(&piece))
        });
    }
    frames.extend(tool_frames.into_iter().map(PlannedFrame::Encoded));

    if truncated {
        frames.push(PlannedFrame::Encoded(
            StreamError::Exception {
                exception_type: "ContentLengthExceededException".to_owned(),
                message: "Response exceeded the maximum output length.".to_owned(),
                reason: None,
            }
            .to_frame(),
        ));
    } else {
        let input_tokens = input.body_len / 4;
        let output_tokens = output_chars / 4;
        let usage = ((input_tokens + output_tokens) as f64 / 100_000.0).max(0.01);
        frames.push(PlannedFrame::Encoded(
            Event::Metering {
                unit: Some("credit".to_owned()),
                usage,
            }
            .to_frame(),
        ));
        let percentage =
            input_tokens as f64 / context_window_tokens(current.model_id.as_deref()) * 100.0;
        frames.push(PlannedFrame::Encoded(
            Event::ContextUsage { percentage }.to_frame(),
        ));
    }

    let mut plan = ReplyPlan {
        frames,
        unpaced: match input.dialect {
            Dialect::QCli => 1,
            Dialect::Kiro => 0,
        },
        first_delay: Duration::from_millis(script.first_ms.unwrap_or(0)),
        delay: Duration::from_millis(script.delay_ms.unwrap_or(0)),
        ending: Ending::Complete,
    };
    if let Some(fault) = input.fault {
        apply_stream_fault(&mut plan, fault, script, preamble);
    }
    plan
}

fn apply_stream_fault(plan: &mut ReplyPlan, fault: &FaultSpec, script: &Script, preamble: usize) {
    let cut = preamble + EVENTS_BEFORE_MIDSTREAM_FAULT;
    match fault.kind {
        FaultKind::SlowFirstByte => {
            let scripted = script.first_ms.map(Duration::from_millis);
            plan.first_delay = fault.delay.or(scripted).unwrap_or(DEFAULT_SLOW_FIRST_BYTE);
            // Not one byte of the body before the silence.
            plan.unpaced = 0;
        }
        FaultKind::MidstreamException => {
            plan.frames.truncate(cut);
            plan.frames.push(PlannedFrame::Encoded(
                StreamError::Exception {
                    exception_type: "InternalServerException".to_owned(),
                    message: "Encountered an unexpected error when processing the request, please try again."
                        .to_owned(),
                    reason: None,
                }
                .to_frame(),
            ));
        }
        FaultKind::MidstreamReset => {
            plan.frames.truncate(cut);
            plan.ending = Ending::Reset;
        }
        FaultKind::BadCrc => {
            plan.frames.truncate(cut);
            let mut corrupt = Event::AssistantResponse {
                content: " corrupted".to_owned(),
            }
            .to_frame()
            .to_vec();
            if let Some(last) = corrupt.last_mut() {
                *last ^= 0xff;
            }
            plan.frames
                .push(PlannedFrame::Encoded(Bytes::from(corrupt)));
        }
        // HTTP-level and refresh faults never reach a reply.
        FaultKind::Throttle
        | FaultKind::MonthlyQuota
        | FaultKind::Quota402
        | FaultKind::Suspended
        | FaultKind::ExpiredToken
        | FaultKind::InvalidModel
        | FaultKind::Overloaded
        | FaultKind::Unavailable
        | FaultKind::RefreshInvalidGrant
        | FaultKind::Refresh5xx => {}
    }
}

/// The opening thinking block, split inside both tags on purpose: a gateway's tag
/// scanner must cope with tags spread over events.
fn thinking_pieces(picker: &words::Picker<'_>, text: &mut Vec<String>) {
    let thoughts = picker.pick(6, 0x0074_6869_6e6b);
    text.push("<thin".to_owned());
    text.push(format!(
        "king>\nConsidering {} {} {}",
        thoughts[0], thoughts[1], thoughts[2]
    ));
    text.push(format!(
        " {} {} {}.\n</thi",
        thoughts[3], thoughts[4], thoughts[5]
    ));
    text.push("nking>\n\n".to_owned());
}

fn word_pieces(picker: &words::Picker<'_>, count: usize, chunk: usize, text: &mut Vec<String>) {
    let words = picker.pick(count, 0);
    for (i, group) in words.chunks(chunk.max(1)).enumerate() {
        let mut piece = String::with_capacity(group.iter().map(|w| w.len() + 1).sum());
        for (j, word) in group.iter().enumerate() {
            if i > 0 || j > 0 {
                piece.push(' ');
            }
            piece.push_str(word);
        }
        text.push(piece);
    }
}

fn quote(tool_use_id: &str, content: &[ToolResultContent]) -> String {
    let mut body = String::new();
    for block in content {
        match block {
            ToolResultContent::Text(t) => body.push_str(t),
            ToolResultContent::Json(v) => body.push_str(&v.to_string()),
        }
    }
    let shown: String = body.chars().take(QUOTE_CHARS).collect();
    let ellipsis = if shown.len() < body.len() { "…" } else { "" };
    format!("Tool result {tool_use_id}: {shown}{ellipsis}\n")
}

/// The declared spelling of a tool name (declarations match case-insensitively).
fn find_tool<'a>(declared: &'a [Tool], name: &str) -> Option<&'a str> {
    declared
        .iter()
        .map(|t| t.tool_specification.name.as_str())
        .find(|n| n.eq_ignore_ascii_case(name))
}

/// A tool call as the service streams it: the input JSON in two fragments, then a
/// closing event with `stop: true` and no input.
fn tool_call_frames(name: &str, call: &ToolCall, frames: &mut Vec<Bytes>) {
    let tool_use_id = format!("tooluse_{}", uuid::Uuid::new_v4().simple());
    let input = call.input.to_string();
    let mut mid = input.len() / 2;
    while !input.is_char_boundary(mid) {
        mid += 1;
    }
    let (head, tail) = input.split_at(mid);
    for fragment in [head, tail].into_iter().filter(|f| !f.is_empty()) {
        frames.push(
            Event::ToolUse {
                tool_use_id: tool_use_id.clone(),
                name: name.to_owned(),
                input: fragment.to_owned(),
                stop: false,
            }
            .to_frame(),
        );
    }
    frames.push(
        Event::ToolUse {
            tool_use_id,
            name: name.to_owned(),
            input: String::new(),
            stop: true,
        }
        .to_frame(),
    );
}
