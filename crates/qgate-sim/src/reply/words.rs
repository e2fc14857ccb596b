//! Deterministic reply words: picked from the end of the prompt by a hash of it, so a
//! reply reads as related to its prompt and the same prompt always gets the same reply.

/// Only the end of a long prompt is read (where the user's words are); the rest of a
/// 600 000-character prompt would cost time and change nothing.
const SOURCE_TAIL_BYTES: usize = 2 * 1024;
const MAX_CANDIDATES: usize = 256;
const MAX_WORD_CHARS: usize = 24;

/// Used when the prompt has no usable words (a tool-result-only turn, say).
const FALLBACK: &[&str] = &[
    "simulated",
    "reply",
    "from",
    "the",
    "amazon",
    "q",
    "double",
    "with",
    "steady",
    "words",
    "for",
    "tests",
    "and",
    "benchmarks",
    "every",
    "request",
    "gets",
    "its",
    "own",
    "answer",
];

#[derive(Debug)]
pub(super) struct Picker<'a> {
    candidates: Vec<&'a str>,
    seed: u64,
}

impl<'a> Picker<'a> {
    pub(super) fn new(prose: &'a str) -> Self {
        let mut start = prose.len().saturating_sub(SOURCE_TAIL_BYTES);
        while !prose.is_char_boundary(start) {
            start += 1;
        }
        let tail = &prose[start..];
        let mut candidates: Vec<&'a str> = tail
            .split_whitespace()
            .rev()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|w| {
                !w.is_empty()
                    && w.chars().count() <= MAX_WORD_CHARS
                    && w.chars().all(char::is_alphanumeric)
            })
            .take(MAX_CANDIDATES)
            .collect();
        if candidates.is_empty() {
            candidates.extend_from_slice(FALLBACK);
        } else {
            // Back in prompt order, so the hash picks from the same list as the prompt reads.
            candidates.reverse();
        }
        Picker {
            candidates,
            seed: fnv1a(tail.as_bytes()),
        }
    }

    /// `count` words; `salt` gives an independent sequence from the same prompt.
    pub(super) fn pick(&self, count: usize, salt: u64) -> Vec<&'a str> {
        let len = self.candidates.len() as u64;
        (0..count as u64)
            .map(|i| {
                let index = splitmix64(self.seed ^ salt.rotate_left(17) ^ i) % len;
                self.candidates[index as usize]
            })
            .collect()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prompt_same_words_from_the_prompt() {
        let a = Picker::new("Please summarise the quarterly report, thanks!");
        let b = Picker::new("Please summarise the quarterly report, thanks!");
        let words = a.pick(12, 0);
        assert_eq!(words, b.pick(12, 0));
        assert_eq!(words.len(), 12);
        let vocabulary = [
            "Please",
            "summarise",
            "the",
            "quarterly",
            "report",
            "thanks",
        ];
        assert!(words.iter().all(|w| vocabulary.contains(w)), "{words:?}");
    }

    #[test]
    fn empty_prompt_falls_back() {
        let words = Picker::new("  ...  ").pick(5, 0);
        assert!(words.iter().all(|w| FALLBACK.contains(w)), "{words:?}");
    }

    #[test]
    fn salt_changes_the_sequence() {
        let p = Picker::new("alpha beta gamma delta epsilon zeta eta theta iota kappa");
        assert_ne!(p.pick(10, 0), p.pick(10, 1));
    }
}
