//! Client keys: the keys file, per-key concurrency (released when a stream ends or its
//! client goes away) and requests-per-minute limits with `retry-after`, usage counters at
//! `/admin/keys`, and wrong keys.

use crate::admin::{ADMIN, admin_get, eventually};
use crate::support::*;
use serde_json::Value;

async fn start() -> (TestEnv, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.txt");
    std::fs::write(
        &path,
        "# test keys\nalice:alice-key-1234:3:1\nbob:bob-key-5678\ncarol:carol-key-9012::1\n",
    )
    .unwrap();
    let env = TestEnv::start(
        Opts::accounts(2)
            .env("API_KEYS_FILE", path.display().to_string())
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    (env, dir)
}

async fn send(env: &TestEnv, key: &str, body: &Value) -> reqwest::Response {
    env.http
        .post(env.url("/v1/messages"))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn slow_stream(prompt: &str) -> Value {
    let mut b = hello(&format!("{prompt} [[sim words=15 delay_ms=30]]"));
    b["stream"] = serde_json::json!(true);
    b
}

fn key_usage(keys: &Value, name: &str) -> Value {
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn concurrency_and_rpm_limits_apply_per_key_with_retry_after() {
    let (env, _dir) = start().await;
    let streaming = send(&env, "alice-key-1234", &slow_stream("long")).await;
    assert_eq!(streaming.status(), 200);
    let r = send(&env, "alice-key-1234", &hello("second at once")).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(
        send(&env, "bob-key-5678", &hello("other key"))
            .await
            .status(),
        200
    );
    let text = streaming.text().await.unwrap();
    assert!(text.contains("message_stop"));
    // The slot came back when the stream's last byte was sent.
    assert_eq!(
        send(&env, "alice-key-1234", &hello("now")).await.status(),
        200
    );
    assert_eq!(
        send(&env, "alice-key-1234", &hello("third")).await.status(),
        200
    );
    let r = send(&env, "alice-key-1234", &hello("fourth in a minute")).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    let keys = admin_get(&env, "/admin/keys").await;
    let text = keys.to_string();
    assert!(
        !text.contains("alice-key-1234") && !text.contains("bob-key"),
        "{text}"
    );
    let alice = key_usage(&keys, "alice");
    assert_eq!(alice["requests"], 3);
    assert_eq!(alice["refused_concurrency"], 1);
    assert_eq!(alice["refused_rpm"], 1);
    assert_eq!(alice["in_flight"], 0);
    assert_eq!(
        (
            alice["rpm_limit"].as_u64(),
            alice["max_concurrency"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert!(alice["input_tokens"].as_u64().unwrap() > 0);
    assert!(alice["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(key_usage(&keys, "bob")["requests"], 1);
}

#[tokio::test]
async fn a_client_that_goes_away_gives_its_slot_back() {
    let (env, _dir) = start().await;
    let mut streaming = send(&env, "carol-key-9012", &slow_stream("abandoned")).await;
    assert_eq!(streaming.status(), 200);
    let first = streaming.chunk().await.unwrap();
    assert!(first.is_some());
    assert_eq!(
        send(&env, "carol-key-9012", &hello("busy")).await.status(),
        429
    );
    drop(streaming);
    let released = eventually(100, || async {
        key_usage(&admin_get(&env, "/admin/keys").await, "carol")["in_flight"] == 0
    })
    .await;
    assert!(released, "the slot is released when the client disconnects");
    assert_eq!(
        send(&env, "carol-key-9012", &hello("again")).await.status(),
        200
    );
}

#[tokio::test]
async fn wrong_or_missing_keys_get_authentication_errors() {
    let (env, _dir) = start().await;
    for key in ["", "alice-key-123", "ALICE-KEY-1234"] {
        let r = send(&env, key, &hello("x")).await;
        assert_eq!(r.status(), 401, "{key:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
    }
    let r = env
        .http
        .post(env.url("/v1/messages"))
        .bearer_auth("bob-key-5678")
        .json(&hello("bearer works"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
