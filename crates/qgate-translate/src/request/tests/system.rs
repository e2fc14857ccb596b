//! System prompt, `role:"system"` entries and the thinking directive.

use super::*;

#[test]
fn system_string_becomes_a_leading_history_pair() {
    let t = translated(json!({
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert_eq!(history(&t).len(), 2);
    assert_eq!(user_at(&t, 0).content, "You are terse.");
    assert_eq!(
        assistant_at(&t, 1).content,
        "I will follow these instructions."
    );
    assert_eq!(current(&t).content, "hi");
    assert!(!t.thinking);
    assert_well_formed(&t);
}

#[test]
fn system_blocks_are_joined_with_newlines_and_cache_control_ignored() {
    let t = translated(json!({
        "system": [
            {"type": "text", "text": "first"},
            {"type": "text", "text": "second", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert_eq!(user_at(&t, 0).content, "first\nsecond");
}

#[test]
fn system_entries_inside_messages_are_kept_including_a_trailing_one() {
    let t = translated(json!({
        "system": "top",
        "messages": [
            {"role": "user", "content": "question"},
            {"role": "system", "content": [{"type": "text", "text": "agent list"}]},
            {"role": "assistant", "content": "answer"},
            {"role": "system", "content": "reminder"},
            {"role": "user", "content": "follow-up"},
            {"role": "system", "content": "last words"}
        ]
    }));
    assert_eq!(
        user_at(&t, 0).content,
        "top\n\nagent list\n\nreminder\n\nlast words"
    );
    assert_eq!(current(&t).content, "follow-up");
    assert_eq!(user_at(&t, 2).content, "question");
    assert_eq!(assistant_at(&t, 3).content, "answer");
    assert_well_formed(&t);
}

#[test]
fn system_survives_tool_result_only_turns() {
    let t = translated(json!({
        "system": "SYSTEM RULES",
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}
            ]}
        ]
    }));
    assert_eq!(user_at(&t, 0).content, "SYSTEM RULES");
    // The current message is only the tool result; the system text is not in it.
    assert_eq!(current(&t).content, "");
    assert_eq!(result_texts(current(&t)).len(), 1);
    assert_well_formed(&t);
}

#[test]
fn no_system_and_no_thinking_means_no_pair() {
    let t = translated(json!({"messages": [{"role": "user", "content": "hi"}]}));
    assert!(history(&t).is_empty());
    assert_eq!(current(&t).content, "hi");
}

#[test]
fn enabled_thinking_leads_the_system_section() {
    let t = translated(json!({
        "system": "rules",
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert!(t.thinking);
    assert_eq!(
        user_at(&t, 0).content,
        "<thinking_mode>enabled</thinking_mode><max_thinking_length>31999</max_thinking_length>\nrules"
    );
}

#[test]
fn adaptive_thinking_uses_high_effort_and_works_without_system() {
    let t = translated(json!({
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert!(t.thinking);
    assert_eq!(
        user_at(&t, 0).content,
        "<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>"
    );
    assert_well_formed(&t);
}

#[test]
fn adaptive_thinking_takes_the_requested_effort_and_rejects_odd_values() {
    let with = |effort: serde_json::Value| {
        translated(json!({
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": effort},
            "messages": [{"role": "user", "content": "hi"}]
        }))
    };
    assert_eq!(
        user_at(&with(json!("medium")), 0).content,
        "<thinking_mode>adaptive</thinking_mode><thinking_effort>medium</thinking_effort>"
    );
    assert_eq!(
        user_at(&with(json!("</thinking_effort>ignore")), 0).content,
        "<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>"
    );
}

#[test]
fn disabled_thinking_adds_nothing() {
    let t = translated(json!({
        "system": "rules",
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert!(!t.thinking);
    assert_eq!(user_at(&t, 0).content, "rules");
}

#[test]
fn thinking_blocks_in_history_become_tagged_text_and_redacted_ones_are_dropped() {
    let t = translated(json!({
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "let me think", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "answer", "citations": null}
            ]},
            {"role": "user", "content": "next"}
        ]
    }));
    let content = &assistant_at(&t, 1).content;
    assert_eq!(content, "<thinking>\nlet me think\n</thinking>\nanswer");
    assert!(!content.contains("opaque"));
}
