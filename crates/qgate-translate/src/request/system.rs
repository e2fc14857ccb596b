//! The system section: the top-level `system` prompt, every `role:"system"` entry of
//! `messages`, and the thinking directive, as one text.
//!
//! Amazon Q has no system field. The section becomes a leading history pair
//! (`user: <section>` / `assistant: "I will follow these instructions."`), which is present
//! on every turn whatever the current message holds. The alternative, prefixing the
//! current message, loses the prompt on tool-result-only turns unless repeated with care,
//! moves a 10-80 KB block to a new place every turn, and eats into the current message's
//! size limit; the leading pair has none of these problems. Mid-conversation system entries
//! lose their position but never their text.

use qgate_anthropic::{SystemPrompt, ThinkingConfig};

/// The assistant half of the system pair.
pub(super) const SYSTEM_ACKNOWLEDGEMENT: &str = "I will follow these instructions.";

/// Budget used when `thinking.type == "enabled"` comes without `budget_tokens`.
const DEFAULT_THINKING_BUDGET: u64 = 16_000;

/// Effort used for adaptive thinking when `output_config.effort` is absent or not a
/// plain word; `high` is what Claude Code sends.
const DEFAULT_THINKING_EFFORT: &str = "high";

/// The section text, if there is anything to say, and whether it carries a thinking
/// directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SystemSection {
    pub text: Option<String>,
    pub thinking: bool,
}

/// `tool_documentation` holds `(tool name, rest of its description)` for descriptions cut
/// to fit the tool list; the rest is appended so the model still reads all of it.
pub(super) fn section(
    system: Option<&SystemPrompt>,
    entries: &[String],
    thinking: Option<&ThinkingConfig>,
    effort: Option<&str>,
    tool_documentation: &[(String, String)],
) -> SystemSection {
    let directive = thinking_directive(thinking, effort);
    let mut parts: Vec<String> = Vec::with_capacity(entries.len() + 2);
    if let Some(system) = system {
        parts.push(system.text());
    }
    parts.extend(entries.iter().cloned());
    if !tool_documentation.is_empty() {
        let mut docs = String::from("# Tool documentation");
        for (name, rest) in tool_documentation {
            docs.push_str(&format!("\n\n## {name} (continued)\n{rest}"));
        }
        parts.push(docs);
    }
    parts.retain(|part| !part.trim().is_empty());
    let body = parts.join("\n\n");
    let text = match (&directive, body.is_empty()) {
        (None, true) => None,
        (None, false) => Some(body),
        (Some(directive), true) => Some(directive.clone()),
        // The directive leads so the model reads it before anything else.
        (Some(directive), false) => Some(format!("{directive}\n{body}")),
    };
    SystemSection {
        text,
        thinking: directive.is_some(),
    }
}

/// The prompt-level switch that makes the upstream model think in `<thinking>` tags.
fn thinking_directive(thinking: Option<&ThinkingConfig>, effort: Option<&str>) -> Option<String> {
    match thinking? {
        ThinkingConfig::Enabled { budget_tokens } => {
            let budget = budget_tokens
                .filter(|b| *b > 0)
                .unwrap_or(DEFAULT_THINKING_BUDGET);
            Some(format!(
                "<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
            ))
        }
        ThinkingConfig::Adaptive {} => {
            // Only a short plain word goes into the prompt directive.
            let effort = effort
                .filter(|e| {
                    !e.is_empty() && e.len() <= 16 && e.bytes().all(|b| b.is_ascii_alphabetic())
                })
                .unwrap_or(DEFAULT_THINKING_EFFORT);
            Some(format!(
                "<thinking_mode>adaptive</thinking_mode><thinking_effort>{effort}</thinking_effort>"
            ))
        }
        ThinkingConfig::Disabled {} | ThinkingConfig::Unknown => None,
    }
}
