//! What the translator changed to make a client request acceptable upstream. Recorded for
//! debug logs and the dry-run "explain" view; never shown to the model. Tool ids and names
//! are client data but carry no secrets.

use std::fmt;

/// One fix applied while translating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Consecutive messages of one role were merged (the service requires alternation).
    MergedSameRole { role: &'static str },
    /// The conversation started with an assistant message; a user turn was put before it.
    PrependedUserTurn,
    /// An assistant turn with no text and no tool calls (e.g. only redacted thinking) was
    /// removed; the user turns around it were merged.
    DroppedEmptyAssistantTurn,
    /// The last message was from the assistant (prefill); it went to history and the
    /// current message asks to continue.
    MovedPrefillToHistory,
    /// Older turns were dropped to fit the service's history length limit.
    TrimmedHistory { dropped: usize },
    /// A tool call had no result in the next user turn: a result saying it was interrupted
    /// was added.
    StubbedToolResult { id: String },
    /// A tool result whose call is not in the preceding assistant turn was turned into text.
    FoldedOrphanToolResult { id: String },
    /// A second result for an already answered tool call was dropped.
    DroppedDuplicateToolResult { id: String },
    /// A second tool call with the same id in one turn was dropped.
    DroppedDuplicateToolUse { id: String },
    /// A tool call id reused from an earlier turn, or not acceptable upstream, was replaced.
    RenamedToolUseId { from: String, to: String },
    /// A tool call's `input` was not a JSON object and was wrapped or replaced.
    NormalisedToolInput { id: String },
    /// A tool result's text was cut to the service's size limit.
    TruncatedToolResult { id: String },
    /// A tool result had no content; a short note was put in its place.
    FilledEmptyToolResult { id: String },
    /// A user turn had no text; a short placeholder was put in its place.
    FilledEmptyContent,
    /// An image inside a `tool_result` was moved to the message's images.
    LiftedToolResultImage { id: String },
    /// Older images were replaced by a note to stay within the per-request image limit.
    DroppedHistoryImages { count: usize },
    /// A tool used in history is not declared; a placeholder definition was added.
    PlaceholderToolSpec { name: String },
    /// A tool name was too long or had characters the service rejects.
    ShortenedToolName { from: String, to: String },
    /// A tool call named a declared tool in different letter case; the declared spelling
    /// is used.
    MatchedToolNameCase { from: String, to: String },
    /// A tool description was too long and was cut.
    TruncatedToolDescription { name: String },
    /// A tool had no description; its name is used.
    FilledToolDescription { name: String },
    /// A tool's `input_schema` was not a JSON object and was replaced by an empty one.
    ReplacedToolSchema { name: String },
    /// A tool declared twice (names equal ignoring case) was dropped.
    DroppedDuplicateTool { name: String },
    /// A server tool (no `input_schema`, e.g. `web_search_20250305`) was dropped.
    DroppedServerTool { name: String },
    /// A text `document` block was inlined as text.
    InlinedDocument,
    /// A content block the service cannot carry was dropped.
    DroppedUnsupportedBlock { kind: &'static str },
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::MergedSameRole { role } => write!(f, "merged consecutive {role} messages"),
            Repair::PrependedUserTurn => {
                f.write_str("added a user turn before a leading assistant message")
            }
            Repair::DroppedEmptyAssistantTurn => f.write_str("dropped an empty assistant turn"),
            Repair::MovedPrefillToHistory => {
                f.write_str("moved a trailing assistant message to history and asked to continue")
            }
            Repair::TrimmedHistory { dropped } => {
                write!(f, "dropped {dropped} oldest turns to fit the history limit")
            }
            Repair::StubbedToolResult { id } => {
                write!(f, "added an 'interrupted' result for tool call {id}")
            }
            Repair::FoldedOrphanToolResult { id } => {
                write!(
                    f,
                    "turned tool result {id} without a matching call into text"
                )
            }
            Repair::DroppedDuplicateToolResult { id } => {
                write!(f, "dropped a duplicate result for tool call {id}")
            }
            Repair::DroppedDuplicateToolUse { id } => {
                write!(f, "dropped a duplicate tool call {id}")
            }
            Repair::RenamedToolUseId { from, to } => {
                write!(f, "renamed tool call id {from} to {to}")
            }
            Repair::NormalisedToolInput { id } => {
                write!(f, "made the input of tool call {id} a JSON object")
            }
            Repair::TruncatedToolResult { id } => {
                write!(f, "truncated the result of tool call {id}")
            }
            Repair::FilledEmptyToolResult { id } => {
                write!(f, "filled the empty result of tool call {id}")
            }
            Repair::FilledEmptyContent => f.write_str("filled an empty user message"),
            Repair::LiftedToolResultImage { id } => {
                write!(
                    f,
                    "moved an image from tool result {id} to the message images"
                )
            }
            Repair::DroppedHistoryImages { count } => {
                write!(f, "replaced {count} older images with a note (image limit)")
            }
            Repair::PlaceholderToolSpec { name } => {
                write!(
                    f,
                    "declared tool {name} (used in history) with a placeholder definition"
                )
            }
            Repair::ShortenedToolName { from, to } => write!(f, "renamed tool {from} to {to}"),
            Repair::MatchedToolNameCase { from, to } => {
                write!(f, "used declared tool name {to} for history call to {from}")
            }
            Repair::TruncatedToolDescription { name } => {
                write!(f, "truncated the description of tool {name}")
            }
            Repair::FilledToolDescription { name } => {
                write!(f, "filled the empty description of tool {name}")
            }
            Repair::ReplacedToolSchema { name } => {
                write!(f, "replaced the invalid input schema of tool {name}")
            }
            Repair::DroppedDuplicateTool { name } => write!(f, "dropped duplicate tool {name}"),
            Repair::DroppedServerTool { name } => write!(f, "dropped server tool {name}"),
            Repair::InlinedDocument => f.write_str("inlined a text document"),
            Repair::DroppedUnsupportedBlock { kind } => {
                write!(f, "dropped an unsupported {kind} block")
            }
        }
    }
}
