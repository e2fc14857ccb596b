//! Property test of the response translator: arbitrary Amazon Q event sequences always
//! become a valid Anthropic stream, and the non-streaming message built from that stream
//! says exactly what the stream says.

use proptest::prelude::*;
use qgate_amazonq::Event;
use qgate_anthropic::{ApiError, ErrorKind, ResponseBlock, StopReason};
use qgate_translate::ToolNameMap;
use qgate_translate::response::{MessageAccumulator, StreamConfig, StreamTranslator};
use serde_json::{Value, json};
use std::collections::HashMap;

#[path = "response_stream/validator.rs"]
mod validator;

use validator::{Block, validate};

const SHORT_TOOL_NAME: &str = "search_the_entire_repos_1f2e3d4c";
const LONG_TOOL_NAME: &str = "search_the_entire_repository_for_matching_symbols_and_references";
const NOTICE_START: &str = "[The upstream output limit cut off";

/// One tool call the upstream would like to make.
#[derive(Debug, Clone)]
struct ToolPlan {
    name: &'static str,
    input: Value,
    /// Byte positions where the input string is cut into fragments.
    cuts: Vec<proptest::sample::Index>,
    /// 0: never sends `stop`; 1: `stop` on the last fragment; 2: a separate empty `stop`.
    stop_mode: u8,
    /// Sends `stop` after a cut-off input, as a broken upstream would.
    corrupt: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Text(String),
    /// The next fragment of tool call `n % plans`.
    Tool(usize),
    Reasoning(String),
    ContextUsage(f64),
    Metering,
    TokenUsage(u64),
    Metadata,
}

#[derive(Debug, Clone)]
enum End {
    Finish,
    OutputLimit,
    Fail,
}

fn text_chunk() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<thinking>".to_owned()),
        Just("</thinking>".to_owned()),
        Just("<think".to_owned()),
        Just("ing>".to_owned()),
        Just("</thin".to_owned()),
        Just("\n".to_owned()),
        Just(String::new()),
        Just("日本語 ".to_owned()),
        "[a-zA-Z0-9 .,<>/\n]{1,12}",
    ]
}

fn tool_plan() -> impl Strategy<Value = ToolPlan> {
    (
        prop::sample::select(vec!["Read", "Bash", SHORT_TOOL_NAME]),
        "[a-z/ \"\\\\é]{0,16}",
        any::<i32>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        0u8..3,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(name, path, n, cuts, stop_mode, corrupt)| ToolPlan {
            name,
            input: json!({"path": path, "n": n, "nested": {"list": [1, 2]}}),
            cuts,
            stop_mode,
            corrupt,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => text_chunk().prop_map(Op::Text),
        6 => (0usize..8).prop_map(Op::Tool),
        1 => "[a-z ]{0,8}".prop_map(Op::Reasoning),
        1 => (0.0f64..120.0).prop_map(Op::ContextUsage),
        1 => Just(Op::Metering),
        1 => (0u64..5000).prop_map(Op::TokenUsage),
        1 => Just(Op::Metadata),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![6 => Just(End::Finish), 3 => Just(End::OutputLimit), 1 => Just(End::Fail)]
}

/// What the upstream sent, made concrete, and what the client must therefore see.
struct Scenario {
    events: Vec<Event>,
    /// Concatenated `assistantResponseEvent` text.
    text: String,
    /// Per tool call: whether it was sent whole (then it must arrive), and its input.
    tools: Vec<(String, &'static str, bool, Value)>,
    /// Some tool call was started but never completed.
    has_cut_off_call: bool,
}

fn fragments(plan: &ToolPlan) -> Vec<String> {
    let mut full = plan.input.to_string();
    if plan.corrupt {
        full.truncate(full.len() / 2);
        while !full.is_char_boundary(full.len()) {
            full.pop();
        }
    }
    let mut cuts: Vec<usize> = plan
        .cuts
        .iter()
        .map(|cut| cut.index(full.len() + 1))
        .filter(|&at| full.is_char_boundary(at))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for at in cuts {
        pieces.push(full[from..at].to_owned());
        from = at;
    }
    pieces.push(full[from..].to_owned());
    pieces
}

fn build(plans: &[ToolPlan], ops: &[Op]) -> Scenario {
    let mut events = Vec::new();
    let mut text = String::new();
    let fragment_lists: Vec<Vec<String>> = plans.iter().map(fragments).collect();
    // Per plan: fragments sent so far, and whether `stop` was sent.
    let mut sent = vec![0usize; plans.len()];
    let mut stopped = vec![false; plans.len()];
    for op in ops {
        match op {
            Op::Text(chunk) => {
                text.push_str(chunk);
                events.push(Event::AssistantResponse {
                    content: chunk.clone(),
                });
            }
            Op::Tool(n) if !plans.is_empty() => {
                let k = n % plans.len();
                let plan = &plans[k];
                let list = &fragment_lists[k];
                let id = format!("tooluse_{k}");
                if stopped[k] {
                    continue;
                }
                if sent[k] < list.len() {
                    let last = sent[k] + 1 == list.len();
                    let stop = last && (plan.stop_mode == 1 || plan.corrupt);
                    events.push(Event::ToolUse {
                        tool_use_id: id,
                        name: plan.name.to_owned(),
                        input: list[sent[k]].clone(),
                        stop,
                    });
                    sent[k] += 1;
                    stopped[k] = stop;
                } else if plan.stop_mode == 2 {
                    events.push(Event::ToolUse {
                        tool_use_id: id,
                        name: plan.name.to_owned(),
                        input: String::new(),
                        stop: true,
                    });
                    stopped[k] = true;
                }
            }
            Op::Tool(_) => {}
            Op::Reasoning(thought) => events.push(Event::Reasoning {
                text: thought.clone(),
                signature: None,
            }),
            Op::ContextUsage(percentage) => events.push(Event::ContextUsage {
                percentage: *percentage,
            }),
            Op::Metering => events.push(Event::Metering {
                unit: Some("credit".into()),
                usage: 0.01,
            }),
            Op::TokenUsage(tokens) => events.push(Event::TokenUsage {
                uncached_input_tokens: Some(*tokens),
                output_tokens: None,
                cache_read_input_tokens: None,
                cache_write_input_tokens: None,
            }),
            Op::Metadata => events.push(Event::MessageMetadata {
                conversation_id: Some("c".into()),
                utterance_id: None,
            }),
        }
    }
    let mut tools = Vec::new();
    let mut has_cut_off_call = false;
    for (k, plan) in plans.iter().enumerate() {
        if sent[k] == 0 {
            continue;
        }
        // Unsent trailing fragments may be empty: what counts is whether the input is whole.
        let full_input = plan.input.to_string();
        let whole = !plan.corrupt && fragment_lists[k][..sent[k]].concat() == full_input;
        has_cut_off_call |= !whole;
        tools.push((format!("tooluse_{k}"), plan.name, whole, plan.input.clone()));
    }
    Scenario {
        events,
        text,
        tools,
        has_cut_off_call,
    }
}

fn config(thinking: bool) -> StreamConfig {
    StreamConfig {
        message_id: "msg_0123456789abcdefABCDEF01".to_owned(),
        model: "claude-opus-4-8".to_owned(),
        input_tokens: 1234,
        thinking,
        tool_names: ToolNameMap::new(HashMap::from([(
            SHORT_TOOL_NAME.to_owned(),
            LONG_TOOL_NAME.to_owned(),
        )])),
        context_window: 200_000,
    }
}

fn client_name(upstream: &str) -> &str {
    if upstream == SHORT_TOOL_NAME {
        LONG_TOOL_NAME
    } else {
        upstream
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_upstream_sequence_gives_a_valid_stream_and_a_matching_message(
        plans in prop::collection::vec(tool_plan(), 0..4),
        ops in prop::collection::vec(op(), 0..40),
        end in end(),
        thinking in any::<bool>(),
    ) {
        let scenario = build(&plans, &ops);
        let mut translator = StreamTranslator::new(config(thinking));
        let mut out = Vec::new();
        for event in scenario.events.clone() {
            translator.on_event(event, &mut out);
        }
        match end {
            End::Finish => translator.finish(&mut out),
            End::OutputLimit => translator.on_output_limit(&mut out),
            End::Fail => translator.fail(&ApiError::new(ErrorKind::Overloaded, "busy"), &mut out),
        }
        prop_assert!(translator.is_finished());

        let summary = match validate(&out, thinking) {
            Ok(summary) => summary,
            Err(problem) => return Err(TestCaseError::fail(format!("{problem}\n{out:#?}"))),
        };
        let started_a_block = out.iter().any(|event| event.name() == "content_block_start");
        prop_assert_eq!(translator.has_content(), started_a_block);

        let mut acc = MessageAccumulator::new();
        for event in &out {
            acc.apply(event);
        }
        let result = acc.finish();
        if let End::Fail = end {
            prop_assert!(summary.errored);
            prop_assert_eq!(result.map_err(|e| e.kind), Err(ErrorKind::Overloaded));
            prop_assert_eq!(translator.stop_reason(), None);
            return Ok(());
        }
        let message = match result {
            Ok(message) => message,
            Err(err) => return Err(TestCaseError::fail(format!("accumulator failed: {err}"))),
        };

        // The message says what the stream says.
        let stream_blocks: Vec<ResponseBlock> = summary.blocks.iter().map(Block::to_response).collect();
        prop_assert_eq!(&message.content, &stream_blocks);
        prop_assert_eq!(message.stop_reason, summary.stop_reason);
        prop_assert_eq!(message.usage.output_tokens, summary.output_tokens);
        prop_assert_eq!(message.stop_reason, translator.stop_reason());

        // Every whole tool call arrives once, with its input; no cut-off call arrives.
        for (id, name, whole, input) in &scenario.tools {
            let found: Vec<&ResponseBlock> = message.content.iter().filter(|block| {
                matches!(block, ResponseBlock::ToolUse { id: got, .. } if got == id)
            }).collect();
            if *whole {
                let expected = ResponseBlock::ToolUse {
                    id: id.clone(),
                    name: client_name(name).to_owned(),
                    input: input.clone(),
                };
                prop_assert_eq!(found, vec![&expected]);
            } else {
                prop_assert!(found.is_empty(), "cut-off call {} reached the client", id);
            }
        }
        let has_notice = message.content.iter().any(|block| {
            matches!(block, ResponseBlock::Text { text } if text.starts_with(NOTICE_START))
        });
        prop_assert_eq!(has_notice, scenario.has_cut_off_call);

        let called_a_tool = message.content.iter().any(|b| matches!(b, ResponseBlock::ToolUse { .. }));
        let expected_stop = if matches!(end, End::OutputLimit) || scenario.has_cut_off_call {
            StopReason::MaxTokens
        } else if called_a_tool {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        };
        prop_assert_eq!(message.stop_reason, Some(expected_stop));

        // Without thinking, the reply text arrives unchanged (notices aside).
        if !thinking {
            let text: String = message.content.iter().filter_map(|block| match block {
                ResponseBlock::Text { text } if !text.starts_with(NOTICE_START) => Some(text.as_str()),
                _ => None,
            }).collect();
            prop_assert_eq!(text, scenario.text);
        }
    }
}
