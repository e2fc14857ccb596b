//! Every request rule over HTTP: the simulator answers 400 with the service's body.

use super::*;
use qgate_amazonq::validate::Limits;

/// The `message` and `reason` of a refusal.
type Refusal = (&'static str, Option<&'static str>);
/// A named request and the refusal it must get.
type Case = (&'static str, Value, Refusal);

const MALFORMED: (&str, Option<&str>) = ("Improperly formed request.", None);
const BAD_TOOL: (&str, Option<&str>) = ("Invalid tool use format.", Some("REQUEST_BODY_INVALID"));
const NO_TOOL_CONFIG: (&str, Option<&str>) =
    ("Improperly formed request.", Some("TOOL_CONFIG_MISSING"));
const TOO_LONG: (&str, Option<&str>) = (
    "Input is too long.",
    Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
);

fn current(body: &mut Value) -> &mut Value {
    &mut body["conversationState"]["currentMessage"]["userInputMessage"]
}

fn with(mut body: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut body);
    body
}

fn history(items: Value) -> Value {
    with(request("next"), |b| {
        b["conversationState"]["history"] = items
    })
}

fn user(content: &str) -> Value {
    json!({"userInputMessage": {"content": content}})
}

fn assistant(content: &str) -> Value {
    json!({"assistantResponseMessage": {"content": content}})
}

fn tool_spec(name: &str, description: &str, schema: Value) -> Value {
    json!({"toolSpecification": {"name": name, "description": description, "inputSchema": {"json": schema}}})
}

fn one_tool(spec: Value) -> Value {
    with(request("hi"), |b| {
        current(b)["userInputMessageContext"] = json!({"tools": [spec]})
    })
}

fn image(format: &str, bytes: &str) -> Value {
    json!({"format": format, "source": {"bytes": bytes}})
}

fn images(list: Vec<Value>) -> Value {
    with(request("look"), |b| current(b)["images"] = json!(list))
}

/// Limits small enough that size rules can be crossed with small bodies.
fn small_limits() -> Limits {
    Limits {
        max_user_message_chars: 1_000,
        max_tool_result_chars: 500,
        max_total_chars: 3_000,
        max_images: 2,
        max_image_bytes: 6,
        max_history: 4,
        ..Limits::default()
    }
}

fn cases() -> Vec<Case> {
    let long_name = "n".repeat(65);
    vec![
        (
            "conversationId empty",
            with(request("hi"), |b| {
                b["conversationState"]["conversationId"] = json!("")
            }),
            MALFORMED,
        ),
        (
            "chatTriggerType unknown",
            with(request("hi"), |b| {
                b["conversationState"]["chatTriggerType"] = json!("AUTO")
            }),
            MALFORMED,
        ),
        (
            "origin unknown",
            with(request("hi"), |b| {
                current(b)["origin"] = json!("CLAUDE_CODE")
            }),
            MALFORMED,
        ),
        (
            "history starts with assistant",
            history(json!([assistant("a"), user("b")])),
            MALFORMED,
        ),
        (
            "two users in a row",
            history(json!([user("a"), user("b"), assistant("c")])),
            MALFORMED,
        ),
        (
            "two assistants in a row",
            history(json!([user("a"), assistant("b"), assistant("c")])),
            MALFORMED,
        ),
        (
            "history ends with user",
            history(json!([user("a")])),
            MALFORMED,
        ),
        (
            "assistant content empty",
            history(json!([user("a"), assistant("")])),
            MALFORMED,
        ),
        ("current content empty", request(""), MALFORMED),
        (
            "tool use without result",
            with(tool_result_request("t1", "ok"), |b| {
                current(b)["userInputMessageContext"]["toolResults"][0]["toolUseId"] = json!("t9");
            }),
            MALFORMED,
        ),
        (
            "result without tool use",
            with(request_with_tools("hi", &["Bash"]), |b| {
                current(b)["userInputMessageContext"]["toolResults"] =
                    json!([{"toolUseId": "t1", "content": [{"text": "x"}], "status": "success"}]);
            }),
            MALFORMED,
        ),
        (
            "duplicate result",
            with(tool_result_request("t1", "ok"), |b| {
                let dup = current(b)["userInputMessageContext"]["toolResults"][0].clone();
                current(b)["userInputMessageContext"]["toolResults"]
                    .as_array_mut()
                    .unwrap()
                    .push(dup);
            }),
            MALFORMED,
        ),
        (
            "history tool not declared",
            with(tool_result_request("t1", "ok"), |b| {
                current(b)["userInputMessageContext"]["tools"] =
                    json!([tool_spec("Read", "Reads.", json!({}))]);
            }),
            NO_TOOL_CONFIG,
        ),
        (
            "tool description empty",
            one_tool(tool_spec("T", "", json!({}))),
            BAD_TOOL,
        ),
        (
            "tool name too long",
            one_tool(tool_spec(&long_name, "d", json!({}))),
            BAD_TOOL,
        ),
        (
            "tool name charset",
            one_tool(tool_spec("read file", "d", json!({}))),
            BAD_TOOL,
        ),
        (
            "tool schema not an object",
            one_tool(tool_spec("T", "d", json!("object"))),
            BAD_TOOL,
        ),
        (
            "tool schema type not a string",
            one_tool(tool_spec("T", "d", json!({"type": 7}))),
            BAD_TOOL,
        ),
        (
            "duplicate tool names",
            with(request_with_tools("hi", &["Bash", "bash"]), |_| {}),
            MALFORMED,
        ),
        (
            "image format",
            images(vec![image("bmp", "AAAA")]),
            MALFORMED,
        ),
        (
            "image base64",
            images(vec![image("png", "!!!!")]),
            MALFORMED,
        ),
        ("not a request", json!({"hello": "world"}), MALFORMED),
    ]
}

fn small_limit_cases() -> Vec<Case> {
    vec![
        (
            "too many images",
            images(vec![image("png", "AAAA"); 3]),
            MALFORMED,
        ),
        (
            "image too large",
            images(vec![image("png", "AAAAAAAAAAA=")]),
            TOO_LONG,
        ),
        (
            "user message too long",
            request(&"x".repeat(1_001)),
            TOO_LONG,
        ),
        (
            "tool result too long",
            tool_result_request("t1", &"r".repeat(501)),
            TOO_LONG,
        ),
        (
            "whole request too long",
            history(json!([
                user(&"a".repeat(900)),
                assistant(&"b".repeat(900)),
                user(&"c".repeat(900)),
                assistant(&"d".repeat(900))
            ])),
            TOO_LONG,
        ),
        (
            "history too long",
            history(json!([
                user("a"),
                assistant("b"),
                user("c"),
                assistant("d"),
                user("e"),
                assistant("f")
            ])),
            TOO_LONG,
        ),
    ]
}

async fn expect_refusals(sim: &TestSim, cases: Vec<Case>) {
    let token = sim.token(1).await;
    for (name, body, (message, reason)) in cases {
        let response = sim.send_chat(Dialect::Kiro, &token, &body).await;
        assert_eq!(response.status(), 400, "{name}");
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("ValidationException:"),
            "{name}"
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["__type"], "com.amazon.aws.codewhisperer#ValidationException",
            "{name}"
        );
        assert_eq!(answer["message"], message, "{name}");
        assert_eq!(answer["reason"], json!(reason), "{name}: {answer}");
    }
}

#[tokio::test]
async fn each_rule_is_refused_with_the_service_body() {
    let sim = start_default().await;
    let cases = cases();
    let count = cases.len() as u64;
    expect_refusals(&sim, cases).await;
    let stats = sim.stats().await;
    assert_eq!(stats.account("sim-1").validation_failures, count);
    assert_eq!(stats.account("sim-1").chat_errors, count);
    assert!(stats.last_violation.is_some());
}

#[tokio::test]
async fn size_rules_follow_the_configured_limits() {
    let sim = start(SimConfig {
        limits: small_limits(),
        ..SimConfig::default()
    })
    .await;
    expect_refusals(&sim, small_limit_cases()).await;
    // Within the limits the same shapes pass.
    let token = sim.token(1).await;
    for body in [
        images(vec![image("png", "AAAA"); 2]),
        request(&"x".repeat(1_000)),
        tool_result_request("t1", &"r".repeat(400)),
    ] {
        let reply = sim.chat(Dialect::Kiro, &token, &body).await;
        assert_eq!(reply.status, 200, "{:?}", reply.error_body);
    }
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let response = sim
        .client
        .post(sim.url("/generateAssistantResponse"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"conversationState\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["message"], "Improperly formed request.");
    assert_eq!(answer["reason"], Value::Null);
    let violation = sim.stats().await.last_violation.unwrap();
    assert!(violation.contains("not a request"), "{violation}");
}

#[tokio::test]
async fn claude_code_shaped_tool_loops_pass() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let reply = sim
        .chat(
            Dialect::QCli,
            &token,
            &tool_result_request("tooluse_1", "file.txt"),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.error_body);
}
