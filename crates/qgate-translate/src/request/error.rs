//! Client mistakes the translator cannot repair. The gateway answers each with HTTP 400
//! `invalid_request_error` and this `Display` text, so the text names the field and says
//! what to send instead.

use super::MAX_IMAGES;

/// Why a request cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("messages: at least one message is required")]
    NoMessages,
    #[error("messages: at least one message with role `user` is required")]
    NoUserMessage,
    #[error("messages.{message}: image source type `url` is not supported; send base64 data")]
    ImageUrlSource { message: usize },
    #[error(
        "messages.{message}: image source type is not supported; send \
         {{\"type\":\"base64\",\"media_type\":..,\"data\":..}}"
    )]
    UnsupportedImageSource { message: usize },
    #[error(
        "messages.{message}: image media type `{media_type}` is not supported; \
         use image/png, image/jpeg, image/gif or image/webp"
    )]
    UnsupportedMediaType { message: usize, media_type: String },
    #[error("messages.{message}: image data is not valid base64 ({reason})")]
    InvalidBase64 { message: usize, reason: String },
    #[error("messages.{message}: malformed `data:` URL; expected data:image/<type>;base64,<data>")]
    InvalidDataUrl { message: usize },
    #[error("messages.{message}: image is {bytes} bytes; at most {max} bytes are supported")]
    ImageTooLarge {
        message: usize,
        bytes: usize,
        max: usize,
    },
    #[error("the last user message has {count} images; at most {max} are supported per request", max = MAX_IMAGES)]
    TooManyImages { count: usize },
}
