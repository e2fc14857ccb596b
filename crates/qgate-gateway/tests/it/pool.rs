//! The pool through the real gateway: failover for every fault kind, the right status when
//! nothing is left, client errors never penalising an account, one refresh per account
//! under a burst, state that survives restarts, and exact weighted spreading.

use crate::support::*;
use serde_json::{Value, json};

/// Sends `n` sequential requests; returns the statuses.
async fn drive(env: &TestEnv, n: usize, stream: bool) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let body = hello(&format!("request {i} [[sim words=3]]"));
        let status = if stream {
            let (s, events) = env.stream(&body).await;
            let errored = events
                .iter()
                .any(|(n, _)| n == "error" || n == "http_error");
            if errored { 599 } else { s }
        } else {
            env.message(&body).await.0
        };
        out.push(status);
    }
    out
}

/// One account fails with `kind` from the start; 100 requests see no error and, once the
/// gateway has learnt, the bad account gets no more traffic.
async fn one_bad_account(kind: &str, extra: Vec<(&'static str, &str)>, stream: bool) {
    let mut opts = Opts::accounts(3)
        .env("CIRCUIT_BREAKER_ERROR_THRESHOLD", "3")
        .env("LOAD_BALANCE_STRATEGY", "round_robin");
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    let env = TestEnv::start(opts).await;
    env.fault(json!({"account": "sim-2", "fault": kind, "delay_ms": 3000}))
        .await;
    let first = drive(&env, 50, stream).await;
    let mid = env.sim_stats().await;
    let second = drive(&env, 50, stream).await;
    let end = env.sim_stats().await;
    let failures: Vec<&u16> = first.iter().chain(&second).filter(|s| **s != 200).collect();
    assert!(
        failures.is_empty(),
        "{kind}: client-visible failures {failures:?}"
    );
    let bad_mid = count(&mid, "sim-2", "chat_requests");
    let bad_end = count(&end, "sim-2", "chat_requests");
    assert_eq!(
        bad_end, bad_mid,
        "{kind}: sim-2 still receives chat traffic"
    );
    let good = count(&end, "sim-1", "chat_ok") + count(&end, "sim-3", "chat_ok");
    assert_eq!(good, 100, "{kind}: the healthy accounts served everything");
}

macro_rules! fault_tests {
    ($($name:ident: $kind:literal, $stream:expr, [$($k:literal = $v:literal),*];)*) => {$(
        #[tokio::test]
        async fn $name() {
            one_bad_account($kind, vec![$(($k, $v)),*], $stream).await;
        }
    )*};
}

fault_tests! {
    failover_throttle: "throttle", true, [];
    failover_monthly_quota: "monthly_quota", true, [];
    failover_quota_402: "quota_402", false, [];
    failover_suspended: "suspended", true, [];
    failover_expired_token: "expired_token", false, [];
    failover_invalid_model: "invalid_model", true, [];
    failover_overloaded: "overloaded", false, [];
    failover_unavailable: "unavailable", true, [];
    failover_slow_first_byte: "slow_first_byte", true, ["UPSTREAM_FIRST_EVENT_TIMEOUT" = "300ms"];
    failover_midstream_exception: "midstream_exception", false, [];
    failover_midstream_reset: "midstream_reset", false, [];
    failover_bad_crc: "bad_crc", false, [];
    failover_refresh_invalid_grant: "refresh_invalid_grant", true, [];
    failover_refresh_5xx: "refresh_5xx", false, [];
}

#[tokio::test]
async fn all_accounts_throttled_is_a_429_with_retry_after() {
    let env = TestEnv::start(Opts::accounts(2)).await;
    for a in ["sim-1", "sim-2"] {
        env.fault(json!({"account": a, "fault": "throttle"})).await;
    }
    let r = env.post("/v1/messages", &hello("x")).await;
    assert_eq!(r.status(), 429);
    let ra: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&ra), "retry-after {ra}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    // Throttled accounts are not tried again while they cool down: still 429, no new calls.
    let before = env.sim_stats().await;
    let (s, _) = env.message(&hello("again")).await;
    assert_eq!(s, 429);
    let after = env.sim_stats().await;
    for a in ["sim-1", "sim-2"] {
        assert_eq!(
            count(&before, a, "chat_requests"),
            count(&after, a, "chat_requests")
        );
    }
}

#[tokio::test]
async fn all_accounts_failing_is_a_529_with_retry_after() {
    let env = TestEnv::start(Opts::accounts(2)).await;
    for a in ["sim-1", "sim-2"] {
        env.fault(json!({"account": a, "fault": "unavailable"}))
            .await;
    }
    let r = env.post("/v1/messages", &hello("x")).await;
    assert_eq!(r.status(), 529);
    assert!(r.headers().get("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn client_errors_never_open_a_breaker() {
    let env = TestEnv::start(Opts::accounts(1).env("CIRCUIT_BREAKER_ERROR_THRESHOLD", "2")).await;
    // Over the service's size limit: the upstream answers 400 "Input is too long".
    let huge = "lorem ipsum ".repeat(90_000);
    for _ in 0..6 {
        let (s, v) = env.message(&hello(&huge)).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("prompt is too long: "), "{msg}");
        assert!(msg.ends_with(" maximum"), "{msg}");
    }
    let (s, v) = env.get("/health").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "healthy");
    let (s, _) = env.message(&hello("still fine")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_burst_after_expiry_refreshes_each_account_once() {
    let env = TestEnv::start(Opts::accounts(3)).await;
    // Warm every account so each has a token, then expire them all.
    drive(&env, 6, false).await;
    let before = env.sim_stats().await;
    env.sim.expire_access_tokens();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let http = env.http.clone();
        let url = env.url("/v1/messages");
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&hello(&format!("burst {i} [[sim words=2]]")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let after = env.sim_stats().await;
    for a in ["sim-1", "sim-2", "sim-3"] {
        let refreshes = count(&after, a, "token_refreshes") - count(&before, a, "token_refreshes");
        assert_eq!(refreshes, 1, "{a}: {refreshes} refreshes");
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_restart() {
    let mut env = TestEnv::start(Opts::accounts(1).sim(qgate_sim::SimConfig {
        accounts: 1,
        rotate_refresh_tokens: true,
        ..Default::default()
    }))
    .await;
    let (s, _) = env.message(&hello("first")).await;
    assert_eq!(s, 200);
    env.stop_gateway().await;
    // The configured refresh token was rotated away by the first refresh; only the
    // cached one works now.
    env.sim.expire_access_tokens();
    env.start_gateway().await;
    let (s, v) = env.message(&hello("after restart")).await;
    assert_eq!(s, 200, "{v}");
    let stats = env.sim_stats().await;
    assert_eq!(count(&stats, "sim-1", "refresh_failures"), 0);
    assert_eq!(count(&stats, "sim-1", "token_refreshes"), 2);
}

#[tokio::test]
async fn a_suspended_account_stays_out_after_a_restart() {
    let mut env =
        TestEnv::start(Opts::accounts(2).env("LOAD_BALANCE_STRATEGY", "round_robin")).await;
    env.fault(json!({"account": "sim-2", "fault": "suspended"}))
        .await;
    drive(&env, 6, false).await;
    let (_, h) = env.get("/health").await;
    assert_eq!(h["states"]["suspended"], 1, "{h}");
    env.stop_gateway().await;
    env.sim.clear_faults();
    env.start_gateway().await;
    let before = env.sim_stats().await;
    let statuses = drive(&env, 20, false).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let after = env.sim_stats().await;
    assert_eq!(
        count(&before, "sim-2", "chat_requests"),
        count(&after, "sim-2", "chat_requests"),
        "a suspended account got traffic after the restart"
    );
    let (_, h) = env.get("/health").await;
    assert_eq!(h["states"]["suspended"], 1, "{h}");
}

#[tokio::test]
async fn weighted_round_robin_spreads_exactly_by_weight() {
    let mut opts = Opts::accounts(3).env("LOAD_BALANCE_STRATEGY", "weighted_round_robin");
    for (i, w) in [(1, "10"), (2, "5"), (3, "3")] {
        let var: &'static str = match i {
            1 => "AMAZONQ_ACCOUNT_1_WEIGHT",
            2 => "AMAZONQ_ACCOUNT_2_WEIGHT",
            _ => "AMAZONQ_ACCOUNT_3_WEIGHT",
        };
        opts = opts.env(var, w);
    }
    let env = TestEnv::start(opts).await;
    let statuses = drive(&env, 180, false).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let stats = env.sim_stats().await;
    assert_eq!(count(&stats, "sim-1", "chat_requests"), 100);
    assert_eq!(count(&stats, "sim-2", "chat_requests"), 50);
    assert_eq!(count(&stats, "sim-3", "chat_requests"), 30);
}
