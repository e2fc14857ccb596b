//! Turn-level repairs that make the conversation acceptable to the service (protocol doc
//! §2.3): strict user/assistant alternation starting and ending with a user turn, every
//! tool call answered in the very next user turn and no result without its call, unique
//! tool call ids, history and image limits.
//!
//! Choices, each picked for long Claude Code tool loops:
//! * A tool call without a result is kept and answered with an "interrupted" stub rather
//!   than dropped: dropping it can empty the assistant turn (another repair) and hides from
//!   the model that it already tried the call, which invites the same call again.
//! * A result without a call is folded into the user text rather than dropped, so the
//!   output the user's tool produced is never lost.
//! * A trailing assistant message (prefill) moves to history and the current message asks
//!   to continue; dropping it would lose what the client wanted the answer to start with.

use super::convert::{AssistantTurn, PendingResult, Turn, UserTurn};
use super::{
    CONTINUE_TEXT, INTERRUPTED_TOOL_RESULT, LEADING_USER_TEXT, MAX_HISTORY_ITEMS, MAX_IMAGES,
    Repair, TranslateError,
};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Longest tool call id forwarded as is.
const MAX_TOOL_USE_ID_LEN: usize = 64;

/// Turns before pairing may grow by a prepended user turn, a continuation turn and the
/// two-item system section; the history must still fit.
const MAX_TURNS_BEFORE_REPAIR: usize = MAX_HISTORY_ITEMS - 4;

/// Applies every turn-level repair. `turns` must contain at least one user turn; the
/// result alternates, starts and ends with a user turn, and pairs every tool call.
pub(super) fn normalize(turns: Vec<Turn>, repairs: &mut Vec<Repair>) -> Vec<Turn> {
    let mut turns = merge_same_role(drop_empty_assistant_turns(turns, repairs), repairs);
    if turns.len() > MAX_TURNS_BEFORE_REPAIR {
        let dropped = turns.len() - MAX_TURNS_BEFORE_REPAIR;
        turns.drain(..dropped);
        repairs.push(Repair::TrimmedHistory { dropped });
    }
    if !matches!(turns.first(), Some(Turn::User(_))) {
        turns.insert(0, Turn::User(UserTurn::text(LEADING_USER_TEXT)));
        repairs.push(Repair::PrependedUserTurn);
    }
    if matches!(turns.last(), Some(Turn::Assistant(_))) {
        turns.push(Turn::User(UserTurn::text(CONTINUE_TEXT)));
        repairs.push(Repair::MovedPrefillToHistory);
    }
    pair_tool_calls(&mut turns, repairs);
    turns
}

fn drop_empty_assistant_turns(turns: Vec<Turn>, repairs: &mut Vec<Repair>) -> Vec<Turn> {
    let before = turns.len();
    let kept: Vec<Turn> = turns
        .into_iter()
        .filter(|turn| match turn {
            Turn::Assistant(assistant) => !assistant.is_empty(),
            Turn::User(_) => true,
        })
        .collect();
    for _ in kept.len()..before {
        repairs.push(Repair::DroppedEmptyAssistantTurn);
    }
    kept
}

/// Merges runs of one role, keeping every text, image, tool result and tool call in order.
fn merge_same_role(turns: Vec<Turn>, repairs: &mut Vec<Repair>) -> Vec<Turn> {
    let mut merged: Vec<Turn> = Vec::with_capacity(turns.len());
    for turn in turns {
        match (merged.last_mut(), turn) {
            (Some(Turn::User(previous)), Turn::User(next)) => {
                merge_user(previous, next);
                repairs.push(Repair::MergedSameRole { role: "user" });
            }
            (Some(Turn::Assistant(previous)), Turn::Assistant(next)) => {
                merge_assistant(previous, next);
                repairs.push(Repair::MergedSameRole { role: "assistant" });
            }
            (_, turn) => merged.push(turn),
        }
    }
    merged
}

fn merge_user(into: &mut UserTurn, from: UserTurn) {
    into.texts.extend(from.texts);
    into.images.extend(from.images);
    into.results.extend(from.results);
}

fn merge_assistant(into: &mut AssistantTurn, from: AssistantTurn) {
    into.parts.extend(from.parts);
    into.tool_uses.extend(from.tool_uses);
}

/// The tool calls of one assistant turn, as the next user turn must answer them.
#[derive(Default)]
struct Calls {
    ids: Vec<String>,
    /// Client id → id used upstream, for calls whose id had to change.
    renamed: HashMap<String, String>,
}

fn pair_tool_calls(turns: &mut [Turn], repairs: &mut Vec<Repair>) {
    let mut ids = IdAllocator::default();
    let mut answered: HashSet<String> = HashSet::new();
    let mut calls = Calls::default();
    for turn in turns.iter_mut() {
        match turn {
            Turn::Assistant(assistant) => calls = unique_calls(assistant, &mut ids, repairs),
            Turn::User(user) => {
                settle_results(user, std::mem::take(&mut calls), &mut answered, repairs);
            }
        }
    }
}

/// Drops repeated calls within the turn and renames ids used earlier (or unacceptable).
fn unique_calls(
    assistant: &mut AssistantTurn,
    ids: &mut IdAllocator,
    repairs: &mut Vec<Repair>,
) -> Calls {
    let mut calls = Calls::default();
    let mut seen_in_turn: HashSet<String> = HashSet::new();
    assistant.tool_uses.retain_mut(|tool_use| {
        let original = tool_use.tool_use_id.clone();
        if !seen_in_turn.insert(original.clone()) {
            repairs.push(Repair::DroppedDuplicateToolUse { id: original });
            return false;
        }
        if !is_acceptable_id(&original) || ids.used.contains(&original) {
            let fresh = ids.fresh(&original);
            repairs.push(Repair::RenamedToolUseId {
                from: original.clone(),
                to: fresh.clone(),
            });
            calls.renamed.insert(original, fresh.clone());
            tool_use.tool_use_id = fresh;
        }
        ids.used.insert(tool_use.tool_use_id.clone());
        calls.ids.push(tool_use.tool_use_id.clone());
        true
    });
    calls
}

fn is_acceptable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TOOL_USE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Tool-use ids of one request, and replacements for reused or unacceptable ones.
#[derive(Default)]
struct IdAllocator {
    used: HashSet<String>,
    /// Per original id, the next attempt number: an id reused N times costs N hashes in
    /// all, not N²/2 (found by fuzzing: long conversations reusing one id were quadratic).
    next_attempt: HashMap<String, u32>,
}

impl IdAllocator {
    /// A deterministic replacement id (same input, same output), unused so far.
    fn fresh(&mut self, original: &str) -> String {
        let start = self.next_attempt.get(original).copied().unwrap_or(1);
        for attempt in start..start.saturating_add(1_000) {
            let digest = Sha256::digest(format!("{original}#{attempt}").as_bytes());
            let candidate = format!("tooluse_{}", &hex::encode(digest)[..24]);
            if !self.used.contains(&candidate) {
                self.next_attempt.insert(original.to_owned(), attempt + 1);
                return candidate;
            }
        }
        format!("tooluse_{}", self.used.len())
    }
}

/// Keeps exactly one result per call of the preceding assistant turn, in call order;
/// stubs missing ones, drops duplicates and folds results with no call into the text.
fn settle_results(
    user: &mut UserTurn,
    calls: Calls,
    answered: &mut HashSet<String>,
    repairs: &mut Vec<Repair>,
) {
    let expected: HashSet<&str> = calls.ids.iter().map(String::as_str).collect();
    let mut by_id: HashMap<String, PendingResult> = HashMap::new();
    let mut folded: Vec<String> = Vec::new();
    for mut result in std::mem::take(&mut user.results) {
        if let Some(renamed) = calls.renamed.get(&result.id) {
            result.id = renamed.clone();
        }
        if expected.contains(result.id.as_str()) {
            if by_id.contains_key(&result.id) {
                repairs.push(Repair::DroppedDuplicateToolResult { id: result.id });
            } else {
                by_id.insert(result.id.clone(), result);
            }
        } else if answered.contains(&result.id) {
            repairs.push(Repair::DroppedDuplicateToolResult { id: result.id });
        } else {
            repairs.push(Repair::FoldedOrphanToolResult {
                id: result.id.clone(),
            });
            folded.push(folded_text(&result));
        }
    }
    for id in &calls.ids {
        let result = match by_id.remove(id) {
            Some(result) => {
                answered.insert(id.clone());
                result
            }
            None => {
                repairs.push(Repair::StubbedToolResult { id: id.clone() });
                PendingResult {
                    id: id.clone(),
                    text: INTERRUPTED_TOOL_RESULT.to_owned(),
                    is_error: true,
                    had_images: false,
                }
            }
        };
        user.results.push(result);
    }
    // Anthropic puts tool results before other content in a user message; keep that order.
    user.texts.splice(0..0, folded);
}

fn folded_text(result: &PendingResult) -> String {
    let outcome = if result.is_error { "error" } else { "result" };
    let body = if !result.text.trim().is_empty() {
        result.text.as_str()
    } else if result.had_images {
        "(see the attached image)"
    } else {
        "(no output)"
    };
    format!("[Tool {outcome} for call {}]\n{body}", result.id)
}

/// At most [`MAX_IMAGES`] images per request. The current turn's images are what the
/// user is asking about, so too many there is a client error; older images in history
/// are replaced by a note, newest kept first, so long screenshot sessions keep working.
pub(super) fn enforce_image_limit(
    turns: &mut [Turn],
    repairs: &mut Vec<Repair>,
) -> Result<(), TranslateError> {
    let Some((Turn::User(current), history)) = turns.split_last_mut() else {
        return Ok(());
    };
    if current.images.len() > MAX_IMAGES {
        return Err(TranslateError::TooManyImages {
            count: current.images.len(),
        });
    }
    let mut budget = MAX_IMAGES - current.images.len();
    let mut dropped = 0;
    for turn in history.iter_mut().rev() {
        let Turn::User(user) = turn else { continue };
        if user.images.len() <= budget {
            budget -= user.images.len();
            continue;
        }
        let removed = user.images.len() - budget;
        user.images.truncate(budget);
        budget = 0;
        dropped += removed;
        user.texts.push(format!(
            "[{removed} image(s) omitted here: the request holds at most {MAX_IMAGES} images]"
        ));
    }
    if dropped > 0 {
        repairs.push(Repair::DroppedHistoryImages { count: dropped });
    }
    Ok(())
}
