//! Which token-endpoint failures are permanent, on the bodies seen in the field.

use super::*;

fn classify(status: u16, content_type: &str, header: Option<&str>, body: &str) -> RefreshError {
    classify_failure(
        &FailedResponse {
            status,
            content_type: Some(content_type),
            error_type_header: header,
            body: body.as_bytes(),
        },
        &["aor-the-refresh-token", "client-secret-value"],
    )
}

fn denied(code: &str) -> RefreshError {
    RefreshError::Denied { code: code.into() }
}

#[test]
fn oauth_codes_for_dead_credentials_are_denied() {
    for code in [
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "access_denied",
    ] {
        let body = format!(r#"{{"error":"{code}","error_description":"nope"}}"#);
        assert_eq!(classify(400, "application/json", None, &body), denied(code));
    }
    assert_eq!(
        classify(
            401,
            "application/json",
            None,
            r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#
        ),
        denied("invalid_client")
    );
}

#[test]
fn aws_exception_names_map_to_oauth_codes() {
    assert_eq!(
        classify(
            400,
            "application/x-amz-json-1.1",
            None,
            r#"{"__type":"com.amazonaws.ssooidc#InvalidGrantException","message":"Invalid refresh token provided"}"#
        ),
        denied("invalid_grant")
    );
    assert_eq!(
        classify(
            400,
            "application/json",
            Some("InvalidGrantException:http://internal.amazon.com/coral/com.amazonaws.ssooidc/"),
            r#"{"message":"Invalid refresh token provided"}"#
        ),
        denied("invalid_grant")
    );
}

#[test]
fn other_oauth_codes_are_transient_with_their_code() {
    let err = classify(
        400,
        "application/json",
        None,
        r#"{"error":"invalid_request","error_description":"missing clientId"}"#,
    );
    assert_eq!(
        err,
        RefreshError::transient(Some(400), "invalid_request: missing clientId")
    );
}

#[test]
fn denied_code_with_a_server_status_is_not_trusted() {
    let err = classify(
        500,
        "application/json",
        None,
        r#"{"error":"invalid_grant"}"#,
    );
    assert!(!err.is_permanent(), "{err:?}");
}

#[test]
fn throttling_and_server_errors_are_transient() {
    let err = classify(
        429,
        "application/json",
        None,
        r#"{"message":"Rate exceeded"}"#,
    );
    assert_eq!(err, RefreshError::transient(Some(429), "Rate exceeded"));
    let err = classify(
        503,
        "application/json",
        Some("ServiceUnavailableException"),
        "{}",
    );
    assert_eq!(
        err,
        RefreshError::transient(Some(503), "ServiceUnavailableException")
    );
}

#[test]
fn html_gateway_page_mentioning_invalid_grant_is_transient() {
    let page = "<html><body><h1>502 Bad Gateway</h1><p>upstream said invalid_grant / invalid</p></body></html>";
    for status in [400, 401, 502] {
        let err = classify(status, "text/html", None, page);
        assert!(!err.is_permanent(), "{status}: {err:?}");
        assert!(!err.to_string().contains("<html>"));
    }
}

#[test]
fn json_that_is_not_an_object_is_transient() {
    assert!(!classify(400, "application/json", None, r#""invalid_grant""#).is_permanent());
    assert!(!classify(400, "application/json", None, "").is_permanent());
}

#[test]
fn echoed_secrets_are_redacted_and_descriptions_bounded() {
    let long_tail = "x".repeat(500);
    let body = format!(
        r#"{{"error":"invalid_request","error_description":"bad token aor-the-refresh-token for client-secret-value {long_tail}"}}"#
    );
    let err = classify(400, "application/json", None, &body);
    let shown = err.to_string();
    assert!(!shown.contains("aor-the-refresh-token"), "{shown}");
    assert!(!shown.contains("client-secret-value"), "{shown}");
    assert!(shown.contains("[REDACTED]"), "{shown}");
    assert!(shown.len() < 300, "{} chars", shown.len());
}
