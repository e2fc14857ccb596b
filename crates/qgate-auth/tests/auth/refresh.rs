//! One manager, one caller: the two refresh dialects, denial, and failure classification.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use qgate_auth::{RefreshError, RefreshOptions};

use crate::mock::Reply;
use crate::{CLIENT_SECRET, CONFIGURED_REFRESH, Harness, kiro_creds, oidc_creds};

#[tokio::test]
async fn oidc_refresh_sends_the_sdk_request_and_caches_the_token() {
    let h = Harness::start(Reply::token("aoa-first", Some(3600), None)).await;
    let manager = h.manager("primary", oidc_creds());

    let token = manager.access_token().await.unwrap();
    assert_eq!(token.expose(), "aoa-first");
    // Served from memory the second time.
    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-first");
    assert_eq!(h.mock.hits(), 1);

    let request = &h.mock.recorded()[0];
    assert_eq!(request.path, "/token");
    assert_eq!(
        request.body,
        serde_json::json!({
            "grantType": "refresh_token",
            "refreshToken": CONFIGURED_REFRESH,
            "clientId": "client-id-0001",
            "clientSecret": CLIENT_SECRET,
        })
    );
    let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "application/json");
    assert!(header("user-agent").starts_with("aws-sdk-rust/"));
    assert!(header("x-amz-user-agent").contains("api/ssooidc"));
    assert!(header("x-amz-user-agent").contains("app/AmazonQ-For-CLI"));
    assert_eq!(header("amz-sdk-request"), "attempt=1; max=3");
    assert!(uuid::Uuid::parse_str(&header("amz-sdk-invocation-id")).is_ok());

    let expires_at = manager.expires_at().unwrap();
    assert!(expires_at > Timestamp::now() + Duration::from_secs(3000));
    assert_eq!(h.cached_refresh_token("primary"), CONFIGURED_REFRESH);
    assert_eq!(manager.stats().ok, 1);
}

#[tokio::test]
async fn every_refresh_gets_a_fresh_invocation_id() {
    let h = Harness::start(Reply::token("aoa", Some(3600), None)).await;
    let manager = h.manager("primary", oidc_creds());
    let first = manager.access_token().await.unwrap();
    manager.force_refresh(&first).await.unwrap();

    let ids: Vec<String> = h
        .mock
        .recorded()
        .iter()
        .map(|r| {
            r.headers["amz-sdk-invocation-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn kiro_refresh_sends_only_the_refresh_token_and_exposes_profile_arn() {
    let arn = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";
    let body = serde_json::json!({"accessToken": "aoa-kiro", "expiresIn": 3600, "profileArn": arn});
    let h = Harness::start(Reply::json(200, &body.to_string())).await;
    let manager = h.manager("social", kiro_creds());

    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-kiro");

    let request = &h.mock.recorded()[0];
    assert_eq!(request.path, "/refreshToken");
    assert_eq!(
        request.body,
        serde_json::json!({ "refreshToken": CONFIGURED_REFRESH })
    );
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(manager.profile_arn().as_deref(), Some(arn));
}

#[tokio::test]
async fn missing_expires_in_uses_the_default_lifetime() {
    let h = Harness::start(Reply::token("aoa", None, None)).await;
    let opts = RefreshOptions {
        default_expires_in: Duration::from_secs(1234),
        ..RefreshOptions::default()
    };
    let manager = h.manager_with("primary", oidc_creds(), opts);
    manager.access_token().await.unwrap();

    let lifetime = manager
        .expires_at()
        .unwrap()
        .duration_since(Timestamp::now());
    assert!(
        lifetime.as_secs() > 1200 && lifetime.as_secs() <= 1234,
        "{lifetime:?}"
    );
}

#[tokio::test]
async fn invalid_grant_is_denied_sticky_and_causes_no_retry_storm() {
    let h = Harness::start(Reply::invalid_grant()).await;
    let manager = h.manager("primary", oidc_creds());

    let err = manager.access_token().await.unwrap_err();
    assert_eq!(
        err,
        RefreshError::Denied {
            code: "invalid_grant".into()
        }
    );
    assert!(err.is_permanent());
    assert!(manager.is_denied());

    let calls = (0..20).map(|_| {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token().await })
    });
    for call in calls {
        assert!(call.await.unwrap().unwrap_err().is_permanent());
    }
    assert!(
        manager
            .refresh_if_expiring_within(Duration::ZERO)
            .await
            .is_err()
    );
    assert_eq!(h.mock.hits(), 1, "no retries after a permanent refusal");

    let stats = manager.stats();
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.last_error_code.as_deref(), Some("invalid_grant"));

    // New credentials lift the denial.
    h.mock
        .set_fallback(Reply::token("aoa-after-relogin", Some(3600), None));
    manager.set_credentials(kiro_creds());
    assert!(!manager.is_denied());
    assert_eq!(
        manager.access_token().await.unwrap().expose(),
        "aoa-after-relogin"
    );
    assert_eq!(manager.stats().last_error_code, None);
}

#[tokio::test]
async fn server_errors_throttling_and_gateway_pages_are_transient() {
    let cases = [
        (Reply::json(500, r#"{"message":"internal"}"#), Some(500)),
        (Reply::json(429, r#"{"error":"slow_down"}"#), Some(429)),
        (
            Reply::html(503, "<html>Service Unavailable</html>"),
            Some(503),
        ),
        (
            Reply::html(
                502,
                "<html><h1>502 Bad Gateway</h1>invalid_grant? invalid request</html>",
            ),
            Some(502),
        ),
        (Reply::html(400, "<html>invalid_grant</html>"), Some(400)),
        (Reply::json(200, "not json"), Some(200)),
        (Reply::json(200, r#"{"expiresIn":3600}"#), Some(200)),
    ];
    for (reply, expected_status) in cases {
        let h = Harness::start(reply.clone()).await;
        let manager = h.manager("primary", oidc_creds());
        let err = manager.access_token().await.unwrap_err();
        match &err {
            RefreshError::Transient { status, .. } => {
                assert_eq!(*status, expected_status, "{reply:?}");
            }
            RefreshError::Denied { .. } => panic!("{reply:?} classified as denied"),
        }
        assert!(!manager.is_denied());
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_transient() {
    let h =
        Harness::start(Reply::token("aoa", Some(3600), None).after(Duration::from_secs(5))).await;
    let opts = RefreshOptions {
        timeout: Duration::from_millis(100),
        ..RefreshOptions::default()
    };
    let manager = h.manager_with("slow", oidc_creds(), opts);
    let err = manager.access_token().await.unwrap_err();
    assert!(
        matches!(err, RefreshError::Transient { status: None, .. }),
        "{err:?}"
    );

    // A port nobody listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let manager = qgate_auth::TokenManager::new(
        "unreachable",
        oidc_creds(),
        Arc::new(qgate_auth::AuthEndpoints {
            oidc_token_url: format!("http://{closed}/token"),
            kiro_refresh_url: format!("http://{closed}/refreshToken"),
        }),
        reqwest::Client::builder().no_proxy().build().unwrap(),
        h.store.clone(),
        RefreshOptions::default(),
    );
    let err = manager.access_token().await.unwrap_err();
    assert!(
        matches!(err, RefreshError::Transient { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "network");
}

#[tokio::test]
async fn transient_failure_inside_the_skew_keeps_serving_the_unexpired_token() {
    let h = Harness::start(Reply::json(503, r#"{"message":"down"}"#)).await;
    // Valid for 2 more minutes: inside the 5-minute skew, so a refresh is attempted.
    h.seed_cache("primary", "aoa-still-valid", "aor", 120).await;
    let opts = RefreshOptions {
        failure_backoff: Duration::ZERO,
        ..RefreshOptions::default()
    };
    let manager = h.manager_with("primary", oidc_creds(), opts);
    manager.load_cached().await.unwrap();

    assert_eq!(
        manager.access_token().await.unwrap().expose(),
        "aoa-still-valid"
    );
    assert_eq!(h.mock.hits(), 1);
    // The refresher's call reports the real outcome.
    let err = manager
        .refresh_if_expiring_within(Duration::from_secs(600))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "server_error");
    assert_eq!(h.mock.hits(), 2);
}

#[tokio::test]
async fn failures_back_off_before_trying_again() {
    let h = Harness::start(Reply::json(500, "{}")).await;
    let manager = h.manager("primary", oidc_creds());
    assert!(manager.access_token().await.is_err());
    assert!(manager.access_token().await.is_err());
    assert_eq!(
        h.mock.hits(),
        1,
        "second call within the backoff shares the failure"
    );

    let eager = h.manager_with(
        "eager",
        oidc_creds(),
        RefreshOptions {
            failure_backoff: Duration::ZERO,
            ..RefreshOptions::default()
        },
    );
    assert!(eager.access_token().await.is_err());
    assert!(eager.access_token().await.is_err());
    assert_eq!(h.mock.hits(), 3);
}
