use super::*;
use serde_json::json;

#[test]
fn parses_claude_code_first_turn_fixture() {
    let raw = include_str!("../../../../fixtures/claude-code/first-turn.json");
    let v: Value = serde_json::from_str(raw).unwrap();
    let req: MessagesRequest = serde_json::from_value(v["body"].clone()).unwrap();
    assert_eq!(req.model, "claude-opus-4-8");
    assert_eq!(req.tools().len(), 24);
    assert_eq!(req.messages[1].role, Role::System);
    assert_eq!(req.thinking, Some(ThinkingConfig::Adaptive {}));
    assert_eq!(
        req.session_id().as_deref(),
        Some("0149c1dd-471e-41b2-a989-8a28586cdc81")
    );
    assert!(matches!(req.system, Some(SystemPrompt::Blocks(ref b)) if b.len() == 3));
}

#[test]
fn unknown_blocks_and_null_fields_are_tolerated() {
    let req: MessagesRequest = serde_json::from_value(json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role":"assistant","content":[
            {"type":"text","text":"hi","citations":null,"caller":null},
            {"type":"server_tool_use","id":"x","name":"web_search","input":{}},
            {"type":"thinking","thinking":"t","signature":"sig"}
        ]}]
    }))
    .unwrap();
    let MessageContent::Blocks(b) = &req.messages[0].content else {
        panic!("blocks")
    };
    assert_eq!(b[1], ContentBlock::Unknown);
    assert!(matches!(&b[2], ContentBlock::Thinking { thinking, .. } if thinking == "t"));
}

#[test]
fn wrong_content_type_gives_clear_error() {
    let err = serde_json::from_value::<MessagesRequest>(json!({
        "model": "m", "max_tokens": 10, "messages": [{"role":"user","content": 5}]
    }))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("message content as a string or an array of content blocks"),
        "{err}"
    );
}

#[test]
fn missing_max_tokens_is_an_error() {
    let err = serde_json::from_value::<MessagesRequest>(json!({
        "model": "m", "messages": []
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_tokens"), "{err}");
}

#[test]
fn session_id_forms() {
    let m = |s: &str| Metadata {
        user_id: Some(s.to_owned()),
    };
    assert_eq!(
        m(r#"{"device_id":"d","session_id":"abc"}"#)
            .session_id()
            .as_deref(),
        Some("abc")
    );
    assert_eq!(
        m("user_1_account_2_session_5f0c").session_id().as_deref(),
        Some("5f0c")
    );
    assert_eq!(m("plain").session_id().as_deref(), Some("plain"));
    assert_eq!(m("").session_id(), None);
}

#[test]
fn system_prompt_blocks_join() {
    let s: SystemPrompt =
        serde_json::from_value(json!([{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}]))
            .unwrap();
    assert_eq!(s.text(), "a\nb");
}
