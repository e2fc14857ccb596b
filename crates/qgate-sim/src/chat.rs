//! The chat endpoints of both dialects, with the service's checks in its order: the
//! operation (dialect headers), the bearer token, account faults, the request rules, the
//! model id, then the reply.
//!
//! Q-CLI: `POST /` with `X-Amz-Target` and `application/x-amz-json-1.0`. Kiro:
//! `POST /generateAssistantResponse` with `application/json`. Same body, same reply except
//! that only Q-CLI streams begin with `initial-response`.

use crate::body::ReplyBody;
use crate::fault::FaultSpec;
use crate::reply::{self, ReplyInput};
use crate::script;
use crate::state::{BearerCheck, InFlight, SimState, bump};
use crate::wire::ServiceError;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qgate_amazonq::Dialect;
use qgate_amazonq::validate::validate_json;

/// Model ids the simulated service accepts (a request without one is accepted too).
pub const KNOWN_MODELS: &[&str] = &[
    "auto",
    "claude-sonnet-4",
    "claude-sonnet-4.5",
    "claude-sonnet-4.6",
    "claude-haiku-4.5",
    "claude-opus-4.5",
    "claude-opus-4.6",
    "claude-opus-4.7",
    "claude-opus-4.8",
    "claude-sonnet-5",
    "claude-opus-5",
];

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// `POST /`: the AWS JSON 1.0 RPC dialect; the operation is named by `X-Amz-Target`.
pub(crate) async fn q_cli(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target_ok = headers
        .get("x-amz-target")
        .is_some_and(|v| v.as_bytes() == Dialect::X_AMZ_TARGET.as_bytes());
    if !target_ok || !content_type_is(&headers, Dialect::QCli.content_type()) {
        return ServiceError::unknown_operation().into_response_for(Dialect::QCli);
    }
    serve(&state, Dialect::QCli, &headers, body)
}

/// `POST /generateAssistantResponse`: the REST-JSON dialect.
pub(crate) async fn kiro(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type_is(&headers, Dialect::Kiro.content_type()) {
        return ServiceError::unsupported_media_type().into_response_for(Dialect::Kiro);
    }
    serve(&state, Dialect::Kiro, &headers, body)
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

fn serve(state: &SimState, dialect: Dialect, headers: &HeaderMap, body: Bytes) -> Response {
    let account = match bearer(headers).map(|t| state.check_bearer(t)) {
        Some(BearerCheck::Valid(account)) => account,
        Some(BearerCheck::Expired(account)) => {
            bump(&account.counters.chat_requests);
            bump(&account.counters.chat_errors);
            return ServiceError::bearer_expired().into_response_for(dialect);
        }
        Some(BearerCheck::Unknown) | None => {
            return ServiceError::bearer_invalid().into_response_for(dialect);
        }
    };
    bump(&account.counters.chat_requests);
    let in_flight = InFlight::enter(account.clone());
    account.remember_request(body.clone());
    let fail = |error: ServiceError| {
        bump(&account.counters.chat_errors);
        error.into_response_for(dialect)
    };

    let mut stream_fault = None;
    if let Some(fault) = state.fire_fault(&account, false) {
        match ServiceError::for_fault(fault.kind, &account.name) {
            Some(error) => return fail(error),
            None => stream_fault = Some(fault),
        }
    }
    let request = match validate_json(&body, &state.config().limits) {
        Ok(request) => request,
        Err(violation) => {
            state.record_violation(&account, &violation.detail);
            return fail(ServiceError::validation(violation.kind));
        }
    };
    let current = &request
        .conversation_state
        .current_message
        .user_input_message;
    if let Some(model) = current.model_id.as_deref()
        && !KNOWN_MODELS.contains(&model)
    {
        return fail(ServiceError::invalid_model());
    }
    let parsed = script::parse(&current.content);
    if let Some(kind) = parsed.script.error
        && !kind.hits_refresh()
        && stream_fault.is_none()
    {
        bump(&account.counters.faults_fired);
        match ServiceError::for_fault(kind, &account.name) {
            Some(error) => return fail(error),
            None => stream_fault = Some(FaultSpec::new(account.name.clone(), kind)),
        }
    }
    let plan = reply::build(&ReplyInput {
        dialect,
        request: &request,
        parsed: &parsed,
        body_len: body.len(),
        fault: stream_fault.as_ref(),
        max_output_words: state.config().max_output_words,
    });
    bump(&account.counters.chat_ok);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM))],
        Body::from_stream(ReplyBody::new(plan, in_flight)),
    )
        .into_response()
}
