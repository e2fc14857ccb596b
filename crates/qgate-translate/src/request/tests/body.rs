//! Body-level fields, ignored Anthropic fields, account switching, conversation ids.

use super::*;

#[test]
fn body_fields_are_set() {
    let t = translated(json!({
        "system": "s",
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}
        ]
    }));
    let state = &t.body.conversation_state;
    assert_eq!(
        state.conversation_id,
        "0149c1dd-471e-41b2-a989-8a28586cdc81"
    );
    assert_eq!(state.chat_trigger_type, "MANUAL");
    assert_eq!(state.agent_task_type.as_deref(), Some("vibe"));
    let continuation = state
        .agent_continuation_id
        .as_deref()
        .expect("continuation id");
    assert!(uuid::Uuid::parse_str(continuation).is_ok());
    assert_eq!(
        t.body.profile_arn.as_deref(),
        Some("arn:aws:codewhisperer:us-east-1:123456789012:profile/TEST")
    );
    let users = [user_at(&t, 0), user_at(&t, 2), current(&t)];
    for user in users {
        assert_eq!(user.model_id.as_deref(), Some("claude-sonnet-4.5"));
        assert_eq!(user.origin.as_deref(), Some("AI_EDITOR"));
        assert!(
            user.user_input_message_context
                .as_ref()
                .is_none_or(|c| c.env_state.is_none())
        );
    }
    let json = serde_json::to_value(&t.body).expect("serializes");
    assert_eq!(
        json["conversationState"]["currentMessage"]["userInputMessage"]["content"],
        "c"
    );
}

#[test]
fn continuation_ids_are_fresh_per_request() {
    let req = request(json!({"messages": [{"role": "user", "content": "hi"}]}));
    let a = translate(&req, &OPTS).expect("ok");
    let b = translate(&req, &OPTS).expect("ok");
    assert_ne!(
        a.body.conversation_state.agent_continuation_id,
        b.body.conversation_state.agent_continuation_id
    );
    assert_eq!(
        a.body.conversation_state.conversation_id,
        b.body.conversation_state.conversation_id
    );
}

#[test]
fn fields_without_a_wire_equivalent_are_accepted_and_ignored() {
    let t = translated(json!({
        "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
        "tool_choice": {"type": "auto"}, "stream": true,
        "metadata": {"user_id": "{\"device_id\":\"d\",\"session_id\":\"s\"}"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high", "format": null},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}, "citations": null}]}]
    }));
    assert_eq!(current(&t).content, "hi");
    assert!(t.repairs.is_empty(), "{:?}", t.repairs);
    let json = serde_json::to_string(&t.body).expect("serializes");
    for absent in [
        "temperature",
        "top_p",
        "stop_sequences",
        "cache_control",
        "END",
    ] {
        assert!(!json.contains(absent), "{absent} leaked into {json}");
    }
}

#[test]
fn set_account_rewrites_origin_everywhere_and_the_profile() {
    let mut t = translated(json!({
        "system": "s",
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}
        ]
    }));
    t.set_account("CLI", None);
    assert_eq!(t.body.profile_arn, None);
    assert_eq!(current(&t).origin.as_deref(), Some("CLI"));
    for index in [0, 2] {
        assert_eq!(user_at(&t, index).origin.as_deref(), Some("CLI"));
    }
    t.set_account("AI_EDITOR", Some("arn:other"));
    assert_eq!(t.body.profile_arn.as_deref(), Some("arn:other"));
}

#[test]
fn input_tokens_estimate_the_translated_body() {
    let t = translated(json!({
        "system": "You are a careful assistant.",
        "messages": [{"role": "user", "content": "Summarise the design document in three bullet points."}]
    }));
    assert_eq!(t.input_tokens, crate::tokens::estimate_request(&t.body));
    assert!(t.input_tokens > 10);
}

#[test]
fn uuid_session_ids_are_used_as_is() {
    let id = "0149c1dd-471e-41b2-a989-8a28586cdc81";
    assert_eq!(conversation_id(Some(id)), id);
}

#[test]
fn other_session_ids_hash_to_a_stable_uuid() {
    let a = conversation_id(Some("user_abc_account__session_not-a-uuid"));
    assert_eq!(
        a,
        conversation_id(Some("user_abc_account__session_not-a-uuid"))
    );
    assert_ne!(a, conversation_id(Some("another session")));
    assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    assert_eq!(a.len(), 36);
}

#[test]
fn missing_session_ids_get_random_uuids() {
    let a = conversation_id(None);
    let b = conversation_id(Some("   "));
    assert!(uuid::Uuid::parse_str(&a).is_ok());
    assert!(uuid::Uuid::parse_str(&b).is_ok());
    assert_ne!(a, b);
}

#[test]
fn repairs_display_without_debug_noise() {
    let repair = Repair::ShortenedToolName {
        from: "a".repeat(70),
        to: "short_1234abcd".into(),
    };
    let text = repair.to_string();
    assert!(text.starts_with("renamed tool "), "{text}");
    assert!(!text.contains('{'));
}
