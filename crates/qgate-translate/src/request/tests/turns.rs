//! Turn structure: merging, alternation, tool pairing, prefill.

use super::*;

fn bash_tool() -> Value {
    json!({"name": "Bash", "description": "run", "input_schema": {"type": "object"}})
}

fn tool_use(id: &str) -> Value {
    json!({"type": "tool_use", "id": id, "name": "Bash", "input": {"command": "ls"}})
}

fn tool_result(id: &str, content: Value) -> Value {
    json!({"type": "tool_result", "tool_use_id": id, "content": content})
}

#[test]
fn consecutive_user_messages_merge_without_losing_results_or_images() {
    let png = "iVBORw0KGgo=";
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1"), tool_use("toolu_2")]},
            {"role": "user", "content": [tool_result("toolu_1", json!("one"))]},
            {"role": "user", "content": [
                tool_result("toolu_2", json!("two")),
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                {"type": "text", "text": "and look"}
            ]}
        ]
    }));
    assert_well_formed(&t);
    let results = result_texts(current(&t));
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].1, "one");
    assert_eq!(results[1].1, "two");
    assert_eq!(current(&t).images.len(), 1);
    assert_eq!(current(&t).content, "and look");
    assert!(t.repairs.contains(&Repair::MergedSameRole { role: "user" }));
}

#[test]
fn consecutive_assistant_messages_merge_with_their_tool_calls() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "text", "text": "first"}, tool_use("toolu_1")]},
            {"role": "assistant", "content": [{"type": "text", "text": "second"}, tool_use("toolu_2")]},
            {"role": "user", "content": [
                tool_result("toolu_1", json!("a")),
                tool_result("toolu_2", json!("b"))
            ]}
        ]
    }));
    assert_well_formed(&t);
    let assistant = assistant_at(&t, 1);
    assert_eq!(assistant.content, "first\nsecond");
    assert_eq!(assistant.tool_uses.len(), 2);
    assert_eq!(result_texts(current(&t)).len(), 2);
}

#[test]
fn tool_use_and_result_map_to_wire_fields() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1")]},
            {"role": "user", "content": [{
                "type": "tool_result", "tool_use_id": "toolu_1", "is_error": true,
                "cache_control": {"type": "ephemeral"},
                "content": [{"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}]
            }]}
        ]
    }));
    let call = &assistant_at(&t, 1).tool_uses[0];
    assert_eq!(call.tool_use_id, "toolu_1");
    assert_eq!(call.name, "Bash");
    assert_eq!(call.input, json!({"command": "ls"}));
    assert_eq!(
        result_texts(current(&t)),
        vec![(
            "toolu_1".into(),
            "line 1\nline 2".into(),
            ToolResultStatus::Error
        )]
    );
}

#[test]
fn tool_only_turns_carry_no_filler_text_beyond_what_the_service_needs() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1")]},
            {"role": "user", "content": [tool_result("toolu_1", json!("ok"))]}
        ]
    }));
    assert_eq!(assistant_at(&t, 1).content, " ");
    // Tool results are the whole message; no placeholder text is added beside them.
    assert_eq!(current(&t).content, "");
    assert!(!t.repairs.contains(&Repair::FilledEmptyContent));
}

#[test]
fn empty_tool_results_get_text() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1"), tool_use("toolu_2")]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [], "is_error": true}
            ]}
        ]
    }));
    let results = result_texts(current(&t));
    assert_eq!(results[0].1, "(no output)");
    assert_eq!(results[1].1, "(the tool failed without output)");
}

#[test]
fn orphan_tool_use_in_history_gets_an_interrupted_result() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1")]},
            {"role": "user", "content": "never mind, do something else"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "thanks"}
        ]
    }));
    assert_well_formed(&t);
    let results = result_texts(user_at(&t, 2));
    assert_eq!(
        results,
        vec![(
            "toolu_1".into(),
            INTERRUPTED_TOOL_RESULT.into(),
            ToolResultStatus::Error
        )]
    );
    assert_eq!(user_at(&t, 2).content, "never mind, do something else");
    assert!(t.repairs.contains(&Repair::StubbedToolResult {
        id: "toolu_1".into()
    }));
}

#[test]
fn missing_results_in_the_current_message_are_synthesized() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1"), tool_use("toolu_2")]},
            {"role": "user", "content": [tool_result("toolu_2", json!("done")), {"type": "text", "text": "stop"}]}
        ]
    }));
    assert_well_formed(&t);
    let results = result_texts(current(&t));
    assert_eq!(results[0].0, "toolu_1");
    assert_eq!(results[0].1, INTERRUPTED_TOOL_RESULT);
    assert_eq!(
        results[1],
        ("toolu_2".into(), "done".into(), ToolResultStatus::Success)
    );
}

#[test]
fn orphan_tool_result_is_folded_into_text() {
    let t = translated(json!({
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "plain answer"},
            {"role": "user", "content": [tool_result("toolu_gone", json!("precious output")), {"type": "text", "text": "see above"}]}
        ]
    }));
    assert_well_formed(&t);
    assert!(result_texts(current(&t)).is_empty());
    assert_eq!(
        current(&t).content,
        "[Tool result for call toolu_gone]\nprecious output\nsee above"
    );
}

#[test]
fn duplicate_tool_results_are_dropped() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1")]},
            {"role": "user", "content": [tool_result("toolu_1", json!("first")), tool_result("toolu_1", json!("second"))]},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": [tool_result("toolu_1", json!("third")), {"type": "text", "text": "again"}]}
        ]
    }));
    assert_well_formed(&t);
    assert_eq!(
        result_texts(user_at(&t, 2)),
        vec![("toolu_1".into(), "first".into(), ToolResultStatus::Success)]
    );
    assert_eq!(current(&t).content, "again");
    let dropped = t
        .repairs
        .iter()
        .filter(|r| matches!(r, Repair::DroppedDuplicateToolResult { .. }))
        .count();
    assert_eq!(dropped, 2);
}

#[test]
fn reused_tool_use_ids_are_renamed_with_their_results() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_1")]},
            {"role": "user", "content": [tool_result("toolu_1", json!("first run"))]},
            {"role": "assistant", "content": [tool_use("toolu_1"), tool_use("toolu_1")]},
            {"role": "user", "content": [tool_result("toolu_1", json!("second run"))]}
        ]
    }));
    assert_well_formed(&t);
    let second = &assistant_at(&t, 3).tool_uses;
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].tool_use_id, "toolu_1");
    assert_eq!(result_texts(current(&t))[0].1, "second run");
    assert!(t.repairs.contains(&Repair::DroppedDuplicateToolUse {
        id: "toolu_1".into()
    }));
}

#[test]
fn trailing_assistant_prefill_moves_to_history() {
    let t = translated(json!({
        "messages": [
            {"role": "user", "content": "write JSON"},
            {"role": "assistant", "content": "{\"answer\":"}
        ]
    }));
    assert_well_formed(&t);
    assert_eq!(assistant_at(&t, 1).content, "{\"answer\":");
    assert_eq!(current(&t).content, CONTINUE_TEXT);
    assert!(t.repairs.contains(&Repair::MovedPrefillToHistory));
}

#[test]
fn trailing_assistant_tool_calls_are_answered_in_the_continuation() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use("toolu_9")]}
        ]
    }));
    assert_well_formed(&t);
    assert_eq!(current(&t).content, CONTINUE_TEXT);
    assert_eq!(result_texts(current(&t))[0].0, "toolu_9");
}

#[test]
fn conversation_starting_with_assistant_gets_a_user_turn_first() {
    let t = translated(json!({
        "messages": [
            {"role": "assistant", "content": "Hello, how can I help?"},
            {"role": "user", "content": "fix the bug"}
        ]
    }));
    assert_well_formed(&t);
    assert_eq!(assistant_at(&t, 1).content, "Hello, how can I help?");
    assert!(t.repairs.contains(&Repair::PrependedUserTurn));
}

#[test]
fn empty_assistant_turns_are_dropped_and_users_merged() {
    let t = translated(json!({
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]},
            {"role": "user", "content": "two"}
        ]
    }));
    assert_well_formed(&t);
    assert!(history(&t).is_empty());
    assert_eq!(current(&t).content, "one\ntwo");
}

#[test]
fn empty_user_content_gets_a_placeholder() {
    let t = translated(json!({
        "messages": [
            {"role": "user", "content": ""},
            {"role": "assistant", "content": "hm?"},
            {"role": "user", "content": [{"type": "text", "text": "  "}]}
        ]
    }));
    assert_well_formed(&t);
    assert!(t.repairs.contains(&Repair::FilledEmptyContent));
}

#[test]
fn non_object_tool_inputs_become_objects() {
    let t = translated(json!({
        "tools": [bash_tool()],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "a", "name": "Bash", "input": null},
                {"type": "tool_use", "id": "b", "name": "Bash", "input": "{\"command\":\"pwd\"}"},
                {"type": "tool_use", "id": "c", "name": "Bash", "input": [1, 2]}
            ]},
            {"role": "user", "content": [tool_result("a", json!("")), tool_result("b", json!("")), tool_result("c", json!(""))]}
        ]
    }));
    let inputs: Vec<Value> = assistant_at(&t, 1)
        .tool_uses
        .iter()
        .map(|u| u.input.clone())
        .collect();
    assert_eq!(
        inputs,
        vec![
            json!({}),
            json!({"command": "pwd"}),
            json!({"input": [1, 2]})
        ]
    );
}

#[test]
fn messages_are_required() {
    let err = translate(&request(json!({"messages": []})), &OPTS).expect_err("no messages");
    assert_eq!(err, TranslateError::NoMessages);
    let err = translate(
        &request(json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "assistant", "content": "a"}
        ]})),
        &OPTS,
    )
    .expect_err("no user message");
    assert_eq!(err, TranslateError::NoUserMessage);
    assert!(err.to_string().contains("`user`"));
}

#[test]
fn over_long_histories_are_trimmed_from_the_oldest_end() {
    let mut messages = Vec::new();
    for n in 0..5_100 {
        messages.push(json!({"role": "user", "content": format!("question {n}")}));
        messages.push(json!({"role": "assistant", "content": format!("answer {n}")}));
    }
    messages.push(json!({"role": "user", "content": "latest"}));
    let t = translated(json!({"system": "s", "messages": messages}));
    assert_well_formed(&t);
    assert!(history(&t).len() <= MAX_HISTORY_ITEMS);
    assert_eq!(current(&t).content, "latest");
    assert_eq!(user_at(&t, 0).content, "s");
    assert_eq!(
        assistant_at(&t, history(&t).len() - 1).content,
        "answer 5099"
    );
    assert!(
        t.repairs
            .iter()
            .any(|r| matches!(r, Repair::TrimmedHistory { .. }))
    );
}

#[test]
fn an_id_reused_in_many_turns_gets_distinct_deterministic_replacements() {
    // Renaming used to retry every earlier candidate (quadratic in the reuse count).
    let mut messages = Vec::new();
    for i in 0..300 {
        messages.push(json!({"role": "user", "content": format!("step {i}")}));
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_same", "name": "Bash", "input": {"command": "ls"}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_same", "content": format!("out {i}")}
        ]}));
    }
    let body = json!({"tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}], "messages": messages});
    let a = translated(body.clone());
    let b = translated(body);
    assert_eq!(
        a.body.conversation_state.history,
        b.body.conversation_state.history
    );
    let mut ids = std::collections::HashSet::new();
    for item in &a.body.conversation_state.history {
        if let qgate_amazonq::ChatMessage::AssistantResponseMessage(m) = item {
            for u in &m.tool_uses {
                assert!(
                    ids.insert(u.tool_use_id.clone()),
                    "duplicate {}",
                    u.tool_use_id
                );
            }
        }
    }
    assert!(ids.len() >= 299, "{}", ids.len());
    assert_well_formed(&a);
}
