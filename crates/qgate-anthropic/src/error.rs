//! The Anthropic error body, built here and only here, for plain HTTP responses and for
//! the mid-stream `event: error` alike.

use serde::{Deserialize, Serialize};

/// Anthropic's `error.type` values, each with the HTTP status the real API uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    #[serde(rename = "invalid_request_error")]
    InvalidRequest,
    #[serde(rename = "authentication_error")]
    Authentication,
    #[serde(rename = "permission_error")]
    Permission,
    #[serde(rename = "not_found_error")]
    NotFound,
    #[serde(rename = "request_too_large")]
    RequestTooLarge,
    #[serde(rename = "rate_limit_error")]
    RateLimit,
    #[serde(rename = "api_error")]
    Api,
    #[serde(rename = "overloaded_error")]
    Overloaded,
    #[serde(rename = "timeout_error")]
    Timeout,
}

impl ErrorKind {
    /// The `error.type` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api => "api_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
        }
    }

    /// The HTTP status the Anthropic API answers with for this kind.
    pub const fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::Permission => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Api => 500,
            ErrorKind::Overloaded => 529,
            ErrorKind::Timeout => 504,
        }
    }
}

/// A client-visible error: kind + message. Carries no secrets by construction (callers
/// build messages from classified causes, never from raw upstream bodies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

/// `{"type":"error","error":{"type":..,"message":..},"request_id":..}`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub error: ErrorDetail,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The inner `error` object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// Claude Code parses exactly this wording to drive compaction.
    pub fn prompt_too_long(tokens: u64, maximum: u64) -> Self {
        Self::invalid_request(format!(
            "prompt is too long: {tokens} tokens > {maximum} maximum"
        ))
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            kind: self.kind,
            message: self.message.clone(),
        }
    }

    /// The full error body for an HTTP response.
    pub fn body(&self, request_id: Option<&str>) -> ErrorBody {
        ErrorBody {
            kind: "error".to_owned(),
            error: self.detail(),
            request_id: request_id.map(str::to_owned),
        }
    }

    /// The body serialized to JSON bytes.
    pub fn to_json(&self, request_id: Option<&str>) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(&self.body(request_id)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_anthropic_shape() {
        let e = ApiError::prompt_too_long(250_000, 200_000);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json(Some("req_1"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","error":{"type":"invalid_request_error",
                "message":"prompt is too long: 250000 tokens > 200000 maximum"},"request_id":"req_1"})
        );
        assert_eq!(e.status(), 400);
        assert_eq!(ErrorKind::Overloaded.status(), 529);
    }
}
