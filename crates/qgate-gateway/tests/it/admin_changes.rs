//! Changing the account set at run time: add, patch and drained remove under concurrent
//! load without a failed request, validation of new accounts, and persistence of every
//! change across a restart (credentials only in the 0600 state file).

use crate::admin::{ADMIN, admin, admin_get, admin_post};
use crate::support::*;
use qgate_sim::SimConfig;
use serde_json::{Value, json};

fn sim_with(accounts: usize) -> SimConfig {
    SimConfig {
        accounts,
        ..Default::default()
    }
}

fn new_account(i: usize) -> Value {
    let c = qgate_sim::credentials(i);
    json!({
        "id": c.account,
        "refresh_token": c.refresh_token,
        "client_id": c.client_id,
        "client_secret": c.client_secret,
        "weight": 5,
    })
}

fn ids(accounts: &Value) -> Vec<String> {
    let mut v: Vec<String> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn add_patch_and_remove_under_load_fail_no_request() {
    let env = TestEnv::start(
        Opts::accounts(2)
            .sim(sim_with(3))
            .env("ADMIN_API_KEY", ADMIN)
            .env("LOAD_BALANCE_STRATEGY", "least_used"),
    )
    .await;
    let env = std::sync::Arc::new(env);
    let mut workers = Vec::new();
    for w in 0..4 {
        let env = env.clone();
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..12 {
                let prompt = format!("load {w}-{i} [[sim words=6 delay_ms=15]]");
                if (w + i) % 2 == 0 {
                    let (s, events) = env.stream(&hello(&prompt)).await;
                    let done = events.last().is_some_and(|(n, _)| n == "message_stop");
                    if s != 200 || !done {
                        failures.push(format!("stream {s}: {events:?}"));
                    }
                } else {
                    let (s, v) = env.message(&hello(&prompt)).await;
                    if s != 200 {
                        failures.push(format!("message {s}: {v}"));
                    }
                }
            }
            failures
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (s, v) = admin_post(&env, "/accounts", Some(new_account(3))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["origin"], "api");
    let (s, v) = admin(
        &env,
        reqwest::Method::PATCH,
        "/accounts/sim-1",
        Some(ADMIN),
        Some(json!({"weight": 1, "max_concurrency": 2})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["weight"].as_u64(), v["max_concurrency"].as_u64()),
        (Some(1), Some(2))
    );
    let (s, v) = admin(
        &env,
        reqwest::Method::DELETE,
        "/accounts/sim-2",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["in_flight_at_removal"], 0, "drained before removal: {v}");
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(ids(&admin_get(&env, "/accounts").await), ["sim-1", "sim-3"]);
    let served_by_new = count(&env.sim_stats().await, "sim-3", "chat_requests");
    assert!(served_by_new > 0, "the added account took traffic");
    let before = count(&env.sim_stats().await, "sim-2", "chat_requests");
    for _ in 0..4 {
        assert_eq!(env.message(&hello("after removal")).await.0, 200);
    }
    assert_eq!(
        count(&env.sim_stats().await, "sim-2", "chat_requests"),
        before
    );
}

#[tokio::test]
async fn new_accounts_are_validated() {
    let env = TestEnv::start(Opts::accounts(1).env("ADMIN_API_KEY", ADMIN)).await;
    let (s, v) = admin_post(
        &env,
        "/accounts",
        Some(json!({"id": "x", "dialect": "gopher"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let problems = v["error"]["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "every problem is listed: {v}");
    let (s, v) = admin_post(&env, "/accounts", Some(new_account(1))).await;
    assert_eq!(s, 409, "{v}");
    let mut bad = new_account(2);
    bad["id"] = json!("../etc");
    let (s, _) = admin_post(&env, "/accounts", Some(bad)).await;
    assert_eq!(s, 400);
    let (s, _) = admin_post(&env, "/accounts", Some(json!({"id": "y", "surprise": 1}))).await;
    assert_eq!(s, 400, "unknown fields are refused");
    let (s, _) = admin(
        &env,
        reqwest::Method::PATCH,
        "/accounts/sim-1",
        Some(ADMIN),
        Some(json!({"weight": 0})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = admin(
        &env,
        reqwest::Method::DELETE,
        "/accounts/nope",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn admin_changes_survive_a_restart_and_credentials_stay_in_the_state_file() {
    let mut env = TestEnv::start(
        Opts::accounts(2)
            .sim(sim_with(3))
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    let (s, v) = admin_post(&env, "/accounts", Some(new_account(3))).await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = admin(
        &env,
        reqwest::Method::PATCH,
        "/accounts/sim-1",
        Some(ADMIN),
        Some(json!({"weight": 7, "rpm_limit": 100, "allowed_models": ["claude-sonnet-4.5"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = admin_post(&env, "/accounts/sim-1/disable", None).await;
    assert_eq!(s, 200);
    let (s, _) = admin(
        &env,
        reqwest::Method::DELETE,
        "/accounts/sim-2",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let listed = admin_get(&env, "/accounts").await.to_string();
    assert!(!listed.contains("sim-refresh-3") && !listed.contains("sim-secret-3"));

    env.stop_gateway().await;
    let state_file = env.dir.path().join("_qgate-state.json");
    let text = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        text.contains("sim-refresh-3"),
        "added credentials are persisted"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&state_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    env.start_gateway().await;

    let accounts = admin_get(&env, "/accounts").await;
    assert_eq!(ids(&accounts), ["sim-1", "sim-3"]);
    let sim1 = admin_get(&env, "/accounts/sim-1").await;
    assert_eq!(sim1["weight"], 7);
    assert_eq!(sim1["rpm_limit"], 100);
    assert_eq!(sim1["allowed_models"], json!(["claude-sonnet-4.5"]));
    assert_eq!(sim1["state"], "disabled");
    assert_eq!(admin_get(&env, "/accounts/sim-3").await["origin"], "api");
    let (s, v) = env.message(&hello("served by the added account")).await;
    assert_eq!(s, 200, "{v}");
    assert!(count(&env.sim_stats().await, "sim-3", "chat_ok") >= 1);
}
