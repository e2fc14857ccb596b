//! `/accounts...`: the seed's stats, detail, enable, disable and reset, and ours: list,
//! add, patch, remove (drained), refresh and probe.

use super::views::{AccountView, ActionResult, ClusterStatsView, CountsView, StatsView};
use super::{AdminError, AdminResult, respond};
use crate::dispatch::now_ms;
use crate::health_check::{PoolStatus, ProbeReport};
use crate::middleware::RequestCtx;
use crate::reload::{self, AccountPatch, NewAccount, RemoveReport};
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use qgate_pool::{AccountId, Transition};
use serde::Deserialize;
use std::time::Duration;

/// Path ids are checked before anything else: no separators, no control characters.
fn parse_id(raw: &str) -> AdminResult<AccountId> {
    AccountId::new(raw).map_err(|e| AdminError::InvalidId(format!("invalid account id: {e}")))
}

pub(super) fn view(state: &AppState, id: &str) -> AdminResult<AccountView> {
    let rt = state.runtime();
    let status = rt
        .pool
        .status(id, now_ms())
        .ok_or_else(|| AdminError::NotFound(id.to_owned()))?;
    let cfg = state.config.load();
    let origin = state
        .account_admin
        .changes()
        .origin(&cfg, id)
        .unwrap_or(reload::Origin::Config);
    Ok(AccountView::build(
        &status,
        rt.accounts.get(id).map(|a| a.as_ref()),
        origin,
        state.account_admin.is_draining(id),
    ))
}

fn all_views(state: &AppState) -> Vec<AccountView> {
    let rt = state.runtime();
    let cfg = state.config.load();
    let changes = state.account_admin.changes();
    rt.pool
        .snapshot(now_ms())
        .iter()
        .map(|s| {
            let id = s.id.as_str();
            AccountView::build(
                s,
                rt.accounts.get(id).map(|a| a.as_ref()),
                changes.origin(&cfg, id).unwrap_or(reload::Origin::Config),
                state.account_admin.is_draining(id),
            )
        })
        .collect()
}

fn describe(transitions: &[Transition]) -> Vec<String> {
    transitions
        .iter()
        .map(|t| format!("{} -> {}", t.from.as_str(), t.to.as_str()))
        .collect()
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> AdminResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| AdminError::BadRequest(format!("invalid request body: {e}")))
}

/// Pool totals and every account (the seed's fields first). In multi-instance mode the
/// totals count every instance; this instance's own are under `cluster`.
#[utoipa::path(get, path = "/accounts/stats", tag = "accounts",
    responses((status = 200, body = StatsView)))]
pub async fn stats(State(state): State<AppState>) -> Json<StatsView> {
    let rt = state.runtime();
    let health = rt.pool.health(now_ms());
    let mut accounts = all_views(&state);
    let instance_requests = accounts.iter().map(|a| a.request_count).sum();
    let instance_errors = accounts.iter().map(|a| a.error_count).sum();
    let instance_successes = accounts.iter().map(|a| a.success_count).sum();
    let mut totals = (instance_requests, instance_errors, instance_successes);
    let mut cluster_view = None;
    if let Some(cluster) = &state.cluster {
        let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
        let counts = cluster.cluster_counts(&state, &ids).await;
        if let Some(counts) = &counts {
            totals = (
                counts.iter().map(|c| c.requests).sum(),
                counts.iter().map(|c| c.errors).sum(),
                counts.iter().map(|c| c.successes).sum(),
            );
        }
        let per_account = counts.unwrap_or_default();
        let totals_cluster_wide = !per_account.is_empty() || accounts.is_empty();
        for (view, c) in accounts.iter_mut().zip(per_account) {
            view.cluster = Some(CountsView {
                request_count: c.requests,
                error_count: c.errors,
                success_count: c.successes,
            });
        }
        cluster_view = Some(ClusterStatsView {
            instance: cluster.instance().to_owned(),
            redis: if cluster.is_redis_up() { "up" } else { "down" }.to_owned(),
            totals_cluster_wide,
            instance_requests,
            instance_errors,
            instance_successes,
        });
    }
    Json(StatsView {
        total_accounts: health.total,
        available_accounts: health.routable,
        total_requests: totals.0,
        total_errors: totals.1,
        total_successes: totals.2,
        strategy: rt.pool.strategy().as_str().to_owned(),
        circuit_breaker_enabled: rt.pool.config().breaker.enabled,
        status: PoolStatus::of(&health).as_str().to_owned(),
        in_flight: health.in_flight,
        queued: state.queued.load(std::sync::atomic::Ordering::Relaxed),
        states: health
            .by_state
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        accounts,
        cluster: cluster_view,
    })
}

/// Every account.
#[utoipa::path(get, path = "/accounts", tag = "accounts",
    responses((status = 200, body = Vec<AccountView>)))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<AccountView>> {
    Json(all_views(&state))
}

/// One account.
#[utoipa::path(get, path = "/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = AccountView), (status = 404), (status = 400)))]
pub async fn get_one(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    respond(
        &ctx,
        StatusCode::OK,
        parse_id(&id).and_then(|id| view(&state, id.as_str())),
    )
}

/// Adds an account at run time (persisted; credentials stored only in the 0600 state
/// file). Body: the `[[accounts]]` shape of the config file.
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 400), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    body: Bytes,
) -> Response {
    let result = async {
        let new: NewAccount = parse_body(&body)?;
        let id = parse_id(&new.id)?;
        new.to_config().map_err(|problems| AdminError::Invalid {
            message: format!("the account is invalid ({} problem(s))", problems.len()),
            problems,
        })?;
        if state.runtime().accounts.contains_key(id.as_str()) {
            return Err(AdminError::Conflict(format!(
                "account `{id}` already exists"
            )));
        }
        reload::change_accounts(&state, |changes, _cfg| {
            changes.removed.retain(|r| r != &id);
            changes.added.push(new);
            Ok(())
        })
        .await?;
        view(&state, id.as_str())
    }
    .await;
    audit(&state, "add", &result);
    respond(&ctx, StatusCode::CREATED, result)
}

/// Changes weight, priority, limits, allowed models or enablement; only the fields
/// present change (`0` clears a limit, `[]` allows every model). Persisted.
#[utoipa::path(patch, path = "/accounts/{id}", tag = "accounts", request_body = AccountPatch,
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = AccountView), (status = 400), (status = 404)))]
pub async fn patch(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        let patch: AccountPatch = parse_body(&body)?;
        if !state.runtime().accounts.contains_key(id.as_str()) {
            return Err(AdminError::NotFound(id.to_string()));
        }
        if patch.weight == Some(0) {
            return Err(AdminError::BadRequest("weight must be at least 1".into()));
        }
        if patch.changes_settings() {
            reload::change_accounts(&state, |changes, _cfg| {
                if let Some(added) = changes.added.iter_mut().find(|a| a.id == id.as_str()) {
                    added.apply(&patch);
                } else {
                    changes.patched.entry(id.clone()).or_default().merge(&patch);
                }
                Ok(())
            })
            .await?;
        }
        if let Some(enabled) = patch.enabled {
            let pool = state.runtime().pool.clone();
            let t = if enabled {
                pool.enable(id.as_str())
            } else {
                pool.disable(id.as_str())
            }
            .map_err(|_| AdminError::NotFound(id.to_string()))?;
            state.metrics.record_transitions(&t);
            state.account_admin.save(&state.runtime()).await?;
        }
        view(&state, id.as_str())
    }
    .await;
    audit(&state, "patch", &result);
    respond(&ctx, StatusCode::OK, result)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DrainQuery {
    /// Seconds to wait for in-flight requests before removing anyway (default 30).
    timeout_secs: Option<u64>,
}

/// Drains and removes an account: out of rotation at once, in-flight requests finish,
/// then it is removed (persisted) and its token cache deleted.
#[utoipa::path(delete, path = "/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "account id"), DrainQuery),
    responses((status = 200, body = RemoveReport), (status = 404), (status = 400)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
    Query(q): Query<DrainQuery>,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        if !state.runtime().accounts.contains_key(id.as_str()) {
            return Err(AdminError::NotFound(id.to_string()));
        }
        let timeout = Duration::from_secs(q.timeout_secs.unwrap_or(30).min(3600));
        Ok(reload::remove_account(&state, &id, timeout).await?)
    }
    .await;
    audit(&state, "remove", &result);
    respond(&ctx, StatusCode::OK, result)
}

async fn pool_action(
    state: &AppState,
    raw_id: &str,
    action: &'static str,
    past: &str,
    f: impl FnOnce(&qgate_pool::Pool, &str) -> Result<Vec<Transition>, qgate_pool::PoolError>,
) -> AdminResult<ActionResult> {
    let id = parse_id(raw_id)?;
    let pool = state.runtime().pool.clone();
    let t = f(&pool, id.as_str()).map_err(|_| AdminError::NotFound(id.to_string()))?;
    state.metrics.record_transitions(&t);
    state.account_admin.save(&state.runtime()).await?;
    tracing::info!(account = %id, action, "admin action");
    Ok(ActionResult {
        status: "success".into(),
        message: format!("Account '{id}' {past}"),
        transitions: describe(&t),
        account: view(state, id.as_str())?,
    })
}

/// Puts the account back in rotation (even one disabled in the configuration).
#[utoipa::path(post, path = "/accounts/{id}/enable", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = ActionResult), (status = 404)))]
pub async fn enable(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    let r = pool_action(&state, &id, "enable", "enabled", |p, id| p.enable(id)).await;
    audit(&state, "enable", &r);
    respond(&ctx, StatusCode::OK, r)
}

/// Takes the account out of rotation; in-flight requests finish.
#[utoipa::path(post, path = "/accounts/{id}/disable", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = ActionResult), (status = 404)))]
pub async fn disable(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    let r = pool_action(&state, &id, "disable", "disabled", |p, id| p.disable(id)).await;
    audit(&state, "disable", &r);
    respond(&ctx, StatusCode::OK, r)
}

/// Closes the breaker and clears throttle, quota, suspension and refresh denial.
#[utoipa::path(post, path = "/accounts/{id}/reset", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = ActionResult), (status = 404)))]
pub async fn reset(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    let r = pool_action(&state, &id, "reset", "reset", |p, id| p.reset(id, now_ms())).await;
    audit(&state, "reset", &r);
    respond(&ctx, StatusCode::OK, r)
}

/// Forces a token refresh now; success also lifts a refresh-denied state.
#[utoipa::path(post, path = "/accounts/{id}/refresh", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = ActionResult), (status = 404), (status = 502)))]
pub async fn refresh(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        let rt = state.runtime();
        let account = rt
            .accounts
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| AdminError::NotFound(id.to_string()))?;
        match account.tokens.refresh_now().await {
            Ok(_) => {
                state.metrics.record_refresh("admin", "success");
                let t = rt
                    .pool
                    .refresh_succeeded(id.as_str(), now_ms())
                    .unwrap_or_default();
                state.metrics.record_transitions(&t);
                state.account_admin.save(&state.runtime()).await?;
                Ok(ActionResult {
                    status: "success".into(),
                    message: format!("Account '{id}' token refreshed"),
                    transitions: describe(&t),
                    account: view(&state, id.as_str())?,
                })
            }
            Err(e) => {
                state.metrics.record_refresh("admin", e.code());
                let outcome = if e.is_permanent() {
                    qgate_pool::Outcome::RefreshDenied
                } else {
                    qgate_pool::Outcome::RefreshFailed
                };
                let t = rt.pool.report(&id, outcome, now_ms());
                state.metrics.record_transitions(&t);
                Err(AdminError::Upstream(format!("token refresh failed: {e}")))
            }
        }
    }
    .await;
    audit(&state, "refresh", &result);
    respond(&ctx, StatusCode::OK, result)
}

/// Runs the active health check on the account now (the cheap `getUsageLimits` call)
/// and applies its result to the pool.
#[utoipa::path(post, path = "/accounts/{id}/probe", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = ProbeReport), (status = 404)))]
pub async fn probe(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        let account = state
            .runtime()
            .accounts
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| AdminError::NotFound(id.to_string()))?;
        Ok(crate::health_check::probe(&state, account).await)
    }
    .await;
    audit(&state, "probe", &result);
    respond(&ctx, StatusCode::OK, result)
}

pub(super) fn audit<T>(state: &AppState, action: &str, result: &AdminResult<T>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(AdminError::NotFound(_)) => "not_found",
        Err(
            AdminError::InvalidId(_)
            | AdminError::BadRequest(_)
            | AdminError::Invalid { .. }
            | AdminError::Conflict(_),
        ) => "rejected",
        Err(AdminError::Unauthenticated(_) | AdminError::Forbidden(_)) => "refused",
        Err(AdminError::Upstream(_) | AdminError::Internal(_)) => "error",
    };
    state.metrics.record_admin_action(action, outcome);
    tracing::info!(action, outcome, "admin action");
}
