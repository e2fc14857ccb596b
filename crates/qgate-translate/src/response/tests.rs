//! Unit and snapshot tests of the response translator (tests may unwrap: a panic is a failure).
#![allow(clippy::unwrap_used)]

use super::*;
use qgate_anthropic::{BlockStart, Delta, ResponseBlock};
use serde_json::json;
use std::collections::HashMap;

const MESSAGE_ID: &str = "msg_01a2b3c4d5e6f7a8b9c0d1e2";
const LONG_TOOL_NAME: &str =
    "mcp__workspace_server__search_the_entire_repository_for_matching_symbols";
const SHORT_TOOL_NAME: &str = "mcp__workspace_server__search_the_entire_repos_1f2e3d4c";

fn config(thinking: bool) -> StreamConfig {
    StreamConfig {
        message_id: MESSAGE_ID.to_owned(),
        model: "claude-sonnet-4-5".to_owned(),
        input_tokens: 42,
        thinking,
        tool_names: ToolNameMap::new(HashMap::from([(
            SHORT_TOOL_NAME.to_owned(),
            LONG_TOOL_NAME.to_owned(),
        )])),
        context_window: 200_000,
    }
}

enum End {
    Finish,
    OutputLimit,
    Fail(ApiError),
}

fn run(cfg: StreamConfig, events: Vec<Event>, end: End) -> (StreamTranslator, Vec<StreamEvent>) {
    let mut translator = StreamTranslator::new(cfg);
    let mut out = Vec::new();
    for event in events {
        translator.on_event(event, &mut out);
    }
    match end {
        End::Finish => translator.finish(&mut out),
        End::OutputLimit => translator.on_output_limit(&mut out),
        End::Fail(err) => translator.fail(&err, &mut out),
    }
    (translator, out)
}

fn sse(events: &[StreamEvent]) -> String {
    let mut bytes = Vec::new();
    for event in events {
        event.write_sse(&mut bytes);
    }
    String::from_utf8(bytes).unwrap()
}

/// The SSE transcript with the final output-token estimate masked: it comes from the
/// shared estimator, whose tuning must not churn these snapshots (the estimate has its
/// own test below).
fn transcript(events: &[StreamEvent]) -> String {
    let sse = sse(events);
    let mut masked = String::with_capacity(sse.len());
    for line in sse.split_inclusive('\n') {
        match line.split_once("\"output_tokens\":") {
            Some((head, tail)) if line.contains("\"message_delta\"") => {
                let digits = tail.chars().take_while(char::is_ascii_digit).count();
                masked.push_str(head);
                masked.push_str("\"output_tokens\":\"[estimate]\"");
                masked.push_str(&tail[digits..]);
            }
            Some(_) | None => masked.push_str(line),
        }
    }
    masked
}

fn accumulate(events: &[StreamEvent]) -> Result<MessageResponse, ApiError> {
    let mut acc = MessageAccumulator::new();
    for event in events {
        acc.apply(event);
    }
    acc.finish()
}

fn text(content: &str) -> Event {
    Event::AssistantResponse {
        content: content.to_owned(),
    }
}

fn tool(id: &str, name: &str, input: &str, stop: bool) -> Event {
    Event::ToolUse {
        tool_use_id: id.to_owned(),
        name: name.to_owned(),
        input: input.to_owned(),
        stop,
    }
}

fn stop_reason_of(events: &[StreamEvent]) -> Option<StopReason> {
    events.iter().find_map(|event| match event {
        StreamEvent::MessageDelta { delta, .. } => delta.stop_reason,
        _ => None,
    })
}

#[test]
fn snapshot_plain_text() {
    let events = vec![
        Event::InitialResponse {
            conversation_id: Some("conv-1".into()),
        },
        text("Hello"),
        text(""),
        text(", wörld!"),
        Event::Metering {
            unit: Some("credit".into()),
            usage: 0.02,
        },
        Event::ContextUsage { percentage: 1.5 },
    ];
    let (_, out) = run(config(false), events, End::Finish);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn snapshot_multi_tool_with_interleaved_text() {
    let events = vec![
        text("Let me look."),
        tool("tooluse_A1", "Read", "{\"file_path\":", false),
        text(" Reading now."),
        tool("tooluse_A1", "Read", "\"/etc/hosts\"}", false),
        tool("tooluse_A1", "Read", "", true),
        text("And search:"),
        tool(
            "tooluse_B2",
            SHORT_TOOL_NAME,
            "{\"query\":\"fn main\"}",
            true,
        ),
    ];
    let (_, out) = run(config(false), events, End::Finish);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn snapshot_thinking() {
    let events = vec![
        text("<thinking>\nThe user wants a greeting.</thinking>\n\nHi there!"),
        tool("tooluse_C3", "Bash", "{\"command\":\"date\"}", true),
    ];
    let (_, out) = run(config(true), events, End::Finish);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn snapshot_thinking_tags_split_mid_tag() {
    let events = vec![
        text("<thin"),
        text("king>"),
        text("\nPlan: a"),
        text(" < b</thi"),
        text("nking>\n"),
        text("\nAnswer: yes. Literal <thinking> stays text."),
    ];
    let (_, out) = run(config(true), events, End::Finish);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn snapshot_truncated_tool_call() {
    let events = vec![
        text("Writing the file."),
        tool(
            "tooluse_D4",
            "Write",
            "{\"file_path\":\"notes.txt\",\"content\":\"line 1\\nli",
            false,
        ),
    ];
    let (_, out) = run(config(false), events, End::Finish);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn snapshot_output_limit_mid_text() {
    let events = vec![text("The answer is"), text(" forty")];
    let (_, out) = run(config(false), events, End::OutputLimit);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn snapshot_mid_stream_failure() {
    let events = vec![text("Partial answer")];
    let err = ApiError::new(ErrorKind::Overloaded, "Amazon Q is overloaded");
    let (_, out) = run(config(false), events, End::Fail(err));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn message_start_needs_no_upstream_event() {
    let mut translator = StreamTranslator::new(config(false));
    let mut out = Vec::new();
    translator.start(&mut out);
    translator.start(&mut out);
    assert_eq!(out.len(), 1, "start is idempotent");
    let StreamEvent::MessageStart { message } = &out[0] else {
        panic!("first event must be message_start, got {:?}", out[0]);
    };
    assert!(message.content.is_empty());
    assert_eq!(message.id, MESSAGE_ID);
    assert_eq!(message.model, "claude-sonnet-4-5");
    assert_eq!(message.usage.input_tokens, 42);
    assert_eq!(message.usage.output_tokens, 1);
    assert_eq!(message.stop_reason, None);
    assert!(!translator.has_content());
}

#[test]
fn finish_is_idempotent_and_later_events_are_ignored() {
    let (mut translator, mut out) = run(config(false), vec![text("hi")], End::Finish);
    let len = out.len();
    translator.finish(&mut out);
    translator.on_output_limit(&mut out);
    translator.on_event(text("more"), &mut out);
    translator.fail(&ApiError::new(ErrorKind::Api, "late"), &mut out);
    assert_eq!(out.len(), len);
    assert!(translator.is_finished());
    assert_eq!(translator.stop_reason(), Some(StopReason::EndTurn));
}

#[test]
fn fail_emits_one_error_and_nothing_after() {
    let (mut translator, mut out) = run(
        config(false),
        vec![text("x")],
        End::Fail(ApiError::new(ErrorKind::Api, "boom")),
    );
    translator.finish(&mut out);
    let last = out.last().unwrap();
    assert_eq!(
        serde_json::to_value(last).unwrap(),
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    );
    assert_eq!(out.iter().filter(|e| e.name() == "error").count(), 1);
    assert!(!out.iter().any(|e| e.name() == "content_block_stop"));
    assert_eq!(translator.stop_reason(), None);
    let err = accumulate(&out).unwrap_err();
    assert_eq!((err.kind, err.message.as_str()), (ErrorKind::Api, "boom"));
}

#[test]
fn pending_tool_call_is_not_content_until_released() {
    let mut translator = StreamTranslator::new(config(false));
    let mut out = Vec::new();
    translator.on_event(tool("t", "Bash", "{\"command\":", false), &mut out);
    assert!(!translator.has_content());
    translator.on_event(tool("t", "Bash", "\"ls\"}", true), &mut out);
    assert!(translator.has_content());
}

#[test]
fn thinking_tags_are_plain_text_when_thinking_is_off() {
    let reply = "<thinking>\nabc</thinking>\n\nhello";
    let (_, out) = run(config(false), vec![text(reply)], End::Finish);
    let message = accumulate(&out).unwrap();
    assert_eq!(
        message.content,
        vec![ResponseBlock::Text { text: reply.into() }]
    );
}

#[test]
fn thinking_and_tool_use_accumulate_in_order() {
    let events = vec![
        text("<thinking>plan</thinking>Doing it."),
        tool("tooluse_1", SHORT_TOOL_NAME, "{\"query\":", false),
        tool("tooluse_1", SHORT_TOOL_NAME, "\"x\"}", true),
        tool("tooluse_2", "Now", "", true),
    ];
    let (translator, out) = run(config(true), events, End::Finish);
    let message = accumulate(&out).unwrap();
    assert_eq!(
        message.content,
        vec![
            ResponseBlock::Thinking {
                thinking: "plan".into(),
                signature: String::new()
            },
            ResponseBlock::Text {
                text: "Doing it.".into()
            },
            ResponseBlock::ToolUse {
                id: "tooluse_1".into(),
                name: LONG_TOOL_NAME.into(),
                input: json!({"query": "x"})
            },
            ResponseBlock::ToolUse {
                id: "tooluse_2".into(),
                name: "Now".into(),
                input: json!({})
            },
        ]
    );
    assert_eq!(message.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(translator.stop_reason(), Some(StopReason::ToolUse));
    assert_eq!(message.stop_sequence, None);
    assert_eq!(message.usage, translator.usage());
}

#[test]
fn reasoning_event_becomes_a_signed_thinking_block() {
    let events = vec![
        Event::Reasoning {
            text: "native thought".into(),
            signature: None,
        },
        Event::Reasoning {
            text: String::new(),
            signature: Some("sig-123".into()),
        },
        text("answer"),
    ];
    let (_, out) = run(config(true), events.clone(), End::Finish);
    assert!(out.iter().any(|e| matches!(e,
        StreamEvent::ContentBlockDelta { index: 0, delta: Delta::SignatureDelta { signature } }
            if signature == "sig-123")));
    let message = accumulate(&out).unwrap();
    assert_eq!(
        message.content,
        vec![
            ResponseBlock::Thinking {
                thinking: "native thought".into(),
                signature: "sig-123".into()
            },
            ResponseBlock::Text {
                text: "answer".into()
            },
        ]
    );
    let (_, out) = run(config(false), events, End::Finish);
    let message = accumulate(&out).unwrap();
    assert_eq!(
        message.content,
        vec![ResponseBlock::Text {
            text: "answer".into()
        }],
        "no thinking unless the client asked for it"
    );
}

#[test]
fn thinking_block_start_carries_empty_thinking_and_signature() {
    let (_, out) = run(
        config(true),
        vec![text("<thinking>t</thinking>x")],
        End::Finish,
    );
    assert!(out.iter().any(|e| matches!(e,
        StreamEvent::ContentBlockStart { index: 0, content_block: BlockStart::Thinking { thinking, signature } }
            if thinking.is_empty() && signature.is_empty())));
    assert!(
        !out.iter().any(|e| matches!(
            e,
            StreamEvent::ContentBlockDelta {
                delta: Delta::SignatureDelta { .. },
                ..
            }
        )),
        "no signature_delta without a real signature"
    );
}

#[test]
fn context_usage_gives_upstream_input_tokens_and_metadata_wins() {
    let (translator, out) = run(
        config(false),
        vec![Event::ContextUsage { percentage: 12.5 }, text("hi")],
        End::Finish,
    );
    assert_eq!(translator.upstream_input_tokens(), Some(25_000));
    assert_eq!(translator.usage().input_tokens, 25_000);
    assert_eq!(accumulate(&out).unwrap().usage.input_tokens, 25_000);
    assert_eq!(stop_reason_of(&out), Some(StopReason::EndTurn));

    let (translator, _) = run(
        config(false),
        vec![
            Event::ContextUsage { percentage: 12.5 },
            Event::TokenUsage {
                uncached_input_tokens: Some(900),
                output_tokens: Some(7),
                cache_read_input_tokens: Some(100),
                cache_write_input_tokens: None,
            },
        ],
        End::Finish,
    );
    assert_eq!(translator.upstream_input_tokens(), Some(1_000));
    let usage = translator.usage();
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (900, 7),
        "upstream-reported usage wins"
    );
    assert_eq!(usage.cache_read_input_tokens, Some(100));
}

#[test]
fn full_context_still_ends_the_turn() {
    let (_, out) = run(
        config(false),
        vec![text("done"), Event::ContextUsage { percentage: 100.0 }],
        End::Finish,
    );
    assert_eq!(stop_reason_of(&out), Some(StopReason::EndTurn));
}

#[test]
fn output_tokens_are_estimated_over_text_thinking_and_tool_json() {
    let (translator, _) = run(config(true), vec![], End::Finish);
    assert_eq!(translator.usage().output_tokens, 0);
    let tool_json = "{\"command\":\"echo hello world\"}";
    let events = vec![
        text("<thinking>abcd efgh</thinking>"),
        text("ijkl"),
        tool("t", "Bash", tool_json, true),
    ];
    let (translator, _) = run(config(true), events, End::Finish);
    let expected = crate::tokens::estimate_text(&format!("abcd efghijkl{tool_json}"));
    assert_eq!(translator.usage().output_tokens, expected);
}

#[test]
fn large_tool_input_arrives_whole_in_several_pieces() {
    let content = "é".repeat(10_000);
    let input = json!({"file_path": "big.txt", "content": content}).to_string();
    let (_, out) = run(
        config(false),
        vec![tool("t", "Write", &input, true)],
        End::Finish,
    );
    let pieces = out
        .iter()
        .filter(|e| {
            matches!(
                e,
                StreamEvent::ContentBlockDelta {
                    delta: Delta::InputJsonDelta { .. },
                    ..
                }
            )
        })
        .count();
    assert!(pieces > 1, "{pieces} piece(s)");
    let message = accumulate(&out).unwrap();
    let ResponseBlock::ToolUse { input: parsed, .. } = &message.content[0] else {
        panic!("expected a tool_use block, got {:?}", message.content);
    };
    assert_eq!(parsed["content"], json!(content));
}

#[test]
fn tool_call_without_id_gets_a_unique_one() {
    let events = vec![tool("", "A", "{}", true), tool("", "B", "{}", true)];
    let (_, out) = run(config(false), events, End::Finish);
    let ids: Vec<String> = accumulate(&out)
        .unwrap()
        .content
        .into_iter()
        .filter_map(|block| match block {
            ResponseBlock::ToolUse { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "fragments with the same (empty) id form one call"
    );
    assert!(ids[0].starts_with("toolu_"), "{ids:?}");
}

#[test]
fn complete_tool_call_without_stop_is_released_at_the_end() {
    let (_, out) = run(
        config(false),
        vec![tool("t", "Bash", "{\"command\":\"ls\"}", false)],
        End::Finish,
    );
    let message = accumulate(&out).unwrap();
    assert_eq!(message.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(message.content.len(), 1);
}

#[test]
fn truncated_tool_call_on_output_limit_becomes_a_notice() {
    let events = vec![tool("t", "Write", "{\"content\":\"abc", false)];
    let (translator, out) = run(config(false), events, End::OutputLimit);
    assert!(!out.iter().any(|e| matches!(
        e,
        StreamEvent::ContentBlockStart {
            content_block: BlockStart::ToolUse { .. },
            ..
        }
    )));
    let message = accumulate(&out).unwrap();
    let [ResponseBlock::Text { text }] = message.content.as_slice() else {
        panic!("expected one notice block, got {:?}", message.content);
    };
    assert!(text.contains("`Write`"), "{text}");
    assert_eq!(translator.stop_reason(), Some(StopReason::MaxTokens));
}

#[test]
fn invalid_state_ends_with_an_api_error() {
    let events = vec![
        text("a"),
        Event::InvalidState {
            reason: "INVALID_TASK_ASSIST_PLAN".into(),
            message: "free text from upstream".into(),
        },
        text("b"),
    ];
    let mut translator = StreamTranslator::new(config(false));
    let mut out = Vec::new();
    for event in events {
        translator.on_event(event, &mut out);
    }
    assert!(translator.is_finished());
    let err = accumulate(&out).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Api);
    assert!(err.message.contains("INVALID_TASK_ASSIST_PLAN"));
    assert!(!err.message.contains("free text"));
}

#[test]
fn accumulator_rejects_an_unfinished_stream() {
    let mut translator = StreamTranslator::new(config(false));
    let mut out = Vec::new();
    translator.on_event(text("half"), &mut out);
    assert_eq!(accumulate(&out).unwrap_err().kind, ErrorKind::Api);
    assert_eq!(accumulate(&[]).unwrap_err().kind, ErrorKind::Api);
}

#[test]
fn nameless_tool_call_becomes_a_notice_not_a_tool_use_block() {
    // Found by fuzzing: fuzz/regressions/stream_translator/nameless_tool_call.json.
    let (tr, events) = run(
        config(false),
        vec![tool("tooluse_1", "", "{}", true)],
        End::Finish,
    );
    let message = accumulate(&events).unwrap();
    assert!(
        message
            .content
            .iter()
            .all(|b| !matches!(b, qgate_anthropic::ResponseBlock::ToolUse { .. })),
        "{message:?}"
    );
    assert_eq!(tr.stop_reason(), Some(StopReason::EndTurn));
}

#[test]
fn absurd_upstream_token_counts_saturate_instead_of_overflowing() {
    // Found by fuzzing: fuzz/regressions/stream_translator/usage_overflow.json.
    let (tr, events) = run(
        config(false),
        vec![
            text("hi"),
            Event::TokenUsage {
                uncached_input_tokens: Some(u64::MAX),
                output_tokens: Some(1),
                cache_read_input_tokens: Some(1),
                cache_write_input_tokens: None,
            },
        ],
        End::Finish,
    );
    assert!(accumulate(&events).is_ok());
    assert_eq!(tr.upstream_input_tokens(), Some(u64::MAX));
}
