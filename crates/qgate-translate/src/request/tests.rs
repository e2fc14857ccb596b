//! Unit tests per conversion rule, through the public `translate` API. Requests are
//! written as the JSON clients send, so the tests also cover what serde accepts.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

use super::*;
use qgate_amazonq::{AssistantResponseMessage, UserInputMessage};
use serde_json::{Value, json};

mod body;
mod images;
mod system;
mod tools;
mod turns;

const OPTS: RequestOptions<'static> = RequestOptions {
    model_id: "claude-sonnet-4.5",
    origin: "AI_EDITOR",
    profile_arn: Some("arn:aws:codewhisperer:us-east-1:123456789012:profile/TEST"),
    session_id: Some("0149c1dd-471e-41b2-a989-8a28586cdc81"),
};

/// A request from JSON; `messages` and the rest are merged over a minimal body.
fn request(extra: Value) -> MessagesRequest {
    let mut body = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024});
    if let (Value::Object(base), Value::Object(extra)) = (&mut body, extra) {
        base.extend(extra);
    }
    serde_json::from_value(body).expect("valid request JSON")
}

fn translated(extra: Value) -> Translated {
    translate(&request(extra), &OPTS).expect("translates")
}

fn history(t: &Translated) -> &[ChatMessage] {
    &t.body.conversation_state.history
}

fn current(t: &Translated) -> &UserInputMessage {
    &t.body.conversation_state.current_message.user_input_message
}

fn user_at(t: &Translated, index: usize) -> &UserInputMessage {
    match &history(t)[index] {
        ChatMessage::UserInputMessage(user) => user,
        other => panic!("history[{index}] is not a user item: {other:?}"),
    }
}

fn assistant_at(t: &Translated, index: usize) -> &AssistantResponseMessage {
    match &history(t)[index] {
        ChatMessage::AssistantResponseMessage(assistant) => assistant,
        other => panic!("history[{index}] is not an assistant item: {other:?}"),
    }
}

fn result_texts(user: &UserInputMessage) -> Vec<(String, String, ToolResultStatus)> {
    user.user_input_message_context
        .iter()
        .flat_map(|c| c.tool_results.iter())
        .map(|r| {
            let text = r
                .content
                .iter()
                .map(|c| match c {
                    ToolResultContent::Text(t) => t.clone(),
                    ToolResultContent::Json(v) => v.to_string(),
                })
                .collect::<Vec<_>>()
                .join("");
            (r.tool_use_id.clone(), text, r.status)
        })
        .collect()
}

fn tool_names_declared(t: &Translated) -> Vec<String> {
    current(t)
        .user_input_message_context
        .iter()
        .flat_map(|c| c.tools.iter())
        .map(|tool| tool.tool_specification.name.clone())
        .collect()
}

/// The service's validator accepts the body, and (stricter than it) every history item
/// alternates user/assistant starting with user and ending with assistant, every
/// assistant tool call is answered exactly once, in call order, in the next user item (or
/// the current message), nothing else is answered, and user content is empty only beside
/// tool results.
fn assert_well_formed(t: &Translated) {
    if let Err(violation) = qgate_amazonq::validate::validate(&t.body, &Default::default()) {
        panic!("{violation}\nbody: {:#?}", t.body);
    }
    let items = history(t);
    for (index, item) in items.iter().enumerate() {
        let expect_user = index % 2 == 0;
        assert_eq!(
            matches!(item, ChatMessage::UserInputMessage(_)),
            expect_user,
            "history[{index}] breaks alternation: {items:#?}"
        );
    }
    assert!(
        items.len().is_multiple_of(2),
        "history must end with an assistant item"
    );
    let mut users: Vec<&UserInputMessage> = items
        .iter()
        .filter_map(|i| match i {
            ChatMessage::UserInputMessage(u) => Some(u),
            ChatMessage::AssistantResponseMessage(_) => None,
        })
        .collect();
    users.push(current(t));
    let mut calls: Vec<Vec<String>> = vec![Vec::new()];
    for item in items {
        if let ChatMessage::AssistantResponseMessage(a) = item {
            assert!(!a.content.is_empty(), "empty assistant content");
            calls.push(a.tool_uses.iter().map(|u| u.tool_use_id.clone()).collect());
        }
    }
    for (user, expected) in users.iter().zip(calls.iter()) {
        let answered: Vec<String> = result_texts(user)
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        assert!(
            !user.content.trim().is_empty() || !answered.is_empty(),
            "empty user content without tool results: {user:?}"
        );
        assert_eq!(
            &answered, expected,
            "tool results do not answer the preceding calls"
        );
    }
}
