//! Tests of the Redis operations against a real `redis-server` (see `test_server`), each
//! with its own server on a unix socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod limits;
mod shared;
mod tokens;

use std::time::Duration;

use super::test_server::RedisServer;
use super::{EncryptionKey, RedisConfig, RedisStore, redact_url};

pub(super) fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&RedisConfig::new(server.url())).unwrap()
}

pub(super) fn key() -> EncryptionKey {
    EncryptionKey::from_bytes(&[7u8; 32]).unwrap()
}

/// Every key and every value on the server, as raw bytes.
pub(super) async fn dump(store: &RedisStore) -> Vec<(String, Vec<u8>)> {
    let mut conn = store.conn();
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
        for value in values {
            out.push((key.clone(), value));
        }
    }
    out
}

#[tokio::test]
async fn ping_marks_health_down_and_up_again() {
    let mut server = RedisServer::start();
    let store = connect(&server);
    store.ping().await.unwrap();
    assert!(store.health().is_up());

    server.stop();
    let err = store.ping().await.unwrap_err();
    assert!(err.is_outage(), "{err}");
    assert!(!store.health().is_up());
    assert!(store.health().errors_total() >= 1);

    server.restart();
    reconnected(&store).await;
    assert!(store.health().is_up());
}

/// Wait (2 s at most) until `store` reaches a restarted server again.
pub(super) async fn reconnected(store: &RedisStore) {
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no reconnection within 2 s after the server returned");
}

#[tokio::test]
async fn a_bad_url_is_refused_without_showing_the_password() {
    let err = RedisStore::connect(&RedisConfig::new("http://:hunter2@example/")).unwrap_err();
    let shown = err.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    let config = format!(
        "{:?}",
        RedisConfig::new("redis://:hunter2@127.0.0.1:6379/0")
    );
    assert!(!config.contains("hunter2"), "{config}");
    assert_eq!(
        redact_url("rediss://user:pw@host:6380/1"),
        "rediss://***@host:6380/1"
    );
    assert_eq!(
        redact_url("redis+unix:///tmp/r.sock"),
        "redis+unix:///tmp/r.sock"
    );
}
