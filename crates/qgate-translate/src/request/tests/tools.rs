//! Tool definitions, names and schemas.

use super::*;
use crate::tool_names::MAX_TOOL_NAME_LEN;

fn specs(t: &Translated) -> Vec<qgate_amazonq::ToolSpecification> {
    current(t)
        .user_input_message_context
        .iter()
        .flat_map(|c| c.tools.iter())
        .map(|tool| tool.tool_specification.clone())
        .collect()
}

#[test]
fn tools_map_to_tool_specifications() {
    let t = translated(json!({
        "tools": [{
            "name": "Read",
            "description": "Reads a file",
            "input_schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"],
                "additionalProperties": false
            }
        }],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    let specs = specs(&t);
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].name, "Read");
    assert_eq!(specs[0].description, "Reads a file");
    assert_eq!(
        specs[0].input_schema.json,
        json!({
            "type": "object",
            "properties": {"file_path": {"type": "string"}},
            "required": ["file_path"],
            "additionalProperties": false
        })
    );
    assert!(t.tool_names.is_empty());
}

#[test]
fn missing_or_blank_descriptions_are_filled_with_the_name() {
    let t = translated(json!({
        "tools": [
            {"name": "A", "input_schema": {"type": "object"}},
            {"name": "B", "description": "   ", "input_schema": {"type": "object"}}
        ],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    let descriptions: Vec<String> = specs(&t).into_iter().map(|s| s.description).collect();
    assert_eq!(descriptions, vec!["A".to_owned(), "B".to_owned()]);
}

#[test]
fn long_descriptions_are_truncated_on_a_char_boundary_with_a_note() {
    let long = "é".repeat(8_000); // 16 000 bytes
    let t = translated(json!({
        "tools": [{"name": "Big", "description": long, "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    let description = &specs(&t)[0].description;
    assert!(
        description.len() <= MAX_TOOL_DESCRIPTION_LEN,
        "{}",
        description.len()
    );
    assert!(description.starts_with("éé"));
    assert!(
        description.ends_with("under \"Tool documentation\".]"),
        "{description}"
    );
    assert!(
        t.repairs
            .contains(&Repair::TruncatedToolDescription { name: "Big".into() })
    );
    // Nothing is lost and nothing repeated: the rest continues in the system section.
    let system = &user_at(&t, 0).content;
    let rest = system
        .strip_prefix("# Tool documentation\n\n## Big (continued)\n")
        .expect("continuation section");
    let kept = description
        .strip_suffix(
            "\n\n[Description continues in the system prompt under \"Tool documentation\".]",
        )
        .expect("note");
    assert_eq!(format!("{kept}{rest}"), long);
    assert_well_formed(&t);
}

#[test]
fn long_tool_names_are_shortened_consistently_in_specs_and_history() {
    let long = format!("mcp__{}__search", "a_very_long_server_name".repeat(3));
    let t = translated(json!({
        "tools": [{"name": long, "description": "search", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": long, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "found"}]}
        ]
    }));
    let declared = tool_names_declared(&t);
    assert_eq!(declared.len(), 1);
    let short = &declared[0];
    assert!(short.len() <= MAX_TOOL_NAME_LEN);
    assert_eq!(&assistant_at(&t, 1).tool_uses[0].name, short);
    assert_eq!(t.tool_names.original(short), long);
    assert_well_formed(&t);
}

#[test]
fn tools_used_in_history_but_not_declared_get_placeholders() {
    let t = translated(json!({
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "OldTool", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
        ]
    }));
    let specs = specs(&t);
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].name, "OldTool");
    assert!(!specs[0].description.is_empty());
    assert_eq!(specs[0].input_schema.json["type"], "object");
    assert!(t.repairs.contains(&Repair::PlaceholderToolSpec {
        name: "OldTool".into()
    }));
}

#[test]
fn history_calls_in_other_case_use_the_declared_spelling() {
    let t = translated(json!({
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
        ]
    }));
    assert_eq!(tool_names_declared(&t), vec!["Bash".to_owned()]);
    assert_eq!(assistant_at(&t, 1).tool_uses[0].name, "Bash");
}

#[test]
fn server_tools_and_duplicates_are_dropped() {
    let t = translated(json!({
        "tools": [
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"name": "Read", "description": "one", "input_schema": {"type": "object"}},
            {"name": "read", "description": "two", "input_schema": {"type": "object"}}
        ],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert_eq!(tool_names_declared(&t), vec!["Read".to_owned()]);
    assert!(t.repairs.contains(&Repair::DroppedServerTool {
        name: "web_search".into()
    }));
    assert!(t.repairs.contains(&Repair::DroppedDuplicateTool {
        name: "read".into()
    }));
}

#[test]
fn invalid_schemas_are_replaced() {
    let t = translated(json!({
        "tools": [{"name": "Odd", "description": "d", "input_schema": "object"}],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert_eq!(
        specs(&t)[0].input_schema.json,
        json!({"type": "object", "properties": {}, "required": []})
    );
}

#[test]
fn tools_are_sent_only_on_the_current_message() {
    let t = translated(json!({
        "system": "s",
        "tools": [{"name": "Read", "description": "d", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}
        ]
    }));
    for item in history(&t) {
        if let ChatMessage::UserInputMessage(user) = item {
            assert!(
                user.user_input_message_context
                    .as_ref()
                    .is_none_or(|c| c.tools.is_empty())
            );
        }
    }
    assert_eq!(tool_names_declared(&t).len(), 1);
}

#[test]
fn blank_tool_name_without_description_still_gets_a_description() {
    // Found by fuzzing (fuzz/regressions/translate_request/blank_tool_name.json).
    let t = translated(json!({
        "tools": [{"name": "", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    let specs = specs(&t);
    assert_eq!(specs.len(), 1);
    assert!(!specs[0].name.is_empty());
    assert!(!specs[0].description.trim().is_empty());
    assert_well_formed(&t);
}
