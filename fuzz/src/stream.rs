//! The response state machine (`qgate_translate::response::StreamTranslator`) under
//! arbitrary Amazon Q event sequences — fragments of tool calls in any order, with or
//! without `stop`, repeated, nameless or id-less; thinking tags split anywhere; absurd
//! usage numbers; events after the end — and every way a stream can end.
//!
//! Properties: the output is a stream real SDKs accept (the shared validator); it is the
//! same after the SSE wire round trip (`write_sse`, then parsing it back); `has_content`
//! agrees with the stream; the non-streaming accumulator says exactly what the stream
//! says; every tool call in a message has its own id; and without thinking, the text the
//! client gets is the upstream's text (plus only the translator's own notices).

use crate::decode::pick_or_any;
use crate::validator::{Block, validate};
use arbitrary::{Arbitrary, Result, Unstructured};
use qgate_amazonq::Event;
use qgate_anthropic::{ApiError, ErrorKind, ResponseBlock, StreamEvent};
use qgate_translate::ToolNameMap;
use qgate_translate::response::{MessageAccumulator, StreamConfig, StreamTranslator};
use std::collections::{HashMap, HashSet};

const SHORT_TOOL_NAME: &str = "search_the_entire_repos_1f2e3d4c";
const LONG_TOOL_NAME: &str = "search_the_entire_repository_for_matching_symbols_and_references";

const TEXT: &[&str] = &[
    "<thinking>",
    "</thinking>",
    "<think",
    "ing>",
    "</thin",
    "king>",
    "\n",
    "",
    " ",
    "日本語 ",
    "answer",
    "[The upstream output limit cut off",
];
const TOOL_IDS: &[&str] = &["tooluse_0", "tooluse_1", "tooluse_2", ""];
const TOOL_NAMES: &[&str] = &["Read", "Bash", SHORT_TOOL_NAME, ""];
const INPUT_FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "{}",
    "\"path\":",
    "\"a/b\"",
    ",",
    "\"n\":1",
    "[1]",
    "null",
    " ",
    "\"",
];

mod scenario;

/// How the upstream stream ended.
#[derive(Debug, Arbitrary)]
enum Ending {
    Finish,
    OutputLimit,
    Fail,
}

/// The `stream_translator` target.
pub fn check(data: &[u8]) {
    let parsed = if data.first() == Some(&b'{') {
        serde_json::from_slice::<scenario::Scenario>(data)
            .map(scenario::Scenario::into_input)
            .ok()
    } else {
        input(&mut Unstructured::new(data)).ok()
    };
    let Some((thinking, ending, events, after)) = parsed else {
        return;
    };
    if std::env::var_os("QGATE_FUZZ_DUMP").is_some() {
        eprintln!("thinking {thinking}, {ending:?}, events {events:#?}, after the end {after:#?}");
    }
    let mut translator = StreamTranslator::new(StreamConfig {
        message_id: "msg_0123456789abcdefABCDEF01".to_owned(),
        model: "claude-sonnet-4-5".to_owned(),
        input_tokens: 1234,
        thinking,
        tool_names: ToolNameMap::new(HashMap::from([(
            SHORT_TOOL_NAME.to_owned(),
            LONG_TOOL_NAME.to_owned(),
        )])),
        context_window: 200_000,
    });
    let mut out = Vec::new();
    let upstream_text: String = events
        .iter()
        .filter_map(|e| match e {
            Event::AssistantResponse { content } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    let invalid_state = events
        .iter()
        .any(|e| matches!(e, Event::InvalidState { .. }));
    for event in events {
        translator.on_event(event, &mut out);
    }
    match ending {
        Ending::Finish => translator.finish(&mut out),
        Ending::OutputLimit => translator.on_output_limit(&mut out),
        Ending::Fail => translator.fail(&ApiError::new(ErrorKind::Overloaded, "busy"), &mut out),
    }
    assert!(translator.is_finished());
    let settled = out.len();
    // Nothing may follow the end, whatever the upstream still sends.
    for event in after {
        translator.on_event(event, &mut out);
    }
    translator.finish(&mut out);
    assert_eq!(out.len(), settled, "events after the end of the stream");
    let _ = (translator.usage(), translator.upstream_input_tokens());
    let _ = translator.metering_credits();

    let summary = match validate(&out, thinking) {
        Ok(summary) => summary,
        Err(problem) => panic!("invalid stream: {problem}\n{out:#?}"),
    };
    assert_eq!(
        translator.has_content(),
        out.iter().any(|e| e.name() == "content_block_start")
    );
    assert_eq!(
        wire_round_trip(&out),
        out,
        "the SSE wire form changes the stream"
    );

    let mut accumulator = MessageAccumulator::new();
    for event in &out {
        accumulator.apply(event);
    }
    let message = match (accumulator.finish(), summary.errored) {
        (Err(_), true) => return,
        (Ok(message), false) => message,
        (result, errored) => panic!("accumulator {result:?} but stream errored: {errored}"),
    };
    let stream_blocks: Vec<ResponseBlock> = summary.blocks.iter().map(Block::to_response).collect();
    assert_eq!(message.content, stream_blocks);
    assert_eq!(message.stop_reason, summary.stop_reason);
    assert_eq!(message.stop_reason, translator.stop_reason());
    assert_eq!(message.usage.output_tokens, summary.output_tokens);

    let mut ids = HashSet::new();
    for block in &message.content {
        if let ResponseBlock::ToolUse { id, .. } = block {
            assert!(ids.insert(id.clone()), "tool_use id {id} appears twice");
        }
    }
    if !thinking && !invalid_state {
        let texts: Vec<&str> = message
            .content
            .iter()
            .filter_map(|b| match b {
                ResponseBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let all: String = texts.concat();
        // The translator's notices are blocks of their own, with this start and end.
        let is_notice = |t: &&str| {
            (t.starts_with("[The upstream output limit cut off")
                && t.ends_with("splitting the content across several calls.]"))
                || *t
                    == "[The upstream model produced a tool call without a tool name, so it was not executed.]"
        };
        let without_notices: String = texts.iter().filter(|t| !is_notice(t)).copied().collect();
        assert!(
            all == upstream_text || without_notices == upstream_text,
            "the client's text differs from the upstream's:\n{all:?}\n{upstream_text:?}"
        );
    }
}

/// `write_sse`, then parsed back the way an SDK reads it.
fn wire_round_trip(events: &[StreamEvent]) -> Vec<StreamEvent> {
    let mut wire = Vec::new();
    for event in events {
        event.write_sse(&mut wire);
    }
    let text = match String::from_utf8(wire) {
        Ok(text) => text,
        Err(e) => panic!("SSE is not UTF-8: {e}"),
    };
    let mut parsed = Vec::new();
    for frame in text.split_terminator("\n\n") {
        let mut lines = frame.split('\n');
        let (Some(name), Some(data), None) = (lines.next(), lines.next(), lines.next()) else {
            panic!("an SSE event is not exactly two lines: {frame:?}");
        };
        let name = name.strip_prefix("event: ").unwrap_or_default();
        let data = data.strip_prefix("data: ").unwrap_or_default();
        let event: StreamEvent = match serde_json::from_str(data) {
            Ok(event) => event,
            Err(e) => panic!("SSE data does not parse back: {e}: {data}"),
        };
        assert_eq!(event.name(), name, "event: line and JSON type differ");
        parsed.push(event);
    }
    parsed
}

/// Thinking on, how it ends, the events, and events sent after the end.
type Input = (bool, Ending, Vec<Event>, Vec<Event>);

fn input(u: &mut Unstructured<'_>) -> Result<Input> {
    let thinking = u.arbitrary()?;
    let ending = u.arbitrary()?;
    let n = u.int_in_range(0usize..=64)?;
    let events = (0..n).map(|_| event(u)).collect::<Result<Vec<_>>>()?;
    let m = u.int_in_range(0usize..=3)?;
    let after = (0..m).map(|_| event(u)).collect::<Result<Vec<_>>>()?;
    Ok((thinking, ending, events, after))
}

fn event(u: &mut Unstructured<'_>) -> Result<Event> {
    Ok(match u.int_in_range(0u8..=12)? {
        0..=4 => Event::AssistantResponse {
            content: pick_or_any(u, TEXT)?,
        },
        5..=8 => Event::ToolUse {
            tool_use_id: pick_or_any(u, TOOL_IDS)?,
            name: pick_or_any(u, TOOL_NAMES)?,
            input: pick_or_any(u, INPUT_FRAGMENTS)?,
            stop: u.arbitrary()?,
        },
        9 => Event::Reasoning {
            text: pick_or_any(u, TEXT)?,
            signature: u.arbitrary()?,
        },
        10 => match u.int_in_range(0u8..=2)? {
            0 => Event::ContextUsage {
                percentage: u.arbitrary()?,
            },
            1 => Event::Metering {
                unit: u.arbitrary()?,
                usage: u.arbitrary()?,
            },
            _ => Event::TokenUsage {
                uncached_input_tokens: u.arbitrary()?,
                output_tokens: u.arbitrary()?,
                cache_read_input_tokens: u.arbitrary()?,
                cache_write_input_tokens: u.arbitrary()?,
            },
        },
        11 => match u.int_in_range(0u8..=1)? {
            0 => Event::MessageMetadata {
                conversation_id: u.arbitrary()?,
                utterance_id: u.arbitrary()?,
            },
            _ => Event::InitialResponse {
                conversation_id: u.arbitrary()?,
            },
        },
        _ => {
            if u.ratio(1u8, 4u8)? {
                Event::InvalidState {
                    reason: pick_or_any(u, &["INVALID_TASK_ASSIST_PLAN"])?,
                    message: String::arbitrary(u)?,
                }
            } else {
                Event::AssistantResponse {
                    content: String::arbitrary(u)?,
                }
            }
        }
    })
}
