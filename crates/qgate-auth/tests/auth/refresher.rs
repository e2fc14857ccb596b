//! The background refresher, driven with millisecond intervals and a bounded wait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use qgate_auth::{RefresherConfig, run_refresher};
use tokio_util::sync::CancellationToken;

use crate::mock::Reply;
use crate::{Harness, eventually, oidc_creds};

fn quick() -> RefresherConfig {
    RefresherConfig {
        interval: Duration::from_millis(20),
        ahead: Duration::from_secs(10 * 60),
        max_concurrent: 2,
        jitter: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn refreshes_tokens_near_expiry_and_skips_the_rest() {
    let h = Harness::start(Reply::token("aoa-refreshed", Some(3600), None)).await;
    // 8 minutes left: outside the request path's 5-minute skew, inside `ahead`.
    h.seed_cache("near", "aoa-near", "aor-near", 8 * 60).await;
    h.seed_cache("fresh", "aoa-fresh", "aor-fresh", 50 * 60)
        .await;
    h.seed_cache("suspended", "aoa-susp", "aor-suspended", 60)
        .await;
    let near = h.manager("near", oidc_creds());
    let fresh = h.manager("fresh", oidc_creds());
    let suspended = h.manager("suspended", oidc_creds());
    for manager in [&near, &fresh, &suspended] {
        manager.load_cached().await.unwrap();
    }
    assert_eq!(near.access_token().await.unwrap().expose(), "aoa-near");
    assert_eq!(h.mock.hits(), 0);

    let outcomes: Arc<Mutex<BTreeMap<String, bool>>> = Arc::default();
    let passes = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let refresher = tokio::spawn({
        let managers = vec![
            (near.clone(), true),
            (fresh.clone(), true),
            (suspended.clone(), false),
        ];
        let outcomes = outcomes.clone();
        let passes = passes.clone();
        let shutdown = shutdown.clone();
        async move {
            run_refresher(
                quick(),
                move || {
                    passes.fetch_add(1, Ordering::SeqCst);
                    managers.clone()
                },
                move |account, outcome| {
                    outcomes.lock().insert(account.to_owned(), outcome.is_ok());
                },
                shutdown,
            )
            .await;
        }
    });

    let refreshed = eventually(Duration::from_secs(10), || {
        outcomes.lock().get("near") == Some(&true)
    })
    .await;
    // Let a few more passes run: nothing else may be refreshed, "near" not again.
    let passes_then = passes.load(Ordering::SeqCst);
    let more_passes = eventually(Duration::from_secs(10), || {
        passes.load(Ordering::SeqCst) >= passes_then + 3
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), refresher)
        .await
        .expect("refresher returns after shutdown")
        .unwrap();

    assert!(refreshed, "the token near expiry was refreshed");
    assert!(more_passes);
    assert_eq!(near.access_token().await.unwrap().expose(), "aoa-refreshed");
    assert_eq!(h.mock.refresh_tokens_sent(), ["aor-near"]);
    assert_eq!(
        outcomes.lock().keys().cloned().collect::<Vec<_>>(),
        ["near"]
    );
    assert_eq!(fresh.access_token().await.unwrap().expose(), "aoa-fresh");
}

#[tokio::test]
async fn reports_failures_and_returns_promptly_on_shutdown() {
    let h = Harness::start(Reply::invalid_grant()).await;
    let doomed = h.manager("doomed", oidc_creds());

    let failures: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let refresher = tokio::spawn({
        let failures = failures.clone();
        let shutdown = shutdown.clone();
        let doomed = doomed.clone();
        async move {
            run_refresher(
                quick(),
                move || vec![(doomed.clone(), !doomed.is_denied())],
                move |account, outcome| {
                    if let Err(err) = outcome {
                        failures
                            .lock()
                            .push((account.to_owned(), err.code().to_owned()));
                    }
                },
                shutdown,
            )
            .await;
        }
    });

    let reported = eventually(Duration::from_secs(10), || !failures.lock().is_empty()).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), refresher)
        .await
        .expect("refresher returns after shutdown")
        .unwrap();

    assert!(reported);
    assert_eq!(
        failures.lock()[0],
        ("doomed".to_owned(), "invalid_grant".to_owned())
    );
    assert_eq!(h.mock.hits(), 1, "a denied account is not retried");
}
