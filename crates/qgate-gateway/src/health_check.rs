//! Pool status and active health checks.
//!
//! [`PoolStatus`] is the one definition of healthy / degraded / unhealthy, shared by
//! `/health`, the `qgate_pool_status` gauge and the webhooks.
//!
//! An active check ([`probe`]) makes the cheapest real upstream call an account can make —
//! `GET /getUsageLimits` with its bearer token — and feeds the classified result to the
//! pool: success closes an open or half-open breaker and ends a throttle cooldown
//! ([`qgate_pool::Pool::probe_succeeded`]); a failure is reported like a failed attempt
//! (a probe can also discover a suspension). [`run`] checks, every
//! `HEALTH_CHECK_INTERVAL`, the accounts that are waiting to come back: breaker open or
//! half-open, or throttled. Suspended, refresh-denied, out-of-quota and disabled accounts
//! are never probed: a probe cannot disprove those states, and probing a suspended
//! account only adds to its record.

use crate::accounts::Account;
use crate::dispatch::{now_ms, pool_outcome};
use crate::state::AppState;
use qgate_amazonq::classify::{RetryAdvice, UpstreamFailure, classify_http_error};
use qgate_pool::{AccountStatus, BreakerPhase, PoolHealth, StateKind, Transition};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The pool as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolStatus {
    /// Every enabled account can take requests.
    Healthy,
    /// Some enabled accounts cannot, but at least one can.
    Degraded,
    /// None can: requests fail until one recovers.
    Unhealthy,
}

impl PoolStatus {
    /// Disabled accounts are the operator's choice, not a degradation.
    pub fn of(h: &PoolHealth) -> PoolStatus {
        let disabled = h.by_state.get(&StateKind::Disabled).copied().unwrap_or(0);
        let enabled = h.total.saturating_sub(disabled);
        if h.routable == 0 {
            PoolStatus::Unhealthy
        } else if h.routable < enabled {
            PoolStatus::Degraded
        } else {
            PoolStatus::Healthy
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PoolStatus::Healthy => "healthy",
            PoolStatus::Degraded => "degraded",
            PoolStatus::Unhealthy => "unhealthy",
        }
    }

    /// The webhook event for entering this status.
    pub fn event_name(self) -> &'static str {
        match self {
            PoolStatus::Healthy => "pool_healthy",
            PoolStatus::Degraded => "pool_degraded",
            PoolStatus::Unhealthy => "pool_unhealthy",
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProbeReport {
    pub account: String,
    pub ok: bool,
    /// `success`, or the failure class (`throttled`, `suspended`, `transient`, ...).
    pub result: String,
    /// HTTP status of the last upstream answer, if one came.
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Account state after the probe.
    pub state: String,
    pub breaker: String,
    /// State changes the probe caused.
    pub transitions: Vec<String>,
    /// Remaining usage from the upstream's answer, when it sent one.
    pub usage: Option<UsageInfo>,
}

/// From `getUsageLimits`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageInfo {
    pub current_usage: Option<f64>,
    pub usage_limit: Option<f64>,
    /// RFC 3339.
    pub next_reset: Option<String>,
    pub subscription: Option<String>,
}

fn usage_info(body: &[u8]) -> Option<UsageInfo> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = v.get("usageBreakdownList")?.get(0);
    let num = |key: &str| first.and_then(|f| f.get(key)).and_then(|x| x.as_f64());
    let reset = v
        .get("nextDateReset")
        .and_then(|x| x.as_f64())
        .and_then(|s| jiff::Timestamp::from_second(s as i64).ok())
        .map(|t| t.to_string());
    Some(UsageInfo {
        current_usage: num("currentUsageWithPrecision").or_else(|| num("currentUsage")),
        usage_limit: num("usageLimitWithPrecision").or_else(|| num("usageLimit")),
        next_reset: reset,
        subscription: v
            .pointer("/subscriptionInfo/subscriptionTitle")
            .and_then(|x| x.as_str())
            .map(str::to_owned),
    })
}

/// Why a probe could not produce a verdict about the upstream call itself.
enum CallEnd {
    Answered {
        status: u16,
        body: bytes::Bytes,
        failure: Option<UpstreamFailure>,
    },
    NoAnswer,
}

async fn call_usage(state: &AppState, account: &Account, token: &str) -> CallEnd {
    let mut url = format!(
        "{}/getUsageLimits?origin=AI_EDITOR&resourceType=AGENTIC_REQUEST",
        account.api_base
    );
    if let Some(arn) = account.profile_arn() {
        url.push_str("&profileArn=");
        url.push_str(&encode_query(arn));
    }
    let timeout = state
        .runtime()
        .upstream
        .first_event_timeout
        .min(Duration::from_secs(30));
    let sent = state
        .upstream
        .http()
        .get(url)
        .bearer_auth(token)
        .timeout(timeout)
        .send()
        .await;
    let Ok(resp) = sent else {
        return CallEnd::NoAnswer;
    };
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let error_type = header("x-amzn-errortype");
    let retry_after = header("retry-after");
    let Ok(body) = resp.bytes().await else {
        return CallEnd::NoAnswer;
    };
    let failure = (status >= 400)
        .then(|| classify_http_error(status, error_type.as_deref(), retry_after.as_deref(), &body));
    CallEnd::Answered {
        status,
        body,
        failure,
    }
}

/// Percent-encodes a query value (ARNs carry `:` and `/`).
fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Probes one account now and applies the result to the pool.
pub async fn probe(state: &AppState, account: Arc<Account>) -> ProbeReport {
    let started = Instant::now();
    let id = account.id().clone();
    let mut transitions: Vec<Transition> = Vec::new();
    let mut http_status = None;
    let mut usage = None;
    let result: Result<(), UpstreamFailure> = async {
        let mut token = match account.tokens.access_token().await {
            Ok(t) => t,
            Err(e) => {
                let outcome = if e.is_permanent() {
                    qgate_pool::Outcome::RefreshDenied
                } else {
                    qgate_pool::Outcome::RefreshFailed
                };
                state.metrics.record_refresh("health_check", e.code());
                transitions.extend(state.runtime().pool.report(&id, outcome, now_ms()));
                return Err(UpstreamFailure::Token);
            }
        };
        let mut refreshed = false;
        loop {
            match call_usage(state, &account, token.expose()).await {
                CallEnd::NoAnswer => return Err(UpstreamFailure::Transient { status: None }),
                CallEnd::Answered {
                    status,
                    body,
                    failure,
                } => {
                    http_status = Some(status);
                    let Some(failure) = failure else {
                        usage = usage_info(&body);
                        return Ok(());
                    };
                    if matches!(failure.retry_advice(), RetryAdvice::RefreshAndRetrySame)
                        && !refreshed
                    {
                        refreshed = true;
                        match account.tokens.force_refresh(&token).await {
                            Ok(t) => {
                                state.metrics.record_refresh("health_check", "success");
                                token = t;
                                continue;
                            }
                            Err(e) => {
                                state.metrics.record_refresh("health_check", e.code());
                                return Err(failure);
                            }
                        }
                    }
                    return Err(failure);
                }
            }
        }
    }
    .await;
    let rt = state.runtime();
    let now = now_ms();
    let label = match &result {
        Ok(()) => {
            transitions.extend(
                rt.pool
                    .probe_succeeded(id.as_str(), now)
                    .unwrap_or_default(),
            );
            "success"
        }
        Err(failure) => {
            // A probe is not a client request: a "client" fault here means the probe
            // itself is wrong, which says nothing about the account.
            if !matches!(failure, UpstreamFailure::Client(_)) {
                let outcome = pool_outcome(failure, "");
                transitions.extend(rt.pool.report(&id, outcome, now));
            }
            failure.label()
        }
    };
    state.metrics.record_transitions(&transitions);
    state.metrics.record_health_check(id.as_str(), label);
    let status = rt.pool.status(id.as_str(), now);
    tracing::info!(account = %id, result = label, http_status, transitions = transitions.len(),
        "health check");
    ProbeReport {
        account: id.to_string(),
        ok: result.is_ok(),
        result: label.to_owned(),
        http_status,
        latency_ms: started.elapsed().as_millis() as u64,
        state: status
            .as_ref()
            .map_or("removed", |s| s.state.kind().as_str())
            .to_owned(),
        breaker: status
            .as_ref()
            .map_or("closed", |s| s.breaker.phase.as_str())
            .to_owned(),
        transitions: transitions
            .iter()
            .map(|t| format!("{} -> {}", t.from.as_str(), t.to.as_str()))
            .collect(),
        usage,
    }
}

/// Whether the background check should probe this account.
pub fn wants_probe(s: &AccountStatus) -> bool {
    match s.state.kind() {
        StateKind::Suspended
        | StateKind::RefreshDenied
        | StateKind::QuotaExhausted
        | StateKind::Disabled => false,
        StateKind::Throttled => true,
        StateKind::Active
        | StateKind::ModelUnavailable
        | StateKind::BreakerClosed
        | StateKind::BreakerOpen
        | StateKind::BreakerHalfOpen => match s.breaker.phase {
            BreakerPhase::Open | BreakerPhase::HalfOpen => !s.breaker.probe_in_flight,
            BreakerPhase::Closed => false,
        },
    }
}

/// Every `interval`, probes the accounts that wait to come back, one after another (a
/// handful at most in practice; sequential keeps the upstream load trivial).
pub async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        let interval = state
            .config
            .load()
            .health_check_interval
            .max(Duration::from_millis(100));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let rt = state.runtime();
        let due: Vec<Arc<Account>> = rt
            .pool
            .snapshot(now_ms())
            .iter()
            .filter(|s| wants_probe(s))
            .filter_map(|s| rt.accounts.get(&s.id).cloned())
            .collect();
        for account in due {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = probe(&state, account) => {}
            }
        }
    }
}
