//! Token estimation shared by `message_start.usage.input_tokens`, `count_tokens` and
//! output usage. (Initial version; refined by the request-translation work.)

/// Estimated tokens for a piece of text: ~4 characters per token for Latin text,
/// CJK and other wide characters count more.
pub fn estimate_text(text: &str) -> u64 {
    let mut units: u64 = 0;
    for c in text.chars() {
        units += if (c as u32) < 0x2E80 { 1 } else { 3 };
    }
    units.div_ceil(4)
}
