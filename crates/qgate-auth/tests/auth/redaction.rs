//! No token or secret string appears in any `Debug` or `Display` output of the public types,
//! even when the token service echoes them back in an error.

use qgate_auth::{AuthEndpoints, RefreshError};
use qgate_store::{CachedToken, TokenStore};

use crate::mock::Reply;
use crate::{CLIENT_SECRET, CONFIGURED_REFRESH, Harness, kiro_creds, oidc_creds};

const ACCESS: &str = "aoa-access-token-secret-0001";
const ROTATED: &str = "aor-rotated-refresh-secret-0002";

fn assert_clean(what: &str, shown: &str) {
    for secret in [ACCESS, ROTATED, CONFIGURED_REFRESH, CLIENT_SECRET] {
        assert!(!shown.contains(secret), "{what} shows a secret: {shown}");
    }
}

#[tokio::test]
async fn public_types_never_show_secrets() {
    let h = Harness::start(Reply::token(ACCESS, Some(3600), Some(ROTATED))).await;
    let manager = h.manager("primary", oidc_creds());
    let token = manager.access_token().await.unwrap();
    assert_eq!(token.expose(), ACCESS);

    assert_clean("AccessToken", &format!("{token:?}"));
    assert_clean("TokenManager", &format!("{manager:?}"));
    assert_clean("Credentials::Oidc", &format!("{:?}", oidc_creds()));
    assert_clean("Credentials::KiroSocial", &format!("{:?}", kiro_creds()));
    assert_clean("RefreshStats", &format!("{:?}", manager.stats()));
    assert_clean(
        "AuthEndpoints",
        &format!("{:?}", AuthEndpoints::aws_defaults()),
    );
    assert_clean("FileTokenStore", &format!("{:?}", h.store));
    let cached = h.store.load("primary").await.unwrap().unwrap();
    assert_clean("CachedToken", &format!("{cached:?}"));
    assert_clean(
        "CachedToken literal",
        &format!(
            "{:?}",
            CachedToken {
                access_token: Some(ACCESS.into()),
                refresh_token: ROTATED.into(),
                expires_at: None,
            }
        ),
    );
}

#[tokio::test]
async fn errors_echoing_secrets_are_redacted() {
    let echo = serde_json::json!({
        "error": "invalid_request",
        "error_description": format!("refresh token {CONFIGURED_REFRESH} with secret {CLIENT_SECRET} rejected"),
    });
    let h = Harness::start(Reply::json(400, &echo.to_string())).await;
    let manager = h.manager("primary", oidc_creds());

    let err = manager.access_token().await.unwrap_err();

    assert!(matches!(err, RefreshError::Transient { .. }));
    assert!(err.to_string().contains("invalid_request"));
    assert_clean("RefreshError Display", &err.to_string());
    assert_clean("RefreshError Debug", &format!("{err:?}"));
    assert_clean("TokenManager after failure", &format!("{manager:?}"));
    assert_clean(
        "RefreshStats after failure",
        &format!("{:?}", manager.stats()),
    );
}

#[tokio::test]
async fn denied_error_shows_only_the_code() {
    let body = serde_json::json!({
        "error": "invalid_grant",
        "error_description": format!("Invalid refresh token provided: {CONFIGURED_REFRESH}"),
    });
    let h = Harness::start(Reply::json(400, &body.to_string())).await;
    let manager = h.manager("primary", oidc_creds());

    let err = manager.access_token().await.unwrap_err();

    assert!(err.is_permanent());
    assert!(err.to_string().contains("invalid_grant"));
    assert_clean("Denied Display", &err.to_string());
    assert_clean("Denied Debug", &format!("{err:?}"));
}
