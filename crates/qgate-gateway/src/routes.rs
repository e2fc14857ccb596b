//! The HTTP surface: the Anthropic API (`/v1/...`, behind client auth), public probes
//! (`/`, `/health`), metrics and the admin API. Unknown paths and methods get
//! Anthropic-shaped errors; query strings such as `?beta=true` are ignored.

pub mod admin;
mod api;
pub mod messages;
mod probes;

use crate::error::GatewayError;
use crate::middleware::{ClientAuthLayer, RequestContext, RequestCtx};
use crate::state::AppState;
use axum::Extension;
use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};

/// The service connections are served by: the router, each request run in its context
/// (request id, log lines).
pub fn app(state: AppState) -> RequestContext<Router> {
    RequestContext::new(router(state))
}

/// The whole router.
fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/messages", post(messages::handle))
        .route("/v1/messages/count_tokens", post(api::count_tokens))
        .route("/v1/models", get(api::list_models))
        .route("/v1/models/{id}", get(api::get_model))
        .route_layer(ClientAuthLayer::new(state.clone()));
    let public = Router::new().route("/", get(probes::root).head(probes::root_head));
    Router::new()
        .merge(api)
        .merge(public)
        .merge(admin::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(Extension(ctx): Extension<RequestCtx>) -> Response {
    GatewayError::NotFound.into_response_with_id(Some(&ctx.request_id))
}

async fn method_not_allowed(Extension(ctx): Extension<RequestCtx>) -> Response {
    GatewayError::BadRequest("method not allowed for this endpoint".into())
        .into_response_with_id(Some(&ctx.request_id))
}
