//! State records and events, sticky bindings, counters and the admin record.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{connect, dump, key};
use crate::redis::test_server::RedisServer;
use crate::redis::{ClusterEvent, Counts, EncryptionKey, RedisError, StateRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Health {
    state: String,
}

fn record(origin: &str, stamp_ms: u64, state: &str) -> StateRecord<Health> {
    StateRecord {
        origin: origin.to_owned(),
        stamp_ms,
        state: Health {
            state: state.to_owned(),
        },
    }
}

async fn next_event(sub: &mut crate::redis::Subscription) -> ClusterEvent<Health> {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event arrives")
        .expect("subscription alive")
}

#[tokio::test]
async fn state_is_stored_announced_and_older_stamps_lose() {
    let server = RedisServer::start();
    let store = connect(&server);
    let mut sub = store.subscribe().await.unwrap();

    assert!(
        store
            .publish_state("sim-1", &record("a", 100, "suspended"))
            .await
            .unwrap()
    );
    assert_eq!(
        next_event(&mut sub).await,
        ClusterEvent::State {
            account: "sim-1".into(),
            record: record("a", 100, "suspended"),
        }
    );
    assert!(
        !store
            .publish_state("sim-1", &record("b", 99, "active"))
            .await
            .unwrap(),
        "an older decision does not replace a newer one"
    );
    assert!(
        store
            .publish_state("sim-2", &record("b", 50, "active"))
            .await
            .unwrap()
    );
    assert_eq!(
        next_event(&mut sub).await,
        ClusterEvent::State {
            account: "sim-2".into(),
            record: record("b", 50, "active"),
        },
        "the refused write was not announced"
    );

    let states: Vec<(String, StateRecord<Health>)> = store
        .read_states(&["sim-1", "sim-2", "sim-3"])
        .await
        .unwrap();
    assert_eq!(
        states,
        vec![
            ("sim-1".to_owned(), record("a", 100, "suspended")),
            ("sim-2".to_owned(), record("b", 50, "active")),
        ]
    );

    store.forget_states(&["sim-1"]).await.unwrap();
    let states: Vec<(String, StateRecord<Health>)> =
        store.read_states(&["sim-1", "sim-2"]).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, "sim-2");
}

#[tokio::test]
async fn admin_record_is_sealed_versioned_and_announced() {
    let server = RedisServer::start();
    let store = connect(&server);
    let mut sub = store.subscribe().await.unwrap();
    assert!(store.read_admin(&key()).await.unwrap().is_none());
    assert_eq!(store.admin_version().await.unwrap(), 0);

    let doc = br#"{"added":[{"id":"x","refresh_token":"aor-admin-secret"}]}"#;
    let first = store.write_admin(&key(), "gw-a", doc).await.unwrap();
    assert_eq!(
        next_event(&mut sub).await,
        ClusterEvent::Admin {
            origin: "gw-a".into(),
            version: first
        }
    );
    let second = store.write_admin(&key(), "gw-b", b"{}").await.unwrap();
    assert!(second > first, "{second} after {first}");
    let read = store.read_admin(&key()).await.unwrap().unwrap();
    assert_eq!(read.version, second);
    assert_eq!(&*read.document, b"{}");

    store.write_admin(&key(), "gw-a", doc).await.unwrap();
    for (name, value) in dump(&store).await {
        assert!(
            !String::from_utf8_lossy(&value).contains("aor-admin-secret"),
            "{name} holds a secret in clear"
        );
    }
    let other = EncryptionKey::from_bytes(&[1u8; 32]).unwrap();
    assert!(matches!(
        store.read_admin(&other).await,
        Err(RedisError::Crypto(_))
    ));
}

#[tokio::test]
async fn sticky_bindings_expire_and_counters_add_up() {
    let server = RedisServer::start();
    let store = connect(&server);
    assert_eq!(store.sticky_get("h1").await.unwrap(), None);
    store.sticky_set("h1", "sim-2", 60_000).await.unwrap();
    assert_eq!(
        store.sticky_get("h1").await.unwrap().as_deref(),
        Some("sim-2")
    );
    let mut conn = store.conn();
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(store.keys().sticky("h1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");

    let delta = Counts {
        requests: 3,
        successes: 2,
        errors: 1,
    };
    store
        .add_counts(&[("sim-1", delta), ("sim-2", Counts::default())])
        .await
        .unwrap();
    store.add_counts(&[("sim-1", delta)]).await.unwrap();
    assert_eq!(
        store.read_counts(&["sim-1", "sim-2"]).await.unwrap(),
        vec![
            Counts {
                requests: 6,
                successes: 4,
                errors: 2
            },
            Counts::default()
        ]
    );
}

#[tokio::test]
async fn a_subscription_ends_when_the_server_goes_away() {
    let mut server = RedisServer::start();
    let store = connect(&server);
    let mut sub = store.subscribe().await.unwrap();
    server.stop();
    let ended = tokio::time::timeout(Duration::from_secs(10), sub.next::<Health>())
        .await
        .expect("the stream notices the lost connection");
    assert!(ended.is_none());
    assert!(store.subscribe().await.is_err());
}

#[tokio::test]
async fn admin_versions_keep_rising_after_redis_loses_its_data() {
    let mut server = RedisServer::start();
    let store = connect(&server);
    let mut before = 0;
    for _ in 0..3 {
        before = store.write_admin(&key(), "gw-a", b"{}").await.unwrap();
    }
    // Versions follow the server's clock in milliseconds, so they are far above a count.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        before + 60_000 > now_ms && before < now_ms + 60_000,
        "{before} vs {now_ms}"
    );

    server.stop();
    server.restart();
    super::reconnected(&store).await;
    assert_eq!(store.admin_version().await.unwrap(), 0, "the data is gone");
    let after = store
        .write_admin_based_on(&key(), "gw-b", b"{}", before)
        .await
        .unwrap();
    assert!(
        after > before,
        "{after} must exceed {before} seen before the restart"
    );
    // A second instance refilling the empty Redis a moment later, from the same old
    // base, writes nothing: it must merge into what is there now.
    let second = store
        .write_admin_based_on(&key(), "gw-c", br#"{"x":1}"#, before)
        .await
        .unwrap();
    assert_eq!(second, 0);
    let read = store.read_admin(&key()).await.unwrap().unwrap();
    assert_eq!(&*read.document, b"{}");
    // Based on the current version, it goes through.
    let third = store
        .write_admin_based_on(&key(), "gw-c", br#"{"x":1}"#, after)
        .await
        .unwrap();
    assert!(third > after);
}
