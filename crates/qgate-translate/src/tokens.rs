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

/// Estimated tokens for a piece of text.
pub fn estimate_text(text: &str) -> u64 {
    estimate_milli(text).div_ceil(1000)
}

/// The same estimate in thousandths of a token, so callers summing many small strings do
/// not round each one up.
///
/// Every cost depends only on the character and the two before it, looked up in one table,
/// so no per-byte branch and no long dependency chain: a `match` per character ran at
/// ~5 ns a byte (branch misses), a state-transition table at ~4.8 (each lookup waited for
/// the previous one); this runs at about 1. Only the lead byte of a multi-byte character
/// is decoded.
pub(crate) fn estimate_milli(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut milli: u64 = 0;
    let mut before = Class::Other as usize;
    let mut previous = Class::Other as usize;
    // Position within the current run of digits, 0 outside one.
    let mut digit_run: u64 = 0;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte < 0x80 {
            let class = ASCII_CLASSES[usize::from(byte)] as usize;
            milli += u64::from(COSTS[before << 6 | previous << 3 | class]);
            let in_digits = u64::from(class == Class::Digit as usize);
            digit_run = (digit_run + 1) & in_digits.wrapping_neg();
            // Numbers split into groups of three digits.
            milli += cost::DIGIT_GROUP * u64::from(digit_run % 3 == 1);
            before = previous;
            previous = class;
            index += 1;
        } else {
            let c = text.get(index..).and_then(|rest| rest.chars().next());
            milli += c.map_or(cost::SYMBOL, non_ascii_cost);
            before = Class::Other as usize;
            previous = Class::Other as usize;
            digit_run = 0;
            index += c.map_or(1, char::len_utf8);
        }
    }
    milli
}

/// Classes of characters; non-ASCII ones are all `Other` here and costed on their own.
#[derive(Clone, Copy)]
enum Class {
    Letter,
    Digit,
    Punct,
    Space,
    Newline,
    Other,
}

const ASCII_CLASSES: [Class; 128] = {
    let mut table = [Class::Punct; 128];
    let mut byte = 0;
    while byte < 128 {
        table[byte] = match byte as u8 {
            b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
            b'0'..=b'9' => Class::Digit,
            b' ' | b'\t' => Class::Space,
            b'\n' | b'\r' => Class::Newline,
            _ => Class::Punct,
        };
        byte += 1;
    }
    table
};

/// `COSTS[before << 6 | previous << 3 | class]`: the cost of a character of `class`
/// after characters of `previous` and (before that) `before`; digits are costed apart.
const COSTS: [u16; 512] = {
    let mut table = [0u16; 512];
    let mut index = 0;
    while index < 512 {
        table[index] = cost_after(index >> 6, (index >> 3) & 7, index & 7);
        index += 1;
    }
    table
};

/// A word costs once, punctuation runs merge, a single space belongs to the next word
/// while the second space of a run costs one indentation token, a run of line breaks
/// costs once.
const fn cost_after(before: usize, previous: usize, class: usize) -> u16 {
    const LETTER: usize = Class::Letter as usize;
    const PUNCT: usize = Class::Punct as usize;
    const SPACE: usize = Class::Space as usize;
    const NEWLINE: usize = Class::Newline as usize;
    let milli = match class {
        LETTER if previous == LETTER => 0,
        LETTER => cost::WORD,
        PUNCT if previous == PUNCT => cost::PUNCT_REST,
        PUNCT => cost::PUNCT_START,
        SPACE if previous == SPACE && before != SPACE => cost::SPACE_RUN,
        NEWLINE if previous == NEWLINE => 0,
        NEWLINE => cost::NEWLINE_RUN,
        // Digits (counted by the caller), further spaces, unused indices.
        _ => 0,
    };
    milli as u16
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
