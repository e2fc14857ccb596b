//! A structured generator of Anthropic Messages requests: every shape the API accepts,
//! with values drawn from a vocabulary that makes collisions likely (the same tool ids and
//! names across calls and results, thinking tags in text, over-long tool names) or from
//! anything at all. It builds JSON, so the tolerant request parser is exercised too.

use crate::decode::pick_or_any;
use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

const TEXTS: &[&str] = &[
    "hello",
    "",
    " ",
    "\n\n",
    "<thinking>",
    "</thinking>",
    "<thinking>private</thinking>answer",
    "<thinking_mode>enabled</thinking_mode>",
    "[[sim words=3]]",
    "中文内容 ✓",
    "\u{0}\u{1b}[31m",
    "\u{feff}",
    "\"quoted\" \\ back",
    "{\"json\": [1, 2]}",
    "Tool result toolu_0: done",
    "(empty message)",
];

const TOOL_NAMES: &[&str] = &[
    "Bash",
    "bash",
    "Read",
    "Write",
    "mcp__an_extremely_long_server_name_for_testing__and_an_even_longer_tool_name_x",
    "mcp__an_extremely_long_server_name_for_testing__and_an_even_longer_tool_name_y",
    "tool with spaces.and.dots",
    "",
    "ツール",
    "web_search",
];

const TOOL_IDS: &[&str] = &[
    "toolu_0",
    "toolu_1",
    "toolu_2",
    "toolu_3",
    "",
    "tooluse_ü x",
];

const MEDIA_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "",
    "IMAGE/PNG",
];

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

const IMAGE_DATA: &[&str] = &[PNG, "not base64!!", "", "aGVsbG8", "aGVs\nbG8=", "===="];

const TOOL_KINDS: &[&str] = &[
    "custom",
    "web_search_20250305",
    "bash_20250124",
    "text_editor_20250728",
];

const EFFORTS: &[&str] = &["low", "medium", "high", "max"];

const USER_IDS: &[&str] = &[
    "{\"device_id\":\"d\",\"account_uuid\":\"\",\"session_id\":\"0149c1dd-471e-41b2-a989-8a28586cdc81\"}",
    "{\"session_id\":\"\"}",
    "user_abc_account_def_session_0149c1dd-471e-41b2-a989-8a28586cdc81",
    "session_",
    "  ",
];

/// A whole request body.
pub fn request(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!("claude-sonnet-4-5"));
    body.insert("max_tokens".into(), json!(u.int_in_range(1u64..=u64::MAX)?));
    body.insert("messages".into(), Value::Array(messages(u)?));
    if u.arbitrary()? {
        body.insert("system".into(), system(u)?);
    }
    if u.arbitrary()? {
        let n = u.int_in_range(0usize..=8)?;
        let tools = (0..n).map(|_| tool(u)).collect::<Result<Vec<_>>>()?;
        body.insert("tools".into(), Value::Array(tools));
    }
    if u.arbitrary()? {
        body.insert("tool_choice".into(), any_json(u, 3)?);
    }
    if u.arbitrary()? {
        body.insert("thinking".into(), thinking(u)?);
    }
    if u.arbitrary()? {
        body.insert(
            "metadata".into(),
            json!({"user_id": pick_or_any(u, USER_IDS)?}),
        );
    }
    if u.arbitrary()? {
        body.insert(
            "output_config".into(),
            json!({"effort": pick_or_any(u, EFFORTS)?}),
        );
    }
    if u.arbitrary()? {
        body.insert("stream".into(), json!(u.arbitrary::<bool>()?));
    }
    Ok(Value::Object(body))
}

fn messages(u: &mut Unstructured<'_>) -> Result<Vec<Value>> {
    let n = u.int_in_range(0usize..=12)?;
    let mut list = (0..n).map(|_| message(u)).collect::<Result<Vec<_>>>()?;
    // Now and then a very long conversation: the pattern repeated past the service's
    // 10 000 history items.
    if !list.is_empty() && u.ratio(1u8, 255u8)? {
        // Bodies stay within a few MB (the gateway's own limit is 32 MiB): size is not
        // what this generator explores, and huge inputs would starve the fuzzer.
        let size: usize = list.iter().map(|m| m.to_string().len()).sum();
        let times = u
            .int_in_range(1usize..=12_000)?
            .div_ceil(list.len())
            .min(4_000_000 / size.max(1))
            .max(1);
        list = list
            .iter()
            .cycle()
            .take(times * list.len())
            .cloned()
            .collect();
    }
    Ok(list)
}

fn message(u: &mut Unstructured<'_>) -> Result<Value> {
    let role = *u.choose(&["user", "user", "assistant", "assistant", "system"])?;
    let content = if u.ratio(1u8, 4u8)? {
        Value::String(text(u)?)
    } else {
        let n = u.int_in_range(0usize..=5)?;
        Value::Array((0..n).map(|_| block(u, 0)).collect::<Result<Vec<_>>>()?)
    };
    Ok(json!({"role": role, "content": content}))
}

fn block(u: &mut Unstructured<'_>, depth: u8) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 | 1 => {
            let text = if u.ratio(1u8, 16u8)? {
                Value::Null
            } else {
                Value::String(text(u)?)
            };
            json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
        }
        2 => json!({"type": "image", "source": image_source(u)?}),
        3 => json!({"type": "tool_use", "id": pick_or_any(u, TOOL_IDS)?,
                    "name": pick_or_any(u, TOOL_NAMES)?, "input": any_json(u, 4)?}),
        4 | 5 => {
            let mut result =
                json!({"type": "tool_result", "tool_use_id": pick_or_any(u, TOOL_IDS)?});
            match u.int_in_range(0u8..=3)? {
                0 => {}
                1 => result["content"] = Value::String(text(u)?),
                2 if depth < 2 => {
                    let n = u.int_in_range(0usize..=3)?;
                    let inner = (0..n)
                        .map(|_| block(u, depth + 1))
                        .collect::<Result<Vec<_>>>()?;
                    result["content"] = Value::Array(inner);
                }
                _ => result["content"] = json!([{"type": "text", "text": text(u)?}]),
            }
            if u.arbitrary()? {
                result["is_error"] = json!(u.arbitrary::<bool>()?);
            }
            result
        }
        6 => {
            json!({"type": "thinking", "thinking": text(u)?, "signature": pick_or_any(u, &["c2ln", ""])?})
        }
        7 => json!({"type": "redacted_thinking", "data": text(u)?}),
        8 => json!({"type": "document", "source": any_json(u, 2)?, "title": text(u)?}),
        // Block types this gateway does not know; the `x_` keeps them unknown whatever
        // the fuzzer picks.
        _ => {
            let kind = pick_or_any(u, &["server_tool_use", "web_search_tool_result"])?;
            json!({"type": format!("x_{kind}"), "id": "srv"})
        }
    })
}

fn image_source(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=5)? {
        0..=2 => json!({"type": "base64", "media_type": pick_or_any(u, MEDIA_TYPES)?,
                        "data": pick_or_any(u, IMAGE_DATA)?}),
        3 => json!({"type": "url", "url": format!("data:{};base64,{}",
                        pick_or_any(u, MEDIA_TYPES)?, pick_or_any(u, IMAGE_DATA)?)}),
        4 => json!({"type": "url", "url": "https://example.com/a.png"}),
        _ => json!({"type": "file", "file_id": "file_1"}),
    })
}

fn system(u: &mut Unstructured<'_>) -> Result<Value> {
    if u.arbitrary()? {
        return Ok(Value::String(text(u)?));
    }
    let n = u.int_in_range(0usize..=3)?;
    let blocks = (0..n)
        .map(|_| {
            Ok(json!({"type": "text", "text": text(u)?, "cache_control": {"type": "ephemeral"}}))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Array(blocks))
}

fn tool(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut tool = json!({"name": pick_or_any(u, TOOL_NAMES)?});
    if u.arbitrary()? {
        tool["description"] = Value::String(text(u)?);
    }
    match u.int_in_range(0u8..=4)? {
        0 => {}
        1 => tool["input_schema"] = any_json(u, 4)?,
        2 => tool["input_schema"] = json!({"type": "OBJECT", "required": null}),
        _ => {
            tool["input_schema"] = json!({
                "type": "object",
                "properties": {"command": {"type": "string"}, "n": {"type": "integer"}},
                "required": [pick_or_any(u, &["command", "missing"])?],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#",
            })
        }
    }
    if u.ratio(1u8, 4u8)? {
        tool["type"] = Value::String(pick_or_any(u, TOOL_KINDS)?);
    }
    Ok(tool)
}

fn thinking(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => json!({"type": "enabled", "budget_tokens": u.arbitrary::<u64>()?}),
        1 => json!({"type": "enabled"}),
        2 => json!({"type": "adaptive"}),
        3 => json!({"type": "disabled"}),
        4 => Value::Null,
        _ => json!({"type": pick_or_any(u, &["interleaved"])?}),
    })
}

/// Text from the vocabulary, anything, or now and then something long: past the 10 KiB
/// tool description limit, or (rarely, as it slows every run down) past the service's
/// 600 000-character message and 800 000-byte tool result limits.
fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let max_bytes = if u.ratio(1u8, 32u8)? {
        if u.ratio(1u8, 16u8)? {
            1_000_000
        } else {
            20_000
        }
    } else {
        return pick_or_any(u, TEXTS);
    };
    let unit = pick_or_any(u, &["lorem ipsum dolor sit amet ", "界"])?;
    let times = u.int_in_range(1usize..=max_bytes)?;
    Ok(unit.repeat(times.min(max_bytes / unit.len().max(1))))
}

/// Any JSON value, at most `depth` levels deep (the parser's recursion limit is not
/// what this target is about; the gateway tests cover deep nesting).
fn any_json(u: &mut Unstructured<'_>, depth: u8) -> Result<Value> {
    let kinds = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0u8..=kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(pick_or_any(u, TEXTS)?),
        5 => {
            let n = u.int_in_range(0usize..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| any_json(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0usize..=4)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(
                    pick_or_any(u, &["type", "command", "path", ""])?,
                    any_json(u, depth - 1)?,
                );
            }
            Value::Object(map)
        }
    })
}
