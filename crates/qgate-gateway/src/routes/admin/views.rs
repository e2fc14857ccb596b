//! What the admin API answers: the seed's account fields (`to_dict`) and stats totals,
//! plus state, breaker, in-flight, latency, token and limit details — built from the
//! pool's read-only status and the token manager's stats, never from anything secret.

use crate::accounts::Account;
use crate::reload::Origin;
use crate::webhooks::rfc3339_ms;
use qgate_pool::AccountStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The circuit breaker of one account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerView {
    /// `closed`, `open` or `half_open`.
    pub phase: String,
    /// End of the current (or last) open period, RFC 3339.
    pub open_until: Option<String>,
    pub timeout_ms: u64,
    pub consecutive_failures: u32,
    pub opened_total: u64,
    pub probe_in_flight: bool,
}

/// The account's access token (never the token itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    /// `oidc` or `kiro_social`.
    pub auth: String,
    pub expires_at: Option<String>,
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    pub last_refresh_at: Option<String>,
    pub last_failure_at: Option<String>,
    /// Code of the latest refresh failure (`invalid_grant`, `network`, ...), if the latest
    /// refresh failed.
    pub last_error: Option<String>,
}

/// One account. The first fields are the seed's, with the seed's names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub enabled: bool,
    pub weight: u32,
    pub request_count: u64,
    pub error_count: u64,
    pub success_count: u64,
    pub last_used_at: Option<String>,
    pub last_error_at: Option<String>,
    pub last_success_at: Option<String>,
    pub token_expires_at: Option<String>,
    pub circuit_breaker_open: bool,
    pub is_available: bool,
    /// `active`, `disabled`, `throttled`, `quota_exhausted`, `suspended`, `refresh_denied`.
    pub state: String,
    pub state_reason: Option<String>,
    /// When a time-limited state ends by itself, RFC 3339.
    pub state_until: Option<String>,
    pub breaker: BreakerView,
    pub in_flight: u32,
    pub latency_ewma_ms: Option<f64>,
    pub last_error_class: Option<String>,
    pub errors_by_class: BTreeMap<String, u64>,
    pub cancelled_count: u64,
    /// `true`/`false` when an admin enabled/disabled it against the configuration.
    pub admin_override: Option<bool>,
    pub priority: u32,
    pub max_concurrency: Option<u32>,
    pub rpm_limit: Option<u32>,
    pub rpm_used: Option<u32>,
    pub allowed_models: Option<Vec<String>>,
    /// Models upstream refused for this account, still in force.
    pub unavailable_models: Vec<String>,
    pub throttle_level: u32,
    /// `q_cli` or `kiro`.
    pub dialect: String,
    pub api_base: String,
    pub profile_arn: Option<String>,
    /// `config` (the configuration file / environment) or `api` (added at run time).
    pub origin: String,
    /// Being removed: out of rotation, waiting for in-flight requests.
    pub draining: bool,
    pub token: TokenView,
    /// Multi-instance mode, in `/accounts/stats`: this account's counts across every
    /// instance (the `*_count` fields above are this instance's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<CountsView>,
}

/// Request counts across all instances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountsView {
    pub request_count: u64,
    pub error_count: u64,
    pub success_count: u64,
}

fn ts(ms: Option<u64>) -> Option<String> {
    ms.and_then(rfc3339_ms)
}

impl AccountView {
    pub fn build(
        s: &AccountStatus,
        account: Option<&Account>,
        origin: Origin,
        draining: bool,
    ) -> Self {
        let stats = account.map(|a| a.tokens.stats()).unwrap_or_default();
        let token_expires_at = account
            .and_then(|a| a.tokens.expires_at())
            .map(|t| t.to_string());
        AccountView {
            id: s.id.to_string(),
            enabled: s.state.kind() != qgate_pool::StateKind::Disabled,
            weight: s.settings.weight,
            request_count: s.request_count,
            error_count: s.error_count,
            success_count: s.success_count,
            last_used_at: ts(s.last_used_ms),
            last_error_at: ts(s.last_error_ms),
            last_success_at: ts(s.last_success_ms),
            token_expires_at: token_expires_at.clone(),
            circuit_breaker_open: s.breaker.phase != qgate_pool::BreakerPhase::Closed,
            is_available: s.available,
            state: s.state.kind().as_str().to_owned(),
            state_reason: s.state.reason().map(str::to_owned),
            state_until: ts(s.state.until_ms()),
            breaker: BreakerView {
                phase: s.breaker.phase.as_str().to_owned(),
                open_until: ts(s.breaker.open_until_ms),
                timeout_ms: s.breaker.timeout_ms,
                consecutive_failures: s.breaker.consecutive_failures,
                opened_total: s.breaker.opened_total,
                probe_in_flight: s.breaker.probe_in_flight,
            },
            in_flight: s.in_flight,
            latency_ewma_ms: s.latency_ewma_ms,
            last_error_class: s.last_error_class.map(|c| c.as_str().to_owned()),
            errors_by_class: s
                .errors_by_class
                .iter()
                .map(|(c, n)| (c.as_str().to_owned(), *n))
                .collect(),
            cancelled_count: s.cancelled_count,
            admin_override: s.admin_override,
            priority: s.settings.priority,
            max_concurrency: s.settings.max_concurrency,
            rpm_limit: s.settings.rpm_limit,
            rpm_used: s.rpm_used,
            allowed_models: s.settings.allowed_models.clone(),
            unavailable_models: s
                .unavailable_models
                .iter()
                .map(|m| m.model.clone())
                .collect(),
            throttle_level: s.throttle_level,
            dialect: account
                .map_or("q_cli", |a| match a.dialect() {
                    qgate_amazonq::Dialect::QCli => "q_cli",
                    qgate_amazonq::Dialect::Kiro => "kiro",
                })
                .to_owned(),
            api_base: account.map(|a| a.api_base.clone()).unwrap_or_default(),
            profile_arn: account.and_then(|a| a.profile_arn().map(str::to_owned)),
            origin: origin.as_str().to_owned(),
            draining,
            token: TokenView {
                auth: account
                    .map_or("", |a| a.config.credentials.kind())
                    .to_owned(),
                expires_at: token_expires_at,
                refreshes_ok: stats.ok,
                refreshes_failed: stats.failed,
                last_refresh_at: stats.last_refresh_at.map(|t| t.to_string()),
                last_failure_at: stats.last_failure_at.map(|t| t.to_string()),
                last_error: stats.last_error_code,
            },
            cluster: None,
        }
    }
}

/// `GET /accounts/stats`: the seed's totals plus ours.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsView {
    pub total_accounts: usize,
    pub available_accounts: usize,
    pub total_requests: u64,
    pub total_errors: u64,
    pub total_successes: u64,
    pub strategy: String,
    pub circuit_breaker_enabled: bool,
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    pub in_flight: u64,
    pub queued: usize,
    /// Accounts per state.
    pub states: BTreeMap<String, usize>,
    pub accounts: Vec<AccountView>,
    /// Multi-instance mode: the `total_*` fields above count every instance (when Redis
    /// could be read); this instance's own totals are here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatsView>,
}

/// This instance within the cluster.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterStatsView {
    pub instance: String,
    /// `up` or `down`.
    pub redis: String,
    /// Whether the `total_*` fields are cluster-wide (false: Redis unreadable, so they
    /// are this instance's).
    pub totals_cluster_wide: bool,
    pub instance_requests: u64,
    pub instance_errors: u64,
    pub instance_successes: u64,
}

/// The seed's answer to enable/disable/reset, plus what changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionResult {
    /// Always `success`.
    pub status: String,
    pub message: String,
    /// State changes the action caused (`from -> to`).
    pub transitions: Vec<String>,
    pub account: AccountView,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthView {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    pub accounts: HealthCounts,
    /// Accounts per state (every state listed).
    pub states: BTreeMap<String, usize>,
    pub breakers: BreakerCounts,
    pub in_flight: u64,
    /// Milliseconds until the first unavailable account comes back by itself.
    pub soonest_recovery_ms: Option<u64>,
    /// Multi-instance mode only: `up` or `down`. With Redis down the instance serves on
    /// local state, so the pool status above may still be healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Multi-instance mode only: whether tokens and admin account changes are shared
    /// (`QGATE_ENCRYPTION_KEY` set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_tokens: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthCounts {
    pub total: usize,
    pub available: usize,
    pub unavailable: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerCounts {
    pub open: usize,
    pub half_open: usize,
}
