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
/// A table-driven state machine over bytes: per ASCII byte one class lookup and one
/// transition lookup, no data-dependent branches (a `match` per character ran at several
/// nanoseconds a byte on mixed text, all branch misses). Only the lead byte of a
/// multi-byte character is decoded.
pub(crate) fn estimate_milli(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut milli: u64 = 0;
    let mut state = State::Start as usize;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte < 0x80 {
            let transition = TRANSITIONS[state][ASCII_CLASSES[usize::from(byte)] as usize];
            milli += u64::from(transition >> 8);
            state = (transition & 0xFF) as usize;
            index += 1;
        } else {
            let c = text.get(index..).and_then(|rest| rest.chars().next());
            milli += c.map_or(cost::SYMBOL, non_ascii_cost);
            state = State::Start as usize;
            index += c.map_or(1, char::len_utf8);
        }
    }
    milli
}

/// Where the scanner is: inside which kind of run, and for digits and spaces how far.
#[derive(Clone, Copy)]
enum State {
    Start,
    Word,
    Digit1,
    Digit2,
    Digit3,
    Punct,
    Space1,
    SpaceMore,
    Newline,
}

const STATES: usize = 9;

/// Classes of ASCII bytes.
#[derive(Clone, Copy)]
enum Class {
    Letter,
    Digit,
    Punct,
    Space,
    Newline,
}

const CLASSES: usize = 5;

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

/// `TRANSITIONS[state][class]` = cost (thousandths, high bits) << 8 | next state.
const TRANSITIONS: [[u32; CLASSES]; STATES] = {
    let mut table = [[0u32; CLASSES]; STATES];
    let mut state = 0;
    while state < STATES {
        let mut class = 0;
        while class < CLASSES {
            let (cost, next) = transition(state, class);
            table[state][class] = (cost as u32) << 8 | next as u32;
            class += 1;
        }
        state += 1;
    }
    table
};

/// The rules: a word costs once, digits once per group of three, punctuation runs merge,
/// a single space belongs to the next word while longer runs cost one indentation token,
/// a run of line breaks costs once.
const fn transition(state: usize, class: usize) -> (u64, State) {
    const LETTER: usize = Class::Letter as usize;
    const DIGIT: usize = Class::Digit as usize;
    const PUNCT: usize = Class::Punct as usize;
    const SPACE: usize = Class::Space as usize;
    const WORD: usize = State::Word as usize;
    const DIGIT1: usize = State::Digit1 as usize;
    const DIGIT2: usize = State::Digit2 as usize;
    const PUNCTS: usize = State::Punct as usize;
    const SPACE1: usize = State::Space1 as usize;
    const SPACE_MORE: usize = State::SpaceMore as usize;
    const NEWLINE: usize = State::Newline as usize;
    match class {
        LETTER if state == WORD => (0, State::Word),
        LETTER => (cost::WORD, State::Word),
        DIGIT if state == DIGIT1 => (0, State::Digit2),
        DIGIT if state == DIGIT2 => (0, State::Digit3),
        DIGIT => (cost::DIGIT_GROUP, State::Digit1),
        PUNCT if state == PUNCTS => (cost::PUNCT_REST, State::Punct),
        PUNCT => (cost::PUNCT_START, State::Punct),
        SPACE if state == SPACE1 => (cost::SPACE_RUN, State::SpaceMore),
        SPACE if state == SPACE_MORE => (0, State::SpaceMore),
        SPACE => (0, State::Space1),
        _ if state == NEWLINE => (0, State::Newline),
        _ => (cost::NEWLINE_RUN, State::Newline),
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
