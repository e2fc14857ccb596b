//! `GET /getUsageLimits`: bearer-checked, honours the account's faults, counts in stats.

use crate::*;
use qgate_sim::{FaultKind, FaultSpec};

async fn token(sim: &TestSim, i: usize) -> String {
    let c = qgate_sim::credentials(i);
    let v: Value = sim
        .client
        .post(format!("{}/token", sim.handle.base_url()))
        .json(
            &json!({"grantType": "refresh_token", "refreshToken": c.refresh_token,
            "clientId": c.client_id, "clientSecret": c.client_secret}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["accessToken"].as_str().unwrap().to_owned()
}

async fn usage(sim: &TestSim, bearer: Option<&str>) -> (u16, Value) {
    let mut r = sim.client.get(format!(
        "{}/getUsageLimits?origin=AI_EDITOR&resourceType=AGENTIC_REQUEST",
        sim.handle.base_url()
    ));
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn answers_usage_for_a_valid_token_and_counts_it() {
    let sim = start_default().await;
    let t = token(&sim, 1).await;
    let (status, v) = usage(&sim, Some(&t)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["usageBreakdownList"][0]["resourceType"],
        "AGENTIC_REQUEST"
    );
    assert_eq!(v["usageBreakdownList"][0]["usageLimit"], 1000);
    assert!(v["nextDateReset"].as_i64().unwrap() > 0);
    assert!(v["subscriptionInfo"]["subscriptionTitle"].is_string());
    assert_eq!(sim.handle.stats().account("sim-1").usage_checks, 1);
    assert_eq!(sim.handle.stats().account("sim-1").chat_requests, 0);
}

#[tokio::test]
async fn refuses_bad_and_expired_tokens() {
    let sim = start_default().await;
    let (status, v) = usage(&sim, None).await;
    assert_eq!(status, 403, "{v}");
    let t = token(&sim, 2).await;
    sim.handle.expire_access_tokens();
    let (status, v) = usage(&sim, Some(&t)).await;
    assert_eq!(status, 403);
    assert!(
        v["__type"]
            .as_str()
            .unwrap()
            .ends_with("ExpiredTokenException")
    );
}

#[tokio::test]
async fn honours_the_accounts_chat_faults() {
    let sim = start_default().await;
    let t = token(&sim, 1).await;
    for (kind, expected) in [
        (FaultKind::Throttle, 429),
        (FaultKind::Suspended, 403),
        (FaultKind::Unavailable, 503),
    ] {
        sim.handle.inject(FaultSpec::new("sim-1", kind).times(1));
        let (status, _) = usage(&sim, Some(&t)).await;
        assert_eq!(status, expected, "{kind:?}");
    }
    let (status, _) = usage(&sim, Some(&t)).await;
    assert_eq!(status, 200, "counted faults are used up");
    assert_eq!(sim.handle.stats().account("sim-1").usage_checks, 4);
}
