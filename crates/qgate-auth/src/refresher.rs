//! The background refresher: keeps tokens fresh ahead of expiry so requests rarely wait
//! for a refresh, and surfaces dead credentials before a client hits them.
//!
//! Owned background work (style rule 8): the gateway spawns [`run_refresher`] once and
//! cancels it at shutdown. Refreshes already talking to the token service finish on their
//! own (they run detached inside the manager, so a rotated token is never lost); the ones
//! still waiting out their jitter are dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::{RefreshError, TokenManager};

/// Busy-looping is never what a configuration meant.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// How the background refresher paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefresherConfig {
    /// Time between passes over all accounts.
    pub interval: Duration,
    /// Refresh tokens that expire within this (longer than the request path's skew, so
    /// requests find fresh tokens).
    pub ahead: Duration,
    /// Upper bound of refreshes in flight at once.
    pub max_concurrent: usize,
    /// Each refresh waits a random delay in `[0, jitter]`, so accounts loaded together do
    /// not all refresh in the same instant.
    pub jitter: Duration,
}

impl Default for RefresherConfig {
    fn default() -> Self {
        RefresherConfig {
            interval: Duration::from_secs(60),
            ahead: Duration::from_secs(10 * 60),
            max_concurrent: 4,
            jitter: Duration::from_secs(10),
        }
    }
}

/// Every `interval`, refresh the eligible managers whose token expires within `ahead`.
///
/// `managers` is asked anew on each pass (accounts come and go); `false` marks an account
/// that must not be refreshed (suspended, or its refresh was denied). `on_result` sees
/// every attempt's outcome, e.g. to mark an account `refresh_denied`. Returns when
/// `shutdown` fires.
pub async fn run_refresher(
    cfg: RefresherConfig,
    managers: impl Fn() -> Vec<(Arc<TokenManager>, bool)> + Send + Sync,
    on_result: impl Fn(&str, &Result<(), RefreshError>) + Send + Sync,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(cfg.interval.max(MIN_INTERVAL));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let due: Vec<Arc<TokenManager>> = managers()
            .into_iter()
            .filter(|(manager, eligible)| *eligible && manager.needs_refresh_within(cfg.ahead))
            .map(|(manager, _)| manager)
            .collect();
        if due.is_empty() {
            continue;
        }
        tracing::debug!(due = due.len(), "refreshing tokens ahead of expiry");
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = refresh_pass(&cfg, due, &on_result) => {}
        }
    }
}

async fn refresh_pass(
    cfg: &RefresherConfig,
    due: Vec<Arc<TokenManager>>,
    on_result: &(impl Fn(&str, &Result<(), RefreshError>) + Send + Sync),
) {
    let max_in_flight = cfg.max_concurrent.max(1);
    let jitter_ms = u64::try_from(cfg.jitter.as_millis()).unwrap_or(u64::MAX);
    let mut waiting = due.into_iter();
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.len() < max_in_flight {
            let Some(manager) = waiting.next() else { break };
            let delay = Duration::from_millis(rand::random_range(0..=jitter_ms));
            let ahead = cfg.ahead;
            in_flight.spawn(async move {
                tokio::time::sleep(delay).await;
                let outcome = manager.refresh_if_expiring_within(ahead).await;
                (manager, outcome)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            return;
        };
        match joined {
            Ok((manager, outcome)) => on_result(manager.account_id(), &outcome),
            Err(err) => tracing::error!(error = %err, "background refresh task failed"),
        }
    }
}
