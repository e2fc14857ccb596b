//! A full scenario — requests, a refresh, admin calls, errors — with every log line
//! captured as JSON: request lines carry their request id (the `request` span), the final
//! line of a request names account and outcome, and no secret appears anywhere: not in
//! logs, metrics, admin responses or error bodies.

use crate::admin::{ADMIN, admin, admin_post};
use crate::support::*;
use parking_lot::Mutex;
use qgate_sim::SimConfig;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;

const CLIENT_KEY: &str = "client-key-abc123";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn call(env: &TestEnv, key: &str, body: &Value, seen: &mut Vec<String>) -> u16 {
    let r = env
        .http
        .post(env.url("/v1/messages"))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    seen.push(r.text().await.unwrap());
    s
}

#[tokio::test]
async fn no_secret_reaches_logs_metrics_or_responses_and_request_lines_carry_ids() {
    let buf = Buffer::default();
    let writer = buf.clone();
    // The binary's JSON lines (`LOG_FORMAT=json`).
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(qgate_gateway::logging::Json)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // Global when possible: callsites first hit by other tests' threads could otherwise
    // cache "no interest" and skip this subscriber when `cargo test` shares a process.
    // Other tests' lines then land here too, which only widens the secret check.
    let dispatch = tracing::Dispatch::new(subscriber);
    let _scoped = match tracing::dispatcher::set_global_default(dispatch.clone()) {
        Ok(()) => None,
        Err(_) => Some(tracing::dispatcher::set_default(&dispatch)),
    };

    let env = TestEnv::start(
        Opts::accounts(2)
            .sim(SimConfig {
                accounts: 3,
                ..Default::default()
            })
            .env("API_KEYS", CLIENT_KEY)
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    let mut seen = Vec::new();
    assert_eq!(
        call(&env, CLIENT_KEY, &hello("plain"), &mut seen).await,
        200
    );
    let mut streamed = hello("streamed [[sim words=5]]");
    streamed["stream"] = json!(true);
    assert_eq!(call(&env, CLIENT_KEY, &streamed, &mut seen).await, 200);
    assert_eq!(call(&env, "wrong-key", &hello("x"), &mut seen).await, 401);
    env.sim.expire_access_tokens();
    assert_eq!(
        call(&env, CLIENT_KEY, &hello("after expiry"), &mut seen).await,
        200
    );
    env.fault(json!({"account": "sim-1", "fault": "throttle", "count": 1}))
        .await;
    env.fault(json!({"account": "sim-2", "fault": "throttle", "count": 1}))
        .await;
    call(&env, CLIENT_KEY, &hello("throttled"), &mut seen).await;
    let mut unknown = hello("x");
    unknown["model"] = json!("gpt-4o");
    assert_eq!(call(&env, CLIENT_KEY, &unknown, &mut seen).await, 404);
    env.fault(json!({"account": "sim-2", "fault": "refresh_invalid_grant", "count": 1}))
        .await;
    for (method, path, body) in [
        (reqwest::Method::GET, "/accounts/stats", None),
        (reqwest::Method::GET, "/accounts/sim-1", None),
        (reqwest::Method::POST, "/accounts/sim-1/refresh", None),
        (reqwest::Method::POST, "/accounts/sim-2/refresh", None),
        (reqwest::Method::POST, "/accounts/sim-1/probe", None),
        (
            reqwest::Method::POST,
            "/accounts",
            Some(json!({
            "id": "sim-3", "refresh_token": "sim-refresh-3",
            "client_id": "sim-client-3", "client_secret": "sim-secret-3"})),
        ),
        (
            reqwest::Method::POST,
            "/accounts",
            Some(json!({
            "id": "bad id", "refresh_token": "sim-refresh-3", "client_secret": "sim-secret-3"})),
        ),
        (
            reqwest::Method::PATCH,
            "/accounts/sim-3",
            Some(json!({"weight": 3})),
        ),
        (reqwest::Method::GET, "/accounts", None),
        (reqwest::Method::GET, "/admin/keys", None),
        (reqwest::Method::POST, "/admin/reload", None),
    ] {
        let (_, v) = admin(&env, method, path, Some(ADMIN), body).await;
        seen.push(v.to_string());
    }
    let (s, v) = admin(
        &env,
        reqwest::Method::GET,
        "/accounts/stats",
        Some("bad-admin-key-0"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    seen.push(v.to_string());
    admin_post(&env, "/accounts/sim-1/reset", None).await;
    let metrics = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    seen.push(metrics.text().await.unwrap());
    let mut env = env;
    env.stop_gateway().await;

    let logs = String::from_utf8(buf.0.lock().clone()).unwrap();
    assert!(logs.lines().count() > 20, "{logs}");
    let mut secrets = vec![CLIENT_KEY.to_owned(), ADMIN.to_owned(), "aoaSIM".to_owned()];
    for i in 1..=3 {
        let c = qgate_sim::credentials(i);
        secrets.extend([c.refresh_token, c.client_secret]);
    }
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} is in the logs");
        for body in &seen {
            assert!(
                !body.contains(secret.as_str()),
                "{secret} is in a response: {body}"
            );
        }
    }

    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let done: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request done")
        .collect();
    assert!(done.len() >= 4, "{done:?}");
    for l in &done {
        assert!(
            l["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("req_")),
            "{l}"
        );
        assert!(l["outcome"].is_string(), "{l}");
        if l["outcome"] == "success" {
            assert!(l["account"].is_string(), "{l}");
        }
    }
    let in_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["name"] == "request")
        .collect();
    assert!(
        in_request.iter().all(|l| l["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_"))),
        "every line inside a request carries its id"
    );
    for message in ["account transition", "admin action", "client key rejected"] {
        assert!(
            in_request.iter().any(|l| l["message"] == message),
            "a `{message}` line is logged inside its request span"
        );
    }
}

/// The real binary's text logs, written to a pipe (as to a file, journald or `docker
/// logs`): plain lines without terminal colour codes.
#[tokio::test]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("LOG_FORMAT", "text"),
        ("AMAZONQ_REFRESH_TOKEN", "r"),
        ("AMAZONQ_CLIENT_ID", "c"),
        ("AMAZONQ_CLIENT_SECRET", "s"),
        ("AMAZONQ_API_ENDPOINT", "http://127.0.0.1:9"),
        ("AMAZONQ_TOKEN_ENDPOINT", "http://127.0.0.1:9/token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let gw = crate::crash_process::Gateway::start(dir.path(), &env)
        .await
        .expect("the gateway started and logged `qgate listening addr=...` as plain text");
    let output = gw.output.clone();
    gw.stop().await;
    let lines = output.lock().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" INFO ") && l.contains("qgate listening")),
        "{lines:?}"
    );
    if let Some(line) = lines.iter().find(|l| l.contains('\u{1b}')) {
        panic!("a log line written to a pipe has terminal escape codes: {line:?}");
    }
}
