//! Token records, the fenced refresh lock and the layered token store.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::ExposeSecret;

use super::{connect, dump, key, reconnected};
use crate::redis::test_server::RedisServer;
use crate::redis::{EncryptionKey, RedisError, RedisTokenStore};
use crate::{CachedToken, Fence, FileTokenStore, RefreshLock, TokenStore};

fn token(access: &str, refresh: &str, in_secs: i64) -> CachedToken {
    CachedToken {
        access_token: Some(access.into()),
        refresh_token: refresh.into(),
        expires_at: Some(
            Timestamp::now()
                .checked_add(SignedDuration::from_secs(in_secs))
                .unwrap(),
        ),
    }
}

fn access_of(token: &CachedToken) -> &str {
    token.access_token.as_ref().unwrap().expose_secret()
}

#[tokio::test]
async fn sealed_round_trip_and_nothing_readable_in_redis() {
    let server = RedisServer::start();
    let store = connect(&server);
    let key = key();
    let saved = token("aoa-secret-access-1", "aor-secret-refresh-1", 3600);
    assert!(
        store
            .save_token(&key, "sim-1", &saved, Fence::UNCOORDINATED)
            .await
            .unwrap()
    );
    let loaded = store.load_token(&key, "sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&loaded.token), "aoa-secret-access-1");
    assert_eq!(
        loaded.token.refresh_token.expose_secret(),
        "aor-secret-refresh-1"
    );
    assert_eq!(loaded.fence, 0);
    assert!(loaded.written_ms > 0);
    assert!(store.load_token(&key, "sim-2").await.unwrap().is_none());

    for (name, value) in dump(&store).await {
        let text = String::from_utf8_lossy(&value);
        assert!(!text.contains("secret"), "{name} holds a secret in clear");
    }
}

#[tokio::test]
async fn wrong_key_or_a_record_moved_to_another_account_is_an_error() {
    let server = RedisServer::start();
    let store = connect(&server);
    let saved = token("aoa-1", "aor-1", 3600);
    store
        .save_token(&key(), "sim-1", &saved, Fence::UNCOORDINATED)
        .await
        .unwrap();
    let other_key = EncryptionKey::from_bytes(&[8u8; 32]).unwrap();
    assert!(matches!(
        store.load_token(&other_key, "sim-1").await,
        Err(RedisError::Crypto(_))
    ));

    // Copy sim-1's record under sim-2's key: it must not open as sim-2's.
    let mut conn = store.conn();
    let data: Vec<u8> = ::redis::cmd("HGET")
        .arg(store.keys().token("sim-1"))
        .arg("data")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = ::redis::cmd("HSET")
        .arg(store.keys().token("sim-2"))
        .arg("data")
        .arg(data)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        store.load_token(&key(), "sim-2").await,
        Err(RedisError::Crypto(_))
    ));
}

#[tokio::test]
async fn lock_is_exclusive_fenced_and_released_only_by_its_holder() {
    let server = RedisServer::start();
    let store = connect(&server);
    let ttl = Duration::from_secs(30);
    let first = store.lock_refresh("sim-1", ttl).await.unwrap().unwrap();
    assert_eq!(store.lock_refresh("sim-1", ttl).await.unwrap(), None);
    assert!(store.lock_refresh("sim-2", ttl).await.unwrap().is_some());

    // The first holder stalls until its lock expires (deleted here rather than waited
    // for); a second holder takes over with a larger fence.
    let mut conn = store.conn();
    let _: i64 = ::redis::cmd("DEL")
        .arg(store.keys().refresh_lock("sim-1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let second = store.lock_refresh("sim-1", ttl).await.unwrap().unwrap();
    assert!(second > first);

    let key = key();
    let newer = token("aoa-second", "aor-second", 3600);
    assert!(
        store
            .save_token(&key, "sim-1", &newer, Fence::new(second))
            .await
            .unwrap()
    );
    let stale = token("aoa-first", "aor-first", 7200);
    assert!(
        !store
            .save_token(&key, "sim-1", &stale, Fence::new(first))
            .await
            .unwrap(),
        "a holder that outlived its lock must not overwrite"
    );
    let stored = store.load_token(&key, "sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&stored.token), "aoa-second");
    assert_eq!(stored.fence, second);

    assert!(!store.unlock_refresh("sim-1", first).await.unwrap());
    assert!(store.lock_refresh("sim-1", ttl).await.unwrap().is_none());
    assert!(store.unlock_refresh("sim-1", second).await.unwrap());
    assert!(store.lock_refresh("sim-1", ttl).await.unwrap().is_some());
}

#[tokio::test]
async fn unfenced_saves_never_replace_a_newer_token() {
    let server = RedisServer::start();
    let store = connect(&server);
    let key = key();
    let fresh = token("aoa-fresh", "aor-fresh", 3600);
    let old = token("aoa-old", "aor-old", 60);
    store
        .save_token(&key, "sim-1", &fresh, Fence::UNCOORDINATED)
        .await
        .unwrap();
    assert!(
        !store
            .save_token(&key, "sim-1", &old, Fence::UNCOORDINATED)
            .await
            .unwrap()
    );
    let later = token("aoa-later", "aor-later", 7200);
    assert!(
        store
            .save_token(&key, "sim-1", &later, Fence::UNCOORDINATED)
            .await
            .unwrap()
    );
    let stored = store.load_token(&key, "sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&stored.token), "aoa-later");
}

#[tokio::test]
async fn layered_store_writes_local_first_and_loads_the_newer_record() {
    let mut server = RedisServer::start();
    let redis = connect(&server);
    let dir = tempfile::tempdir().unwrap();
    let local = FileTokenStore::new(dir.path().join("cache")).unwrap();
    let shared = RedisTokenStore::new(local.clone(), redis.clone(), key());
    assert!(shared.is_shared());

    shared
        .save("sim-1", &token("aoa-1", "aor-1", 600))
        .await
        .unwrap();
    assert_eq!(
        access_of(&local.load("sim-1").await.unwrap().unwrap()),
        "aoa-1"
    );
    let in_redis = redis.load_token(&key(), "sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&in_redis.token), "aoa-1");

    // Another instance stored a newer token: it wins over the local file.
    redis
        .save_token(
            &key(),
            "sim-1",
            &token("aoa-2", "aor-2", 3600),
            Fence::UNCOORDINATED,
        )
        .await
        .unwrap();
    let loaded = shared.load("sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&loaded), "aoa-2");
    assert_eq!(loaded.refresh_token.expose_secret(), "aor-2");

    // Redis down: saving still reaches the disk, loading reads it, the lock is granted
    // without coordination.
    server.stop();
    shared
        .save("sim-1", &token("aoa-3", "aor-3", 7200))
        .await
        .unwrap();
    assert_eq!(
        local
            .load("sim-1")
            .await
            .unwrap()
            .unwrap()
            .refresh_token
            .expose_secret(),
        "aor-3"
    );
    assert_eq!(
        access_of(&shared.load("sim-1").await.unwrap().unwrap()),
        "aoa-3"
    );
    assert_eq!(
        shared.lock_refresh("sim-1", Duration::from_secs(5)).await,
        RefreshLock::Granted(Fence::UNCOORDINATED)
    );
    assert!(!redis.health().is_up());

    shared.remove("sim-1").await.unwrap();
    assert!(local.load("sim-1").await.unwrap().is_none());
}

#[tokio::test]
async fn layered_store_lock_reports_busy_while_another_instance_holds_it() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store_a = RedisTokenStore::new(
        FileTokenStore::new(dir.path().join("a")).unwrap(),
        connect(&server),
        key(),
    );
    let store_b = RedisTokenStore::new(
        FileTokenStore::new(dir.path().join("b")).unwrap(),
        connect(&server),
        key(),
    );
    let ttl = Duration::from_secs(30);
    let RefreshLock::Granted(fence) = store_a.lock_refresh("sim-1", ttl).await else {
        panic!("first lock is granted");
    };
    assert!(fence.value().is_some());
    assert_eq!(store_b.lock_refresh("sim-1", ttl).await, RefreshLock::Busy);
    store_a
        .save_fenced("sim-1", &token("aoa-a", "aor-a", 3600), fence)
        .await
        .unwrap();
    store_a.unlock_refresh("sim-1", fence).await;
    assert_eq!(
        access_of(&store_b.load("sim-1").await.unwrap().unwrap()),
        "aoa-a"
    );
    assert!(matches!(
        store_b.lock_refresh("sim-1", ttl).await,
        RefreshLock::Granted(_)
    ));
}

#[tokio::test]
async fn a_token_saved_during_an_outage_reaches_redis_when_it_returns() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let redis_a = connect(&server);
    let store_a = RedisTokenStore::new(
        FileTokenStore::new(dir.path().join("a")).unwrap(),
        redis_a.clone(),
        key(),
    );
    let redis_b = connect(&server);
    let store_b = RedisTokenStore::new(
        FileTokenStore::new(dir.path().join("b")).unwrap(),
        redis_b.clone(),
        key(),
    );
    store_a
        .save("sim-1", &token("aoa-1", "aor-1", 600))
        .await
        .unwrap();
    store_a
        .save("sim-2", &token("aoa-x", "aor-x", 600))
        .await
        .unwrap();

    // During the outage instance A rotates sim-1's refresh token: only its disk has it.
    server.stop();
    store_a
        .save("sim-1", &token("aoa-2", "aor-2", 3600))
        .await
        .unwrap();
    // Nothing to share while Redis is still down; the token stays queued.
    store_a.resync().await;

    // Redis comes back empty (no persistence). Before the resync, B cannot see A's token.
    server.restart();
    reconnected(&redis_a).await;
    reconnected(&redis_b).await;
    assert!(store_b.load("sim-1").await.unwrap().is_none());
    store_a.resync().await;
    let seen_by_b = store_b.load("sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&seen_by_b), "aoa-2");
    assert_eq!(seen_by_b.refresh_token.expose_secret(), "aor-2");
    // Only what was saved during the outage is re-sent...
    assert!(redis_a.load_token(&key(), "sim-2").await.unwrap().is_none());
    // ...unless the gateway says Redis lost its data: then every account it names.
    store_a.mark_unsynced(&["sim-2", "sim-unknown"]);
    store_a.resync().await;
    let sim2 = redis_a.load_token(&key(), "sim-2").await.unwrap().unwrap();
    assert_eq!(access_of(&sim2.token), "aoa-x");
    assert!(
        redis_a
            .load_token(&key(), "sim-unknown")
            .await
            .unwrap()
            .is_none()
    );

    // A newer token another instance stored meanwhile is never replaced by the resync.
    server.stop();
    store_a
        .save("sim-1", &token("aoa-3", "aor-3", 4000))
        .await
        .unwrap();
    server.restart();
    reconnected(&redis_a).await;
    reconnected(&redis_b).await;
    store_b
        .save("sim-1", &token("aoa-4", "aor-4", 7200))
        .await
        .unwrap();
    store_a.resync().await;
    let in_redis = redis_a.load_token(&key(), "sim-1").await.unwrap().unwrap();
    assert_eq!(access_of(&in_redis.token), "aoa-4");
}

#[tokio::test]
async fn a_token_refused_for_a_lost_fence_is_offered_again_unless_a_newer_one_is_stored() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let redis = connect(&server);
    let store = RedisTokenStore::new(
        FileTokenStore::new(dir.path().join("a")).unwrap(),
        redis.clone(),
        key(),
    );
    let RefreshLock::Granted(fence) = store.lock_refresh("sim-1", Duration::from_secs(30)).await
    else {
        panic!("the lock is granted");
    };
    // Redis restarts without its data while the refresh runs: the fence is unknown now.
    server.stop();
    server.restart();
    reconnected(&redis).await;
    let rotated = token("aoa-rotated", "aor-rotated", 3600);
    store.save_fenced("sim-1", &rotated, fence).await.unwrap();
    assert!(
        redis.load_token(&key(), "sim-1").await.unwrap().is_none(),
        "the fenced write is refused"
    );
    store.resync().await;
    let stored = redis.load_token(&key(), "sim-1").await.unwrap().unwrap();
    assert_eq!(stored.token.refresh_token.expose_secret(), "aor-rotated");
}
