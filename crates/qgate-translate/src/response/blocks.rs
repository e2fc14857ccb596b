//! Content-block bookkeeping of one streamed message: which block is open, the next
//! index, and the output-token estimate over everything emitted.
//!
//! This is the one place that writes `content_block_*` events, so the stream rules hold
//! by construction: indices are consecutive from 0, at most one block is open, a delta
//! only goes to the open block of its kind, and every started block is stopped once.

use crate::tokens::estimate_text;
use qgate_anthropic::{BlockStart, Delta, StreamEvent};
use serde_json::Value;

/// Tool input is sent in pieces of at most this many bytes: large inputs (a whole file
/// for `Write`) still arrive as a few events rather than one huge line.
const INPUT_JSON_PIECE: usize = 4096;

#[derive(Debug)]
enum OpenBlock {
    Text {
        index: usize,
    },
    Thinking {
        index: usize,
        signature: Option<String>,
    },
}

/// Writes content blocks in order and counts their output tokens.
#[derive(Debug, Default)]
pub(super) struct BlockWriter {
    next_index: usize,
    open: Option<OpenBlock>,
    output_tokens: OutputTokens,
}

impl BlockWriter {
    /// Whether any content block has been started.
    pub(super) fn started_any(&self) -> bool {
        self.next_index > 0
    }

    pub(super) fn output_tokens(&self) -> u64 {
        self.output_tokens.total()
    }

    /// Appends text to the open text block, opening one if needed.
    /// Takes the text by value: the delta carries it as it arrived, without a copy.
    pub(super) fn text(&mut self, text: String, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some(OpenBlock::Text { index }) => index,
            Some(OpenBlock::Thinking { .. }) | None => self.start_text(out),
        };
        self.output_tokens.add(&text);
        out.push(StreamEvent::ContentBlockDelta {
            index,
            delta: Delta::TextDelta { text },
        });
    }

    /// Writes `text` as a block of its own, separate from the text around it.
    pub(super) fn separate_text(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        self.close(out);
        self.text(text.to_owned(), out);
        self.close(out);
    }

    /// Appends thinking to the open thinking block, opening one if needed.
    pub(super) fn thinking(&mut self, thinking: String, out: &mut Vec<StreamEvent>) {
        if thinking.is_empty() {
            return;
        }
        let index = match self.open {
            Some(OpenBlock::Thinking { index, .. }) => index,
            Some(OpenBlock::Text { .. }) | None => self.start_thinking(out),
        };
        self.output_tokens.add(&thinking);
        out.push(StreamEvent::ContentBlockDelta {
            index,
            delta: Delta::ThinkingDelta { thinking },
        });
    }

    /// Records the signature of the open thinking block, sent when the block closes.
    /// Without an open thinking block there is nothing it could sign, so it is dropped.
    pub(super) fn thinking_signature(&mut self, signature: String) {
        if let Some(OpenBlock::Thinking {
            signature: slot, ..
        }) = &mut self.open
        {
            *slot = Some(signature);
        }
    }

    /// Writes a complete `tool_use` block. `input_json` must be a JSON object.
    pub(super) fn tool_use(
        &mut self,
        id: String,
        name: String,
        input_json: &str,
        out: &mut Vec<StreamEvent>,
    ) {
        self.close(out);
        let index = self.take_index();
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: BlockStart::ToolUse {
                id,
                name,
                input: Value::Object(serde_json::Map::new()),
            },
        });
        self.output_tokens.add(input_json);
        for piece in char_pieces(input_json, INPUT_JSON_PIECE) {
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: Delta::InputJsonDelta {
                    partial_json: piece.to_owned(),
                },
            });
        }
        out.push(StreamEvent::ContentBlockStop { index });
    }

    /// Closes the open block, if any.
    pub(super) fn close(&mut self, out: &mut Vec<StreamEvent>) {
        match self.open.take() {
            None => {}
            Some(OpenBlock::Text { index }) => out.push(StreamEvent::ContentBlockStop { index }),
            Some(OpenBlock::Thinking { index, signature }) => {
                if let Some(signature) = signature {
                    out.push(StreamEvent::ContentBlockDelta {
                        index,
                        delta: Delta::SignatureDelta { signature },
                    });
                }
                out.push(StreamEvent::ContentBlockStop { index });
            }
        }
    }

    fn start_text(&mut self, out: &mut Vec<StreamEvent>) -> usize {
        self.close(out);
        let index = self.take_index();
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: BlockStart::Text {
                text: String::new(),
            },
        });
        self.open = Some(OpenBlock::Text { index });
        index
    }

    fn start_thinking(&mut self, out: &mut Vec<StreamEvent>) -> usize {
        self.close(out);
        let index = self.take_index();
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: BlockStart::Thinking {
                thinking: String::new(),
                signature: String::new(),
            },
        });
        self.open = Some(OpenBlock::Thinking {
            index,
            signature: None,
        });
        index
    }

    fn take_index(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }
}

/// `text` cut into pieces of at most `max_bytes` (more if one character is larger),
/// never inside a character.
fn char_pieces(text: &str, max_bytes: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = max_bytes.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// Output-token estimate over streamed text.
///
/// The estimator rounds up per call, so estimating every small delta on its own would
/// overcount by up to a token per delta. Text is batched instead, which bounds the
/// error to one token per [`Self::BATCH_BYTES`] while holding little memory.
#[derive(Debug, Default)]
struct OutputTokens {
    counted: u64,
    batch: String,
    /// `total()` of the current text: usage is read at the end of a message and again for
    /// accounting, and each read would estimate the open batch anew.
    total: std::cell::Cell<Option<u64>>,
}

impl OutputTokens {
    const BATCH_BYTES: usize = 2048;

    fn add(&mut self, text: &str) {
        self.total.set(None);
        if self.batch.capacity() == 0 {
            // Sized once for the whole batch instead of doubling from a few bytes: growing
            // it cost ~6 reallocations and copies per 20-word reply (callgrind).
            self.batch.reserve(Self::BATCH_BYTES + text.len());
        }
        self.batch.push_str(text);
        if self.batch.len() >= Self::BATCH_BYTES {
            self.counted += estimate_text(&self.batch);
            self.batch.clear();
        }
    }

    fn total(&self) -> u64 {
        if let Some(t) = self.total.get() {
            return t;
        }
        let t = self.counted + estimate_text(&self.batch);
        self.total.set(Some(t));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_pieces_never_split_a_character() {
        let text = "aé日本✓";
        for max in 1..=text.len() {
            let pieces: Vec<&str> = char_pieces(text, max).collect();
            assert_eq!(pieces.concat(), text, "max {max}");
            assert!(pieces.iter().all(|p| !p.is_empty()));
        }
        assert_eq!(char_pieces("", 4).count(), 0);
    }

    #[test]
    fn the_remembered_total_follows_every_addition() {
        let mut tokens = OutputTokens::default();
        tokens.add("one two three");
        let first = tokens.total();
        assert_eq!(first, estimate_text("one two three"));
        assert_eq!(tokens.total(), first);
        tokens.add(" four five six seven eight");
        assert_eq!(
            tokens.total(),
            estimate_text("one two three four five six seven eight")
        );
        assert!(tokens.total() > first);
    }

    #[test]
    fn batched_output_tokens_stay_close_to_one_estimate_of_the_whole_text() {
        let mut tokens = OutputTokens::default();
        let mut whole = String::new();
        let deltas = [
            "The quick",
            " brown fox",
            " jumps over 12 lazy",
            " dogs.\n",
            "日本語 ",
        ];
        for i in 0..3000 {
            let delta = deltas[i % deltas.len()];
            tokens.add(delta);
            whole.push_str(delta);
        }
        let exact = estimate_text(&whole);
        let total = tokens.total();
        // Each batch boundary may split one word or run: at most a couple of tokens.
        let boundaries = (whole.len() / OutputTokens::BATCH_BYTES + 1) as u64;
        assert!(exact > 1000, "{exact}");
        assert!(
            total.abs_diff(exact) <= 2 * boundaries,
            "{total} vs {exact}"
        );
    }
}
