//! Every client-visible failure of the gateway, and its one mapping to an Anthropic error
//! (status, `error.type`, message, `retry-after`). Both the plain HTTP error response and
//! the mid-stream `event: error` are built from [`GatewayError::to_api_error`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qgate_amazonq::classify::{ClientFault, UpstreamFailure};
use qgate_anthropic::{ApiError, ErrorKind};
use std::time::Duration;

/// What went wrong, from the client's point of view.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The request body is not valid JSON or misses required fields.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// Body over the configured limit.
    #[error("request body too large")]
    BodyTooLarge { limit: usize },
    /// The client stopped sending its body.
    #[error("request body timed out")]
    BodyTimeout { idle: Duration },
    /// Unknown model name (and no default configured).
    #[error("{0}")]
    UnknownModel(String),
    /// No route for the path.
    #[error("not found")]
    NotFound,
    /// Missing or wrong client API key.
    #[error("authentication failed")]
    Unauthenticated,
    /// Admin endpoint refused.
    #[error("{0}")]
    Forbidden(String),
    /// The upstream rejected the request itself.
    #[error("upstream rejected the request")]
    UpstreamClient {
        fault: ClientFault,
        /// Our estimate of the prompt size and the model's window, for the
        /// `prompt is too long` wording.
        estimated_tokens: u64,
        context_window: u64,
        /// What our own validator says is wrong, when it finds something.
        explanation: Option<String>,
    },
    /// Every account is throttled or out of quota.
    #[error("all accounts throttled")]
    AllThrottled { retry_after: Duration },
    /// No account could serve the request (breakers open, suspended, refresh denied,
    /// all attempts failed transiently, queue timed out).
    #[error("no account available")]
    Unavailable {
        retry_after: Option<Duration>,
        last_failure: Option<UpstreamFailure>,
        reason: &'static str,
    },
    /// The upstream failed after the stream had reached the client.
    #[error("upstream stream interrupted")]
    StreamInterrupted { failure: UpstreamFailure },
    /// No account supports the requested model.
    #[error("model not available")]
    ModelNotAvailable { model: String },
    /// The client's own rate or concurrency limit.
    #[error("client rate limited")]
    ClientRateLimited { retry_after: Duration },
    /// A bug or an impossible state; never expected.
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The Anthropic error (kind + message) for this failure.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            GatewayError::BadRequest(m) => ApiError::invalid_request(m.clone()),
            GatewayError::BodyTooLarge { limit } => ApiError::new(
                ErrorKind::RequestTooLarge,
                format!("Request exceeds the maximum allowed size of {limit} bytes."),
            ),
            GatewayError::BodyTimeout { idle } => ApiError::invalid_request(format!(
                "The request body stalled: nothing was received for {} s.",
                idle.as_secs()
            )),
            GatewayError::UnknownModel(m) => ApiError::new(ErrorKind::NotFound, m.clone()),
            GatewayError::NotFound => {
                ApiError::new(ErrorKind::NotFound, "Not found: no such endpoint.")
            }
            GatewayError::Unauthenticated => {
                ApiError::new(ErrorKind::Authentication, "invalid x-api-key")
            }
            GatewayError::Forbidden(m) => ApiError::new(ErrorKind::Permission, m.clone()),
            GatewayError::UpstreamClient {
                fault,
                estimated_tokens,
                context_window,
                explanation,
            } => match fault {
                ClientFault::ContextTooLong => ApiError::prompt_too_long(
                    (*estimated_tokens).max(context_window + 1),
                    *context_window,
                ),
                ClientFault::Malformed { message, reason } => {
                    let mut m = format!("Amazon Q rejected the request: {message}");
                    if let Some(r) = reason {
                        m.push_str(&format!(" (reason: {r})"));
                    }
                    if let Some(e) = explanation {
                        m.push_str(&format!(" — {e}"));
                    }
                    ApiError::invalid_request(m)
                }
            },
            GatewayError::AllThrottled { .. } => ApiError::new(
                ErrorKind::RateLimit,
                "All upstream accounts are rate limited or out of quota; retry after the indicated delay.",
            ),
            GatewayError::Unavailable {
                reason,
                last_failure,
                ..
            } => {
                let detail = last_failure
                    .as_ref()
                    .map(|f| format!(" Last upstream failure: {}.", f.label()))
                    .unwrap_or_default();
                ApiError::new(
                    ErrorKind::Overloaded,
                    format!("Overloaded: {reason}.{detail}"),
                )
            }
            GatewayError::StreamInterrupted { failure } => ApiError::new(
                ErrorKind::Overloaded,
                format!(
                    "The upstream stream was interrupted after it had started ({}); retry the request.",
                    failure.label()
                ),
            ),
            GatewayError::ModelNotAvailable { model } => ApiError::new(
                ErrorKind::NotFound,
                format!("model: {model} is not available on any configured account"),
            ),
            GatewayError::ClientRateLimited { .. } => ApiError::new(
                ErrorKind::RateLimit,
                "This API key has reached its rate or concurrency limit.",
            ),
            GatewayError::Internal(_) => ApiError::new(ErrorKind::Api, "Internal server error."),
        }
    }

    /// `retry-after` seconds for statuses clients retry on.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::AllThrottled { retry_after }
            | GatewayError::ClientRateLimited { retry_after } => Some(*retry_after),
            GatewayError::Unavailable { retry_after, .. } => {
                Some(retry_after.unwrap_or(Duration::from_secs(1)))
            }
            GatewayError::BadRequest(_)
            | GatewayError::BodyTooLarge { .. }
            | GatewayError::BodyTimeout { .. }
            | GatewayError::UnknownModel(_)
            | GatewayError::NotFound
            | GatewayError::Unauthenticated
            | GatewayError::Forbidden(_)
            | GatewayError::UpstreamClient { .. }
            | GatewayError::ModelNotAvailable { .. }
            | GatewayError::StreamInterrupted { .. }
            | GatewayError::Internal(_) => None,
        }
    }

    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::BodyTooLarge { .. } => "body_too_large",
            GatewayError::BodyTimeout { .. } => "body_timeout",
            GatewayError::UnknownModel(_) => "unknown_model",
            GatewayError::NotFound => "not_found",
            GatewayError::Unauthenticated => "unauthenticated",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::UpstreamClient { .. } => "upstream_client_error",
            GatewayError::AllThrottled { .. } => "all_throttled",
            GatewayError::Unavailable { .. } => "unavailable",
            GatewayError::ModelNotAvailable { .. } => "model_not_available",
            GatewayError::StreamInterrupted { .. } => "stream_interrupted",
            GatewayError::ClientRateLimited { .. } => "client_rate_limited",
            GatewayError::Internal(_) => "internal",
        }
    }

    /// The HTTP response, with the request id in body and header.
    pub fn into_response_with_id(self, request_id: Option<&str>) -> Response {
        let api = self.to_api_error();
        // 408 is not one of Anthropic's error types; the body says what went wrong and
        // the status tells HTTP clients they may retry.
        let status = if matches!(self, GatewayError::BodyTimeout { .. }) {
            StatusCode::REQUEST_TIMEOUT
        } else {
            StatusCode::from_u16(api.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        };
        let mut resp = (status, api.to_json(request_id)).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(ra) = self.retry_after() {
            let secs = ra.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert("request-id", id);
        }
        // The rest of the body was not read, so the connection cannot carry another
        // request: say so, and a client opens a new one instead of reusing this one while
        // the server closes it.
        if matches!(
            self,
            GatewayError::BodyTooLarge { .. } | GatewayError::BodyTimeout { .. }
        ) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.into_response_with_id(None)
    }
}
