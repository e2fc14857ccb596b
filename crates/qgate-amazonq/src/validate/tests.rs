//! One test per rule: a valid request passes, and each way of breaking a rule is caught
//! with the error kind the service would answer with.

// A failing unwrap is a failing test; the workspace lint targets production code.
#![allow(clippy::unwrap_used)]

use super::content::base64_decoded_len;
use super::*;
use serde_json::{Value, json};

/// A valid two-tool-round conversation in the shape gateways send.
fn base() -> Value {
    json!({
        "conversationState": {
            "conversationId": "c0ffee00-0000-4000-8000-000000000001",
            "chatTriggerType": "MANUAL",
            "history": [
                {"userInputMessage": {"content": "Please list the files.", "origin": "CLI",
                    "userInputMessageContext": {"envState": {"operatingSystem": "linux"}}}},
                {"assistantResponseMessage": {"content": "Let me check.",
                    "toolUses": [{"toolUseId": "t1", "name": "Bash", "input": {"command": "ls"}}]}},
                {"userInputMessage": {"content": "", "origin": "CLI",
                    "userInputMessageContext": {"toolResults": [
                        {"toolUseId": "t1", "content": [{"text": "a.txt"}], "status": "success"}]}}},
                {"assistantResponseMessage": {"content": " ",
                    "toolUses": [{"toolUseId": "t2", "name": "read", "input": {"path": "a.txt"}}]}}
            ],
            "currentMessage": {"userInputMessage": {
                "content": "",
                "modelId": "claude-sonnet-4.5",
                "origin": "CLI",
                "userInputMessageContext": {
                    "toolResults": [{"toolUseId": "t2", "content": [{"text": "hello"}, {"json": {"k": 1}}], "status": "error"}],
                    "tools": [
                        {"toolSpecification": {"name": "Bash", "description": "Runs a command.",
                            "inputSchema": {"json": {"type": "object", "properties": {"command": {"type": "string"}}}}}},
                        {"toolSpecification": {"name": "Read", "description": "Reads a file.",
                            "inputSchema": {"json": {"type": "object"}}}}
                    ]
                }
            }}
        },
        "profileArn": "arn:aws:codewhisperer:us-east-1:000000000000:profile/SIM1"
    })
}

fn first_turn(content: &str) -> Value {
    json!({"conversationState": {
        "conversationId": "c1",
        "chatTriggerType": "MANUAL",
        "currentMessage": {"userInputMessage": {"content": content, "origin": "AI_EDITOR"}}
    }})
}

fn check_with(v: &Value, limits: &Limits) -> Result<(), Violation> {
    let body = serde_json::to_vec(v).unwrap();
    validate_json(&body, limits).map(|_| ())
}

fn check(v: &Value) -> Result<(), Violation> {
    check_with(v, &Limits::default())
}

#[track_caller]
fn assert_kind(v: &Value, kind: ViolationKind) {
    assert_kind_with(v, &Limits::default(), kind);
}

#[track_caller]
fn assert_kind_with(v: &Value, limits: &Limits, kind: ViolationKind) {
    match check_with(v, limits) {
        Ok(()) => panic!("expected {kind:?}, request passed"),
        Err(violation) => assert_eq!(violation.kind, kind, "{}", violation.detail),
    }
}

/// `base()` with `f` applied to the JSON at `pointer`.
fn edit(pointer: &str, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base();
    f(v.pointer_mut(pointer).unwrap());
    v
}

fn history(v: &mut Value) -> &mut Vec<Value> {
    v.pointer_mut("/conversationState/history")
        .unwrap()
        .as_array_mut()
        .unwrap()
}

fn tools_of(v: &mut Value) -> &mut Vec<Value> {
    v.pointer_mut(
        "/conversationState/currentMessage/userInputMessage/userInputMessageContext/tools",
    )
    .unwrap()
    .as_array_mut()
    .unwrap()
}

fn tool(name: &str, description: &str, schema: Value) -> Value {
    json!({"toolSpecification": {"name": name, "description": description, "inputSchema": {"json": schema}}})
}

const CURRENT: &str = "/conversationState/currentMessage/userInputMessage";
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

#[test]
fn valid_requests_pass() {
    check(&base()).unwrap();
    check(&first_turn("hello")).unwrap();
    let parsed = validate_json(&serde_json::to_vec(&base()).unwrap(), &Limits::default()).unwrap();
    assert_eq!(parsed.conversation_state.history.len(), 4);
}

#[test]
fn kinds_carry_the_service_messages_and_reasons() {
    assert_eq!(
        ViolationKind::Malformed.message(),
        "Improperly formed request."
    );
    assert_eq!(ViolationKind::Malformed.reason(), None);
    assert_eq!(
        ViolationKind::InvalidToolSpec.message(),
        "Invalid tool use format."
    );
    assert_eq!(
        ViolationKind::InvalidToolSpec.reason(),
        Some("REQUEST_BODY_INVALID")
    );
    assert_eq!(
        ViolationKind::ToolConfigMissing.reason(),
        Some("TOOL_CONFIG_MISSING")
    );
    assert_eq!(ViolationKind::TooLong.message(), "Input is too long.");
    assert_eq!(
        ViolationKind::TooLong.reason(),
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD")
    );
}

#[test]
fn unparseable_or_misshapen_bodies_are_malformed() {
    for body in [
        &b"not json"[..],
        b"{}",
        b"[]",
        br#"{"conversationState":{}}"#,
    ] {
        let err = validate_json(body, &Limits::default()).unwrap_err();
        assert_eq!(err.kind, ViolationKind::Malformed);
    }
    let both_keys = edit("/conversationState/history/0", |m| {
        m["assistantResponseMessage"] = json!({"content": "x"});
    });
    assert_kind(&both_keys, ViolationKind::Malformed);
}

#[test]
fn conversation_id_must_not_be_empty() {
    assert_kind(
        &edit("/conversationState/conversationId", |v| *v = json!("")),
        ViolationKind::Malformed,
    );
}

#[test]
fn chat_trigger_type_must_be_known() {
    for ok in ["MANUAL", "DIAGNOSTIC", "INLINE_CHAT"] {
        check(&edit("/conversationState/chatTriggerType", |v| {
            *v = json!(ok)
        }))
        .unwrap();
    }
    for bad in ["AUTO", "manual", ""] {
        assert_kind(
            &edit("/conversationState/chatTriggerType", |v| *v = json!(bad)),
            ViolationKind::Malformed,
        );
    }
}

#[test]
fn origin_must_be_an_official_value() {
    for ok in ["CLI", "AI_EDITOR", "IDE", "CHATBOT", "KIRO_CLI"] {
        check(&edit(&format!("{CURRENT}/origin"), |v| *v = json!(ok))).unwrap();
    }
    assert_kind(
        &edit(&format!("{CURRENT}/origin"), |v| *v = json!("CLAUDE")),
        ViolationKind::Malformed,
    );
    assert_kind(
        &edit(
            "/conversationState/history/0/userInputMessage/origin",
            |v| *v = json!("cli"),
        ),
        ViolationKind::Malformed,
    );
    let mut absent = base();
    absent
        .pointer_mut(CURRENT)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("origin");
    check(&absent).unwrap();
}

#[test]
fn history_must_start_with_a_user_message() {
    let mut v = first_turn("next");
    v["conversationState"]["history"] = json!([
        {"assistantResponseMessage": {"content": "hi"}},
        {"userInputMessage": {"content": "hello"}},
    ]);
    assert_kind(&v, ViolationKind::Malformed);
}

#[test]
fn history_must_alternate() {
    let mut users = first_turn("next");
    users["conversationState"]["history"] = json!([
        {"userInputMessage": {"content": "a"}},
        {"userInputMessage": {"content": "b"}},
        {"assistantResponseMessage": {"content": "c"}},
    ]);
    assert_kind(&users, ViolationKind::Malformed);
    let mut assistants = first_turn("next");
    assistants["conversationState"]["history"] = json!([
        {"userInputMessage": {"content": "a"}},
        {"assistantResponseMessage": {"content": "b"}},
        {"assistantResponseMessage": {"content": "c"}},
    ]);
    assert_kind(&assistants, ViolationKind::Malformed);
}

#[test]
fn history_must_end_with_an_assistant_message() {
    let mut v = first_turn("next");
    v["conversationState"]["history"] = json!([{"userInputMessage": {"content": "a"}}]);
    assert_kind(&v, ViolationKind::Malformed);
}

#[test]
fn assistant_content_must_not_be_empty() {
    assert_kind(
        &edit(
            "/conversationState/history/3/assistantResponseMessage/content",
            |v| *v = json!(""),
        ),
        ViolationKind::Malformed,
    );
}

#[test]
fn current_content_may_be_empty_only_with_tool_results_or_images() {
    assert_kind(&first_turn(""), ViolationKind::Malformed);
    let mut with_image = first_turn("");
    with_image["conversationState"]["currentMessage"]["userInputMessage"]["images"] =
        json!([{"format": "png", "source": {"bytes": PNG_1X1}}]);
    check(&with_image).unwrap();
    // base() has an empty current content answered by its tool results.
    check(&base()).unwrap();
}

#[test]
fn history_length_is_limited() {
    let limits = Limits {
        max_history: 2,
        ..Limits::default()
    };
    assert_kind_with(&base(), &limits, ViolationKind::TooLong);
    let mut short = base();
    history(&mut short).truncate(2);
    // Truncating leaves t2 unanswered-for: drop the results that answered it.
    short["conversationState"]["currentMessage"]["userInputMessage"]["content"] = json!("go on");
    short["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        .as_object_mut()
        .unwrap()
        .remove("toolResults");
    short["conversationState"]["history"][1]["assistantResponseMessage"]
        .as_object_mut()
        .unwrap()
        .remove("toolUses");
    check_with(&short, &limits).unwrap();
}

mod content;
mod tools;
