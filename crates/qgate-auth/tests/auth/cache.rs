//! The token cache seen through the manager: rotation persisted before use, failed saves,
//! adopting cached tokens at start, and `persist`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use qgate_auth::RefreshOptions;
use qgate_store::{BoxFuture, CachedToken, FileTokenStore, StoreError, TokenStore};

use crate::mock::Reply;
use crate::{CONFIGURED_REFRESH, Harness, oidc_creds};

#[tokio::test]
async fn rotated_refresh_token_is_on_disk_before_the_access_token_is_used() {
    let h = Harness::start(Reply::token("aoa-2", Some(3600), Some("aor-rotated-2"))).await;
    let manager = h.manager("primary", oidc_creds());

    let token = manager.access_token().await.unwrap();

    assert_eq!(token.expose(), "aoa-2");
    assert_eq!(h.cached_refresh_token("primary"), "aor-rotated-2");
    // And the rotated token is the one used next time.
    manager.force_refresh(&token).await.unwrap();
    assert_eq!(
        h.mock.refresh_tokens_sent(),
        [CONFIGURED_REFRESH, "aor-rotated-2"]
    );
}

/// A file store whose saves can be made to fail.
#[derive(Debug)]
struct FlakyStore {
    files: FileTokenStore,
    failing: AtomicBool,
}

impl TokenStore for FlakyStore {
    fn load<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<CachedToken>, StoreError>> {
        self.files.load(account)
    }

    fn save<'a>(
        &'a self,
        account: &'a str,
        token: &'a CachedToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if self.failing.load(Ordering::SeqCst) {
            let err = StoreError::Io {
                op: "write",
                path: "/simulated".into(),
                source: std::io::Error::other("disk full"),
            };
            return Box::pin(async move { Err(err) });
        }
        self.files.save(account, token)
    }

    fn remove<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.files.remove(account)
    }
}

#[tokio::test]
async fn failed_save_keeps_the_rotated_token_in_memory_and_persist_retries() {
    let h = Harness::start(Reply::token("aoa-2", Some(3600), Some("aor-rotated-2"))).await;
    let flaky = Arc::new(FlakyStore {
        files: FileTokenStore::new(h.store.dir()).unwrap(),
        failing: AtomicBool::new(true),
    });
    let manager = qgate_auth::TokenManager::new(
        "primary",
        oidc_creds(),
        Arc::new(h.mock.endpoints()),
        reqwest::Client::builder().no_proxy().build().unwrap(),
        flaky.clone(),
        RefreshOptions::default(),
    );

    let token = manager.access_token().await.unwrap();
    assert_eq!(token.expose(), "aoa-2", "the token is still handed out");
    assert!(!h.cache_file("primary").exists());

    flaky.failing.store(false, Ordering::SeqCst);
    manager.persist().await.unwrap();
    assert_eq!(h.cached_refresh_token("primary"), "aor-rotated-2");
}

#[tokio::test]
async fn expired_cache_contributes_its_rotated_refresh_token() {
    let h = Harness::start(Reply::token("aoa-new", Some(3600), None)).await;
    h.seed_cache("primary", "aoa-stale", "aor-rotated-earlier", -60)
        .await;
    let manager = h.manager("primary", oidc_creds());

    manager.load_cached().await.unwrap();
    assert!(
        manager.expires_at().is_none(),
        "expired access token not adopted"
    );
    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-new");

    assert_eq!(h.mock.refresh_tokens_sent(), ["aor-rotated-earlier"]);
}

#[tokio::test]
async fn valid_cache_is_used_without_any_refresh() {
    let h = Harness::start(Reply::token("aoa-new", Some(3600), None)).await;
    h.seed_cache("primary", "aoa-cached", "aor-cached", 3000)
        .await;
    let manager = h.manager("primary", oidc_creds());

    manager.load_cached().await.unwrap();

    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-cached");
    assert_eq!(h.mock.hits(), 0);
}

#[tokio::test]
async fn denied_cached_refresh_token_falls_back_to_the_configured_one() {
    let h = Harness::start(Reply::token("aoa-new", Some(3600), None)).await;
    h.mock.push(Reply::invalid_grant());
    h.seed_cache("primary", "aoa-stale", "aor-revoked-in-cache", -60)
        .await;
    let manager = h.manager("primary", oidc_creds());
    manager.load_cached().await.unwrap();

    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-new");
    assert_eq!(
        h.mock.refresh_tokens_sent(),
        ["aor-revoked-in-cache", CONFIGURED_REFRESH]
    );
    assert_eq!(h.cached_refresh_token("primary"), CONFIGURED_REFRESH);
}

#[tokio::test]
async fn persist_saves_the_current_state() {
    let h = Harness::start(Reply::token("aoa", Some(3600), Some("aor-rotated"))).await;
    let manager = h.manager("primary", oidc_creds());
    manager.access_token().await.unwrap();
    std::fs::remove_file(h.cache_file("primary")).unwrap();

    manager.persist().await.unwrap();

    assert_eq!(h.cached_refresh_token("primary"), "aor-rotated");
}
