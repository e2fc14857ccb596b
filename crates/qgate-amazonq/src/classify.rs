//! Classification of upstream failures (HTTP error responses before the stream, and
//! exception/error frames inside it) by *whose fault* they are and *what to do*.
//!
//! The dispatch loop and the pool react only to this classification, never to raw status
//! codes. The full body is inspected (`__type`, `reason`, `message`, and
//! `x-amzn-errortype`), because the same status means different things: a 403 may be an
//! expired token or a suspended account, a 429 a throttle or an exhausted quota, a 400 a
//! malformed request or a model this account may not use.

use crate::event::StreamError;
use serde::Deserialize;
use std::time::Duration;

/// What went wrong upstream, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamFailure {
    /// The request itself is at fault. Never retried, never counted against an account.
    Client(ClientFault),
    /// The access token was rejected or expired: refresh once and retry on the same account.
    Token,
    /// This account is being throttled (429 without a quota reason).
    Throttled { retry_after: Option<Duration> },
    /// This account's request quota is used up.
    QuotaExhausted { reset_at_unix: Option<i64> },
    /// This account is suspended or disabled by the provider.
    Suspended,
    /// This account may not use the requested model (`INVALID_MODEL_ID`).
    ModelUnavailable,
    /// The model is overloaded for everyone: not this account's fault.
    Overloaded,
    /// Anything else: 5xx, gateway pages, unknown statuses, in-band error frames.
    Transient { status: Option<u16> },
}

/// Client-caused upstream rejections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFault {
    /// `CONTENT_LENGTH_EXCEEDS_THRESHOLD` / `Input is too long.`
    ContextTooLong,
    /// `Improperly formed request.` and other validation failures; carries the
    /// upstream's message and reason (they describe the request, never the account).
    Malformed {
        message: String,
        reason: Option<String>,
    },
}

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Client,
    Token,
    Account,
    AccountModel,
    Global,
    Transient,
}

/// What the dispatcher may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAdvice {
    /// Give the error to the client.
    Never,
    /// Force a token refresh, then retry once on the same account.
    RefreshAndRetrySame,
    /// Try another account.
    OtherAccount,
}

impl UpstreamFailure {
    pub fn fault(&self) -> Fault {
        match self {
            UpstreamFailure::Client(_) => Fault::Client,
            UpstreamFailure::Token => Fault::Token,
            UpstreamFailure::Throttled { .. }
            | UpstreamFailure::QuotaExhausted { .. }
            | UpstreamFailure::Suspended => Fault::Account,
            UpstreamFailure::ModelUnavailable => Fault::AccountModel,
            UpstreamFailure::Overloaded => Fault::Global,
            UpstreamFailure::Transient { .. } => Fault::Transient,
        }
    }

    pub fn retry_advice(&self) -> RetryAdvice {
        match self {
            UpstreamFailure::Client(_) => RetryAdvice::Never,
            UpstreamFailure::Token => RetryAdvice::RefreshAndRetrySame,
            UpstreamFailure::Throttled { .. }
            | UpstreamFailure::QuotaExhausted { .. }
            | UpstreamFailure::Suspended
            | UpstreamFailure::ModelUnavailable
            | UpstreamFailure::Overloaded
            | UpstreamFailure::Transient { .. } => RetryAdvice::OtherAccount,
        }
    }

    /// A short stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            UpstreamFailure::Client(ClientFault::ContextTooLong) => "context_too_long",
            UpstreamFailure::Client(ClientFault::Malformed { .. }) => "malformed_request",
            UpstreamFailure::Token => "token",
            UpstreamFailure::Throttled { .. } => "throttled",
            UpstreamFailure::QuotaExhausted { .. } => "quota_exhausted",
            UpstreamFailure::Suspended => "suspended",
            UpstreamFailure::ModelUnavailable => "model_unavailable",
            UpstreamFailure::Overloaded => "overloaded",
            UpstreamFailure::Transient { .. } => "transient",
        }
    }
}

#[derive(Deserialize, Default)]
struct ErrorBodyFields {
    #[serde(default, alias = "Message")]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default, rename = "__type")]
    type_name: Option<String>,
    #[serde(default, alias = "nextDateReset")]
    #[serde(rename = "nextResetAt")]
    next_reset: Option<serde_json::Value>,
}

fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| haystack.contains(n))
}

const SUSPENDED: &[&str] = &[
    "temporarily_suspended",
    "temporarily is suspended",
    "temporarily suspended",
    "locked your account",
    "permanently disabled",
];
const QUOTA: &[&str] = &[
    "monthly_request_count",
    "daily_request_count",
    "overage_request_limit_exceeded",
    "conversation_limit_exceeded",
    "servicequotaexceededexception",
    "quota exhausted",
];
const OVERLOADED: &[&str] = &[
    "insufficient_model_capacity",
    "model_temporarily_unavailable",
    "unexpectedly high load",
    "experiencing high traffic",
];
const CONTEXT: &[&str] = &["content_length_exceeds_threshold", "input is too long"];
const TOKEN: &[&str] = &[
    "expiredtokenexception",
    "bearer token",
    "security token",
    "invalid_token",
    "unauthorizedexception",
    "token is expired",
    "token has expired",
];

/// Classifies an HTTP error response (status ≥ 400) from the chat endpoint.
pub fn classify_http_error(
    status: u16,
    error_type_header: Option<&str>,
    retry_after_header: Option<&str>,
    body: &[u8],
) -> UpstreamFailure {
    let fields: ErrorBodyFields = serde_json::from_slice(body).unwrap_or_default();
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    let header = error_type_header.unwrap_or_default().to_ascii_lowercase();
    let all = format!("{text} {header}");

    if contains_any(&all, SUSPENDED) {
        return UpstreamFailure::Suspended;
    }
    if status == 402 || contains_any(&all, QUOTA) {
        return UpstreamFailure::QuotaExhausted {
            reset_at_unix: fields.next_reset.as_ref().and_then(reset_time),
        };
    }
    if contains_any(&all, OVERLOADED) {
        return UpstreamFailure::Overloaded;
    }
    if all.contains("invalid_model_id") {
        return UpstreamFailure::ModelUnavailable;
    }
    if contains_any(&all, CONTEXT) {
        return UpstreamFailure::Client(ClientFault::ContextTooLong);
    }
    match status {
        401 | 403 => UpstreamFailure::Token,
        429 => UpstreamFailure::Throttled {
            retry_after: retry_after_header.and_then(parse_retry_after),
        },
        400 | 413 | 422 => UpstreamFailure::Client(ClientFault::Malformed {
            message: fields
                .message
                .unwrap_or_else(|| "Improperly formed request.".to_owned()),
            reason: fields.reason,
        }),
        _ if contains_any(&all, TOKEN) => UpstreamFailure::Token,
        _ => UpstreamFailure::Transient {
            status: Some(status),
        },
    }
    .with_type_hint(fields.type_name.as_deref())
}

impl UpstreamFailure {
    fn with_type_hint(self, type_name: Option<&str>) -> Self {
        match (self, type_name) {
            (UpstreamFailure::Transient { .. }, Some(t))
                if t.to_ascii_lowercase().contains("throttling") =>
            {
                UpstreamFailure::Throttled { retry_after: None }
            }
            (s, _) => s,
        }
    }
}

/// Classifies an in-band exception or error frame (after HTTP 200).
/// `ContentLengthExceededException` is not a failure; callers check
/// [`StreamError::is_output_limit`] first.
pub fn classify_stream_error(err: &StreamError) -> UpstreamFailure {
    match err {
        StreamError::Exception {
            exception_type,
            message,
            reason,
        } => {
            let all = format!(
                "{} {} {}",
                exception_type,
                message,
                reason.as_deref().unwrap_or_default()
            )
            .to_ascii_lowercase();
            if contains_any(&all, SUSPENDED) {
                UpstreamFailure::Suspended
            } else if contains_any(&all, QUOTA) {
                UpstreamFailure::QuotaExhausted {
                    reset_at_unix: None,
                }
            } else if contains_any(&all, OVERLOADED) {
                UpstreamFailure::Overloaded
            } else if all.contains("invalid_model_id") {
                UpstreamFailure::ModelUnavailable
            } else if contains_any(&all, CONTEXT) {
                UpstreamFailure::Client(ClientFault::ContextTooLong)
            } else if all.contains("throttling") {
                UpstreamFailure::Throttled { retry_after: None }
            } else if all.contains("validationexception") {
                UpstreamFailure::Client(ClientFault::Malformed {
                    message: message.clone(),
                    reason: reason.clone(),
                })
            } else if all.contains("accessdenied") || contains_any(&all, TOKEN) {
                UpstreamFailure::Token
            } else {
                UpstreamFailure::Transient { status: None }
            }
        }
        StreamError::Service { .. } => UpstreamFailure::Transient { status: None },
    }
}

/// `Retry-After` in seconds (an HTTP date is treated as absent).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn reset_time(v: &serde_json::Value) -> Option<i64> {
    match v {
        // Epoch seconds (possibly fractional) as the service's usage API reports them.
        serde_json::Value::Number(n) => n.as_f64().map(|f| f as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, body: &str) -> UpstreamFailure {
        classify_http_error(status, None, None, body.as_bytes())
    }

    #[test]
    fn classifies_the_protocol_table() {
        assert_eq!(
            c(
                400,
                r#"{"message":"Improperly formed request.","reason":null}"#
            ),
            UpstreamFailure::Client(ClientFault::Malformed {
                message: "Improperly formed request.".into(),
                reason: None
            })
        );
        assert_eq!(
            c(
                400,
                r#"{"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD","__type":"com.amazon.aws.codewhisperer#ValidationException"}"#
            ),
            UpstreamFailure::Client(ClientFault::ContextTooLong)
        );
        assert_eq!(
            c(
                400,
                r#"{"message":"Invalid model ID","reason":"INVALID_MODEL_ID"}"#
            ),
            UpstreamFailure::ModelUnavailable
        );
        assert_eq!(
            c(
                429,
                r#"{"message":"I am experiencing high traffic, please try again shortly.","reason":"INSUFFICIENT_MODEL_CAPACITY","__type":"com.amazon.aws.codewhisperer#ThrottlingException"}"#
            ),
            UpstreamFailure::Overloaded
        );
        assert_eq!(
            c(
                500,
                r#"{"message":"Encountered unexpectedly high load when processing the request, please try again.","reason":"MODEL_TEMPORARILY_UNAVAILABLE"}"#
            ),
            UpstreamFailure::Overloaded
        );
        assert_eq!(
            classify_http_error(429, None, Some("7"), br#"{"message":"Too many requests, please wait before trying again.","reason":"USER_REQUEST_RATE_EXCEEDED"}"#),
            UpstreamFailure::Throttled { retry_after: Some(Duration::from_secs(7)) }
        );
        assert_eq!(
            c(
                429,
                r#"{"__type":"com.amazon.aws.codewhisperer#ThrottlingException","message":"limit","reason":"MONTHLY_REQUEST_COUNT"}"#
            ),
            UpstreamFailure::QuotaExhausted {
                reset_at_unix: None
            }
        );
        assert_eq!(
            c(
                402,
                r#"{"__type":"ServiceQuotaExceededException","message":"You have reached the limit.","reason":"MONTHLY_REQUEST_COUNT"}"#
            ),
            UpstreamFailure::QuotaExhausted {
                reset_at_unix: None
            }
        );
        assert_eq!(
            c(
                403,
                r#"{"__type":"com.amazon.aws.codewhisperer#AccessDeniedException","message":"The bearer token included in the request is invalid."}"#
            ),
            UpstreamFailure::Token
        );
        assert_eq!(
            c(
                403,
                r#"{"__type":"com.amazon.aws.codewhisperer#ExpiredTokenException","message":"The security token included in the request is expired."}"#
            ),
            UpstreamFailure::Token
        );
        assert_eq!(
            c(
                403,
                r#"{"message":"Your User ID (x) temporarily is suspended. We've locked your account as a security precaution.","reason":"TEMPORARILY_SUSPENDED"}"#
            ),
            UpstreamFailure::Suspended
        );
        assert_eq!(
            c(
                400,
                r#"{"message":"Your User ID temporarily is suspended."}"#
            ),
            UpstreamFailure::Suspended
        );
        assert_eq!(
            c(503, "<html>bad gateway</html>"),
            UpstreamFailure::Transient { status: Some(503) }
        );
    }

    #[test]
    fn fault_and_advice() {
        assert_eq!(
            UpstreamFailure::Token.retry_advice(),
            RetryAdvice::RefreshAndRetrySame
        );
        assert_eq!(UpstreamFailure::Overloaded.fault(), Fault::Global);
        assert_eq!(
            UpstreamFailure::Client(ClientFault::ContextTooLong).retry_advice(),
            RetryAdvice::Never
        );
    }

    #[test]
    fn stream_exceptions() {
        let ex = |t: &str, m: &str| StreamError::Exception {
            exception_type: t.into(),
            message: m.into(),
            reason: None,
        };
        assert_eq!(
            classify_stream_error(&ex("ThrottlingException", "slow down")),
            UpstreamFailure::Throttled { retry_after: None }
        );
        assert_eq!(
            classify_stream_error(&ex("InternalServerException", "boom")),
            UpstreamFailure::Transient { status: None }
        );
        assert_eq!(
            classify_stream_error(&ex("ValidationException", "Input is too long.")),
            UpstreamFailure::Client(ClientFault::ContextTooLong)
        );
    }
}
