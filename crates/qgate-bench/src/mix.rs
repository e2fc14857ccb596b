//! The request mix: named scenarios (reply shape, streaming or not, tool call, the large
//! Claude Code body) with weights, and their request bodies in both protocols.
//!
//! Each scenario's Anthropic body is built once; the Amazon Q body sent to the direct and
//! nginx targets is that same request run through `qgate-translate`, so every target is
//! asked the same question and the simulator answers all of them with the same text.
//! Every prompt carries `[[sim stamp=1]]`, so text chunks carry their send time.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use qgate_amazonq::Dialect;
use qgate_anthropic::MessagesRequest;
use qgate_translate::model_map::ModelMap;
use qgate_translate::request::{RequestOptions, translate};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;

/// The client model every generated request names (the fixture names its own).
const MODEL: &str = "claude-sonnet-4-5";
/// Words the simulator picks the reply from; the same for every scenario.
const PROMPT: &str = "Summarise the benchmark results for the quarterly gateway report in plain words \
     covering throughput latency memory and every error seen";

/// One kind of request.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    /// The `[[sim ...]]` directive that shapes the reply.
    pub directive: String,
    pub stream: bool,
    /// Declares a `Bash` tool and asks the simulator to call it.
    pub tool: bool,
    /// Uses the Claude Code first-turn fixture instead of the short prompt.
    pub claude_code: bool,
    pub weight: u32,
}

/// The built-in scenarios, by name; `--mix` picks and weighs them.
pub fn builtin(name: &str) -> Option<Scenario> {
    let (directive, stream, tool, claude_code) = match name {
        "short_stream" => ("words=20 chunk=1", true, false, false),
        "short_json" => ("words=20 chunk=1", false, false, false),
        "long_stream" => ("words=200 chunk=5", true, false, false),
        "long_json" => ("words=200 chunk=5", false, false, false),
        "tool_stream" => (
            "tool=Bash input={\"command\": \"ls -la\"}",
            true,
            true,
            false,
        ),
        "tool_json" => (
            "tool=Bash input={\"command\": \"ls -la\"}",
            false,
            true,
            false,
        ),
        "claude_code" => ("words=20 chunk=1", true, false, true),
        // As a model streams: one word a frame, 2 ms apart, so every frame arrives on its
        // own and its relay latency is not a burst's batching.
        "paced_stream" => ("words=20 chunk=1 delay_ms=2", true, false, false),
        // Cost of frames: the same reply cut into 20 or 200 upstream frames.
        "frames20" => ("words=20 chunk=1", true, false, false),
        "frames200" => ("words=200 chunk=1", true, false, false),
        _ => return None,
    };
    Some(Scenario {
        name: name.to_owned(),
        directive: format!("[[sim {directive} stamp=1]]"),
        stream,
        tool,
        claude_code,
        weight: 1,
    })
}

/// The default mix of the load phases.
pub const DEFAULT_MIX: &str =
    "short_stream=4,short_json=2,long_stream=2,long_json=1,tool_stream=1,claude_code=1";

/// Parses `name=weight,name=weight` (a bare name weighs 1).
pub fn parse_mix(spec: &str) -> Result<Vec<Scenario>> {
    let mut mix = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, weight) = match item.split_once('=') {
            Some((name, weight)) => (
                name.trim(),
                weight
                    .trim()
                    .parse::<u32>()
                    .with_context(|| format!("weight of `{name}` in --mix"))?,
            ),
            None => (item, 1),
        };
        let mut scenario = builtin(name).ok_or_else(|| {
            anyhow!(
                "unknown scenario `{name}` in --mix (known: short_stream, short_json, long_stream, \
                 long_json, tool_stream, tool_json, claude_code, paced_stream, frames20, frames200)"
            )
        })?;
        if weight > 0 {
            scenario.weight = weight;
            mix.push(scenario);
        }
    }
    if mix.is_empty() {
        bail!("--mix names no scenario with a weight above 0");
    }
    Ok(mix)
}

/// A scenario's ready-to-send bodies.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub scenario: Scenario,
    /// `POST /v1/messages` body (qgate).
    pub anthropic: Bytes,
    /// `POST /generateAssistantResponse` body (the simulator, directly or through nginx).
    pub amazonq: Bytes,
}

/// Builds both bodies of every scenario. `fixture` is the Claude Code request file
/// (`{"body": {...}}`); `profile_arn` is the simulated account's.
pub fn prepare(mix: &[Scenario], fixture: &Path, profile_arn: &str) -> Result<Vec<Prepared>> {
    let mut claude_code_body = None;
    let models = ModelMap::builtin();
    mix.iter()
        .map(|scenario| {
            let body = if scenario.claude_code {
                if claude_code_body.is_none() {
                    claude_code_body = Some(load_fixture(fixture)?);
                }
                let base = claude_code_body.clone().unwrap_or(Value::Null);
                claude_code_request(base, scenario)?
            } else {
                short_request(scenario)
            };
            let anthropic = Bytes::from(serde_json::to_vec(&body)?);
            let amazonq = to_amazonq(&anthropic, &models, profile_arn)
                .with_context(|| format!("translating scenario `{}`", scenario.name))?;
            Ok(Prepared {
                scenario: scenario.clone(),
                anthropic,
                amazonq,
            })
        })
        .collect()
}

fn short_request(scenario: &Scenario) -> Value {
    let mut body = json!({
        "model": MODEL,
        "max_tokens": 1024,
        "stream": scenario.stream,
        "messages": [{"role": "user", "content": format!("{PROMPT} {}", scenario.directive)}],
    });
    if scenario.tool {
        body["tools"] = json!([{
            "name": "Bash",
            "description": "Run a shell command and return its output.",
            "input_schema": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        }]);
    }
    body
}

fn load_fixture(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the Claude Code fixture {}", path.display()))?;
    let mut file: Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing the Claude Code fixture {}", path.display()))?;
    match file.get_mut("body") {
        Some(body) => Ok(body.take()),
        None => bail!("{} has no `body`", path.display()),
    }
}

/// The fixture with `stream` set and the scenario's directive appended to the last user
/// message (as a text block, which is how Claude Code sends its prompt).
fn claude_code_request(mut body: Value, scenario: &Scenario) -> Result<Value> {
    body["stream"] = Value::Bool(scenario.stream);
    let messages = body
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .context("the fixture has no messages")?;
    let last_user = messages
        .iter_mut()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .context("the fixture has no user message")?;
    let directive = json!({"type": "text", "text": scenario.directive});
    match last_user.get_mut("content") {
        Some(Value::Array(blocks)) => blocks.push(directive),
        Some(content) => {
            let text = content.as_str().unwrap_or_default().to_owned();
            *content = json!([{"type": "text", "text": text}, directive]);
        }
        None => bail!("the fixture's last user message has no content"),
    }
    Ok(body)
}

fn to_amazonq(anthropic: &[u8], models: &ModelMap, profile_arn: &str) -> Result<Bytes> {
    let request: MessagesRequest = serde_json::from_slice(anthropic)?;
    let model = models.resolve(&request.model)?;
    let session = request.session_id();
    let translated = translate(
        &request,
        &RequestOptions {
            model_id: &model.upstream_id,
            origin: Dialect::Kiro.origin(),
            profile_arn: Some(profile_arn),
            session_id: session.as_deref(),
        },
    )?;
    Ok(Bytes::from(serde_json::to_vec(&translated.body)?))
}

/// Scenario indices in a fixed weighted order: request `i` uses `order[i % len]`, so every
/// target gets the same sequence.
pub fn weighted_order(mix: &[Prepared]) -> Vec<usize> {
    let mut order = Vec::new();
    let max = mix.iter().map(|p| p.scenario.weight).max().unwrap_or(0);
    // Interleaved rather than in blocks, so a short run still sees every scenario.
    for round in 0..max {
        for (index, prepared) in mix.iter().enumerate() {
            if round < prepared.scenario.weight {
                order.push(index);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_and_rejects_unknown_names() {
        let mix = parse_mix("short_stream=3, long_json ,tool_stream=0").unwrap();
        let names: Vec<_> = mix.iter().map(|s| (s.name.as_str(), s.weight)).collect();
        assert_eq!(names, [("short_stream", 3), ("long_json", 1)]);
        assert!(parse_mix("nope=1").is_err());
        assert!(parse_mix("short_stream=0").is_err());
    }

    #[test]
    fn every_prompt_is_stamped() {
        let mix = parse_mix(DEFAULT_MIX).unwrap();
        assert!(mix.iter().all(|s| s.directive.contains("stamp=1")));
    }

    #[test]
    fn both_bodies_carry_the_directive() {
        let mix = parse_mix("tool_json=1").unwrap();
        let fixture = Path::new("/nonexistent");
        let prepared = prepare(&mix, fixture, "arn:aws:codewhisperer:x").unwrap();
        let anthropic = String::from_utf8(prepared[0].anthropic.to_vec()).unwrap();
        let amazonq = String::from_utf8(prepared[0].amazonq.to_vec()).unwrap();
        assert!(anthropic.contains("stamp=1") && amazonq.contains("stamp=1"));
        assert!(amazonq.contains("\"Bash\""), "{amazonq}");
        assert!(anthropic.contains("\"stream\":false"));
    }
}
