//! `count_tokens` and `models`.

use super::messages::{parse_json, read_body, resolve_and_translate};
use crate::error::GatewayError;
use crate::middleware::RequestCtx;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use qgate_anthropic::models::{ModelInfo, ModelList};
use qgate_anthropic::{CountTokensRequest, MessagesRequest};
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
    let bytes = read_body(
        body,
        state.server.max_body_bytes,
        state.server.body_read_timeout,
    )
    .await?;
    let req: CountTokensRequest = parse_json(&bytes)?;
    let req = MessagesRequest::from(req);
    if req.messages.is_empty() {
        return Err(GatewayError::BadRequest(
            "messages: at least one message is required".into(),
        ));
    }
    let rt = state.runtime();
    let (model, translated) = resolve_and_translate(&rt, &req, None)?;
    Ok(state.calibrated(&model.upstream_id, translated.input_tokens))
}

/// `GET /v1/models` query: Anthropic's cursor pagination.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ModelsQuery {
    limit: Option<usize>,
    after_id: Option<String>,
    before_id: Option<String>,
}

/// `GET /v1/models`, paginated like Anthropic's (`limit` 1–1000, default 20;
/// `after_id` / `before_id` cursors).
pub async fn list_models(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<Query<ModelsQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return GatewayError::BadRequest("invalid query parameters for /v1/models".into())
            .into_response_with_id(Some(&ctx.request_id));
    };
    match paginate(state.runtime().models.list(), &q) {
        Ok(list) => Json(list).into_response(),
        Err(e) => e.into_response_with_id(Some(&ctx.request_id)),
    }
}

fn paginate(all: Vec<ModelInfo>, q: &ModelsQuery) -> Result<ModelList, GatewayError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(GatewayError::BadRequest(
            "limit: must be between 1 and 1000".into(),
        ));
    }
    let position = |id: &str| {
        all.iter().position(|m| m.id == id).ok_or_else(|| {
            GatewayError::BadRequest(format!("no model with id `{id}` to paginate from"))
        })
    };
    let (start, end) = match (&q.after_id, &q.before_id) {
        (Some(_), Some(_)) => {
            return Err(GatewayError::BadRequest(
                "after_id and before_id cannot be used together".into(),
            ));
        }
        (Some(after), None) => {
            let s = position(after)? + 1;
            (s, (s + limit).min(all.len()))
        }
        (None, Some(before)) => {
            let e = position(before)?;
            (e.saturating_sub(limit), e)
        }
        (None, None) => (0, limit.min(all.len())),
    };
    let has_more = if q.before_id.is_some() {
        start > 0
    } else {
        end < all.len()
    };
    let mut list = ModelList::new(all[start..end].to_vec());
    list.has_more = has_more;
    Ok(list)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn models(n: usize) -> Vec<ModelInfo> {
        (0..n)
            .map(|i| ModelInfo {
                kind: "model".into(),
                id: format!("m{i}"),
                display_name: format!("M{i}"),
                created_at: "2026-01-01T00:00:00Z".into(),
            })
            .collect()
    }

    fn ids(l: &ModelList) -> Vec<&str> {
        l.data.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn pages_forward_and_back() {
        let q = |limit, after: Option<&str>, before: Option<&str>| ModelsQuery {
            limit,
            after_id: after.map(str::to_owned),
            before_id: before.map(str::to_owned),
        };
        let p = paginate(models(5), &q(Some(2), None, None)).unwrap();
        assert_eq!(ids(&p), ["m0", "m1"]);
        assert!(p.has_more);
        assert_eq!(p.first_id.as_deref(), Some("m0"));
        assert_eq!(p.last_id.as_deref(), Some("m1"));
        let p = paginate(models(5), &q(Some(2), Some("m1"), None)).unwrap();
        assert_eq!(ids(&p), ["m2", "m3"]);
        assert!(p.has_more);
        let p = paginate(models(5), &q(Some(2), Some("m3"), None)).unwrap();
        assert_eq!(ids(&p), ["m4"]);
        assert!(!p.has_more);
        let p = paginate(models(5), &q(Some(2), None, Some("m2"))).unwrap();
        assert_eq!(ids(&p), ["m0", "m1"]);
        assert!(!p.has_more);
        let p = paginate(models(5), &q(None, None, None)).unwrap();
        assert_eq!(p.data.len(), 5);
        assert!(!p.has_more);
        assert!(paginate(models(5), &q(Some(0), None, None)).is_err());
        assert!(paginate(models(5), &q(None, Some("nope"), None)).is_err());
    }
}
