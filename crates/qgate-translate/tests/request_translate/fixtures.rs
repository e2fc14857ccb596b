//! Captured Claude Code request bodies translate into acceptable upstream requests.

use super::invariants;
use qgate_amazonq::ChatMessage;
use qgate_anthropic::{CountTokensRequest, MessagesRequest};
use qgate_translate::request::{Repair, RequestOptions, translate};
use serde_json::Value;

fn fixture_body(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/claude-code/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut capture: Value = serde_json::from_str(&text).expect("fixture is JSON");
    capture["body"].take()
}

fn options(session_id: Option<&str>) -> RequestOptions<'_> {
    RequestOptions {
        model_id: "claude-opus-4.8",
        origin: "AI_EDITOR",
        profile_arn: None,
        session_id,
    }
}

fn system_item(body: &qgate_amazonq::GenerateAssistantResponseRequest) -> &str {
    match body.conversation_state.history.first() {
        Some(ChatMessage::UserInputMessage(user)) => &user.content,
        other => panic!("no leading system pair: {other:?}"),
    }
}

#[test]
fn claude_code_first_turn_translates() {
    let raw = fixture_body("first-turn.json");
    let req: MessagesRequest = serde_json::from_value(raw.clone()).expect("parses");
    let session = req.session_id();
    assert_eq!(
        session.as_deref(),
        Some("0149c1dd-471e-41b2-a989-8a28586cdc81")
    );
    let t = translate(&req, &options(session.as_deref())).expect("translates");
    invariants::check(&t.body).expect("acceptable upstream");

    let state = &t.body.conversation_state;
    assert_eq!(
        state.conversation_id,
        "0149c1dd-471e-41b2-a989-8a28586cdc81"
    );
    assert!(t.thinking);

    // Every system block and the trailing `role:"system"` message survive, directive first.
    let system = system_item(&t.body);
    assert!(system.starts_with(
        "<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>\n"
    ));
    for block in raw["system"].as_array().expect("system blocks") {
        let text = block["text"].as_str().expect("text block");
        assert!(
            system.contains(text),
            "system block missing: {}",
            &text[..40.min(text.len())]
        );
    }
    let trailing_system = raw["messages"][1]["content"]
        .as_str()
        .expect("system message");
    assert!(system.contains(trailing_system));

    // The user's first message is the current message, both of its text blocks joined.
    let current = &state.current_message.user_input_message;
    for block in raw["messages"][0]["content"].as_array().expect("blocks") {
        assert!(
            current
                .content
                .contains(block["text"].as_str().expect("text"))
        );
    }
    assert_eq!(state.history.len(), 2);

    let tools = &current
        .user_input_message_context
        .as_ref()
        .expect("context")
        .tools;
    assert_eq!(tools.len(), 24);
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t.tool_specification.name.as_str())
        .collect();
    assert!(names.contains(&"Bash") && names.contains(&"Write"));
    assert!(tools.iter().all(|t| {
        t.tool_specification
            .input_schema
            .json
            .get("$schema")
            .is_none()
    }));
    assert!(t.tool_names.is_empty());
    // Workflow's description (18 780 characters) is over the limit; what does not fit
    // continues in the system section. Nothing else needs repair in a real Claude Code body.
    assert_eq!(
        t.repairs,
        vec![Repair::TruncatedToolDescription {
            name: "Workflow".into()
        }]
    );
    let workflow = raw["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == "Workflow"))
        .and_then(|t| t["description"].as_str())
        .expect("Workflow tool");
    let spec = tools
        .iter()
        .find(|t| t.tool_specification.name == "Workflow")
        .map(|t| t.tool_specification.description.as_str())
        .expect("Workflow spec");
    let kept = spec
        .split("\n\n[Description continues")
        .next()
        .unwrap_or_default();
    let rest = workflow.strip_prefix(kept).expect("spec keeps the start");
    assert!(system.contains(&format!("## Workflow (continued)\n{rest}")));
    // ~78 KB of JSON: the estimate must be in the right range (tens of thousands).
    assert!(
        (15_000..40_000).contains(&t.input_tokens),
        "{}",
        t.input_tokens
    );
}

#[test]
fn claude_code_count_tokens_body_translates() {
    let raw = fixture_body("count-tokens.json");
    let req: CountTokensRequest = serde_json::from_value(raw.clone()).expect("parses");
    let req = MessagesRequest::from(req);
    let t = translate(&req, &options(None)).expect("translates");
    invariants::check(&t.body).expect("acceptable upstream");
    // No system prompt; the only leading pair holds Workflow's over-long description.
    assert_eq!(t.body.conversation_state.history.len(), 2);
    assert!(system_item(&t.body).starts_with("# Tool documentation\n\n## Workflow (continued)\n"));
    assert!(!t.thinking);
    let current = &t.body.conversation_state.current_message.user_input_message;
    assert_eq!(
        current.content,
        raw["messages"][0]["content"].as_str().expect("string")
    );
    let tools = &current
        .user_input_message_context
        .as_ref()
        .expect("context")
        .tools;
    assert_eq!(tools.len(), 9);
}

#[test]
fn claude_code_tool_loop_keeps_system_and_pairs_every_call() {
    let mut raw = fixture_body("first-turn.json");
    let messages = raw["messages"].as_array_mut().expect("messages");
    for turn in 0..30 {
        let id = format!("toolu_{turn:02}");
        messages.push(serde_json::json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": format!("step {turn}"), "signature": "c2ln"},
            {"type": "text", "text": format!("Running step {turn}.")},
            {"type": "tool_use", "id": id, "name": "Bash", "input": {"command": format!("echo {turn}")}, "caller": null}
        ]}));
        messages.push(serde_json::json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": format!("out-{turn}"), "is_error": false,
             "cache_control": {"type": "ephemeral"}}
        ]}));
        if turn % 7 == 3 {
            messages
                .push(serde_json::json!({"role": "system", "content": format!("reminder {turn}")}));
        }
    }
    let req: MessagesRequest = serde_json::from_value(raw).expect("parses");
    let t = translate(&req, &options(req.session_id().as_deref())).expect("translates");
    invariants::check(&t.body).expect("acceptable upstream");
    let system = system_item(&t.body);
    assert!(system.contains("reminder 24"));
    assert!(system.contains("Available agent types"));
    let current = &t.body.conversation_state.current_message.user_input_message;
    let results = &current
        .user_input_message_context
        .as_ref()
        .expect("context")
        .tool_results;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tool_use_id, "toolu_29");
    assert_eq!(t.repairs.len(), 1, "unexpected repairs: {:?}", t.repairs);
}
