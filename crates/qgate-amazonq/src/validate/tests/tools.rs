//! Tool rules: toolUse/toolResult pairing, declarations, and tool specifications.

use super::*;

#[test]
fn every_history_tool_use_needs_a_result_in_the_next_user_message() {
    let v = edit(
        "/conversationState/history/2/userInputMessage/userInputMessageContext/toolResults/0/toolUseId",
        |id| {
            *id = json!("t-other");
        },
    );
    let err = check(&v).unwrap_err();
    assert_eq!(err.kind, ViolationKind::Malformed);
    assert!(err.detail.contains("t1"), "{}", err.detail);
}

#[test]
fn the_last_tool_use_must_be_answered_by_the_current_message() {
    let mut v = edit(&format!("{CURRENT}/userInputMessageContext"), |c| {
        c.as_object_mut().unwrap().remove("toolResults");
    });
    v.pointer_mut(&format!("{CURRENT}/content"))
        .unwrap()
        .clone_from(&json!("and now?"));
    let err = check(&v).unwrap_err();
    assert_eq!(err.kind, ViolationKind::Malformed);
    assert!(err.detail.contains("t2"), "{}", err.detail);
}

#[test]
fn a_result_must_answer_a_use_of_the_preceding_assistant_message() {
    // t1 belongs to history[1], not to history[3] which the current message follows.
    let v = edit(
        &format!("{CURRENT}/userInputMessageContext/toolResults"),
        |r| {
            r.as_array_mut().unwrap().push(
                json!({"toolUseId": "t1", "content": [{"text": "again"}], "status": "success"}),
            );
        },
    );
    assert_kind(&v, ViolationKind::Malformed);
}

#[test]
fn results_in_the_first_history_item_are_malformed() {
    let v = edit(
        "/conversationState/history/0/userInputMessage/userInputMessageContext",
        |c| {
            c["toolResults"] =
                json!([{"toolUseId": "t0", "content": [{"text": "x"}], "status": "success"}]);
        },
    );
    assert_kind(&v, ViolationKind::Malformed);
}

#[test]
fn results_after_an_assistant_without_tool_uses_are_malformed() {
    let mut v = base();
    let h = history(&mut v);
    h[3]["assistantResponseMessage"]
        .as_object_mut()
        .unwrap()
        .remove("toolUses");
    assert_kind(&v, ViolationKind::Malformed);

    let mut no_history = first_turn("hi");
    no_history["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"] = json!({"toolResults": [{"toolUseId": "t1", "content": [{"text": "x"}], "status": "success"}]});
    assert_kind(&no_history, ViolationKind::Malformed);
}

#[test]
fn tool_use_ids_must_be_unique() {
    let mut v = base();
    let h = history(&mut v);
    h[3]["assistantResponseMessage"]["toolUses"][0]["toolUseId"] = json!("t1");
    v.pointer_mut(&format!(
        "{CURRENT}/userInputMessageContext/toolResults/0/toolUseId"
    ))
    .unwrap()
    .clone_from(&json!("t1"));
    let err = check(&v).unwrap_err();
    assert_eq!(err.kind, ViolationKind::Malformed);
    assert!(err.detail.contains("twice"), "{}", err.detail);
}

#[test]
fn a_message_may_not_answer_the_same_use_twice() {
    let v = edit(
        &format!("{CURRENT}/userInputMessageContext/toolResults"),
        |r| {
            r.as_array_mut().unwrap().push(
                json!({"toolUseId": "t2", "content": [{"text": "dup"}], "status": "success"}),
            );
        },
    );
    let err = check(&v).unwrap_err();
    assert_eq!(err.kind, ViolationKind::Malformed);
    assert!(err.detail.contains("twice"), "{}", err.detail);
}

#[test]
fn tools_used_in_history_must_be_declared() {
    let mut v = base();
    tools_of(&mut v).retain(|t| t["toolSpecification"]["name"] != "Read");
    assert_kind(&v, ViolationKind::ToolConfigMissing);

    let mut none = base();
    none.pointer_mut(&format!("{CURRENT}/userInputMessageContext"))
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("tools");
    assert_kind(&none, ViolationKind::ToolConfigMissing);
}

#[test]
fn declarations_match_names_case_insensitively() {
    // base() uses "read" in history and declares "Read".
    check(&base()).unwrap();
}

#[test]
fn tool_names_must_be_non_empty_short_and_plain() {
    let limits = Limits::default();
    let longest = "a".repeat(limits.max_tool_name_chars);
    let mut ok = base();
    tools_of(&mut ok).push(tool(&longest, "d", json!({})));
    tools_of(&mut ok).push(tool("mcp__git-hub_2", "d", json!({})));
    check(&ok).unwrap();

    let too_long = "a".repeat(limits.max_tool_name_chars + 1);
    for bad in ["", too_long.as_str(), "my tool", "a.b", "naïve"] {
        let mut v = base();
        tools_of(&mut v).push(tool(bad, "d", json!({"type": "object"})));
        assert_kind(&v, ViolationKind::InvalidToolSpec);
    }
}

#[test]
fn tool_descriptions_must_be_non_empty_and_bounded() {
    let mut empty = base();
    tools_of(&mut empty).push(tool("Empty", "", json!({})));
    assert_kind(&empty, ViolationKind::InvalidToolSpec);

    let limits = Limits {
        max_tool_description_chars: 10,
        ..Limits::default()
    };
    let one_tool = |description: &str| {
        let mut v = first_turn("hi");
        v["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"] =
            json!({"tools": [tool("T", description, json!({}))]});
        v
    };
    check_with(&one_tool("0123456789"), &limits).unwrap();
    assert_kind_with(
        &one_tool("0123456789x"),
        &limits,
        ViolationKind::InvalidToolSpec,
    );
    // Ten characters in more than ten bytes are within the limit.
    let wide = one_tool("éééééééééé");
    check_with(&wide, &limits).unwrap();
}

#[test]
fn tool_schemas_must_be_objects_with_a_string_type() {
    for bad in [
        json!("object"),
        json!([]),
        json!(null),
        json!({"type": 1}),
        json!({"type": ["object"]}),
    ] {
        let mut v = base();
        tools_of(&mut v).push(tool("Odd", "d", bad.clone()));
        let err = check(&v).unwrap_err();
        assert_eq!(
            err.kind,
            ViolationKind::InvalidToolSpec,
            "{bad}: {}",
            err.detail
        );
    }
    let mut untyped = base();
    tools_of(&mut untyped).push(tool("Untyped", "d", json!({"properties": {}})));
    check(&untyped).unwrap();
}

#[test]
fn duplicate_tool_names_are_malformed() {
    let mut v = base();
    tools_of(&mut v).push(tool("bash", "again", json!({"type": "object"})));
    assert_kind(&v, ViolationKind::Malformed);
}

#[test]
fn tool_specs_on_history_messages_are_checked_too() {
    let v = edit(
        "/conversationState/history/0/userInputMessage/userInputMessageContext",
        |c| {
            c["tools"] = json!([tool("Bad", "", json!({}))]);
        },
    );
    assert_kind(&v, ViolationKind::InvalidToolSpec);
}
