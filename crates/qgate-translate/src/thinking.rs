//! Stream-safe extraction of a leading `<thinking>…</thinking>` section from text that
//! arrives in arbitrary chunks.
//!
//! Amazon Q has no native thinking output for Claude models: when the prompt asks for
//! thinking, the model writes `<thinking>…</thinking>` at the start of its reply text.
//! The [`ThinkingSplitter`] turns that text into [`Piece`]s so the translator can emit a
//! real `thinking` block followed by `text` blocks. The rules:
//!
//! * Only a section at the very start of the reply (leading whitespace allowed) is
//!   thinking; a tag appearing later is ordinary text and is passed through untouched.
//! * A tag may be split across chunks at any character, so a short tail that could still
//!   become a tag is held back until the next chunk decides it.
//! * One newline right after `<thinking>` and all newlines right after `</thinking>` are
//!   dropped: they are formatting around the tags, not content.
//! * Tag text itself never appears in a piece. A thinking section cut off by the end of
//!   the stream is flushed as thinking; a dangling partial closing tag is dropped.

const OPEN_TAG: &str = "<thinking>";
const CLOSE_TAG: &str = "</thinking>";

/// A run of reply text, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Thinking(String),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace seen so far: the reply may still open with `<thinking>`.
    BeforeOpenTag,
    /// Inside the thinking section; `at_start` until its first character was seen
    /// (that is where the newline after the opening tag is dropped).
    Thinking { at_start: bool },
    /// Right after `</thinking>`, dropping newlines.
    AfterCloseTag,
    /// Everything else is plain text.
    Text,
}

/// Splits streamed reply text into thinking and text [`Piece`]s.
///
/// After [`finish`](Self::finish) the splitter passes any further text through as
/// [`Piece::Text`].
#[derive(Debug, Clone)]
pub struct ThinkingSplitter {
    state: State,
    /// Text received but not yet classified: only ever a tag-sized tail, or leading
    /// whitespace before the reply's first visible character.
    pending: String,
}

impl Default for ThinkingSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl ThinkingSplitter {
    pub fn new() -> Self {
        Self {
            state: State::BeforeOpenTag,
            pending: String::new(),
        }
    }

    /// True once the reply is known to be plain text from here on, so callers may skip
    /// the splitter entirely.
    pub fn is_passthrough(&self) -> bool {
        self.state == State::Text && self.pending.is_empty()
    }

    /// Classifies a chunk; appends zero or more non-empty pieces to `out`.
    pub fn push(&mut self, chunk: &str, out: &mut Vec<Piece>) {
        if chunk.is_empty() {
            return;
        }
        if self.is_passthrough() {
            out.push(Piece::Text(chunk.to_owned()));
            return;
        }
        self.pending.push_str(chunk);
        self.advance(out);
    }

    /// The stream ended: flushes what is held back.
    pub fn finish(&mut self, out: &mut Vec<Piece>) {
        let pending = std::mem::take(&mut self.pending);
        match self.state {
            State::BeforeOpenTag | State::Text => {
                if !pending.is_empty() {
                    out.push(Piece::Text(pending));
                }
            }
            State::Thinking { at_start } => {
                let mut content = pending.as_str();
                if at_start {
                    content = content.trim_start_matches(['\r', '\n']);
                }
                // What is held back is a possible start of `</thinking>` cut off by the end
                // of the stream; it is tag text, not thinking.
                let content = &content[..content.len() - close_tag_prefix_len(content)];
                if !content.is_empty() {
                    out.push(Piece::Thinking(content.to_owned()));
                }
            }
            State::AfterCloseTag => {}
        }
        self.state = State::Text;
    }

    fn advance(&mut self, out: &mut Vec<Piece>) {
        loop {
            match self.state {
                State::BeforeOpenTag => {
                    let visible = self.pending.trim_start();
                    if let Some(after_tag) = visible.strip_prefix(OPEN_TAG) {
                        self.pending = after_tag.to_owned();
                        self.state = State::Thinking { at_start: true };
                    } else if OPEN_TAG.starts_with(visible) {
                        return;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Thinking { at_start: true } => {
                    if self.pending.starts_with("\r\n") {
                        self.pending.drain(..2);
                    } else if self.pending.starts_with('\n') {
                        self.pending.drain(..1);
                    } else if self.pending.is_empty() || self.pending == "\r" {
                        return;
                    }
                    self.state = State::Thinking { at_start: false };
                }
                State::Thinking { at_start: false } => {
                    if let Some(tag_at) = self.pending.find(CLOSE_TAG) {
                        let rest = self.pending.split_off(tag_at + CLOSE_TAG.len());
                        let mut thinking = std::mem::replace(&mut self.pending, rest);
                        thinking.truncate(tag_at);
                        if !thinking.is_empty() {
                            out.push(Piece::Thinking(thinking));
                        }
                        self.state = State::AfterCloseTag;
                    } else {
                        let ready = self.pending.len() - close_tag_prefix_len(&self.pending);
                        if ready > 0 {
                            let held = self.pending.split_off(ready);
                            out.push(Piece::Thinking(std::mem::replace(&mut self.pending, held)));
                        }
                        return;
                    }
                }
                State::AfterCloseTag => {
                    let kept = self.pending.trim_start_matches(['\r', '\n']).len();
                    self.pending.drain(..self.pending.len() - kept);
                    if self.pending.is_empty() {
                        return;
                    }
                    self.state = State::Text;
                }
                State::Text => {
                    if !self.pending.is_empty() {
                        out.push(Piece::Text(std::mem::take(&mut self.pending)));
                    }
                    return;
                }
            }
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `</thinking>`:
/// the part that must wait for the next chunk. Tags are ASCII, so the suffix starts on
/// a character boundary.
fn close_tag_prefix_len(text: &str) -> usize {
    let max = (CLOSE_TAG.len() - 1).min(text.len());
    (1..=max)
        .rev()
        .find(|&len| {
            let start = text.len() - len;
            text.is_char_boundary(start) && CLOSE_TAG.starts_with(&text[start..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
