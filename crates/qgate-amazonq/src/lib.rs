//! Amazon Q Developer (CodeWhisperer streaming) wire layer: the `GenerateAssistantResponse`
//! request body, the typed events decoded from AWS event-stream frames, the service's
//! request rules (the validator the simulator enforces and the translator must satisfy),
//! and the classification of upstream error bodies.
//!
//! No HTTP and no async: bytes in, typed values out.

pub mod classify;
pub mod codec;
pub mod dialect;
pub mod event;
pub mod request;
pub mod validate;

pub use classify::{UpstreamFailure, classify_http_error, classify_stream_error};
pub use codec::{DecodeError, EventStreamDecoder, MAX_FRAME_LEN};
pub use dialect::Dialect;
pub use event::{Event, StreamError};
pub use request::{
    AssistantResponseMessage, ChatMessage, ConversationState, CurrentMessage, EnvState,
    GenerateAssistantResponseRequest, Image, ImageSource, InputSchema, Tool, ToolList, ToolResult,
    ToolResultContent, ToolResultStatus, ToolSpecification, ToolUse, UserInputMessage,
    UserInputMessageContext,
};
