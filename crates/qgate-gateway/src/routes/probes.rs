//! `GET`/`HEAD /` (Claude Code probes it), `GET /health` and `GET /metrics`.

use crate::dispatch::now_ms;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
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
/// `unhealthy` (HTTP 503) when none can.
pub async fn health(State(state): State<AppState>) -> Response {
    let rt = state.runtime();
    let h = rt.pool.health(now_ms());
    let status = if h.routable == 0 {
        "unhealthy"
    } else if h.routable < h.total {
        "degraded"
    } else {
        "healthy"
    };
    let body = json!({
        "status": status,
        "accounts": {
            "total": h.total,
            "available": h.routable,
            "unavailable": h.total - h.routable,
        },
        "states": h.by_state,
    });
    let code = if h.routable == 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut resp = state.metrics.encode().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
