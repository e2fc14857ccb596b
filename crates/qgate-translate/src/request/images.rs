//! Anthropic image blocks → Amazon Q `images[]`.
//!
//! Only inline data can be forwarded (the gateway fetches nothing on a client's behalf):
//! `base64` sources and `data:` URLs become `{format, source:{bytes}}`; remote URLs and
//! unknown media types are client errors. The data is decoded once to reject corrupt
//! base64 here, with a clear message, rather than as an opaque upstream 400.

use super::{MAX_IMAGE_BYTES, TranslateError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use qgate_amazonq::{Image, ImageSource as WireSource};
use qgate_anthropic::ImageSource;
use std::borrow::Cow;

/// Converts one image source; `message` is the index in `messages` for error texts.
pub(super) fn convert(source: &ImageSource, message: usize) -> Result<Image, TranslateError> {
    match source {
        ImageSource::Base64 { media_type, data } => from_base64(media_type, data, message),
        ImageSource::Url { url } => match url.strip_prefix("data:") {
            Some(rest) => from_data_url(rest, message),
            None => Err(TranslateError::ImageUrlSource { message }),
        },
        ImageSource::Unknown => Err(TranslateError::UnsupportedImageSource { message }),
    }
}

/// `data:` already removed: `image/png;base64,<data>`.
fn from_data_url(rest: &str, message: usize) -> Result<Image, TranslateError> {
    let (header, data) = rest
        .split_once(',')
        .ok_or(TranslateError::InvalidDataUrl { message })?;
    let media_type = header
        .strip_suffix(";base64")
        .ok_or(TranslateError::InvalidDataUrl { message })?;
    from_base64(media_type, data, message)
}

fn from_base64(media_type: &str, data: &str, message: usize) -> Result<Image, TranslateError> {
    let format = format_of(media_type).ok_or_else(|| TranslateError::UnsupportedMediaType {
        message,
        media_type: media_type.to_owned(),
    })?;
    let data = canonical_base64(data);
    let decoded_len =
        decoded_len(&data).map_err(|reason| TranslateError::InvalidBase64 { message, reason })?;
    if decoded_len > MAX_IMAGE_BYTES {
        return Err(TranslateError::ImageTooLarge {
            message,
            bytes: decoded_len,
            max: MAX_IMAGE_BYTES,
        });
    }
    Ok(Image {
        format: format.to_owned(),
        source: WireSource {
            bytes: data.into_owned(),
        },
    })
}

/// Some clients wrap base64 at 76 columns or leave out the padding; the service wants one
/// unbroken, padded string.
fn canonical_base64(data: &str) -> Cow<'_, str> {
    let has_whitespace = data.bytes().any(|b| b.is_ascii_whitespace());
    let mut data = if has_whitespace {
        Cow::Owned(data.chars().filter(|c| !c.is_ascii_whitespace()).collect())
    } else {
        Cow::Borrowed(data)
    };
    let missing_padding = match data.len() % 4 {
        2 => 2,
        3 => 1,
        _ => 0,
    };
    if missing_padding > 0 {
        data.to_mut().push_str(&"=".repeat(missing_padding));
    }
    data
}

/// The upstream `format` for an image media type.
fn format_of(media_type: &str) -> Option<&'static str> {
    match media_type.trim().to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// Validates the base64 text and returns the decoded size.
fn decoded_len(data: &str) -> Result<usize, String> {
    if data.is_empty() {
        return Err("the data is empty".to_owned());
    }
    // Decoding in fixed chunks validates everything without holding a second copy of a
    // 10 MB image; 4-character groups keep chunk boundaries aligned.
    const CHUNK: usize = 64 * 1024;
    let mut buffer = vec![0u8; CHUNK / 4 * 3];
    let mut total = 0;
    let bytes = data.as_bytes();
    for (index, chunk) in bytes.chunks(CHUNK).enumerate() {
        let is_last = (index + 1) * CHUNK >= bytes.len();
        if !is_last && chunk.contains(&b'=') {
            return Err("padding in the middle of the data".to_owned());
        }
        total += STANDARD
            .decode_slice(chunk, &mut buffer)
            .map_err(|e| e.to_string())?;
    }
    Ok(total)
}
