//! Long-lived background work, each with a `run(shutdown)` and spawned in one place
//! ([`spawn_all`]) so shutdown waits for it: the token refresher and the state writer
//! (pool states that must survive a restart), and giving freed memory back when idle
//! (`background/memory.rs`).

mod memory;

use crate::dispatch::now_ms;
use crate::state::AppState;
use qgate_pool::{Outcome, PersistedState, StateKind};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What `_qgate-state.json` holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PersistFile {
    pub version: u32,
    #[serde(default)]
    pub states: Vec<PersistedState>,
    /// Accounts added, removed or patched through the admin API (version 2).
    #[serde(default)]
    pub accounts: crate::reload::AccountChanges,
}

/// Starts every background task on `tracker`.
pub fn spawn_all(
    state: &AppState,
    tracker: &TaskTracker,
    webhooks: crate::webhooks::WebhookQueue,
    shutdown: CancellationToken,
) {
    tracker.spawn(run_refresher(state.clone(), shutdown.clone()));
    tracker.spawn(crate::health_check::run(state.clone(), shutdown.clone()));
    tracker.spawn(crate::webhooks::run(
        state.clone(),
        webhooks,
        crate::webhooks::RetryPolicy::default(),
        shutdown.clone(),
    ));
    tracker.spawn(memory::run(state.clone(), shutdown.clone()));
    tracker.spawn(run_state_writer(state.clone(), shutdown));
}

async fn run_refresher(state: AppState, shutdown: CancellationToken) {
    let cfg = qgate_auth::RefresherConfig::default();
    let st = state.clone();
    qgate_auth::run_refresher(
        cfg,
        move || {
            let rt = st.runtime();
            let now = now_ms();
            rt.accounts
                .values()
                .map(|a| {
                    let eligible = rt.pool.status(a.id().as_str(), now).is_some_and(|s| {
                        !matches!(
                            s.state.kind(),
                            StateKind::Suspended | StateKind::RefreshDenied
                        )
                    });
                    (a.tokens.clone(), eligible)
                })
                .collect()
        },
        move |account, result| {
            state.metrics.record_refresh(
                "background",
                result.as_ref().map_or_else(|e| e.code(), |()| "success"),
            );
            if let Err(e) = result {
                tracing::warn!(account, error = %e, "background token refresh failed");
                // A denied refresh takes the account out now, not at its next request.
                // A transient failure ahead of expiry is not counted: the current token
                // still works, and an outage of the token service must not open every
                // breaker at once.
                if e.is_permanent() {
                    let transitions =
                        state
                            .runtime()
                            .pool
                            .report(account, Outcome::RefreshDenied, now_ms());
                    state.metrics.record_transitions(&transitions);
                }
            }
        },
        shutdown,
    )
    .await;
}

/// Saves the persistent pool states whenever they change (checked every second), and
/// once more at shutdown; token caches are saved at shutdown too. Admin changes to the
/// account set are saved by the admin call itself, through the same ordered save.
async fn run_state_writer(state: AppState, shutdown: CancellationToken) {
    let mut last: Option<Vec<PersistedState>> = None;
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        let rt = state.runtime();
        let states = rt.pool.export_persistent();
        if last.as_ref() != Some(&states) {
            match state.account_admin.save(&rt).await {
                Ok(()) => last = Some(states),
                Err(e) => tracing::error!(error = %e, "saving pool state failed"),
            }
        }
        if stop {
            for a in state.runtime().accounts.values() {
                if let Err(e) = a.tokens.persist().await {
                    tracing::error!(account = %a.id(), error = %e, "saving token cache failed");
                }
            }
            return;
        }
    }
}
