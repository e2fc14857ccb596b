//! Operations metrics (`qgate_*`): admin actions, config reloads, active health checks,
//! gateway-initiated token refreshes, webhook deliveries, client-key refusals and pool
//! status changes. Each is counted by the code that also logs the event.

use super::OutcomeLabel;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionOutcome {
    pub action: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountResult {
    pub account_id: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerOutcome {
    pub trigger: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventOutcome {
    pub event: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLimit {
    pub key: String,
    pub limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// Refresh counts of token managers that were replaced or removed, per account, so
/// `amazonq_token_refresh_total` never goes backwards when an account gets new
/// credentials or is removed and re-added.
pub type RetiredRefreshes = Arc<Mutex<HashMap<String, (u64, u64)>>>;

/// The operations counters.
#[derive(Debug, Clone, Default)]
pub struct OpsMetrics {
    pub(super) admin_actions: Family<ActionOutcome, Counter>,
    pub(super) reloads: Family<OutcomeLabel, Counter>,
    pub(super) health_checks: Family<AccountResult, Counter>,
    pub(super) refreshes: Family<TriggerOutcome, Counter>,
    pub(super) webhook_deliveries: Family<EventOutcome, Counter>,
    pub(super) webhook_dropped: Counter,
    pub(super) key_refusals: Family<KeyLimit, Counter>,
    pub(super) pool_status_changes: Family<StatusLabel, Counter>,
    pub(super) retired_refreshes: RetiredRefreshes,
}

impl OpsMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "qgate_admin_actions",
            "Admin API actions by action and outcome",
            self.admin_actions.clone(),
        );
        registry.register(
            "qgate_config_reloads",
            "Config reloads (SIGHUP or POST /admin/reload) by outcome",
            self.reloads.clone(),
        );
        registry.register(
            "qgate_health_checks",
            "Active health checks per account by result class",
            self.health_checks.clone(),
        );
        registry.register(
            "qgate_token_refreshes",
            "Token refreshes the gateway started outside requests (background, admin, health check), by outcome",
            self.refreshes.clone(),
        );
        registry.register(
            "qgate_webhook_deliveries",
            "Webhook deliveries by event and outcome (delivered|failed)",
            self.webhook_deliveries.clone(),
        );
        registry.register(
            "qgate_webhook_events_dropped",
            "Webhook events dropped because the delivery queue was full",
            self.webhook_dropped.clone(),
        );
        registry.register(
            "qgate_client_key_refusals",
            "Requests refused by a client key's own limit (rpm|concurrency)",
            self.key_refusals.clone(),
        );
        registry.register(
            "qgate_pool_status_changes",
            "Times the pool entered a status (healthy|degraded|unhealthy)",
            self.pool_status_changes.clone(),
        );
    }
}

fn inc<L: EncodeLabelSet + Clone + std::hash::Hash + Eq>(f: &Family<L, Counter>, l: L) {
    f.get_or_create(&l).inc();
}

impl super::Metrics {
    pub fn record_admin_action(&self, action: &str, outcome: &str) {
        inc(
            &self.ops.admin_actions,
            ActionOutcome {
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            },
        );
    }

    pub fn record_reload(&self, outcome: &'static str) {
        inc(&self.ops.reloads, OutcomeLabel { outcome });
    }

    pub fn record_health_check(&self, account: &str, result: &str) {
        inc(
            &self.ops.health_checks,
            AccountResult {
                account_id: account.to_owned(),
                result: result.to_owned(),
            },
        );
    }

    /// A refresh the gateway started itself; `outcome` is `success` or the error's code.
    pub fn record_refresh(&self, trigger: &str, outcome: &str) {
        inc(
            &self.ops.refreshes,
            TriggerOutcome {
                trigger: trigger.to_owned(),
                outcome: outcome.to_owned(),
            },
        );
    }

    pub fn record_webhook(&self, event: &str, delivered: bool) {
        inc(
            &self.ops.webhook_deliveries,
            EventOutcome {
                event: event.to_owned(),
                outcome: if delivered { "delivered" } else { "failed" }.to_owned(),
            },
        );
    }

    /// The dropped-events counter, for the webhook queue to count into.
    pub fn webhook_dropped_counter(&self) -> Counter {
        self.ops.webhook_dropped.clone()
    }

    pub fn record_key_refusal(&self, key: &str, limit: &str) {
        inc(
            &self.ops.key_refusals,
            KeyLimit {
                key: key.to_owned(),
                limit: limit.to_owned(),
            },
        );
    }

    pub fn record_pool_status(&self, status: &str) {
        inc(
            &self.ops.pool_status_changes,
            StatusLabel {
                status: status.to_owned(),
            },
        );
    }

    /// A token manager is being replaced or removed: keep its refresh counts.
    pub fn retire_token_stats(&self, account: &str, ok: u64, failed: u64) {
        let mut retired = self.ops.retired_refreshes.lock();
        let entry = retired.entry(account.to_owned()).or_default();
        entry.0 += ok;
        entry.1 += failed;
    }

    pub fn retired_refreshes(&self) -> RetiredRefreshes {
        self.ops.retired_refreshes.clone()
    }
}
