//! Managers of several instances sharing one Redis token store: one refresh per account
//! across instances, adoption of the holder's token, rotated tokens followed, a dead
//! holder's lock outlived, an unreachable Redis that changes nothing for callers, and a
//! refusal during an outage that is not taken for a verdict.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use qgate_auth::{RefreshOptions, TokenManager};
use qgate_store::redis::test_server::RedisServer;
use qgate_store::redis::{EncryptionKey, RedisConfig, RedisStore, RedisTokenStore};
use qgate_store::{CachedToken, Fence, FileTokenStore, RefreshLock, TokenStore};
use secrecy::ExposeSecret;
use tempfile::TempDir;

use crate::mock::Reply;
use crate::{CONFIGURED_REFRESH, Harness, join_all, oidc_creds};

const SLOW: Duration = Duration::from_millis(150);

/// One Redis and the token stores of `n` instances on it (each with its own cache dir).
struct Cluster {
    server: RedisServer,
    stores: Vec<Arc<RedisTokenStore>>,
    key: EncryptionKey,
    _dirs: TempDir,
}

impl Cluster {
    fn start(n: usize) -> Self {
        let server = RedisServer::start();
        let dirs = tempfile::tempdir().unwrap();
        let key = EncryptionKey::from_bytes(&[3u8; 32]).unwrap();
        let stores = (0..n)
            .map(|i| {
                let local = FileTokenStore::new(dirs.path().join(format!("gw-{i}"))).unwrap();
                Arc::new(RedisTokenStore::new(
                    local,
                    Self::redis(&server),
                    key.clone(),
                ))
            })
            .collect();
        Cluster {
            server,
            stores,
            key,
            _dirs: dirs,
        }
    }

    fn redis(server: &RedisServer) -> RedisStore {
        RedisStore::connect(&RedisConfig::new(server.url())).unwrap()
    }

    fn managers(&self, h: &Harness, opts: &RefreshOptions) -> Vec<Arc<TokenManager>> {
        self.stores
            .iter()
            .map(|store| {
                let store: Arc<dyn TokenStore> = store.clone();
                h.manager_on(store, "primary", oidc_creds(), opts.clone())
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_expired_tokens_cause_one_refresh() {
    let h = Harness::start(Reply::token("aoa-shared", Some(3600), Some("aor-rotated")).after(SLOW))
        .await;
    let cluster = Cluster::start(2);
    let managers = cluster.managers(&h, &RefreshOptions::default());

    let calls = (0..60)
        .map(|i| {
            let manager = managers[i % 2].clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    for result in join_all(calls).await {
        assert_eq!(result.unwrap().expose(), "aoa-shared");
    }
    assert_eq!(h.mock.hits(), 1, "one refresh across both instances");
    let adopted: u64 = managers.iter().map(|m| m.stats().adopted).sum();
    let refreshed: u64 = managers.iter().map(|m| m.stats().ok).sum();
    assert_eq!((refreshed, adopted), (1, 1));

    let stored = Cluster::redis(&cluster.server)
        .load_token(&cluster.key, "primary")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.token.refresh_token.expose_secret(), "aor-rotated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_refresh_uses_the_token_another_instance_rotated() {
    let h = Harness::start(Reply::token("aoa-1", Some(3600), Some("aor-rotated-1"))).await;
    let cluster = Cluster::start(2);
    let managers = cluster.managers(&h, &RefreshOptions::default());

    assert_eq!(managers[0].access_token().await.unwrap().expose(), "aoa-1");
    let on_b = managers[1].access_token().await.unwrap();
    assert_eq!(on_b.expose(), "aoa-1");
    assert_eq!(h.mock.hits(), 1);

    // The upstream rejects the shared token on instance B: B refreshes with the refresh
    // token A's refresh rotated to, not the configured one.
    h.mock
        .set_fallback(Reply::token("aoa-2", Some(3600), Some("aor-rotated-2")));
    assert_eq!(
        managers[1].force_refresh(&on_b).await.unwrap().expose(),
        "aoa-2"
    );
    assert_eq!(
        h.mock.refresh_tokens_sent(),
        vec![CONFIGURED_REFRESH.to_owned(), "aor-rotated-1".to_owned()]
    );
    // And A, whose token was rejected too, adopts B's instead of refreshing again.
    let on_a = managers[0].access_token().await.unwrap();
    assert_eq!(
        managers[0].force_refresh(&on_a).await.unwrap().expose(),
        "aoa-2"
    );
    assert_eq!(h.mock.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holder_delays_the_refresh_until_its_lock_expires() {
    let h = Harness::start(Reply::token("aoa-after", Some(3600), None)).await;
    let cluster = Cluster::start(1);
    let redis = Cluster::redis(&cluster.server);
    let opts = RefreshOptions {
        lock_ttl: Duration::from_millis(400),
        lock_poll: Duration::from_millis(20),
        ..RefreshOptions::default()
    };
    // An instance took the lock and died: it never refreshes, saves or releases.
    let dead_fence = redis
        .lock_refresh("primary", opts.lock_ttl)
        .await
        .unwrap()
        .unwrap();
    let manager = cluster.managers(&h, &opts).remove(0);

    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-after");
    assert_eq!(h.mock.hits(), 1);
    let stored = redis
        .load_token(&cluster.key, "primary")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.fence > dead_fence, "saved under the newer lock");

    // Should the dead holder wake up, its write is refused.
    let late = CachedToken {
        access_token: Some("aoa-zombie".into()),
        refresh_token: "aor-zombie".into(),
        expires_at: Timestamp::now()
            .checked_add(SignedDuration::from_hours(2))
            .ok(),
    };
    assert!(
        !redis
            .save_token(&cluster.key, "primary", &late, Fence::new(dead_fence))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_each_instance_refreshes_on_its_own() {
    let h = Harness::start(Reply::token("aoa-local", Some(3600), Some("aor-local"))).await;
    let mut cluster = Cluster::start(1);
    let manager = cluster.managers(&h, &RefreshOptions::default()).remove(0);
    cluster.server.stop();

    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-local");
    assert_eq!(h.mock.hits(), 1);
    let local = cluster.stores[0]
        .local()
        .load("primary")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        local.refresh_token.expose_secret(),
        "aor-local",
        "the rotated token reached the disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_during_an_outage_is_transient_and_the_rotated_token_is_adopted_after_it() {
    // Rotating refresh tokens: A's refresh during the outage revokes the configured token,
    // so B's own refresh (with the configured token) is refused.
    let h = Harness::start(Reply::invalid_grant()).await;
    h.mock
        .push(Reply::token("aoa-a", Some(3600), Some("aor-rotated-by-a")));
    let mut cluster = Cluster::start(2);
    let opts = RefreshOptions {
        failure_backoff: Duration::from_millis(10),
        ..RefreshOptions::default()
    };
    let managers = cluster.managers(&h, &opts);
    cluster.server.stop();

    assert_eq!(managers[0].access_token().await.unwrap().expose(), "aoa-a");
    let refused = managers[1].access_token().await.unwrap_err();
    assert!(
        !refused.is_permanent(),
        "a refusal without the shared lock is not a verdict on the account: {refused}"
    );
    assert_eq!(h.mock.hits(), 2);

    // Redis returns (empty); A shares what it saved only locally; B, now coordinated,
    // adopts A's token instead of presenting the revoked one again.
    cluster.server.restart();
    let redis = Cluster::redis(&cluster.server);
    for store in &cluster.stores {
        // A coordinated grant (a real fence) shows this store's connection is back.
        let mut up = false;
        for _ in 0..100 {
            let lock = store.lock_refresh("probe", Duration::from_millis(1)).await;
            if lock != RefreshLock::Granted(Fence::UNCOORDINATED) {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "redis reachable again within 2 s");
    }
    cluster.stores[0].resync().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(managers[1].access_token().await.unwrap().expose(), "aoa-a");
    assert_eq!(h.mock.hits(), 2, "no further refresh: B adopted A's token");
    let stored = redis
        .load_token(&cluster.key, "primary")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.token.refresh_token.expose_secret(),
        "aor-rotated-by-a"
    );
}
