//! Anthropic tool definitions → `toolSpecification`s the service accepts: valid names
//! (shortened through the request's [`ToolNameMapBuilder`]), non-empty descriptions within
//! the length cap, normalised JSON schemas, no server tools, no duplicates, and a
//! placeholder for every tool that history calls but the request no longer declares
//! (otherwise the service answers `TOOL_CONFIG_MISSING`).

use super::convert::Turn;
use super::{MAX_TOOL_DESCRIPTION_LEN, Repair};
use crate::tool_names::ToolNameMapBuilder;
use qgate_amazonq::{InputSchema, Tool, ToolList, ToolSpecification};
use serde_json::Value;
use std::collections::HashMap;

mod remembered;
mod schema;

pub(super) use remembered::declare;

/// Description of a tool that history calls but the request does not declare.
const PLACEHOLDER_DESCRIPTION: &str =
    "Tool used earlier in this conversation; it is no longer available.";

/// Ends a truncated description; the rest goes to the system section.
const TRUNCATION_NOTE: &str =
    "\n\n[Description continues in the system prompt under \"Tool documentation\".]";

/// The converted tool list, and the remainders of descriptions that had to be cut.
#[derive(Debug, Clone, Default)]
pub(super) struct Declared {
    pub specs: ToolList,
    /// `(upstream name, rest of the description)`: nothing a client wrote about a tool is
    /// lost, and nothing is sent twice (Claude Code's `Workflow` description alone is
    /// 18 KB; repeating its first 10 KB would cost ~2 500 tokens on every request).
    pub documentation: Vec<(String, String)>,
}

/// The upstream name for a client tool name, recording the first time one is shortened.
pub(super) fn upstream_name(
    names: &mut ToolNameMapBuilder,
    client: &str,
    repairs: &mut Vec<Repair>,
) -> String {
    let first_time = !names.is_known(client);
    let upstream = names.upstream_name(client);
    if first_time && upstream != client {
        repairs.push(Repair::ShortenedToolName {
            from: client.to_owned(),
            to: upstream.clone(),
        });
    }
    upstream
}

/// The declared tools, converted. Server tools (no `input_schema`) have no upstream
/// equivalent and are dropped.
pub(super) fn declared(
    tools: &[qgate_anthropic::Tool],
    names: &mut ToolNameMapBuilder,
    repairs: &mut Vec<Repair>,
) -> Declared {
    let mut specs: Vec<Tool> = Vec::with_capacity(tools.len());
    let mut documentation = Vec::new();
    for tool in tools {
        let Some(input_schema) = &tool.input_schema else {
            repairs.push(Repair::DroppedServerTool {
                name: tool.name.clone(),
            });
            continue;
        };
        let name = upstream_name(names, &tool.name, repairs);
        if specs
            .iter()
            .any(|s| s.tool_specification.name.eq_ignore_ascii_case(&name))
        {
            repairs.push(Repair::DroppedDuplicateTool {
                name: tool.name.clone(),
            });
            continue;
        }
        let description = match description(&tool.name, tool.description.as_deref(), repairs) {
            Described::Whole(text) => text,
            Described::Truncated { kept, rest } => {
                documentation.push((name.clone(), rest.to_owned()));
                kept
            }
        };
        let json = match schema::normalize(input_schema) {
            Some(json) => json,
            None => {
                repairs.push(Repair::ReplacedToolSchema {
                    name: tool.name.clone(),
                });
                schema::empty_object()
            }
        };
        specs.push(spec(name, description, json));
    }
    Declared {
        specs: specs.into(),
        documentation,
    }
}

fn spec(name: String, description: String, json: Value) -> Tool {
    Tool {
        tool_specification: ToolSpecification {
            name,
            description,
            input_schema: InputSchema { json },
        },
    }
}

enum Described<'a> {
    Whole(String),
    Truncated { kept: String, rest: &'a str },
}

/// A non-empty description of at most [`MAX_TOOL_DESCRIPTION_LEN`] bytes (bytes, not
/// characters, so the cap holds however the service counts). Claude Code's `Workflow`
/// tool alone has an 18 KB description, so truncation is routine, not an edge case.
/// Description given to a tool that has neither a name nor a description.
const UNNAMED_TOOL_DESCRIPTION: &str = "A tool declared without a name or description.";

fn description<'a>(
    name: &str,
    description: Option<&'a str>,
    repairs: &mut Vec<Repair>,
) -> Described<'a> {
    let text = description.unwrap_or_default();
    if text.trim().is_empty() {
        repairs.push(Repair::FilledToolDescription {
            name: name.to_owned(),
        });
        // The service rejects an empty description; a blank name cannot stand in for it.
        let filler = if name.trim().is_empty() {
            UNNAMED_TOOL_DESCRIPTION
        } else {
            name
        };
        return Described::Whole(truncate_to(filler, MAX_TOOL_DESCRIPTION_LEN).to_owned());
    }
    if text.len() <= MAX_TOOL_DESCRIPTION_LEN {
        return Described::Whole(text.to_owned());
    }
    repairs.push(Repair::TruncatedToolDescription {
        name: name.to_owned(),
    });
    let kept = truncate_to(text, MAX_TOOL_DESCRIPTION_LEN - TRUNCATION_NOTE.len());
    Described::Truncated {
        kept: format!("{kept}{TRUNCATION_NOTE}"),
        rest: &text[kept.len()..],
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
pub(super) fn truncate_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Makes every tool called in history refer to a declared tool: a call naming a declared
/// tool in other letter case takes the declared spelling (the service matches names
/// case-insensitively, a validator may not), and undeclared tools get placeholders.
pub(super) fn declare_used(specs: &mut ToolList, turns: &mut [Turn], repairs: &mut Vec<Repair>) {
    let mut declared: HashMap<String, String> = specs
        .iter()
        .map(|s| {
            let name = &s.tool_specification.name;
            (name.to_ascii_lowercase(), name.clone())
        })
        .collect();
    for turn in turns.iter_mut() {
        let Turn::Assistant(assistant) = turn else {
            continue;
        };
        for tool_use in &mut assistant.tool_uses {
            let key = tool_use.name.to_ascii_lowercase();
            match declared.get(&key) {
                Some(declared_name) if *declared_name == tool_use.name => {}
                Some(declared_name) => {
                    repairs.push(Repair::MatchedToolNameCase {
                        from: tool_use.name.clone(),
                        to: declared_name.clone(),
                    });
                    tool_use.name = declared_name.clone();
                }
                None => {
                    repairs.push(Repair::PlaceholderToolSpec {
                        name: tool_use.name.clone(),
                    });
                    declared.insert(key, tool_use.name.clone());
                    specs.push(spec(
                        tool_use.name.clone(),
                        PLACEHOLDER_DESCRIPTION.to_owned(),
                        schema::empty_object(),
                    ));
                }
            }
        }
    }
}
