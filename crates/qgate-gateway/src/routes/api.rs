//! `count_tokens` and `models`.

use super::messages::{parse_json, read_body};
use crate::error::GatewayError;
use crate::middleware::RequestCtx;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use qgate_anthropic::models::ModelList;
use qgate_anthropic::{CountTokensRequest, MessagesRequest};
use qgate_translate::request::{RequestOptions, translate};
use serde_json::json;

/// `POST /v1/messages/count_tokens`: the same estimator and calibration as
/// `message_start`, over the same translated payload.
pub async fn count_tokens(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    body: Body,
) -> Response {
    match count(&state, body).await {
        Ok(n) => Json(json!({ "input_tokens": n })).into_response(),
        Err(e) => e.into_response_with_id(Some(&ctx.request_id)),
    }
}

async fn count(state: &AppState, body: Body) -> Result<u64, GatewayError> {
    let bytes = read_body(body, state.server.max_body_bytes).await?;
    let req: CountTokensRequest = parse_json(&bytes)?;
    let req = MessagesRequest::from(req);
    if req.messages.is_empty() {
        return Err(GatewayError::BadRequest(
            "messages: at least one message is required".into(),
        ));
    }
    let rt = state.runtime();
    let model = rt
        .models
        .resolve(&req.model)
        .map_err(|e| GatewayError::UnknownModel(e.to_string()))?;
    let translated = translate(
        &req,
        &RequestOptions {
            model_id: &model.upstream_id,
            origin: qgate_amazonq::Dialect::QCli.origin(),
            profile_arn: None,
            session_id: None,
        },
    )
    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok(state.calibrated(&model.upstream_id, translated.input_tokens))
}

/// `GET /v1/models`.
pub async fn list_models(State(state): State<AppState>) -> Response {
    Json(ModelList::new(state.runtime().models.list())).into_response()
}

/// `GET /v1/models/{id}`.
pub async fn get_model(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Response {
    match state
        .runtime()
        .models
        .list()
        .into_iter()
        .find(|m| m.id == id)
    {
        Some(m) => Json(m).into_response(),
        None => GatewayError::UnknownModel(format!("model: {id}"))
            .into_response_with_id(Some(&ctx.request_id)),
    }
}
