//! The admin API through HTTP: who may call what, the seed's endpoints and fields, health,
//! refresh, probes (manual and background), and the OpenAPI document against the routes.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

pub const ADMIN: &str = "admin-key-for-tests";

/// An admin call: `(status, JSON body)`; `key` is sent as a bearer token when given.
pub async fn admin(
    env: &TestEnv,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = env.http.request(method, env.url(path));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn admin_get(env: &TestEnv, path: &str) -> Value {
    let (s, v) = admin(env, reqwest::Method::GET, path, Some(ADMIN), None).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

pub async fn admin_post(env: &TestEnv, path: &str, body: Option<Value>) -> (u16, Value) {
    admin(env, reqwest::Method::POST, path, Some(ADMIN), body).await
}

/// Polls `check` every 50 ms, at most `tries` times.
pub async fn eventually<F, Fut>(tries: usize, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn with_admin_key(n: usize) -> Opts {
    Opts::accounts(n).env("ADMIN_API_KEY", ADMIN)
}

#[tokio::test]
async fn without_an_admin_key_reads_are_open_and_changes_are_refused() {
    let env = TestEnv::start(Opts::accounts(1)).await;
    let (s, v) = admin(&env, reqwest::Method::GET, "/accounts/stats", None, None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin(
        &env,
        reqwest::Method::POST,
        "/accounts/sim-1/disable",
        None,
        None,
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "permission_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ADMIN_API_KEY"),
        "{v}"
    );
    let (s, _) = admin(&env, reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(s, 200, "metrics stay open without an admin key");
}

#[tokio::test]
async fn with_an_admin_key_every_admin_route_needs_it() {
    let env = TestEnv::start(with_admin_key(1)).await;
    for path in [
        "/accounts/stats",
        "/accounts/sim-1",
        "/admin/keys",
        "/admin/openapi.json",
    ] {
        let (s, v) = admin(&env, reqwest::Method::GET, path, None, None).await;
        assert_eq!(s, 401, "{path}: {v}");
        assert_eq!(v["error"]["type"], "authentication_error");
        let (s, _) = admin(&env, reqwest::Method::GET, path, Some("wrong"), None).await;
        assert_eq!(s, 401, "{path} with a wrong key");
        let (s, _) = admin(&env, reqwest::Method::GET, path, Some(ADMIN), None).await;
        assert_eq!(s, 200, "{path} with the key");
    }
    let r = env
        .http
        .get(env.url("/accounts/stats"))
        .header("x-admin-key", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "x-admin-key works too");
    let (s, _) = admin(
        &env,
        reqwest::Method::POST,
        "/accounts/sim-1/reset",
        None,
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = admin(&env, reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(s, 401, "metrics need the admin key once one is set");
    let (s, _) = admin(&env, reqwest::Method::GET, "/metrics", Some(ADMIN), None).await;
    assert_eq!(s, 200);
    for public in ["/", "/health"] {
        let (s, _) = admin(&env, reqwest::Method::GET, public, None, None).await;
        assert_eq!(s, 200, "{public} is a public probe");
    }
}

#[tokio::test]
async fn metrics_public_opens_only_metrics() {
    let env = TestEnv::start(with_admin_key(1).env("METRICS_PUBLIC", "true")).await;
    let (s, _) = admin(&env, reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(s, 200);
    let (s, _) = admin(&env, reqwest::Method::GET, "/accounts/stats", None, None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn seed_endpoints_answer_the_seed_fields_and_more() {
    let env = TestEnv::start(with_admin_key(2)).await;
    let (s, _) = env.message(&hello("warm up")).await;
    assert_eq!(s, 200);
    let stats = admin_get(&env, "/accounts/stats").await;
    for field in [
        "total_accounts",
        "available_accounts",
        "total_requests",
        "total_errors",
        "total_successes",
        "strategy",
        "circuit_breaker_enabled",
        "accounts",
    ] {
        assert!(stats.get(field).is_some(), "stats.{field}: {stats}");
    }
    assert_eq!(stats["total_accounts"], 2);
    assert_eq!(stats["total_successes"], 1);
    let a = admin_get(&env, "/accounts/sim-1").await;
    for field in [
        "id",
        "enabled",
        "weight",
        "request_count",
        "error_count",
        "success_count",
        "last_used_at",
        "last_error_at",
        "last_success_at",
        "token_expires_at",
        "circuit_breaker_open",
        "is_available",
        "state",
        "state_reason",
        "state_until",
        "breaker",
        "in_flight",
        "latency_ewma_ms",
        "last_error_class",
        "token",
    ] {
        assert!(a.get(field).is_some(), "account.{field}: {a}");
    }
    assert_eq!(a["state"], "active");
    assert_eq!(a["breaker"]["phase"], "closed");

    let (s, v) = admin_post(&env, "/accounts/sim-1/disable", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["message"], "Account 'sim-1' disabled");
    assert_eq!(v["account"]["state"], "disabled");
    assert_eq!(v["account"]["enabled"], false);
    for _ in 0..3 {
        let (s, _) = env.message(&hello("only sim-2 now")).await;
        assert_eq!(s, 200);
    }
    assert_eq!(count(&env.sim_stats().await, "sim-1", "chat_requests"), 1);
    let (s, v) = admin_post(&env, "/accounts/sim-1/enable", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("Account 'sim-1' enabled"))
    );
    let (s, v) = admin_post(&env, "/accounts/sim-1/reset", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("Account 'sim-1' reset"))
    );

    let (s, v) = admin(
        &env,
        reqwest::Method::GET,
        "/accounts/nope",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["type"], "not_found_error");
    let (s, _) = admin_post(&env, "/accounts/nope/enable", None).await;
    assert_eq!(s, 404);
    for bad in ["bad..id", "a%2Fb", "x%0Ay", "-lead", "%2E%2Ehidden"] {
        let (s, v) = admin(
            &env,
            reqwest::Method::GET,
            &format!("/accounts/{bad}"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn health_is_degraded_then_unhealthy_with_503() {
    let env = TestEnv::start(with_admin_key(2)).await;
    let (s, v) = env.get("/health").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("healthy")));
    admin_post(&env, "/accounts/sim-2/disable", None).await;
    let (_, v) = env.get("/health").await;
    assert_eq!(
        v["status"], "healthy",
        "a disabled account is not a degradation: {v}"
    );
    admin_post(&env, "/accounts/sim-2/enable", None).await;
    env.fault(json!({"account": "sim-1", "fault": "suspended", "count": 1}))
        .await;
    let (s, _) = env.message(&hello("fails over")).await;
    assert_eq!(s, 200);
    let (s, v) = env.get("/health").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("degraded")), "{v}");
    assert_eq!(v["states"]["suspended"], 1);
    assert_eq!(v["accounts"]["available"], 1);
    env.fault(json!({"account": "sim-2", "fault": "suspended", "count": 1}))
        .await;
    let (s, _) = env.message(&hello("nobody left")).await;
    assert_ne!(s, 200);
    let (s, v) = env.get("/health").await;
    assert_eq!((s, v["status"].as_str()), (503, Some("unhealthy")), "{v}");
    assert_eq!(v["states"]["suspended"], 2);
}

#[tokio::test]
async fn refresh_forces_a_refresh_and_lifts_a_refresh_denial() {
    let env = TestEnv::start(with_admin_key(1)).await;
    let (s, _) = env.message(&hello("warm up")).await;
    assert_eq!(s, 200);
    let before = count(&env.sim_stats().await, "sim-1", "token_refreshes");
    let (s, v) = admin_post(&env, "/accounts/sim-1/refresh", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        count(&env.sim_stats().await, "sim-1", "token_refreshes"),
        before + 1
    );

    env.fault(json!({"account": "sim-1", "fault": "refresh_invalid_grant", "count": 1}))
        .await;
    let (s, v) = admin_post(&env, "/accounts/sim-1/refresh", None).await;
    assert_eq!(s, 502, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{v}"
    );
    assert_eq!(
        admin_get(&env, "/accounts/sim-1").await["state"],
        "refresh_denied"
    );
    let (s, v) = admin_post(&env, "/accounts/sim-1/refresh", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["transitions"], json!(["refresh_denied -> active"]));
    assert_eq!(v["account"]["state"], "active");
    let (s, _) = env.message(&hello("back in service")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn probe_closes_an_open_breaker() {
    let env = TestEnv::start(with_admin_key(1).env("CIRCUIT_BREAKER_ERROR_THRESHOLD", "1")).await;
    env.fault(json!({"account": "sim-1", "fault": "unavailable", "count": 1}))
        .await;
    let (s, _) = env.message(&hello("breaks")).await;
    assert_ne!(s, 200);
    let a = admin_get(&env, "/accounts/sim-1").await;
    assert_eq!(a["breaker"]["phase"], "open", "{a}");
    assert_eq!(a["circuit_breaker_open"], true);
    let (s, v) = admin_post(&env, "/accounts/sim-1/probe", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["result"], "success");
    assert_eq!(v["breaker"], "closed");
    assert_eq!(v["usage"]["usage_limit"], 1000.0);
    assert_eq!(v["transitions"], json!(["breaker_open -> breaker_closed"]));
    assert_eq!(count(&env.sim_stats().await, "sim-1", "usage_checks"), 1);
    let (s, _) = env.message(&hello("served again")).await;
    assert_eq!(s, 200);

    env.fault(json!({"account": "sim-1", "fault": "suspended", "count": 1}))
        .await;
    let (_, v) = admin_post(&env, "/accounts/sim-1/probe", None).await;
    assert_eq!(
        (v["ok"].as_bool(), v["state"].as_str()),
        (Some(false), Some("suspended")),
        "{v}"
    );
}

#[tokio::test]
async fn background_checks_end_a_throttle_and_skip_suspended_accounts() {
    let env = TestEnv::start(
        with_admin_key(3)
            .env("HEALTH_CHECK_INTERVAL", "0.1")
            .env("LOAD_BALANCE_STRATEGY", "round_robin")
            .env("STICKY_SESSIONS", "false"),
    )
    .await;
    env.fault(json!({"account": "sim-1", "fault": "throttle", "count": 1}))
        .await;
    env.fault(json!({"account": "sim-3", "fault": "suspended", "count": 1}))
        .await;
    for _ in 0..3 {
        let (s, _) = env.message(&hello("spread")).await;
        assert_eq!(s, 200);
    }
    let recovered = eventually(100, || async {
        admin_get(&env, "/accounts/sim-1").await["state"] == "active"
    })
    .await;
    assert!(recovered, "the health check ended the 30 s cooldown");
    let stats = env.sim_stats().await;
    assert!(count(&stats, "sim-1", "usage_checks") >= 1);
    assert_eq!(
        count(&stats, "sim-3", "usage_checks"),
        0,
        "suspended accounts are never probed"
    );
    assert_eq!(
        admin_get(&env, "/accounts/sim-3").await["state"],
        "suspended"
    );
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let env = TestEnv::start(with_admin_key(1)).await;
    let doc = admin_get(&env, "/admin/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/health",
        "/metrics",
        "/accounts/stats",
        "/accounts",
        "/accounts/{id}",
        "/accounts/{id}/enable",
        "/accounts/{id}/disable",
        "/accounts/{id}/reset",
        "/accounts/{id}/refresh",
        "/accounts/{id}/probe",
        "/admin/reload",
        "/admin/keys",
        "/admin/openapi.json",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }
    let mut calls = 0;
    for (path, ops) in paths {
        // Every documented operation reaches a handler: not the router's 404 fallback
        // and not 405. An unknown account id keeps the calls harmless.
        let url = path.replace("{id}", "no-such-account");
        for method in ops.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (s, v) = admin(&env, m, &url, Some(ADMIN), Some(json!({}))).await;
            calls += 1;
            assert_ne!(s, 405, "{method} {path}");
            let fallback = v["error"]["message"] == "Not found: no such endpoint.";
            assert!(!fallback, "{method} {path} is not routed: {v}");
        }
    }
    assert!(calls >= 15, "{calls}");
    let (s, _) = admin(
        &env,
        reqwest::Method::GET,
        "/admin/nothing",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 404);
}
