//! Webhooks against a local receiver: account suspension and pool status changes arrive
//! as JSON, a failed delivery is retried, and deliveries are counted.

use crate::admin::{ADMIN, eventually};
use crate::support::*;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, Json(body): Json<Value>) -> StatusCode {
    r.calls.fetch_add(1, Ordering::SeqCst);
    let refuse = r
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refuse {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.got.lock().push(body);
    StatusCode::NO_CONTENT
}

async fn receiver(fail_first: usize) -> (Receiver, String) {
    let r = Receiver::default();
    r.fail_first.store(fail_first, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hook?token=receiver-secret",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

fn events(r: &Receiver) -> Vec<String> {
    r.got
        .lock()
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn suspension_and_pool_status_reach_the_receiver_with_retries() {
    let (r, url) = receiver(1).await;
    let env = TestEnv::start(
        Opts::accounts(2)
            .env("WEBHOOK_URLS", url)
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    env.fault(json!({"account": "sim-1", "fault": "suspended", "count": 1}))
        .await;
    let (s, _) = env.message(&hello("fails over")).await;
    assert_eq!(s, 200);
    let arrived = eventually(100, || async {
        let e = events(&r);
        e.contains(&"account_suspended".to_owned()) && e.contains(&"pool_degraded".to_owned())
    })
    .await;
    assert!(arrived, "got {:?}", events(&r));
    let got = r.got.lock().clone();
    let suspended = got
        .iter()
        .find(|v| v["event"] == "account_suspended")
        .unwrap();
    assert_eq!(suspended["account"], "sim-1");
    assert_eq!(suspended["state"], "suspended");
    assert_eq!(suspended["previous_state"], "active");
    assert!(suspended["reason"].as_str().unwrap().contains("suspended"));
    assert!(suspended["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(suspended["pool"]["total"], 2);
    let degraded = got.iter().find(|v| v["event"] == "pool_degraded").unwrap();
    assert_eq!(degraded["account"], Value::Null);
    assert_eq!(degraded["state"], "degraded");
    assert!(
        r.calls.load(Ordering::SeqCst) > got.len(),
        "the refused delivery was retried"
    );

    // An admin reset brings the pool back: a recovery event.
    let reset = env
        .http
        .post(env.url("/accounts/sim-1/reset"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    assert!(
        eventually(100, || async {
            events(&r).contains(&"pool_healthy".to_owned())
        })
        .await
    );

    let metrics = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "qgate_webhook_deliveries_total{event=\"account_suspended\",outcome=\"delivered\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_urls_nothing_is_sent_and_requests_are_unaffected() {
    let (r, _url) = receiver(0).await;
    let env = TestEnv::start(Opts::accounts(1)).await;
    env.fault(json!({"account": "sim-1", "fault": "suspended", "count": 1}))
        .await;
    let (s, _) = env.message(&hello("x")).await;
    assert_ne!(s, 200);
    let (s, v) = env.get("/health").await;
    assert_eq!((s, v["status"].as_str()), (503, Some("unhealthy")));
    assert_eq!(r.calls.load(Ordering::SeqCst), 0);
}
