//! Token estimation shared by `message_start.usage.input_tokens`, `count_tokens` and
//! output usage.
//!
//! Amazon Q reports no token counts, only a context-usage percentage after the fact, so the
//! gateway estimates locally and corrects the estimate per model with a [`Calibration`]
//! (the ratio of the observed count to the estimate). The estimator is a single pass over
//! the characters with no allocation: `count_tokens` runs it on 80 KB Claude Code bodies,
//! so a real BPE tokenizer (milliseconds per call, and not Claude's vocabulary anyway) would
//! cost more than it gains once calibration removes the systematic error.
//!
//! The weights (see `cost`) approximate a BPE tokenizer: words, digit groups, punctuation
//! runs and indentation are counted rather than characters, and CJK and other non-Latin
//! scripts cost more per character than Latin text.

mod calibration;
mod request;

pub use calibration::Calibration;
pub use request::{IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS, TOOL_OVERHEAD_TOKENS, estimate_request};

/// Costs in thousandths of a token, fitted against `cl100k_base` on Claude Code's system
/// prompt, tool descriptions and schemas, Rust code, Markdown prose, and Chinese, Japanese,
/// Russian and German text (every sample within ±10 %, Claude Code's prompts and schemas
/// within ±5 %).
mod cost {
    /// A run of ASCII letters: common words are one token and the tokenizer's long
    /// identifier pieces roughly balance the short words it merges with punctuation.
    pub const WORD: u64 = 1080;
    /// Every group of up to three digits (numbers split into 3-digit pieces).
    pub const DIGIT_GROUP: u64 = 1000;
    /// The first ASCII punctuation character of a run.
    pub const PUNCT_START: u64 = 700;
    /// Further punctuation in the same run: JSON's `":"` and `"},{"` merge into few tokens.
    pub const PUNCT_REST: u64 = 150;
    /// The second space or tab of a run (a single space belongs to the next word).
    pub const SPACE_RUN: u64 = 700;
    /// A run of line breaks.
    pub const NEWLINE_RUN: u64 = 800;
    /// Accented Latin letters: usually split off the word they sit in.
    pub const LATIN_EXTENDED: u64 = 1100;
    /// CJK ideographs, kana, hangul, full-width forms: about one token each.
    pub const CJK: u64 = 1000;
    /// Other alphabets (Greek, Cyrillic, Hebrew, Arabic, Indic...): about two letters a token.
    pub const OTHER_SCRIPT: u64 = 450;
    /// Dashes, arrows, box drawing, emoji and other symbols: often two byte-level tokens.
    pub const SYMBOL: u64 = 1500;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Word,
    Digits,
    Punct,
    Space,
    Newline,
    Other,
}

/// Estimated tokens for a piece of text.
pub fn estimate_text(text: &str) -> u64 {
    estimate_milli(text).div_ceil(1000)
}

/// The same estimate in thousandths of a token, so callers summing many small strings do
/// not round each one up.
pub(crate) fn estimate_milli(text: &str) -> u64 {
    let mut milli: u64 = 0;
    let mut run = Run::Other;
    let mut run_len: u64 = 0;
    for c in text.chars() {
        let kind = run_of(c);
        let continues = kind == run && kind != Run::Other;
        milli += match kind {
            Run::Word if continues => 0,
            Run::Word => cost::WORD,
            Run::Digits if continues && !run_len.is_multiple_of(3) => 0,
            Run::Digits => cost::DIGIT_GROUP,
            Run::Punct if continues => cost::PUNCT_REST,
            Run::Punct => cost::PUNCT_START,
            Run::Space if continues && run_len == 1 => cost::SPACE_RUN,
            Run::Space => 0,
            Run::Newline if continues => 0,
            Run::Newline => cost::NEWLINE_RUN,
            Run::Other => non_ascii_cost(c),
        };
        if continues {
            run_len += 1;
        } else {
            run = kind;
            run_len = 1;
        }
    }
    milli
}

fn run_of(c: char) -> Run {
    match c {
        'a'..='z' | 'A'..='Z' => Run::Word,
        '0'..='9' => Run::Digits,
        ' ' | '\t' => Run::Space,
        '\n' | '\r' => Run::Newline,
        c if c.is_ascii() => Run::Punct,
        _ => Run::Other,
    }
}

fn non_ascii_cost(c: char) -> u64 {
    match u32::from(c) {
        0x00C0..=0x024F | 0x1E00..=0x1EFF => cost::LATIN_EXTENDED,
        0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF => cost::CJK,
        0x20000..=0x3FFFF => cost::CJK,
        0x0370..=0x1FFF => cost::OTHER_SCRIPT,
        _ => cost::SYMBOL,
    }
}

#[cfg(test)]
mod tests;
