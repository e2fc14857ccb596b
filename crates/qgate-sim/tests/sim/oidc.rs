//! Token services: SSO-OIDC refresh and device-code grants, Kiro social refresh.

use super::*;
use qgate_sim::credentials;
use std::time::Duration;

fn refresh_body(refresh_token: &str, client_id: &str, client_secret: &str) -> Value {
    json!({"grantType": "refresh_token", "refreshToken": refresh_token,
           "clientId": client_id, "clientSecret": client_secret})
}

fn account_refresh(index: usize) -> Value {
    let c = credentials(index);
    refresh_body(&c.refresh_token, &c.client_id, &c.client_secret)
}

#[tokio::test]
async fn refresh_returns_a_bearer_token_that_chats() {
    let sim = start_default().await;
    let (status, body) = sim.post_json("/token", &account_refresh(2)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 3600);
    assert!(
        body.get("refreshToken").is_none(),
        "no rotation, no new refresh token: {body}"
    );
    let token = body["accessToken"].as_str().unwrap();
    let reply = sim.chat(Dialect::Kiro, token, &request("hello")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(sim.stats().await.account("sim-2").chat_requests, 1);
    assert_eq!(sim.stats().await.account("sim-2").token_refreshes, 1);
}

#[tokio::test]
async fn expires_in_follows_the_configured_ttl() {
    let sim = start(SimConfig {
        token_ttl: Duration::from_secs(120),
        ..SimConfig::default()
    })
    .await;
    let (_, body) = sim.post_json("/token", &account_refresh(1)).await;
    assert_eq!(body["expiresIn"], 120);
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let sim = start_default().await;
    let c = credentials(1);
    let response = sim
        .client
        .post(sim.url("/token"))
        .json(&refresh_body(
            "sim-refresh-99",
            &c.client_id,
            &c.client_secret,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "InvalidGrantException"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token provided"})
    );
    assert_eq!(sim.stats().await.account("sim-1").refresh_failures, 1);
}

#[tokio::test]
async fn wrong_client_is_invalid_client() {
    let sim = start_default().await;
    let c = credentials(1);
    for body in [
        refresh_body(&c.refresh_token, &c.client_id, "wrong-secret"),
        refresh_body(&c.refresh_token, "sim-client-2", "sim-secret-2"),
        refresh_body("garbage", "nobody", "nothing"),
    ] {
        let (status, answer) = sim.post_json("/token", &body).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            answer,
            json!({"error": "invalid_client", "error_description": "Invalid client"})
        );
    }
}

#[tokio::test]
async fn missing_fields_or_bad_json_are_invalid_request() {
    let sim = start_default().await;
    let c = credentials(1);
    for body in [
        json!({"grantType": "refresh_token", "clientId": c.client_id, "clientSecret": c.client_secret}),
        json!({"grantType": "refresh_token", "refreshToken": c.refresh_token, "clientId": c.client_id}),
        json!({"refreshToken": c.refresh_token, "clientId": c.client_id, "clientSecret": c.client_secret}),
        json!({"grantType": "refresh_token", "refreshToken": "", "clientId": c.client_id, "clientSecret": c.client_secret}),
    ] {
        let (status, answer) = sim.post_json("/token", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_request", "{body}");
    }
    let response = sim
        .client
        .post(sim.url("/token"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_request");

    let (status, answer) = sim
        .post_json(
            "/token",
            &json!({"grantType": "password", "clientId": "x", "clientSecret": "y"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn rotation_issues_a_new_refresh_token_and_kills_the_old_one() {
    let sim = start(SimConfig {
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await;
    let c = credentials(3);
    let (status, first) = sim.post_json("/token", &account_refresh(3)).await;
    assert_eq!(status, 200);
    let rotated = first["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(rotated, c.refresh_token);

    let (status, old) = sim.post_json("/token", &account_refresh(3)).await;
    assert_eq!(
        (status, old["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, second) = sim
        .post_json(
            "/token",
            &refresh_body(&rotated, &c.client_id, &c.client_secret),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refreshToken"].as_str().unwrap(), rotated);
    let stats = sim.stats().await.account("sim-3");
    assert_eq!((stats.token_refreshes, stats.refresh_failures), (2, 1));
}

#[tokio::test]
async fn revoked_refresh_tokens_stop_working() {
    let sim = start_default().await;
    sim.token(2).await;
    let (status, _) = sim
        .post_json("/_sim/revoke", &json!({"account": "sim-2"}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = sim.post_json("/token", &account_refresh(2)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Other accounts are unaffected; the handle does the same as the endpoint.
    sim.token(1).await;
    sim.handle.revoke_refresh_tokens("sim-1");
    let (status, _) = sim.post_json("/token", &account_refresh(1)).await;
    assert_eq!(status, 400);
    let (status, _) = sim
        .post_json("/_sim/revoke", &json!({"account": "sim-9"}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn kiro_refresh_returns_the_refresh_token_and_profile() {
    let sim = start_default().await;
    let c = credentials(2);
    let (status, body) = sim
        .post_json("/refreshToken", &json!({"refreshToken": c.refresh_token}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refreshToken"], c.refresh_token.as_str());
    assert_eq!(
        body["profileArn"],
        "arn:aws:codewhisperer:us-east-1:000000000000:profile/SIM2"
    );
    assert_eq!(body["expiresIn"], 3600);
    let reply = sim
        .chat(
            Dialect::Kiro,
            body["accessToken"].as_str().unwrap(),
            &request("hi"),
        )
        .await;
    assert_eq!(reply.status, 200);

    let (status, body) = sim
        .post_json("/refreshToken", &json!({"refreshToken": "nope"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token provided"})
    );
    let (status, body) = sim.post_json("/refreshToken", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn kiro_refresh_rotates_when_configured() {
    let sim = start(SimConfig {
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await;
    let c = credentials(1);
    let (_, body) = sim
        .post_json("/refreshToken", &json!({"refreshToken": c.refresh_token}))
        .await;
    let rotated = body["refreshToken"].as_str().unwrap();
    assert_ne!(rotated, c.refresh_token);
    let (status, _) = sim
        .post_json("/refreshToken", &json!({"refreshToken": c.refresh_token}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = sim
        .post_json("/refreshToken", &json!({"refreshToken": rotated}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn device_flow_creates_a_new_account() {
    let sim = start_default().await;
    let (status, client) = sim
        .post_json(
            "/client/register",
            &json!({"clientName": "Amazon Q Developer for command line", "clientType": "public",
                    "scopes": ["codewhisperer:completions", "codewhisperer:conversations"]}),
        )
        .await;
    assert_eq!(status, 200, "{client}");
    let (client_id, client_secret) = (
        client["clientId"].as_str().unwrap(),
        client["clientSecret"].as_str().unwrap(),
    );
    assert!(
        client["clientSecretExpiresAt"].as_u64().unwrap()
            > client["clientIdIssuedAt"].as_u64().unwrap()
    );

    let (status, device) = sim
        .post_json(
            "/device_authorization",
            &json!({"clientId": client_id, "clientSecret": client_secret, "startUrl": "https://view.awsapps.com/start"}),
        )
        .await;
    assert_eq!(status, 200, "{device}");
    assert_eq!(
        (device["interval"].as_u64(), device["expiresIn"].as_u64()),
        (Some(1), Some(600))
    );
    let user_code = device["userCode"].as_str().unwrap();
    assert!(
        device["verificationUriComplete"]
            .as_str()
            .unwrap()
            .contains(user_code)
    );

    let poll = json!({"grantType": "urn:ietf:params:oauth:grant-type:device_code", "clientId": client_id,
                      "clientSecret": client_secret, "deviceCode": device["deviceCode"]});
    let (status, pending) = sim.post_json("/token", &poll).await;
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (status, tokens) = sim.post_json("/token", &poll).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["refreshToken"], "sim-refresh-4");
    assert_eq!(tokens["tokenType"], "Bearer");
    // The code is used up.
    let (status, again) = sim.post_json("/token", &poll).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The new account chats and refreshes with its registered client.
    let reply = sim
        .chat(
            Dialect::QCli,
            tokens["accessToken"].as_str().unwrap(),
            &request("hi"),
        )
        .await;
    assert_eq!(reply.status, 200);
    let (status, _) = sim
        .post_json(
            "/token",
            &refresh_body("sim-refresh-4", client_id, client_secret),
        )
        .await;
    assert_eq!(status, 200);
    let stats = sim.stats().await;
    assert_eq!(stats.accounts.len(), 4);
    assert_eq!(stats.account("sim-4").chat_requests, 1);
}

#[tokio::test]
async fn device_flow_refuses_unknown_clients() {
    let sim = start_default().await;
    let (status, body) = sim
        .post_json(
            "/device_authorization",
            &json!({"clientId": "x", "clientSecret": "y", "startUrl": "u"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = sim
        .post_json("/client/register", &json!({"clientType": "public"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}
