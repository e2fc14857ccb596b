//! `/admin/...`: config reload, client-key usage, and the OpenAPI document.

use super::accounts::audit;
use super::{AdminError, respond};
use crate::dispatch::now_ms;
use crate::keys::KeyUsage;
use crate::middleware::RequestCtx;
use crate::reload::{ReloadError, ReloadReport};
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Re-reads the configuration file (as `SIGHUP` does) and applies it without dropping
/// in-flight requests. A bad file is refused with every problem listed; the running
/// configuration stays.
#[utoipa::path(post, path = "/admin/reload", tag = "admin",
    responses((status = 200, body = ReloadReport), (status = 400)))]
pub async fn reload(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
) -> Response {
    let result = crate::reload::reload(&state).await.map_err(|e| match e {
        ReloadError::NoSource => AdminError::BadRequest(e.to_string()),
        ReloadError::Invalid(errors) => AdminError::Invalid {
            message: format!(
                "configuration rejected ({} problem(s)); the running configuration is unchanged",
                errors.0.len()
            ),
            problems: errors.0,
        },
        ReloadError::Apply(e) => AdminError::from(e),
    });
    audit(&state, "reload", &result);
    respond(&ctx, StatusCode::OK, result)
}

/// Client keys: names, limits and usage counters (never the keys).
#[utoipa::path(get, path = "/admin/keys", tag = "admin",
    responses((status = 200, body = Vec<KeyUsage>)))]
pub async fn keys(State(state): State<AppState>) -> Json<Vec<KeyUsage>> {
    let ring = state.keys.load();
    Json(state.key_book.usage(ring.entries(), now_ms()))
}

/// The document, rendered once at startup.
#[derive(Debug, Clone)]
pub struct OpenApiJson(pub Arc<String>);

/// This document.
#[utoipa::path(get, path = "/admin/openapi.json", tag = "admin",
    responses((status = 200, description = "OpenAPI 3.1 document of the admin API")))]
pub async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    let mut resp = doc.0.as_str().to_owned().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
