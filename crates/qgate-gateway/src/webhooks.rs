//! Webhook alerts: when an account is suspended, refresh-denied, out of quota or opens its
//! circuit breaker, and when the pool becomes degraded or unhealthy (and healthy again),
//! every configured URL gets a JSON `POST`.
//!
//! Nothing here runs on the request path: the request path hands transitions to a bounded
//! queue ([`WebhookHub::transitions`], never blocking, dropping and counting when full),
//! and one background task ([`run`]) turns them into events and delivers each with bounded
//! retries and backoff ([`deliver`]). The same task watches the pool's status once a second,
//! because time-limited states end by themselves without any transition.

mod deliver;

pub use deliver::RetryPolicy;

use crate::health_check::PoolStatus;
use crate::state::AppState;
use prometheus_client::metrics::counter::Counter;
use qgate_pool::{StateKind, Transition};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Transitions waiting for the webhook task; beyond this they are dropped (and counted).
const QUEUE: usize = 1024;

/// The sending side, held by `Metrics` (where every transition is recorded).
#[derive(Debug, Clone)]
pub struct WebhookHub {
    tx: mpsc::Sender<Vec<Transition>>,
    dropped: Counter,
}

/// The receiving side, handed to [`run`].
#[derive(Debug)]
pub struct WebhookQueue(mpsc::Receiver<Vec<Transition>>);

impl WebhookHub {
    pub fn new(dropped: Counter) -> (WebhookHub, WebhookQueue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (WebhookHub { tx, dropped }, WebhookQueue(rx))
    }

    /// Queues transitions without waiting.
    pub fn transitions(&self, transitions: &[Transition]) {
        let wanted: Vec<Transition> = transitions
            .iter()
            .filter(|t| event_name(t).is_some())
            .cloned()
            .collect();
        if !wanted.is_empty() && self.tx.try_send(wanted).is_err() {
            self.dropped.inc();
        }
    }
}

/// The event a transition is worth, if any.
pub fn event_name(t: &Transition) -> Option<&'static str> {
    match t.to {
        StateKind::Suspended => Some("account_suspended"),
        StateKind::RefreshDenied => Some("account_refresh_denied"),
        StateKind::QuotaExhausted => Some("account_quota_exhausted"),
        StateKind::BreakerOpen => Some("account_breaker_opened"),
        StateKind::Active
        | StateKind::Disabled
        | StateKind::Throttled
        | StateKind::ModelUnavailable
        | StateKind::BreakerClosed
        | StateKind::BreakerHalfOpen => None,
    }
}

/// The pool part of every payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PoolSummary {
    pub status: &'static str,
    pub total: usize,
    pub routable: usize,
}

/// One webhook body.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: &'static str,
    /// The account concerned; `None` for pool events.
    pub account: Option<String>,
    /// The new state (account events) or pool status (pool events).
    pub state: String,
    pub previous_state: String,
    pub reason: String,
    /// When the new state ends by itself (RFC 3339), if it does.
    pub until: Option<String>,
    /// When it happened (RFC 3339).
    pub time: String,
    pub pool: PoolSummary,
}

pub(crate) fn rfc3339_ms(ms: u64) -> Option<String> {
    jiff::Timestamp::from_millisecond(i64::try_from(ms).ok()?)
        .ok()
        .map(|t| t.to_string())
}

fn summary(state: &AppState) -> (PoolStatus, PoolSummary) {
    let health = state.runtime().pool.health(crate::dispatch::now_ms());
    let status = PoolStatus::of(&health);
    (
        status,
        PoolSummary {
            status: status.as_str(),
            total: health.total,
            routable: health.routable,
        },
    )
}

fn account_event(t: &Transition, name: &'static str, pool: PoolSummary) -> Event {
    Event {
        event: name,
        account: Some(t.account.to_string()),
        state: t.to.as_str().to_owned(),
        previous_state: t.from.as_str().to_owned(),
        reason: t.reason.clone(),
        until: t.until_ms.and_then(rfc3339_ms),
        time: jiff::Timestamp::now().to_string(),
        pool,
    }
}

/// Watches the pool status; returns the event for a change.
struct StatusWatch {
    last: PoolStatus,
}

impl StatusWatch {
    fn check(&mut self, state: &AppState) -> Option<Event> {
        let (status, pool) = summary(state);
        if status == self.last {
            return None;
        }
        let previous = std::mem::replace(&mut self.last, status);
        state.metrics.record_pool_status(status.as_str());
        match status {
            PoolStatus::Healthy => tracing::info!(from = previous.as_str(), "pool is healthy"),
            PoolStatus::Degraded | PoolStatus::Unhealthy => tracing::warn!(
                from = previous.as_str(),
                to = status.as_str(),
                routable = pool.routable,
                total = pool.total,
                "pool status changed"
            ),
        }
        Some(Event {
            event: status.event_name(),
            account: None,
            state: status.as_str().to_owned(),
            previous_state: previous.as_str().to_owned(),
            reason: format!(
                "{} of {} accounts can take requests",
                pool.routable, pool.total
            ),
            until: None,
            time: jiff::Timestamp::now().to_string(),
            pool,
        })
    }
}

/// The webhook task: turns queued transitions and pool status changes into events and
/// delivers them. Deliveries run concurrently with the watching; on shutdown, those in
/// progress get a few seconds to finish.
pub async fn run(
    state: AppState,
    mut queue: WebhookQueue,
    policy: RetryPolicy,
    shutdown: CancellationToken,
) {
    let deliveries = TaskTracker::new();
    let mut watch = StatusWatch {
        last: summary(&state).0,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut events = Vec::new();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            batch = queue.0.recv() => {
                let Some(batch) = batch else { break };
                let (_, pool) = summary(&state);
                for t in &batch {
                    if let Some(name) = event_name(t) {
                        events.push(account_event(t, name, pool.clone()));
                    }
                }
                events.extend(watch.check(&state));
            }
            _ = tick.tick() => events.extend(watch.check(&state)),
        }
        let urls = state.config.load().webhooks.clone();
        for event in events {
            if urls.is_empty() {
                continue;
            }
            let event = std::sync::Arc::new(event);
            for url in &urls {
                deliveries.spawn(deliver::deliver(
                    state.clone(),
                    url.clone(),
                    event.clone(),
                    policy.clone(),
                ));
            }
        }
    }
    deliveries.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), deliveries.wait()).await;
}
