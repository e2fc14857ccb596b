//! `/metrics` after a scripted scenario — successes, a throttled account, a breaker
//! opening, a refresh — with exact counter values; and the deploy/ dashboard and alert
//! rules checked against a real scrape.

use crate::admin::{ADMIN, admin_post};
use crate::support::*;
use serde_json::json;
use std::collections::BTreeSet;

pub async fn scrape(env: &TestEnv) -> String {
    env.http
        .get(env.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one exact series line (`name{labels}`), if present.
pub fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

async fn scenario() -> TestEnv {
    let env = TestEnv::start(
        Opts::accounts(2)
            .env("ADMIN_API_KEY", ADMIN)
            .env("LOAD_BALANCE_STRATEGY", "round_robin")
            .env("STICKY_SESSIONS", "false")
            .env("CIRCUIT_BREAKER_ERROR_THRESHOLD", "2")
            .env("MAX_ATTEMPTS", "2"),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(env.message(&hello("ok")).await.0, 200);
    }
    // Round robin is back at sim-1: its 429 fails over to sim-2.
    env.fault(json!({"account": "sim-1", "fault": "throttle", "count": 1}))
        .await;
    assert_eq!(env.message(&hello("throttled then served")).await.0, 200);
    // sim-1 cools down; two 503s from sim-2 open its breaker.
    env.fault(json!({"account": "sim-2", "fault": "unavailable", "count": 2}))
        .await;
    for _ in 0..2 {
        assert_ne!(env.message(&hello("fails")).await.0, 200);
    }
    let (s, v) = admin_post(&env, "/accounts/sim-1/refresh", None).await;
    assert_eq!(s, 200, "{v}");
    env
}

#[tokio::test]
async fn a_scripted_scenario_gives_exact_counters() {
    let env = scenario().await;
    let m = scrape(&env).await;
    let expect = [
        (
            r#"amazonq_requests_total{account_id="sim-1",status="success"}"#,
            1.0,
        ),
        (
            r#"amazonq_requests_total{account_id="sim-1",status="error"}"#,
            1.0,
        ),
        (
            r#"amazonq_requests_total{account_id="sim-2",status="success"}"#,
            2.0,
        ),
        (
            r#"amazonq_requests_total{account_id="sim-2",status="error"}"#,
            2.0,
        ),
        (
            r#"amazonq_errors_total{account_id="sim-1",error_type="rate_limit"}"#,
            1.0,
        ),
        (
            r#"amazonq_errors_total{account_id="sim-2",error_type="http_error"}"#,
            2.0,
        ),
        (
            r#"amazonq_circuit_breaker_opened_total{account_id="sim-2"}"#,
            1.0,
        ),
        (
            r#"amazonq_token_refresh_total{account_id="sim-1",status="success"}"#,
            2.0,
        ),
        (
            r#"amazonq_token_refresh_total{account_id="sim-2",status="success"}"#,
            1.0,
        ),
        (
            r#"amazonq_token_refresh_total{account_id="sim-1",status="error"}"#,
            0.0,
        ),
        (r#"amazonq_response_seconds_count{account_id="sim-2"}"#, 2.0),
        (r#"amazonq_active_requests{account_id="sim-1"}"#, 0.0),
        (r#"amazonq_account_available{account_id="sim-1"}"#, 0.0),
        (r#"amazonq_account_available{account_id="sim-2"}"#, 0.0),
        (r#"amazonq_account_request_count{account_id="sim-2"}"#, 4.0),
        (r#"amazonq_account_success_count{account_id="sim-1"}"#, 1.0),
        (r#"amazonq_account_error_count{account_id="sim-2"}"#, 2.0),
        (
            r#"qgate_account_state{account_id="sim-1",state="throttled"}"#,
            1.0,
        ),
        (
            r#"qgate_account_breaker{account_id="sim-2",phase="open"}"#,
            1.0,
        ),
        ("qgate_pool_routable_accounts", 0.0),
        (r#"qgate_pool_status{status="unhealthy"}"#, 1.0),
        (r#"qgate_upstream_attempts_total{outcome="success"}"#, 3.0),
        (r#"qgate_upstream_attempts_total{outcome="throttled"}"#, 1.0),
        (r#"qgate_client_requests_total{status="200"}"#, 3.0),
        (
            r#"qgate_token_refreshes_total{trigger="admin",outcome="success"}"#,
            1.0,
        ),
        (
            r#"qgate_admin_actions_total{action="refresh",outcome="success"}"#,
            1.0,
        ),
    ];
    let mut wrong = Vec::new();
    for (series, want) in expect {
        let got = value(&m, series);
        if got != Some(want) {
            wrong.push(format!("{series}: want {want}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}\n\n{m}");
}

/// Metric names a PromQL expression or dashboard refers to.
fn referenced_metrics(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Names are ASCII: only char boundaries can start one (the file may hold `—`).
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &text[i..];
        let starts = (rest.starts_with("amazonq_") || rest.starts_with("qgate_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..len].to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

#[tokio::test]
async fn deploy_dashboard_and_alerts_use_only_metrics_that_exist() {
    let env = scenario().await;
    // Touch the remaining families: a stream (time to first token), a reload, a probe.
    admin_post(&env, "/accounts/sim-2/reset", None).await;
    let (s, _) = env.stream(&hello("stream [[sim words=5]]")).await;
    assert_eq!(s, 200);
    admin_post(&env, "/admin/reload", None).await;
    admin_post(&env, "/accounts/sim-1/probe", None).await;
    let m = scrape(&env).await;
    let exposed: BTreeSet<String> = m
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    let mut checked = 0;
    for file in ["grafana-dashboard.json", "prometheus-alerts.yml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        if file.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).expect("dashboard is JSON");
        }
        let names = referenced_metrics(&text);
        assert!(names.len() >= 8, "{file} uses the metrics: {names:?}");
        for name in names {
            checked += 1;
            assert!(
                exposed.contains(&name),
                "{file} refers to {name}, which /metrics does not expose"
            );
        }
    }
    assert!(checked > 20);
}

#[test]
fn example_config_and_keys_files_parse() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    let toml = std::path::PathBuf::from(format!("{root}/qgate.example.toml"));
    qgate_gateway::config::FileConfig::read(&toml).unwrap();
    let keys = std::path::PathBuf::from(format!("{root}/keys.example.txt"));
    let keys = qgate_gateway::keys::read_keys_file(&keys).unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[1].rpm_limit, Some(60));
    assert_eq!(keys[2].max_concurrency, Some(2));
}
