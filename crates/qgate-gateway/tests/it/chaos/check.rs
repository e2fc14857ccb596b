//! The invariant every single reply must satisfy, whatever the chaos: a complete,
//! well-formed answer to what was asked, or a correct Anthropic error.
//!
//! Stream shape comes from the shared validator (`support::check_sse`, the translator's
//! own); this adds what a client under failure relies on: the error's `type` matches its
//! HTTP status, 429 and 529 carry `retry-after`, only errors that failures can explain
//! appear (a 400 or a 500 for a valid request is a bug here), a complete reply says what
//! was scripted (the tool input carries the request's own id, so crossed streams show),
//! and no secret of the simulator's accounts appears in any body.

use super::plan::{Ask, Request};
use crate::support::{check_reply, check_sse};
use qgate_anthropic::error::ErrorBody;
use qgate_anthropic::{ErrorKind, MessageResponse, ResponseBlock, StopReason};
use serde_json::{Value, json};

/// What a reply was, when it was acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Complete {
        stream: bool,
    },
    /// A stream that ended with `event: error` (after `message_start`, or alone).
    StreamError {
        kind: &'static str,
        why: String,
    },
    HttpError {
        status: u16,
        kind: &'static str,
        why: String,
    },
}

impl Outcome {
    pub fn label(&self) -> String {
        match self {
            Outcome::Complete { stream: true } => "complete (stream)".into(),
            Outcome::Complete { stream: false } => "complete (json)".into(),
            Outcome::StreamError { kind, why } => {
                format!("stream ended by event: error {kind}: {why}")
            }
            Outcome::HttpError { status, kind, why } => format!("http {status} {kind}: {why}"),
        }
    }
}

/// A raw reply as the client received it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: String,
}

/// Strings that would only appear if a credential leaked.
const SECRET_MARKERS: [&str; 3] = ["sim-refresh-", "sim-secret-", "aoaSIM"];

/// Checks one reply against its request.
pub fn check(request: &Request, reply: &Reply) -> Result<Outcome, String> {
    if let Some(marker) = SECRET_MARKERS.iter().find(|m| reply.body.contains(**m)) {
        return Err(format!("a secret ({marker}…) in a reply body"));
    }
    if reply.status != 200 {
        return http_error(reply);
    }
    let (blocks, stop) = if request.stream {
        if !reply.content_type.starts_with("text/event-stream") {
            return Err(format!("stream answered as {:?}", reply.content_type));
        }
        let summary = check_sse(&reply.body)?;
        if summary.errored {
            return stream_error(&reply.body);
        }
        let stop = summary.stop_reason;
        let blocks = summary.blocks.iter().map(|b| b.to_response()).collect();
        (blocks, stop)
    } else {
        let body: Value = serde_json::from_str(&reply.body)
            .map_err(|e| format!("200 with a body that is not JSON ({e})"))?;
        check_reply(200, &body)?;
        let message: MessageResponse =
            serde_json::from_value(body).map_err(|e| format!("not a message: {e}"))?;
        (message.content, message.stop_reason)
    };
    says_what_was_asked(request, &blocks, stop)?;
    Ok(Outcome::Complete {
        stream: request.stream,
    })
}

fn http_error(reply: &Reply) -> Result<Outcome, String> {
    let body: ErrorBody = serde_json::from_str(&reply.body).map_err(|e| {
        format!(
            "{} is not an Anthropic error ({e}): {}",
            reply.status,
            snippet(&reply.body)
        )
    })?;
    let kind = body.error.kind;
    if body.kind != "error" || body.error.message.is_empty() {
        return Err(format!("malformed error body: {}", snippet(&reply.body)));
    }
    if kind.status() != reply.status {
        return Err(format!(
            "status {} carries error type {}",
            reply.status,
            kind.as_str()
        ));
    }
    if matches!(kind, ErrorKind::RateLimit | ErrorKind::Overloaded) {
        let seconds = reply
            .retry_after
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        if seconds.is_none_or(|s| s < 1) {
            return Err(format!(
                "{} without a usable retry-after ({:?})",
                reply.status, reply.retry_after
            ));
        }
    }
    explainable(kind, &body.error.message)?;
    Ok(Outcome::HttpError {
        status: reply.status,
        kind: kind.as_str(),
        why: gist(&body.error.message),
    })
}

fn stream_error(text: &str) -> Result<Outcome, String> {
    let last = text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .and_then(|b| b.lines().find_map(|l| l.strip_prefix("data: ")))
        .ok_or("an errored stream without its error event")?;
    let event: Value = serde_json::from_str(last).map_err(|e| format!("error event: {e}"))?;
    let body: ErrorBody = serde_json::from_value(event.clone())
        .map_err(|e| format!("error event is not an Anthropic error ({e}): {event}"))?;
    explainable(body.error.kind, &body.error.message)?;
    Ok(Outcome::StreamError {
        kind: body.error.kind.as_str(),
        why: gist(&body.error.message),
    })
}

/// Errors that injected failures can cause. Everything else means the gateway broke a
/// valid request or itself.
fn explainable(kind: ErrorKind, message: &str) -> Result<(), String> {
    match kind {
        ErrorKind::RateLimit | ErrorKind::Overloaded => Ok(()),
        // Every account has had the model refused (`invalid_model` faults).
        ErrorKind::NotFound if message.contains("not available on any configured account") => {
            Ok(())
        }
        ErrorKind::NotFound
        | ErrorKind::InvalidRequest
        | ErrorKind::Authentication
        | ErrorKind::Permission
        | ErrorKind::RequestTooLarge
        | ErrorKind::Api
        | ErrorKind::Timeout => Err(format!("{} for a valid request: {message}", kind.as_str())),
    }
}

/// A complete reply answers the script: the tool call with this request's input, thinking
/// first when asked for, text otherwise.
fn says_what_was_asked(
    request: &Request,
    blocks: &[ResponseBlock],
    stop: Option<StopReason>,
) -> Result<(), String> {
    let has_text = blocks
        .iter()
        .any(|b| matches!(b, ResponseBlock::Text { text } if !text.is_empty()));
    match request.ask {
        Ask::Tool => {
            let wanted = json!({"req": request.id});
            let called = blocks.iter().any(|b| {
                matches!(b, ResponseBlock::ToolUse { name, input, .. }
                    if name == "Bash" && *input == wanted)
            });
            if !called || stop != Some(StopReason::ToolUse) {
                return Err(format!(
                    "scripted tool call {wanted} missing (stop {stop:?}): {blocks:?}"
                ));
            }
        }
        Ask::Thinking => {
            if !matches!(blocks.first(), Some(ResponseBlock::Thinking { .. })) || !has_text {
                return Err(format!("thinking then text expected: {blocks:?}"));
            }
        }
        Ask::Text | Ask::Slow | Ask::ClaudeCode | Ask::Huge => {
            if !has_text || stop != Some(StopReason::EndTurn) {
                return Err(format!("a text reply expected (stop {stop:?}): {blocks:?}"));
            }
        }
    }
    Ok(())
}

/// The message without numbers, so equal causes count together in the summary.
fn gist(message: &str) -> String {
    let words: String = message.chars().filter(|c| !c.is_ascii_digit()).collect();
    snippet(&words).chars().take(110).collect()
}

pub fn snippet(text: &str) -> String {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
