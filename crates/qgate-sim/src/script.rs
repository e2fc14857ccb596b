//! Per-request steering: `[[sim key=value ...]]` directives in the current user message.
//!
//! Keys (any subset, in one directive or several): `words=N`, `chunk=K`, `first_ms=F`,
//! `delay_ms=D`, `tool=NAME`, `input=JSON` (for the tool named last; the JSON may contain
//! spaces), `error=KIND`, `stamp=1` (each reply word chunk starts with its send time).
//! Unknown keys and unparsable values are ignored, so a typo gives a default reply rather
//! than a failure that looks like the gateway's fault.

use crate::fault::FaultKind;
use serde_json::Value;
use std::borrow::Cow;

const OPEN: &str = "[[sim";
const CLOSE: &str = "]]";

/// What the directives of one message ask for.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Script {
    pub words: Option<usize>,
    pub chunk: Option<usize>,
    pub first_ms: Option<u64>,
    pub delay_ms: Option<u64>,
    pub tools: Vec<ToolCall>,
    pub error: Option<FaultKind>,
    /// Word chunks carry their CLOCK_MONOTONIC send time (`t<nanoseconds> ` in front),
    /// so a client on the same machine can measure per-chunk relay latency.
    pub stamp: bool,
}

/// A tool the reply should call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub name: String,
    pub input: Value,
}

/// The directives of a message, and its text with them removed.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub script: Script,
    pub prose: Cow<'a, str>,
}

/// Whether the message carries the thinking directive a gateway puts into the prompt.
pub(crate) fn wants_thinking(content: &str) -> bool {
    // `contains` with a short needle takes std's SIMD path; long needles and
    // `match_indices` use a scalar search that costs more, on a long prompt, than the rest
    // of the reply. So: cheap test first, exact match only when the tag is there.
    const OPEN_TAG: &str = "<thinking_mode>";
    content.contains(OPEN_TAG)
        && content.match_indices(OPEN_TAG).any(|(at, _)| {
            let rest = &content[at + OPEN_TAG.len()..];
            rest.starts_with("enabled</thinking_mode>")
                || rest.starts_with("adaptive</thinking_mode>")
        })
}

pub(crate) fn parse(content: &str) -> Parsed<'_> {
    let mut script = Script::default();
    if !content.contains(OPEN) {
        return Parsed {
            script,
            prose: Cow::Borrowed(content),
        };
    }
    let mut prose = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find(OPEN) {
        prose.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let opens_directive = after.starts_with(CLOSE) || after.starts_with(char::is_whitespace);
        match opens_directive
            .then(|| parse_directive(after, &mut script))
            .flatten()
        {
            Some(consumed) => rest = &after[consumed..],
            None => {
                prose.push_str(OPEN);
                rest = after;
            }
        }
    }
    prose.push_str(rest);
    Parsed {
        script,
        prose: Cow::Owned(prose),
    }
}

/// Applies one directive body (the text after `[[sim`) to `script`; returns the bytes it
/// spans including the closing `]]`, or `None` (and no change) when it never closes.
fn parse_directive(text: &str, script: &mut Script) -> Option<usize> {
    let mut draft = script.clone();
    let mut pos = 0;
    // An `input=` written before its `tool=` waits for it.
    let mut pending_input = None;
    loop {
        pos += text[pos..].len() - text[pos..].trim_start().len();
        let rest = &text[pos..];
        if rest.starts_with(CLOSE) {
            *script = draft;
            return Some(pos + CLOSE.len());
        }
        if rest.is_empty() {
            return None;
        }
        let key_len = rest
            .find(|c: char| c == '=' || c.is_whitespace() || c == ']')
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        pos += key_len;
        if !text[pos..].starts_with('=') {
            // A bare word: skip it (and a lone `]` so we cannot loop on it).
            if key_len == 0 {
                pos += 1;
            }
            continue;
        }
        pos += 1;
        if key == "input" {
            let mut values = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<Value>();
            if let Some(Ok(value)) = values.next() {
                pos += values.byte_offset();
                match draft.tools.last_mut() {
                    Some(call) => call.input = value,
                    None => pending_input = Some(value),
                }
            }
            continue;
        }
        let rest = &text[pos..];
        let value_len = rest
            .find(|c: char| c.is_whitespace() || c == ']')
            .unwrap_or(rest.len());
        let value = &rest[..value_len];
        pos += value_len;
        apply(&mut draft, key, value, &mut pending_input);
    }
}

fn apply(script: &mut Script, key: &str, value: &str, pending_input: &mut Option<Value>) {
    match key {
        "words" => script.words = value.parse().ok().or(script.words),
        "chunk" => script.chunk = value.parse().ok().filter(|k| *k > 0).or(script.chunk),
        "first_ms" => script.first_ms = value.parse().ok().or(script.first_ms),
        "delay_ms" => script.delay_ms = value.parse().ok().or(script.delay_ms),
        "error" => script.error = value.parse().ok().or(script.error),
        "stamp" => script.stamp = value == "1" || value.eq_ignore_ascii_case("true"),
        "tool" if !value.is_empty() => script.tools.push(ToolCall {
            name: value.to_owned(),
            input: pending_input
                .take()
                .unwrap_or_else(|| Value::Object(Default::default())),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
