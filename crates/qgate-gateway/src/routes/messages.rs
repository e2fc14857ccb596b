//! `POST /v1/messages`: parse, resolve the model, translate once, then dispatch —
//! streaming through a spawned task that owns the account slot, or non-streaming by
//! folding the same events into a message (retrying on another account when the upstream
//! fails before the message is complete, since nothing has reached the client yet).

mod accounting;
mod streaming;

use crate::dispatch::{Dispatch, Prepared};
use crate::error::GatewayError;
use crate::middleware::RequestCtx;
use crate::relay::{RelayEnd, Sink, relay};
use crate::state::{AppState, Runtime};
use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use qgate_anthropic::{MessageResponse, MessagesRequest, StreamEvent};
use qgate_translate::model_map::ResolvedModel;
use qgate_translate::request::{RequestOptions, Translated, translate};
use qgate_translate::response::{MessageAccumulator, StreamConfig, StreamTranslator};
use std::sync::Arc;
use std::time::Duration;

/// Reads the whole body, enforcing the size limit (413, refused from `content-length`
/// before reading when it says so) and a limit on silence between body chunks (408), so
/// a client that stalls mid-body cannot hold a connection and a task forever.
///
/// A body that arrives as one chunk is returned as it is; a longer one is gathered into
/// one buffer sized from `content-length` when the client sent it, so an 80 KB Claude
/// Code request is not copied again at each doubling of a growing buffer.
pub async fn read_body(
    body: Body,
    limit: usize,
    idle: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    use http_body::Body as _;
    use http_body_util::BodyExt;
    let expected = body.size_hint().lower();
    if expected > limit as u64 {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(GatewayError::BodyTimeout { idle }),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(GatewayError::BadRequest(format!(
                    "could not read the request body: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let read = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if read + data.len() > limit {
            return Err(GatewayError::BodyTooLarge { limit });
        }
        if data.is_empty() {
            continue;
        }
        if read == 0 {
            first = Some(data);
            continue;
        }
        if let Some(earlier) = first.take() {
            // A second chunk: gather from here on. `expected` is at most `limit`.
            buf.reserve((expected as usize).max(read + data.len()));
            buf.extend_from_slice(&earlier);
        }
        buf.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// Parses JSON into `T` with Anthropic-style error wording.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::BadRequest(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::BadRequest(format!("invalid request body: {e}")))
}

pub async fn handle(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    body: Body,
) -> Response {
    let received = std::time::Instant::now();
    let rt = state.runtime();
    let prepared = match prepare(&state, &rt, &ctx, body, received).await {
        Ok(p) => p,
        Err(e) => {
            state.metrics.record_client_request(
                e.to_api_error().status(),
                "",
                false,
                received.elapsed(),
                None,
            );
            tracing::info!(request_id = %ctx.request_id, outcome = e.label(), "request rejected");
            return e.into_response_with_id(Some(&ctx.request_id));
        }
    };
    if prepared.stream {
        streaming::respond(state, rt, prepared).await
    } else {
        let request_id = prepared.request_id.clone();
        // Boxed: inline, its state would size the handler future of every request,
        // streaming ones included.
        match Box::pin(complete(state, rt, prepared)).await {
            Ok(msg) => {
                let mut resp = Json(msg).into_response();
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    resp.headers_mut().insert("request-id", v);
                }
                resp
            }
            Err(e) => e.into_response_with_id(Some(&request_id)),
        }
    }
}

async fn prepare(
    state: &AppState,
    rt: &Runtime,
    ctx: &RequestCtx,
    body: Body,
    received: std::time::Instant,
) -> Result<Prepared, GatewayError> {
    let bytes = read_body(
        body,
        state.server.max_body_bytes,
        state.server.body_read_timeout,
    )
    .await?;
    let req: MessagesRequest = parse_json(&bytes)?;
    check_request(&req)?;
    let session = req.session_id();
    let (model, translated) = resolve_and_translate(rt, &req, session.as_deref())?;
    // Amazon Q has no output limit to pass on, but a request asking for more output than
    // the model's whole window is a client mistake the real API refuses too.
    if req.max_tokens > model.context_window {
        return Err(GatewayError::BadRequest(format!(
            "max_tokens: {} > {}, which is the maximum allowed number of output tokens for {}",
            req.max_tokens, model.context_window, req.model
        )));
    }
    let zero = rt
        .dispatch
        .zero_input_token_models
        .iter()
        .any(|k| model_matches_keyword(&req.model, k));
    let input_tokens = if zero {
        0
    } else {
        state.calibrated(&model.upstream_id, translated.input_tokens)
    };
    Ok(Prepared {
        request_id: ctx.request_id.clone(),
        client_model: req.model.clone(),
        session,
        stream: req.is_stream(),
        input_tokens,
        translated,
        model,
        received,
        client_key: ctx.client_key.clone(),
        client_body_len: bytes.len(),
    })
}

/// The model and the translated body: the one path shared by `/v1/messages` and
/// `count_tokens`, so a count is always over exactly what would be sent. The origin is
/// the Q-CLI one here; each attempt rewrites it for its account's dialect.
pub(crate) fn resolve_and_translate(
    rt: &Runtime,
    req: &MessagesRequest,
    session: Option<&str>,
) -> Result<(ResolvedModel, Translated), GatewayError> {
    let model = rt
        .models
        .resolve(&req.model)
        .map_err(|e| GatewayError::UnknownModel(e.to_string()))?;
    let translated = translate(
        req,
        &RequestOptions {
            model_id: &model.upstream_id,
            origin: qgate_amazonq::Dialect::QCli.origin(),
            profile_arn: None,
            session_id: session,
        },
    )
    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok((model, translated))
}

/// Checks the API itself enforces before anything is sent upstream.
fn check_request(req: &MessagesRequest) -> Result<(), GatewayError> {
    if req.messages.is_empty() {
        return Err(GatewayError::BadRequest(
            "messages: at least one message is required".into(),
        ));
    }
    if req.max_tokens == 0 {
        return Err(GatewayError::BadRequest(
            "max_tokens: must be greater than or equal to 1".into(),
        ));
    }
    if req.model.trim().is_empty() {
        return Err(GatewayError::BadRequest("model: field required".into()));
    }
    Ok(())
}

/// The seed's `ZERO_INPUT_TOKEN_MODELS` match: keyword bounded by start/`-`/`_`.
fn model_matches_keyword(model: &str, keyword: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.match_indices(keyword).any(|(i, _)| {
        let before_ok = i == 0 || matches!(m.as_bytes()[i - 1], b'-' | b'_');
        let end = i + keyword.len();
        let after_ok = end == m.len() || matches!(m.as_bytes()[end], b'-' | b'_');
        before_ok && after_ok
    })
}

pub(crate) fn stream_config(p: &Prepared) -> StreamConfig {
    StreamConfig {
        message_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        model: p.client_model.clone(),
        input_tokens: p.input_tokens,
        thinking: p.translated.thinking,
        tool_names: p.translated.tool_names.clone(),
        context_window: p.model.context_window,
    }
}

/// Collects events into the non-streaming message.
struct AccumulatorSink {
    acc: MessageAccumulator,
}

impl Sink for AccumulatorSink {
    fn emit(&mut self, events: &[StreamEvent]) {
        for e in events {
            self.acc.apply(e);
        }
    }
}

async fn complete(
    state: AppState,
    rt: Arc<Runtime>,
    mut p: Prepared,
) -> Result<MessageResponse, GatewayError> {
    let mut d = Dispatch::new(state.clone(), rt.clone(), p.client_model.clone());
    loop {
        let mut c = match d.connect(&mut p).await {
            Ok(c) => c,
            Err(e) => {
                accounting::rejected(&state, &p, &e);
                return Err(e);
            }
        };
        let mut tr = StreamTranslator::new(stream_config(&p));
        let mut sink = AccumulatorSink {
            acc: MessageAccumulator::new(),
        };
        match relay(&mut c, &mut tr, &mut sink, None, &state.metrics).await {
            RelayEnd::Completed => {
                accounting::succeeded(&state, &rt, &p, &c, &tr, &d, Duration::ZERO);
                return sink
                    .acc
                    .finish()
                    .map_err(|e| GatewayError::Internal(e.message));
            }
            RelayEnd::Failed(err) => {
                let failure = accounting::failed_after_commit(&state, &rt, &p, &c, &err);
                d.record_post_commit_failure(failure);
                if !d.can_retry() {
                    let e = d.give_up();
                    accounting::rejected(&state, &p, &e);
                    return Err(e);
                }
            }
        }
    }
}
