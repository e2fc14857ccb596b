//! Turning a failed token-endpoint response into a [`RefreshError`].
//!
//! Rule (the lesson of proxies that disabled healthy accounts): only a *structured* OAuth
//! or AWS error naming a dead credential, with status 400/401, is permanent. Everything
//! else — 429, 5xx, gateway HTML pages even when they contain the word "invalid", bodies
//! we cannot parse — is transient.

use serde_json::Value;

use crate::RefreshError;

/// OAuth codes that mean the credentials themselves were refused.
const DENIED_CODES: [&str; 4] = [
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "access_denied",
];

/// Upper bound of the description kept in `Transient::detail`.
const MAX_DESCRIPTION_CHARS: usize = 160;

/// What we know about a non-2xx answer.
pub(crate) struct FailedResponse<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    /// `x-amzn-errortype`, e.g. `InvalidGrantException:http://internal.amazon.com/...`.
    pub error_type_header: Option<&'a str>,
    pub body: &'a [u8],
}

/// Classify a failed response. `secrets` are the values just sent; any of them echoed in
/// the description is replaced so it cannot reach logs.
pub(crate) fn classify_failure(response: &FailedResponse<'_>, secrets: &[&str]) -> RefreshError {
    let Some(object) = parse_object(response.body) else {
        return RefreshError::transient(
            Some(response.status),
            format!(
                "non-JSON error body ({}, {} bytes)",
                response.content_type.unwrap_or("no content type"),
                response.body.len()
            ),
        );
    };
    let code = oauth_code(&object, response.error_type_header);
    let denied = matches!(response.status, 400 | 401)
        && code
            .as_deref()
            .is_some_and(|code| DENIED_CODES.contains(&code));
    match (denied, code) {
        (true, Some(code)) => RefreshError::Denied { code },
        (_, code) => {
            let description = description(&object).map(|text| redact(text, secrets));
            let detail = match (code, description) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => code,
                (None, Some(text)) => text,
                (None, None) => "error body without a code".to_owned(),
            };
            RefreshError::transient(Some(response.status), detail)
        }
    }
}

fn parse_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// The OAuth `error` field, else the AWS exception name (`__type` or the header) mapped to
/// its OAuth spelling.
fn oauth_code(object: &serde_json::Map<String, Value>, header: Option<&str>) -> Option<String> {
    if let Some(code) = object.get("error").and_then(Value::as_str) {
        return Some(bounded(code.trim()));
    }
    let exception = object
        .get("__type")
        .and_then(Value::as_str)
        .or(header)
        .map(exception_name)?;
    Some(match exception {
        "InvalidGrantException" => "invalid_grant".to_owned(),
        "InvalidClientException" => "invalid_client".to_owned(),
        "UnauthorizedClientException" => "unauthorized_client".to_owned(),
        "AccessDeniedException" => "access_denied".to_owned(),
        "ExpiredTokenException" => "expired_token".to_owned(),
        "InvalidRequestException" => "invalid_request".to_owned(),
        "InvalidScopeException" => "invalid_scope".to_owned(),
        "UnsupportedGrantTypeException" => "unsupported_grant_type".to_owned(),
        "SlowDownException" => "slow_down".to_owned(),
        other => bounded(other),
    })
}

/// `com.amazonaws.ssooidc#InvalidGrantException` or `InvalidGrantException:http://...`
/// → `InvalidGrantException`.
fn exception_name(raw: &str) -> &str {
    let after_namespace = raw.rsplit('#').next().unwrap_or(raw);
    after_namespace
        .split(':')
        .next()
        .unwrap_or(after_namespace)
        .trim()
}

fn description(object: &serde_json::Map<String, Value>) -> Option<&str> {
    ["error_description", "message", "Message"]
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

fn bounded(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Replace echoed secrets first, then shorten: shortening first could cut a secret in
/// half and leave its prefix unmatched.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut cleaned = text.to_owned();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        cleaned = cleaned.replace(secret, "[REDACTED]");
    }
    cleaned.chars().take(MAX_DESCRIPTION_CHARS).collect()
}

#[cfg(test)]
mod tests;
