//! Claude Code's tool loop through the gateway: turn 1 is the recorded first turn with the
//! simulator scripted to call `Bash`; turn 2 sends the assistant turn back the way Claude
//! Code does (blocks as streamed, thinking with its signature, null-valued extra fields)
//! followed by a `tool_result` carrying `cache_control`, and must be accepted and answered.

use super::*;

const TOOL_OUTPUT: &str = "qgate-fidelity-tool-ok";

fn first_turn() -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.path.starts_with("/v1/messages?") || f.path == "/v1/messages")
        .expect("a recorded /v1/messages call")
}

/// The recorded body with a `[[sim tool=Bash ...]]` script after the user's last text.
fn scripted_to_call_bash(body: &Value) -> Value {
    let script = format!(
        "\n[[sim tool=Bash input={}]]",
        json!({"command": format!("echo {TOOL_OUTPUT}")})
    );
    let mut body = body.clone();
    let messages = body["messages"].as_array_mut().unwrap();
    let last_user = messages
        .iter_mut()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap();
    match &mut last_user["content"] {
        Value::String(s) => s.push_str(&script),
        Value::Array(blocks) => {
            let text = blocks
                .iter_mut()
                .rev()
                .find(|b| b["type"] == "text")
                .unwrap();
            let joined = format!("{}{script}", text["text"].as_str().unwrap());
            text["text"] = json!(joined);
        }
        other => panic!("unexpected user content {other}"),
    }
    body
}

/// The assistant message as the SDK's stream accumulator builds it from the events.
fn accumulate(events: &[(String, Value)]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial_json: Vec<String> = Vec::new();
    for (name, data) in events {
        let index = data["index"].as_u64().unwrap_or(0) as usize;
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(index, blocks.len(), "blocks start in order: {data}");
                blocks.push(data["content_block"].clone());
                partial_json.push(String::new());
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                let block = &mut blocks[index];
                let append = |block: &mut Value, field: &str, piece: &Value| {
                    let joined = format!(
                        "{}{}",
                        block[field].as_str().unwrap_or_default(),
                        piece.as_str().unwrap()
                    );
                    block[field] = json!(joined);
                };
                match delta["type"].as_str().unwrap() {
                    "text_delta" => append(block, "text", &delta["text"]),
                    "thinking_delta" => append(block, "thinking", &delta["thinking"]),
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        partial_json[index].push_str(delta["partial_json"].as_str().unwrap())
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" if blocks[index]["type"] == "tool_use" => {
                let raw = &partial_json[index];
                blocks[index]["input"] = if raw.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(raw).unwrap()
                };
            }
            _ => {}
        }
    }
    blocks
}

/// Blocks the way Claude Code sends them back: SDK objects re-serialised with their
/// null-valued optional fields.
fn as_claude_code_sends_them(blocks: Vec<Value>) -> Vec<Value> {
    blocks
        .into_iter()
        .map(|mut b| {
            match b["type"].as_str().unwrap() {
                "text" => b["citations"] = Value::Null,
                "tool_use" => b["caller"] = Value::Null,
                _ => {}
            }
            b
        })
        .collect()
}

fn reply_text(content: &[Value]) -> String {
    content
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect()
}

#[tokio::test]
async fn claude_code_tool_turn_round_trips() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let fixture = first_turn();
    let session = session_id(&fixture.body).expect("the fixture carries a session id");
    let path = fixture.path.clone();

    // Turn 1: the model calls Bash.
    let turn1 = scripted_to_call_bash(&fixture.body);
    let (s, body) = replay(&env, &fixture, &path, &turn1).await;
    assert_eq!(s, 200, "turn 1: {body}");
    let events = parse_sse(&body);
    let stop = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "tool_use", "{events:?}");
    let assistant = accumulate(&events);
    let tool_use = assistant
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(tool_use["name"], "Bash");
    assert_eq!(
        tool_use["input"],
        json!({"command": format!("echo {TOOL_OUTPUT}")})
    );

    // Turn 2: Claude Code ran the tool and sends the result back.
    let mut turn2 = turn1.clone();
    let messages = turn2["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": as_claude_code_sends_them(assistant)}));
    messages.push(json!({"role": "user", "content": [{
        "type": "tool_result",
        "tool_use_id": tool_use["id"],
        "content": TOOL_OUTPUT,
        "is_error": false,
        "cache_control": {"type": "ephemeral"},
    }]}));

    let (s, body) = replay(&env, &fixture, &path, &turn2).await;
    assert_eq!(s, 200, "turn 2 streaming: {body}");
    let events = parse_sse(&body);
    assert!(!events.iter().any(|(n, _)| n == "error"), "{events:?}");
    let text = streamed_text(&events);
    assert!(
        text.contains(TOOL_OUTPUT),
        "the reply quotes the result: {text}"
    );
    let stop = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "end_turn");

    // Claude Code re-sends the same turn without `stream` after a mid-stream error.
    turn2["stream"] = json!(false);
    let (s, body) = replay(&env, &fixture, &path, &turn2).await;
    assert_eq!(s, 200, "turn 2 non-streaming: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let text = reply_text(v["content"].as_array().unwrap());
    assert!(
        text.contains(TOOL_OUTPUT),
        "the reply quotes the result: {v}"
    );

    // A session that thought before calling the tool carries the signed thinking block in
    // front of the call (Claude Code keeps `clear_thinking` edits at `keep: all`).
    let messages = turn2["messages"].as_array_mut().unwrap();
    let assistant_turn = messages.len() - 2; // just before the tool_result
    let content = messages[assistant_turn]["content"].as_array_mut().unwrap();
    let thought = content
        .iter()
        .find(|b| b["type"] == "thinking")
        .map(|b| b["thinking"].as_str().unwrap().to_owned());
    let thought = thought.unwrap_or_else(|| {
        let thinking = "The user wants the check run; Bash can do it.";
        content.insert(
            0,
            json!({
                "type": "thinking",
                "thinking": thinking,
                "signature": "EqQBCkgIBxABGAIiQLuTZiPaOkrDGiSsQ9wIPo0Y3mzqCYhS3sGvQwIoYcE8a1rDQkO",
            }),
        );
        thinking.to_owned()
    });
    turn2["stream"] = json!(true);
    let (s, body) = replay(&env, &fixture, &path, &turn2).await;
    assert_eq!(s, 200, "turn 2 after a signed thinking block: {body}");
    let text = streamed_text(&parse_sse(&body));
    assert!(
        text.contains(TOOL_OUTPUT),
        "the reply quotes the result: {text}"
    );

    let upstream = last_request(&env, "sim-1").await;
    let state = &upstream["conversationState"];
    assert_eq!(state["conversationId"], json!(session), "same conversation");
    let results =
        &state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"];
    assert_eq!(results.as_array().map(Vec::len), Some(1), "{state}");
    let mut history = String::new();
    all_text(&state["history"], &mut history);
    assert!(history.contains("Bash"), "the tool call is in the history");
    assert!(
        history.contains(thought.trim()),
        "the thinking is kept in the history as text"
    );
    let stats = env.sim_stats().await;
    assert_eq!(validation_failures(&stats), 0, "{stats}");
}
