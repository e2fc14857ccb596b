//! Secrets in Redis are sealed: no access or refresh token, client secret or added
//! account's credential is readable in any key or value.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

async fn everything_in_redis(c: &TestCluster) -> Vec<String> {
    let client = redis_client(c);
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = ::redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![
                ::redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            "hash" => ::redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => ::redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            other => panic!("unexpected type {other} for {key}"),
        };
        out.push(key.clone());
        out.extend(
            values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        );
    }
    out
}

fn redis_client(c: &TestCluster) -> ::redis::Client {
    ::redis::Client::open(c.redis.url()).unwrap()
}

/// Every token the gateways hold, from their (plain, 0600) local caches.
fn local_tokens(c: &TestCluster) -> Vec<String> {
    let mut out = Vec::new();
    for node in &c.nodes {
        for entry in std::fs::read_dir(node.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("sim-") || !name.ends_with(".json") {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for field in ["access_token", "refresh_token"] {
                if let Some(t) = v[field].as_str() {
                    out.push(t.to_owned());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_readable_in_redis() {
    let mut c = TestCluster::start(
        2,
        super::admin_opts(2).sim(qgate_sim::SimConfig {
            accounts: 3,
            rotate_refresh_tokens: true,
            ..Default::default()
        }),
    )
    .await;
    let creds = qgate_sim::credentials(3);
    let (s, v) = c
        .admin(
            0,
            Method::POST,
            "/accounts",
            Some(json!({
                "id": "sim-3",
                "refresh_token": creds.refresh_token,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for n in 0..12 {
        let (s, v) = c.message(n % 2, &hello(&format!("secret scan {n}"))).await;
        assert_eq!(s, 200, "{v}");
    }
    // Shutting down persists every token (to the local caches and to Redis).
    c.stop_node(0).await;
    c.stop_node(1).await;

    let mut secrets = local_tokens(&c);
    assert!(
        secrets.len() >= 6,
        "tokens were cached locally: {secrets:?}"
    );
    for i in 1..=3 {
        let creds = qgate_sim::credentials(i);
        secrets.push(creds.refresh_token);
        secrets.push(creds.client_secret);
    }
    let stored = everything_in_redis(&c).await;
    assert!(
        stored.iter().any(|v| v.contains("tok:sim-1")),
        "tokens are in redis: {stored:?}"
    );
    for secret in &secrets {
        for value in &stored {
            assert!(
                !value.contains(secret.as_str()),
                "a secret is readable in redis"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_no_secret_goes_to_redis_but_state_is_still_shared() {
    let c = TestCluster::start(2, super::admin_opts(2).env("QGATE_ENCRYPTION_KEY", "")).await;
    let (_, health) = c.get(0, "/health").await;
    assert_eq!(health["shared_tokens"], false, "{health}");
    c.fault(json!({"account": "sim-1", "fault": "suspended", "count": 1}))
        .await;
    for n in 0..6 {
        let (s, v) = c.message(0, &hello(&format!("no key {n}"))).await;
        assert_eq!(s, 200, "{v}");
    }
    assert!(
        eventually(super::SPREAD, || async {
            super::account(&c, 1, "sim-1").await.1["state"] == "suspended"
        })
        .await,
        "state is shared without a key"
    );
    let stored = everything_in_redis(&c).await;
    assert!(
        !stored
            .iter()
            .any(|v| v.contains(":tok:") || v.contains(":admin:")),
        "no token or admin record without a key: {stored:?}"
    );
    for secret in local_tokens(&c) {
        assert!(!stored.iter().any(|v| v.contains(secret.as_str())));
    }
}
