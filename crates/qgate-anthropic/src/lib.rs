//! Anthropic Messages API wire types: requests, responses, SSE stream events and the error body.
//!
//! Pure serde types with no I/O. Requests are *tolerant* (unknown fields and unknown
//! content-block types are accepted, as the real API's clients send many extras);
//! responses and stream events are *exact* (they are what real SDKs parse).
//!
//! The Anthropic error JSON is built in exactly one place: [`error::ApiError`].
//!
//! Besides the types, [`recent::Recent`]: the small bounded cache behind the per-thread
//! caches of repeated `tools` arrays (here and in `qgate-translate`).

pub mod error;
pub mod models;
pub mod recent;
pub mod request;
pub mod response;
pub mod stream;

pub use error::{ApiError, ErrorKind};
pub use request::{
    ContentBlock, CountTokensRequest, ImageSource, Message, MessageContent, MessagesRequest,
    Metadata, OutputConfig, Role, SystemPrompt, ThinkingConfig, Tool, ToolResultContent, Tools,
};
pub use response::{MessageResponse, ResponseBlock, StopReason, Usage};
pub use stream::{BlockStart, Delta, StreamEvent};
