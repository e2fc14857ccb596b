//! Admin changes made on one instance take effect on all.

use super::{SPREAD, account};
use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_patch_disable_enable_and_remove_reach_every_instance() {
    // The simulator knows three accounts; the configuration names two.
    let mut c = TestCluster::start(
        3,
        super::admin_opts(2).sim(qgate_sim::SimConfig {
            accounts: 3,
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
                "client_secret": creds.client_secret,
                "weight": 5
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for i in [1, 2] {
        assert!(
            eventually(SPREAD, || async { account(&c, i, "sim-3").await.0 == 200 }).await,
            "gateway {i} has the added account"
        );
    }
    let (_, added) = account(&c, 2, "sim-3").await;
    assert_eq!(added["origin"], "api", "{added}");
    assert_eq!(added["weight"], 5);

    let (s, v) = c
        .admin(
            1,
            Method::PATCH,
            "/accounts/sim-3",
            Some(json!({"weight": 7})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for i in [0, 2] {
        assert!(
            eventually(SPREAD, || async {
                account(&c, i, "sim-3").await.1["weight"] == 7
            })
            .await,
            "gateway {i} has the patch"
        );
    }

    let (s, v) = c
        .admin(2, Method::POST, "/accounts/sim-1/disable", None)
        .await;
    assert_eq!(s, 200, "{v}");
    for i in [0, 1] {
        assert!(
            eventually(SPREAD, || async {
                account(&c, i, "sim-1").await.1["enabled"] == false
            })
            .await,
            "gateway {i} has sim-1 disabled"
        );
    }
    let (s, _) = c
        .admin(0, Method::POST, "/accounts/sim-1/enable", None)
        .await;
    assert_eq!(s, 200);
    for i in [1, 2] {
        assert!(
            eventually(SPREAD, || async {
                account(&c, i, "sim-1").await.1["enabled"] == true
            })
            .await,
            "gateway {i} has sim-1 enabled again"
        );
    }

    // Disabled before its removal: that state is shared, and must not outlive the account.
    let (s, _) = c
        .admin(0, Method::POST, "/accounts/sim-3/disable", None)
        .await;
    assert_eq!(s, 200);
    assert!(
        eventually(SPREAD, || async {
            account(&c, 1, "sim-3").await.1["enabled"] == false
        })
        .await
    );
    let (s, v) = c
        .admin(0, Method::DELETE, "/accounts/sim-3?timeout_secs=1", None)
        .await;
    assert_eq!(s, 200, "{v}");
    for i in [1, 2] {
        assert!(
            eventually(SPREAD, || async { account(&c, i, "sim-3").await.0 == 404 }).await,
            "gateway {i} no longer has sim-3"
        );
    }
    // Added again under the same id: it starts fresh everywhere (not disabled by the
    // drain that preceded its removal).
    let (s, v) = c
        .admin(
            1,
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
    for i in [0, 2] {
        assert!(
            eventually(SPREAD, || async {
                let (s, v) = account(&c, i, "sim-3").await;
                s == 200 && v["enabled"] == true
            })
            .await,
            "gateway {i} has sim-3 back, enabled"
        );
    }
    // An instance joining now inherits nothing stale about it either.
    let late = c.add_node(&[]).await;
    let (s, joined) = account(&c, late, "sim-3").await;
    assert_eq!(s, 200, "{joined}");
    assert_eq!(joined["enabled"], true, "{joined}");
    // Served on every instance.
    for i in 0..3 {
        let (s, v) = c.message(i, &hello("after the admin changes")).await;
        assert_eq!(s, 200, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_still_spread_after_redis_lost_its_data() {
    let mut c = TestCluster::start(
        2,
        super::admin_opts(2).sim(qgate_sim::SimConfig {
            accounts: 4,
            ..Default::default()
        }),
    )
    .await;
    // Several changes on gateway 0 first, so its last seen version is well above one.
    for n in [3, 4] {
        let (s, v) = c
            .admin(0, Method::POST, "/accounts", Some(new_account(n)))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    for weight in 2..8 {
        let (s, v) = c
            .admin(
                0,
                Method::PATCH,
                "/accounts/sim-4",
                Some(json!({"weight": weight})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    assert!(
        eventually(SPREAD, || async {
            account(&c, 1, "sim-4").await.1["weight"] == 7
        })
        .await,
        "gateway 1 has both added accounts and the last patch"
    );

    // Redis restarts without persistence: the admin document and its version are gone.
    c.redis.stop();
    c.redis.restart();
    for i in [0, 1] {
        assert!(
            eventually(SPREAD * 4, || async {
                c.get(i, "/health").await.1["redis"] == "up"
            })
            .await,
            "gateway {i} reconnects"
        );
    }
    // A change made now on gateway 1 reaches gateway 0, whatever it saw before.
    let (s, v) = c
        .admin(1, Method::DELETE, "/accounts/sim-3?timeout_secs=1", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        eventually(SPREAD * 2, || async {
            account(&c, 0, "sim-3").await.0 == 404
        })
        .await,
        "gateway 0 applies the removal made after the restart"
    );
    // And an instance joining now gets the whole account set, sim-4 included: the
    // document was shared again after the restart.
    let late = c.add_node(&[]).await;
    assert_eq!(account(&c, late, "sim-4").await.0, 200);
    assert_eq!(account(&c, late, "sim-3").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_added_during_an_outage_survives_the_other_instance_refilling_redis() {
    let mut c = TestCluster::start(
        2,
        super::admin_opts(2).sim(qgate_sim::SimConfig {
            accounts: 4,
            ..Default::default()
        }),
    )
    .await;
    let (s, v) = c
        .admin(0, Method::POST, "/accounts", Some(new_account(3)))
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(eventually(SPREAD, || async { account(&c, 1, "sim-3").await.0 == 200 }).await);

    // Redis goes away (losing its data); gateway 0 takes an admin change meanwhile.
    c.redis.stop();
    let (s, v) = c
        .admin(0, Method::POST, "/accounts", Some(new_account(4)))
        .await;
    assert_eq!(s, 201, "{v}");
    c.redis.restart();
    // Both instances refill Redis as they reconnect; whichever writes first, the account
    // added during the outage ends up everywhere, and nothing earlier is lost.
    for i in [0, 1] {
        assert!(
            eventually(SPREAD * 4, || async {
                account(&c, i, "sim-4").await.0 == 200 && account(&c, i, "sim-3").await.0 == 200
            })
            .await,
            "gateway {i} has both added accounts"
        );
    }
    // And it stays: a late joiner gets the same set.
    let late = c.add_node(&[]).await;
    assert_eq!(account(&c, late, "sim-4").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_on_two_instances_at_the_same_time_all_survive() {
    // sim-1..6 configured. Each gateway adds and removes its own accounts while the other
    // does the same, so their writes keep colliding: every refused write must merge, and
    // no install of the other's document may overwrite a change not yet shared (the chaos
    // soak saw a removed account come back).
    let mut c = TestCluster::start(
        2,
        super::admin_opts(6).sim(qgate_sim::SimConfig {
            accounts: 12,
            ..Default::default()
        }),
    )
    .await;
    let plans: [&[(bool, usize)]; 2] = [
        &[(false, 1), (true, 7), (false, 2), (true, 8), (true, 11)],
        &[(false, 3), (true, 9), (false, 4), (true, 10), (true, 12)],
    ];
    let run = |i: usize| {
        let c = &c;
        async move {
            for &(add, n) in plans[i] {
                let (s, v) = if add {
                    c.admin(i, Method::POST, "/accounts", Some(new_account(n)))
                        .await
                } else {
                    let path = format!("/accounts/sim-{n}?timeout_secs=1");
                    c.admin(i, Method::DELETE, &path, None).await
                };
                assert!(s == 200 || s == 201, "gateway {i}, sim-{n}: {s} {v}");
            }
        }
    };
    tokio::join!(run(0), run(1));
    let present = [5, 6, 7, 8, 9, 10, 11, 12];
    let gone = [1, 2, 3, 4];
    for i in [0, 1] {
        let converged = eventually(SPREAD * 4, || async {
            for n in present {
                if account(&c, i, &format!("sim-{n}")).await.0 != 200 {
                    return false;
                }
            }
            for n in gone {
                if account(&c, i, &format!("sim-{n}")).await.0 != 404 {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(converged, "gateway {i} has every change of both instances");
    }
    // Nothing settles back afterwards: a late joiner gets the same set.
    let late = c.add_node(&[]).await;
    for n in present {
        assert_eq!(
            account(&c, late, &format!("sim-{n}")).await.0,
            200,
            "sim-{n}"
        );
    }
    for n in gone {
        assert_eq!(
            account(&c, late, &format!("sim-{n}")).await.0,
            404,
            "sim-{n}"
        );
    }
}

/// `POST /accounts` body for simulator account `n`.
fn new_account(n: usize) -> serde_json::Value {
    let creds = qgate_sim::credentials(n);
    json!({
        "id": format!("sim-{n}"),
        "refresh_token": creds.refresh_token,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret
    })
}
