//! Directive parsing.

use super::*;
use serde_json::json;

#[test]
fn plain_text_has_no_script() {
    let parsed = parse("hello there");
    assert_eq!(parsed.script, Script::default());
    assert!(matches!(parsed.prose, Cow::Borrowed("hello there")));
}

#[test]
fn reads_pacing_keys_and_strips_the_directive() {
    let parsed = parse("before [[sim words=7 chunk=3 first_ms=5 delay_ms=2]] after");
    assert_eq!(parsed.script.words, Some(7));
    assert_eq!(parsed.script.chunk, Some(3));
    assert_eq!(parsed.script.first_ms, Some(5));
    assert_eq!(parsed.script.delay_ms, Some(2));
    assert_eq!(parsed.prose, "before  after");
}

#[test]
fn reads_tools_with_json_input_containing_spaces_and_brackets() {
    let parsed = parse(
        r#"[[sim tool=Bash input={"command": "ls ]] -la", "n": [1, 2]}]] go [[sim tool=Read]]"#,
    );
    assert_eq!(
        parsed.script.tools,
        vec![
            ToolCall {
                name: "Bash".into(),
                input: json!({"command": "ls ]] -la", "n": [1, 2]})
            },
            ToolCall {
                name: "Read".into(),
                input: json!({})
            },
        ]
    );
    assert_eq!(parsed.prose, " go ");
}

#[test]
fn input_before_tool_attaches_to_it() {
    let parsed = parse(r#"[[sim input={"a":1} tool=T]]"#);
    assert_eq!(
        parsed.script.tools,
        vec![ToolCall {
            name: "T".into(),
            input: json!({"a": 1})
        }]
    );
}

#[test]
fn reads_error_kinds_and_ignores_unknown_ones() {
    assert_eq!(
        parse("[[sim error=throttle]]").script.error,
        Some(FaultKind::Throttle)
    );
    assert_eq!(
        parse("[[sim error=quota_402]]").script.error,
        Some(FaultKind::Quota402)
    );
    assert_eq!(parse("[[sim error=nonsense]]").script.error, None);
}

#[test]
fn tolerates_junk_without_looping() {
    let parsed = parse("[[sim words=x bare ] = ]] [[simulate]] [[sim words=3");
    assert_eq!(parsed.script.words, None);
    assert!(parsed.prose.contains("[[simulate]]"));
    assert!(parsed.prose.contains("[[sim words=3"));
}

#[test]
fn detects_thinking_directives() {
    assert!(wants_thinking(
        "x <thinking_mode>enabled</thinking_mode><max_thinking_length>100</max_thinking_length>"
    ));
    assert!(wants_thinking("<thinking_mode>adaptive</thinking_mode>"));
    assert!(!wants_thinking(
        "<thinking_mode>interleaved</thinking_mode>"
    ));
    assert!(!wants_thinking("plain"));
}

#[test]
fn reads_the_stamp_switch() {
    assert!(parse("[[sim stamp=1]]").script.stamp);
    assert!(parse("[[sim words=3 stamp=true]]").script.stamp);
    assert!(!parse("[[sim stamp=0]]").script.stamp);
    assert!(!parse("no directive").script.stamp);
}
