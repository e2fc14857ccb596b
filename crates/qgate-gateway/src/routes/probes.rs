//! `GET`/`HEAD /` (Claude Code probes it), `GET /health` and `GET /metrics`.
//!
//! `/` and `/health` are public: load balancers and orchestrators call them without
//! credentials. `/metrics` needs the admin key when one is set, unless `METRICS_PUBLIC`.

use super::admin::views::{BreakerCounts, HealthCounts, HealthView};
use super::admin::{AdminError, WRONG_ADMIN_KEY, has_admin_key};
use crate::dispatch::now_ms;
use crate::health_check::PoolStatus;
use crate::middleware::RequestCtx;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn root() -> Response {
    Json(json!({
        "status": "ok",
        "service": "qgate",
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

pub async fn root_head() -> StatusCode {
    StatusCode::OK
}

/// `healthy` when every enabled account can take requests, `degraded` when some can,
/// `unhealthy` (HTTP 503) when none can; with counts per state.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = HealthView), (status = 503, body = HealthView)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let rt = state.runtime();
    let h = rt.pool.health(now_ms());
    let status = PoolStatus::of(&h);
    let body = HealthView {
        status: status.as_str().to_owned(),
        accounts: HealthCounts {
            total: h.total,
            available: h.routable,
            unavailable: h.total - h.routable,
        },
        states: h
            .by_state
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        breakers: BreakerCounts {
            open: h.breaker_open,
            half_open: h.breaker_half_open,
        },
        in_flight: h.in_flight,
        soonest_recovery_ms: h.soonest_recovery_ms,
        redis: state
            .cluster
            .as_ref()
            .map(|c| if c.is_redis_up() { "up" } else { "down" }.to_owned()),
        shared_tokens: state.cluster.as_ref().map(|c| c.shares_secrets()),
    };
    let code = match status {
        PoolStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        PoolStatus::Healthy | PoolStatus::Degraded => StatusCode::OK,
    };
    (code, Json(body)).into_response()
}

/// Prometheus text exposition. Needs the admin key when one is set, unless
/// `METRICS_PUBLIC=true`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401)))]
pub async fn metrics(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
) -> Response {
    let public = state.config.load().security.metrics_public;
    if !public && has_admin_key(&state, &headers) == Some(false) {
        return AdminError::Unauthenticated(WRONG_ADMIN_KEY.into())
            .into_response_with_id(Some(&ctx.request_id));
    }
    let mut resp = state.metrics.encode().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
