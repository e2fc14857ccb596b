//! Pure translation between the Anthropic Messages API and Amazon Q.
//!
//! * [`request`]: Anthropic request → repaired Amazon Q `GenerateAssistantResponse` body,
//!   satisfying every rule of the service's validator ([`qgate_amazonq::validate`]).
//! * [`response`]: Amazon Q events → Anthropic SSE events, one state machine for both
//!   streaming and non-streaming (the latter folds the same events into a message).
//! * [`thinking`]: stream-safe `<thinking>` tag scanner.
//! * [`model_map`]: client model names → upstream `modelId`, context windows, `/v1/models`.
//! * [`tokens`]: the token estimator shared by `message_start` and `count_tokens`.
//! * [`tool_names`]: deterministic shortening of over-long tool names and the reverse map.
//!
//! No I/O, no async.

pub mod model_map;
pub mod request;
pub mod response;
pub mod thinking;
pub mod tokens;
pub mod tool_names;

pub use tool_names::ToolNameMap;
