//! Generated conversations (random orders of text, tool calls and results, images,
//! thinking, same-role runs, orphans, duplicates, system entries, trailing assistant
//! turns, empty contents, long tool names) always translate into a body the service
//! accepts, and nothing the user or a tool produced is lost.

use super::invariants;
use proptest::prelude::*;
use qgate_anthropic::MessagesRequest;
use qgate_translate::request::{RequestOptions, TranslateError, translate};
use serde_json::{Value, json};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

const TOOL_NAMES: &[&str] = &[
    "Bash",
    "bash",
    "Read",
    "mcp__an_extremely_long_server_name_for_testing__and_an_even_longer_tool_name_x",
    "tool with spaces.and.dots",
];

#[derive(Debug, Clone)]
enum Block {
    Text(String),
    EmptyText,
    Image,
    ToolUse {
        id: u8,
        name: usize,
    },
    ToolResult {
        id: u8,
        text: String,
        is_error: bool,
        image: bool,
        as_blocks: bool,
    },
    Thinking(String),
    RedactedThinking,
    Unknown,
}

#[derive(Debug, Clone)]
struct Msg {
    role: usize,
    as_string: bool,
    blocks: Vec<Block>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ]{1,12}",
        Just("  ".to_owned()),
        Just("中文内容".to_owned()),
        Just(String::new()),
    ]
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        3 => text().prop_map(Block::Text),
        1 => Just(Block::EmptyText),
        1 => Just(Block::Image),
        3 => (0u8..6, 0..TOOL_NAMES.len()).prop_map(|(id, name)| Block::ToolUse { id, name }),
        3 => (0u8..6, text(), any::<bool>(), prop::bool::weighted(0.15), any::<bool>())
            .prop_map(|(id, text, is_error, image, as_blocks)| Block::ToolResult { id, text, is_error, image, as_blocks }),
        1 => text().prop_map(Block::Thinking),
        1 => Just(Block::RedactedThinking),
        1 => Just(Block::Unknown),
    ]
}

fn message() -> impl Strategy<Value = Msg> {
    (
        prop_oneof![4 => Just(0usize), 4 => Just(1usize), 1 => Just(2usize)],
        prop::bool::weighted(0.15),
        prop::collection::vec(block(), 0..5),
    )
        .prop_map(|(role, as_string, blocks)| Msg {
            role,
            as_string,
            blocks,
        })
}

fn conversation() -> impl Strategy<Value = (Vec<Msg>, Vec<usize>, u8, bool)> {
    (
        prop::collection::vec(message(), 1..14),
        prop::collection::vec(0..TOOL_NAMES.len(), 0..4),
        0u8..4,
        any::<bool>(),
    )
}

/// Markers that must appear in the output, and how many images went in.
#[derive(Default)]
struct Expectations {
    user_texts: Vec<String>,
    system_texts: Vec<String>,
    result_texts: Vec<String>,
    images: usize,
}

/// Builds the request JSON. Every piece of text carries a unique marker so the output
/// can be searched for it.
fn build(
    messages: &[Msg],
    declared: &[usize],
    thinking: u8,
    system: bool,
) -> (Value, Expectations) {
    let mut expect = Expectations::default();
    let mut counter = 0;
    let mut marker = |prefix: &str, body: &str| {
        counter += 1;
        format!("{prefix}{counter}:{body}")
    };
    let mut seen_result_ids = std::collections::HashSet::new();
    let mut json_messages = Vec::new();
    for msg in messages {
        let role = ["user", "assistant", "system"][msg.role];
        if msg.as_string {
            let text = marker("S", "plain");
            match msg.role {
                0 => expect.user_texts.push(text.clone()),
                2 => expect.system_texts.push(text.clone()),
                _ => {}
            }
            json_messages.push(json!({"role": role, "content": text}));
            continue;
        }
        let mut content = Vec::new();
        for block in &msg.blocks {
            content.push(match block {
                Block::Text(body) => {
                    let text = if body.trim().is_empty() { body.clone() } else { marker("T", body) };
                    if !body.trim().is_empty() {
                        match msg.role {
                            0 => expect.user_texts.push(text.clone()),
                            2 => expect.system_texts.push(text.clone()),
                            _ => {}
                        }
                    }
                    json!({"type": "text", "text": text, "citations": null})
                }
                Block::EmptyText => json!({"type": "text", "text": ""}),
                Block::Image => {
                    if msg.role == 0 {
                        expect.images += 1;
                    }
                    json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}})
                }
                Block::ToolUse { id, name } => json!({
                    "type": "tool_use", "id": format!("toolu_{id}"), "name": TOOL_NAMES[*name],
                    "input": {"n": id}
                }),
                Block::ToolResult { id, text: body, is_error, image, as_blocks } => {
                    let id = format!("toolu_{id}");
                    let text = if body.trim().is_empty() { body.clone() } else { marker("R", body) };
                    let first_for_id = msg.role == 0 && seen_result_ids.insert(id.clone());
                    if first_for_id && !body.trim().is_empty() {
                        expect.result_texts.push(text.clone());
                    }
                    let mut parts = vec![json!({"type": "text", "text": text})];
                    if *image {
                        parts.push(json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}));
                        if msg.role == 0 {
                            expect.images += 1;
                        }
                    }
                    let content = if *as_blocks || *image { json!(parts) } else { json!(text) };
                    json!({"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error})
                }
                Block::Thinking(body) => json!({"type": "thinking", "thinking": body, "signature": "c2ln"}),
                Block::RedactedThinking => json!({"type": "redacted_thinking", "data": "opaque"}),
                Block::Unknown => json!({"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}}),
            });
        }
        json_messages.push(json!({"role": role, "content": content}));
    }
    let mut tools: Vec<Value> = declared
        .iter()
        .map(|n| json!({"name": TOOL_NAMES[*n], "description": "", "input_schema": {"type": "OBJECT", "required": null}}))
        .collect();
    tools.push(json!({"type": "web_search_20250305", "name": "web_search"}));
    let thinking = match thinking {
        0 => json!(null),
        1 => json!({"type": "enabled", "budget_tokens": 1024}),
        2 => json!({"type": "adaptive"}),
        _ => json!({"type": "disabled"}),
    };
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "messages": json_messages,
        "tools": tools,
        "thinking": thinking,
    });
    if system {
        let text = marker("SYS", "top");
        expect.system_texts.push(text.clone());
        body["system"] =
            json!([{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]);
    }
    (body, expect)
}

const OPTS: RequestOptions<'static> = RequestOptions {
    model_id: "claude-sonnet-4.5",
    origin: "CLI",
    profile_arn: None,
    session_id: Some("generated-session"),
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn translated_requests_are_always_acceptable_and_lossless(
        (messages, declared, thinking, system) in conversation()
    ) {
        let (json, expect) = build(&messages, &declared, thinking, system);
        let req: MessagesRequest = serde_json::from_value(json).expect("generated JSON parses");
        let has_user = messages.iter().any(|m| m.role == 0);
        let t = match translate(&req, &OPTS) {
            Ok(t) => t,
            Err(TranslateError::NoUserMessage) => {
                prop_assert!(!has_user);
                return Ok(());
            }
            Err(TranslateError::TooManyImages { count }) => {
                prop_assert!(count > 10);
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected error: {other}"))),
        };
        prop_assert!(has_user);
        if let Err(violation) = invariants::check(&t.body) {
            return Err(TestCaseError::fail(format!("{violation}\nrepairs: {:?}\nbody: {:#?}", t.repairs, t.body)));
        }
        let output = serde_json::to_string(&t.body).expect("serializes");
        for text in expect.user_texts.iter().chain(&expect.system_texts).chain(&expect.result_texts) {
            prop_assert!(output.contains(&json_escaped(text)), "lost {text:?}; repairs {:?}", t.repairs);
        }
        {
            let state = &t.body.conversation_state;
            let images = state.current_message.user_input_message.images.len()
                + state.history.iter().map(|item| match item {
                    qgate_amazonq::ChatMessage::UserInputMessage(u) => u.images.len(),
                    qgate_amazonq::ChatMessage::AssistantResponseMessage(_) => 0,
                }).sum::<usize>();
            prop_assert_eq!(images, expect.images.min(10));
        }
        prop_assert_eq!(t.thinking, thinking == 1 || thinking == 2);
    }
}

fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("string serializes");
    quoted[1..quoted.len() - 1].to_owned()
}
