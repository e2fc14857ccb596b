//! Many concurrent callers, one HTTP refresh.

use std::time::Duration;

use qgate_auth::{RefreshError, RefreshOptions};

use crate::mock::Reply;
use crate::{Harness, join_all, oidc_creds};

/// The mock answers slowly so every caller is queued while the refresh is in flight; the
/// assertions hold whatever the interleaving.
const SLOW: Duration = Duration::from_millis(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_callers_on_an_expired_token_cause_one_refresh() {
    let h = Harness::start(Reply::token("aoa-fresh", Some(3600), Some("aor-rotated")).after(SLOW))
        .await;
    h.seed_cache("primary", "aoa-expired", "aor-cached", -10)
        .await;
    let manager = h.manager("primary", oidc_creds());
    manager.load_cached().await.unwrap();

    let calls = (0..100)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    let results = join_all(calls).await;

    assert_eq!(h.mock.hits(), 1);
    let generations: Vec<u64> = results
        .into_iter()
        .map(|result| {
            let token = result.unwrap();
            assert_eq!(token.expose(), "aoa-fresh");
            token.generation()
        })
        .collect();
    assert!(generations.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(h.cached_refresh_token("primary"), "aor-rotated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_force_refreshes_of_one_rejected_token_cause_one_refresh() {
    let h = Harness::start(Reply::token("aoa-1", Some(3600), None)).await;
    let manager = h.manager("primary", oidc_creds());
    let rejected = manager.access_token().await.unwrap();
    assert_eq!(h.mock.hits(), 1);
    h.mock
        .set_fallback(Reply::token("aoa-2", Some(3600), None).after(SLOW));

    let calls = (0..50)
        .map(|_| {
            let manager = manager.clone();
            let rejected = rejected.clone();
            tokio::spawn(async move { manager.force_refresh(&rejected).await })
        })
        .collect();
    let results = join_all(calls).await;

    assert_eq!(h.mock.hits(), 2, "one refresh for all 50 rejections");
    for result in results {
        let token = result.unwrap();
        assert_eq!(token.expose(), "aoa-2");
        assert!(token.generation() > rejected.generation());
    }
    // A stale rejection after that does not refresh again.
    manager.force_refresh(&rejected).await.unwrap();
    assert_eq!(h.mock.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_a_failed_refresh() {
    let h = Harness::start(Reply::json(500, r#"{"message":"boom"}"#).after(SLOW)).await;
    // No backoff: sharing must come from the single flight itself.
    let opts = RefreshOptions {
        failure_backoff: Duration::ZERO,
        ..RefreshOptions::default()
    };
    let manager = h.manager_with("primary", oidc_creds(), opts);

    let calls = (0..30)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    let results = join_all(calls).await;

    assert_eq!(h.mock.hits(), 1);
    for result in results {
        assert!(matches!(
            result.unwrap_err(),
            RefreshError::Transient {
                status: Some(500),
                ..
            }
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_does_not_lose_the_rotated_token() {
    let h =
        Harness::start(Reply::token("aoa-2", Some(3600), Some("aor-rotated")).after(SLOW)).await;
    let manager = h.manager("primary", oidc_creds());

    // Give up long before the slow answer arrives, as a disconnecting client would.
    let gave_up = tokio::time::timeout(Duration::from_millis(20), manager.access_token()).await;
    assert!(gave_up.is_err());

    // The refresh finished anyway: the next caller gets its token without a second call.
    assert_eq!(manager.access_token().await.unwrap().expose(), "aoa-2");
    assert_eq!(h.mock.hits(), 1);
    assert_eq!(h.cached_refresh_token("primary"), "aor-rotated");
}
