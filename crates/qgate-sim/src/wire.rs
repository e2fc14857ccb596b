//! The bodies and headers of the real services' error responses, in one place: the
//! CodeWhisperer service's `__type`/`message`/`reason` JSON with `x-amzn-errortype`, and
//! SSO-OIDC's OAuth-style `error`/`error_description`.

use crate::fault::FaultKind;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qgate_amazonq::Dialect;
use qgate_amazonq::validate::ViolationKind;
use serde_json::{Value, json};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
const SERVICE_NAMESPACE: &str = "com.amazon.aws.codewhisperer";

/// Gives every response its own `x-amzn-requestid`, as the services do.
pub(crate) async fn stamp_request_id(mut response: Response) -> Response {
    let id = uuid::Uuid::new_v4();
    let mut buf = uuid::Uuid::encode_buffer();
    if let Ok(value) = HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// A CodeWhisperer error: `{"__type":"<ns>#<Type>","message":…[,"reason":…]}`.
pub(crate) struct ServiceError {
    pub status: StatusCode,
    /// Short exception name, e.g. `ThrottlingException`.
    pub exception: &'static str,
    pub namespace: &'static str,
    pub message: Value,
    /// `None` leaves the field out; `Some(Value::Null)` writes `"reason":null`.
    pub reason: Option<Value>,
}

impl ServiceError {
    fn new(status: StatusCode, exception: &'static str, message: &str) -> Self {
        ServiceError {
            status,
            exception,
            namespace: SERVICE_NAMESPACE,
            message: Value::String(message.to_owned()),
            reason: None,
        }
    }

    fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(Value::String(reason.to_owned()));
        self
    }

    /// The request names no operation this endpoint knows (wrong or missing
    /// `X-Amz-Target`, or the wrong content type for the AWS JSON protocol).
    pub(crate) fn unknown_operation() -> Self {
        ServiceError {
            status: StatusCode::BAD_REQUEST,
            exception: "UnknownOperationException",
            namespace: "com.amazon.coral.service",
            message: Value::Null,
            reason: None,
        }
    }

    pub(crate) fn unsupported_media_type() -> Self {
        ServiceError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            exception: "UnsupportedMediaTypeException",
            namespace: "com.amazon.coral.service",
            message: Value::String("Unsupported Media Type".to_owned()),
            reason: None,
        }
    }

    pub(crate) fn bearer_invalid() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "The bearer token included in the request is invalid.",
        )
    }

    pub(crate) fn bearer_expired() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ExpiredTokenException",
            "The security token included in the request is expired.",
        )
    }

    pub(crate) fn validation(kind: ViolationKind) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            kind.message(),
        );
        e.reason = Some(
            kind.reason()
                .map_or(Value::Null, |r| Value::String(r.to_owned())),
        );
        e
    }

    pub(crate) fn invalid_model() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Invalid model ID",
        )
        .with_reason("INVALID_MODEL_ID")
    }

    /// The HTTP error an injected chat fault answers with; `None` for faults that play
    /// out inside a 200 stream (or hit refreshes).
    pub(crate) fn for_fault(kind: FaultKind, account: &str) -> Option<Self> {
        let e = match kind {
            FaultKind::Throttle => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            )
            .with_reason("USER_REQUEST_RATE_EXCEEDED"),
            FaultKind::MonthlyQuota => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "You have reached the limit for the number of requests you can make this month.",
            )
            .with_reason("MONTHLY_REQUEST_COUNT"),
            FaultKind::Quota402 => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "ServiceQuotaExceededException",
                "You have reached the limit.",
            )
            .with_reason("MONTHLY_REQUEST_COUNT"),
            FaultKind::Suspended => Self::new(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                &format!(
                    "Your User ID ({account}) temporarily is suspended. We've locked your account \
                     as a security precaution. To restore access, please contact our support team."
                ),
            )
            .with_reason("TEMPORARILY_SUSPENDED"),
            FaultKind::ExpiredToken => Self::bearer_expired(),
            FaultKind::InvalidModel => Self::invalid_model(),
            FaultKind::Overloaded => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "Encountered unexpectedly high load when processing the request, please try again.",
            )
            .with_reason("MODEL_TEMPORARILY_UNAVAILABLE"),
            FaultKind::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                "Service Unavailable",
            ),
            FaultKind::SlowFirstByte
            | FaultKind::MidstreamException
            | FaultKind::MidstreamReset
            | FaultKind::BadCrc
            | FaultKind::RefreshInvalidGrant
            | FaultKind::Refresh5xx => return None,
        };
        Some(e)
    }

    /// The response, with the content type of the dialect's protocol.
    pub(crate) fn into_response_for(self, dialect: Dialect) -> Response {
        let mut body = json!({
            "__type": format!("{}#{}", self.namespace, self.exception),
            "message": self.message,
        });
        if let Some(reason) = self.reason {
            body["reason"] = reason;
        }
        let error_type = format!(
            "{}:http://internal.amazon.com/coral/{}/",
            self.exception, self.namespace
        );
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(dialect.content_type()),
        );
        if let Ok(v) = HeaderValue::from_str(&error_type) {
            headers.insert(ERROR_TYPE, v);
        }
        response
    }
}

/// The token services' refusals, answered as SSO-OIDC's OAuth-style
/// `{"error":…,"error_description":…}` plus the SDK's `x-amzn-errortype`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OidcError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Unknown, rotated-away or revoked refresh token.
    #[error("invalid_grant")]
    InvalidRefreshToken,
    /// Unknown, foreign or already exchanged device code.
    #[error("invalid_grant (device code)")]
    InvalidDeviceCode,
    #[error("invalid_client")]
    InvalidClient,
    #[error("authorization_pending")]
    AuthorizationPending,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("server_error")]
    ServerError,
}

impl OidcError {
    pub(crate) fn missing(field: &str) -> Self {
        OidcError::InvalidRequest(format!("Missing required parameter: {field}"))
    }
}

impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        let (status, error, exception, description) = match &self {
            OidcError::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "InvalidRequestException",
                d.as_str(),
            ),
            OidcError::InvalidRefreshToken => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "InvalidGrantException",
                "Invalid refresh token provided",
            ),
            OidcError::InvalidDeviceCode => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "InvalidGrantException",
                "Invalid device code provided",
            ),
            OidcError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "InvalidClientException",
                "Invalid client",
            ),
            OidcError::AuthorizationPending => (
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "AuthorizationPendingException",
                "Authorization is still pending",
            ),
            OidcError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "UnsupportedGrantTypeException",
                "Unsupported grant type",
            ),
            OidcError::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "InternalServerException",
                "An internal server error occurred.",
            ),
        };
        let body = json!({"error": error, "error_description": description});
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(ERROR_TYPE, HeaderValue::from_static(exception));
        response
    }
}
