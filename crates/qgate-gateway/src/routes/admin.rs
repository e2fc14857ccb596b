//! The admin API: the seed's account endpoints and ours (add, remove with drain, patch,
//! refresh, probe), config reload, client-key usage, and the OpenAPI document of all of
//! it at `/admin/openapi.json`.
//!
//! Routes are registered through `utoipa-axum` from the handlers' `#[utoipa::path]`
//! annotations, so the document and the router come from the same place and cannot
//! drift. Who may call: with `ADMIN_API_KEY` set, every admin route needs it
//! (`Authorization: Bearer` or `x-admin-key`, compared in constant time); without one,
//! read-only routes stay open (as in the seed) and changes are refused with 403 and a
//! message saying how to set a key.

mod accounts;
mod ops;
pub mod views;

use crate::middleware::RequestCtx;
use crate::state::AppState;
use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every admin failure, and its one mapping to an Anthropic-shaped error body.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("account `{0}` not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Invalid {
        message: String,
        problems: Vec<crate::config::Problem>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// The upstream (token service) refused or failed.
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found_error"),
            AdminError::InvalidId(_) | AdminError::BadRequest(_) | AdminError::Invalid { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error")
            }
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "invalid_request_error"),
            AdminError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "authentication_error"),
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_error"),
            AdminError::Upstream(_) => (StatusCode::BAD_GATEWAY, "api_error"),
            AdminError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
        }
    }

    pub fn into_response_with_id(self, request_id: Option<&str>) -> Response {
        let (status, kind) = self.status_and_kind();
        let mut error = json!({"type": kind, "message": self.to_string()});
        if let AdminError::Invalid { problems, .. } = &self {
            error["problems"] = problems
                .iter()
                .map(|p| json!({"source": p.source, "message": p.message}))
                .collect();
        }
        let mut body = json!({"type": "error", "error": error});
        if let Some(id) = request_id {
            body["request_id"] = json!(id);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            resp.headers_mut().insert("request-id", id);
        }
        resp
    }
}

impl From<crate::reload::ChangeError> for AdminError {
    fn from(e: crate::reload::ChangeError) -> Self {
        match e {
            crate::reload::ChangeError::Invalid(problems) => AdminError::Invalid {
                message: format!("the change is invalid ({} problem(s))", problems.len()),
                problems,
            },
            crate::reload::ChangeError::Save(m) => AdminError::Internal(m),
        }
    }
}

/// Handlers' result: JSON or an admin error with the request id.
pub(crate) type AdminResult<T> = Result<T, AdminError>;

/// Wraps a handler's result into a response carrying the request id.
pub(crate) fn respond<T: serde::Serialize>(
    ctx: &RequestCtx,
    status: StatusCode,
    result: AdminResult<T>,
) -> Response {
    match result {
        Ok(v) => (status, axum::Json(v)).into_response(),
        Err(e) => e.into_response_with_id(Some(&ctx.request_id)),
    }
}

/// The admin credential a caller presented: `x-admin-key`, else `Authorization: Bearer`.
fn presented_admin_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-admin-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Whether the request carries the configured admin key (digests compared in constant
/// time, so neither content nor length leaks).
pub(crate) fn has_admin_key(state: &AppState, headers: &HeaderMap) -> Option<bool> {
    let cfg = state.config.load();
    let key = cfg.security.admin_api_key.as_ref()?;
    let expected = crate::middleware::digest(key.expose_secret());
    let presented = presented_admin_key(headers).map(crate::middleware::digest);
    Some(presented.is_some_and(|p| bool::from(p.ct_eq(&expected))))
}

pub(crate) const NO_ADMIN_KEY: &str = "admin changes are disabled because no admin key is \
    configured. Set ADMIN_API_KEY (or admin_api_key in the config file) and send it as \
    `Authorization: Bearer <key>` or `x-admin-key: <key>`.";

pub(crate) const WRONG_ADMIN_KEY: &str = "this endpoint needs the admin key: send \
    `Authorization: Bearer <ADMIN_API_KEY>` or `x-admin-key: <ADMIN_API_KEY>`.";

async fn admin_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestCtx>()
        .map(|c| c.request_id.clone());
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    let refusal = match has_admin_key(&state, req.headers()) {
        Some(true) => None,
        Some(false) => Some(AdminError::Unauthenticated(WRONG_ADMIN_KEY.into())),
        None if read_only => None,
        None => Some(AdminError::Forbidden(NO_ADMIN_KEY.into())),
    };
    match refusal {
        None => next.run(req).await,
        Some(e) => {
            state.metrics.record_admin_action("auth", "refused");
            tracing::info!(request_id = ?request_id, outcome = "admin_refused", "admin call refused");
            e.into_response_with_id(request_id.as_deref())
        }
    }
}

#[derive(OpenApi)]
#[openapi(info(
    title = "qgate admin API",
    description = "Operate the Amazon Q account pool: inspect, add, remove, patch, \
            refresh, probe; reload the configuration; client key usage. With ADMIN_API_KEY \
            set every route here needs it (Authorization: Bearer or x-admin-key); without \
            it read-only routes are open and changes are refused."
))]
struct AdminDoc;

/// The admin and operations routes (auth applied), and their OpenAPI document.
pub fn router(state: AppState) -> Router<AppState> {
    let (admin, doc) = OpenApiRouter::with_openapi(AdminDoc::openapi())
        .routes(routes!(accounts::stats))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(
            accounts::get_one,
            accounts::patch,
            accounts::delete
        ))
        .routes(routes!(accounts::enable))
        .routes(routes!(accounts::disable))
        .routes(routes!(accounts::reset))
        .routes(routes!(accounts::refresh))
        .routes(routes!(accounts::probe))
        .routes(routes!(ops::reload))
        .routes(routes!(ops::keys))
        .routes(routes!(ops::openapi_json))
        .route_layer(from_fn_with_state(state.clone(), admin_auth))
        .split_for_parts();
    let (public, public_doc) = OpenApiRouter::new()
        .routes(routes!(super::probes::health))
        .routes(routes!(super::probes::metrics))
        .split_for_parts();
    let mut doc = doc;
    doc.merge(public_doc);
    let json = std::sync::Arc::new(doc.to_pretty_json().unwrap_or_default());
    admin.merge(public).layer(Extension(ops::OpenApiJson(json)))
}
