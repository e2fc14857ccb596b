//! The two client dialects of the same backend and body.

use serde::{Deserialize, Serialize};

/// How a request reaches `GenerateAssistantResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Amazon Q CLI: `POST /` with `X-Amz-Target`, `application/x-amz-json-1.0`;
    /// streams begin with an `initial-response` event.
    #[default]
    QCli,
    /// Kiro IDE: `POST /generateAssistantResponse`, `application/json`.
    Kiro,
}

impl Dialect {
    pub const X_AMZ_TARGET: &'static str =
        "AmazonCodeWhispererStreamingService.GenerateAssistantResponse";

    /// Path appended to the API base URL.
    pub const fn path(self) -> &'static str {
        match self {
            Dialect::QCli => "/",
            Dialect::Kiro => "/generateAssistantResponse",
        }
    }

    /// Request `Content-Type`.
    pub const fn content_type(self) -> &'static str {
        match self {
            Dialect::QCli => "application/x-amz-json-1.0",
            Dialect::Kiro => "application/json",
        }
    }

    /// The `origin` sent in user messages.
    pub const fn origin(self) -> &'static str {
        match self {
            Dialect::QCli => "CLI",
            Dialect::Kiro => "AI_EDITOR",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Dialect::QCli => "q_cli",
            Dialect::Kiro => "kiro",
        }
    }
}
