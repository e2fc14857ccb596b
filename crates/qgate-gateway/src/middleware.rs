//! Per-request context (request id on every response, errors included) and client
//! authentication (`x-api-key` or `Authorization: Bearer`, compared in constant time over
//! SHA-256 digests so neither content nor length leaks through timing).

use crate::error::GatewayError;
use crate::logging::{self, RequestLog};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use subtle::ConstantTimeEq;
use tokio::task::futures::TaskLocalFuture;

/// Attached to every request by [`RequestContext`].
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    /// The name of the client key used, when keys are configured.
    pub client_key: Option<Arc<str>>,
}

/// Assigns the request id and stamps it on the response. Everything the request logs
/// while its handler runs (and its stream, see [`crate::logging`]) carries the id,
/// method and path, so every line of a request can be found by its id.
///
/// It wraps the whole router (`routes::app`) as a plain service with a future of its own
/// type, rather than being an axum `from_fn` layer: a layer is applied to each route
/// separately and costs every request a clone of the boxed route service, a boxed `Next`
/// and a boxed future (docs/benchmarks.md, fourteenth round). Around the router it runs
/// before routing, so the fallbacks for unknown paths and methods get the context too,
/// as they did under the layer.
#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
}

impl<S> RequestContext<S> {
    pub fn new(inner: S) -> Self {
        RequestContext { inner }
    }
}

impl<S, B> tower::Service<axum::http::Request<B>> for RequestContext<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let request_id = format!("req_{}", uuid::Uuid::new_v4().simple());
        let header = HeaderValue::from_str(&request_id).ok();
        let log = Arc::new(RequestLog {
            request_id: request_id.clone(),
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
        });
        req.extensions_mut().insert(RequestCtx {
            request_id,
            client_key: None,
        });
        ContextFuture {
            inner: logging::scope(log, self.inner.call(req)),
            header,
        }
    }
}

pin_project_lite::pin_project! {
    /// The routed request's future, run as part of its request; stamps `request-id` on
    /// the response unless the handler already did.
    pub struct ContextFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Arc<RequestLog>, F>,
        header: Option<HeaderValue>,
    }
}

impl<F, E> Future for ContextFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut resp = std::task::ready!(this.inner.poll(cx))?;
        if !resp.headers().contains_key("request-id")
            && let Some(v) = this.header.take()
        {
            resp.headers_mut().insert("request-id", v);
        }
        Poll::Ready(Ok(resp))
    }
}

/// A configured key, stored only as its digest.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub name: Arc<str>,
    digest: [u8; 32],
    pub rpm_limit: Option<u32>,
    pub max_concurrency: Option<u32>,
}

/// The configured client keys.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
}

pub(crate) fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl KeyRing {
    pub fn new(keys: &[crate::config::ClientKey]) -> Self {
        KeyRing {
            entries: keys
                .iter()
                .map(|k| KeyEntry {
                    name: Arc::from(k.name.as_str()),
                    digest: digest(k.key.expose_secret()),
                    rpm_limit: k.rpm_limit,
                    max_concurrency: k.max_concurrency,
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured keys (names, digests and limits), in configuration order.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// The entry matching `presented`; scans every entry whatever matches.
    pub fn find(&self, presented: &str) -> Option<&KeyEntry> {
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&d)) {
                found = Some(e);
            }
        }
        found
    }
}

/// The credential a client presented: `x-api-key`, else `Authorization: Bearer`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Client routes: requires a configured key when any exists, and holds the key's
/// concurrency slot in the response body until its last byte.
///
/// A tower layer of its own rather than an axum `from_fn` middleware: the route layer is
/// still boxed by axum, but a request no longer pays for a boxed `Next`, a boxed future
/// and a clone of the route inside it (docs/benchmarks.md, fourteenth round).
#[derive(Debug, Clone)]
pub struct ClientAuthLayer {
    state: AppState,
}

impl ClientAuthLayer {
    pub fn new(state: AppState) -> Self {
        ClientAuthLayer { state }
    }
}

impl<S> tower::Layer<S> for ClientAuthLayer {
    type Service = ClientAuth<S>;

    fn layer(&self, inner: S) -> ClientAuth<S> {
        ClientAuth {
            state: self.state.clone(),
            inner,
        }
    }
}

/// The service [`ClientAuthLayer`] puts in front of each client route.
#[derive(Debug, Clone)]
pub struct ClientAuth<S> {
    state: AppState,
    inner: S,
}

impl<S> tower::Service<Request> for ClientAuth<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let state = &self.state;
        let ring = state.keys.load();
        if ring.is_empty() {
            return AuthFuture::Route {
                inner: self.inner.call(req),
                guard: None,
            };
        }
        let request_id = req
            .extensions()
            .get::<RequestCtx>()
            .map(|c| c.request_id.clone());
        let Some(entry) = presented_key(req.headers()).and_then(|k| ring.find(k)) else {
            tracing::info!(request_id = ?request_id, outcome = "unauthenticated", "client key rejected");
            return AuthFuture::done(
                GatewayError::Unauthenticated.into_response_with_id(request_id.as_deref()),
            );
        };
        // Limits apply to the key, whichever connection it comes on; the guard rides in the
        // response body so a stream keeps its slot until its last byte or the client leaves.
        let guard = match state.key_book.admit(entry, crate::dispatch::now_ms()) {
            Ok(guard) => guard,
            Err(refusal) => {
                state
                    .metrics
                    .record_key_refusal(&entry.name, refusal.label());
                tracing::info!(request_id = ?request_id, key = %entry.name,
                    limit = refusal.label(), outcome = "client_rate_limited", "client key limited");
                return AuthFuture::done(
                    GatewayError::ClientRateLimited {
                        retry_after: refusal.retry_after(),
                    }
                    .into_response_with_id(request_id.as_deref()),
                );
            }
        };
        if let Some(ctx) = req.extensions_mut().get_mut::<RequestCtx>() {
            ctx.client_key = Some(entry.name.clone());
        }
        AuthFuture::Route {
            inner: self.inner.call(req),
            guard: Some(guard),
        }
    }
}

pin_project_lite::pin_project! {
    /// A client route's future: the route's, with the key's guard (when keys are
    /// configured) moved into the response body; or an error response decided before the
    /// route ran.
    #[project = AuthProj]
    pub enum AuthFuture<F> {
        Route { #[pin] inner: F, guard: Option<crate::keys::ClientGuard> },
        Done { response: Option<Response> },
    }
}

impl<F> AuthFuture<F> {
    fn done(response: Response) -> Self {
        AuthFuture::Done {
            response: Some(response),
        }
    }
}

impl<F, E> Future for AuthFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AuthProj::Route { inner, guard } => {
                let resp = std::task::ready!(inner.poll(cx))?;
                let Some(guard) = guard.take() else {
                    return Poll::Ready(Ok(resp));
                };
                let (parts, body) = resp.into_parts();
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    axum::body::Body::new(crate::keys::GuardedBody::new(body, guard)),
                )))
            }
            AuthProj::Done { response } => match response.take() {
                Some(resp) => Poll::Ready(Ok(resp)),
                None => Poll::Pending,
            },
        }
    }
}
