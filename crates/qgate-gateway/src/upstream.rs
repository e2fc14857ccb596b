//! The HTTP client to Amazon Q: keep-alive connections opened by `connect.rs`, pooled and
//! driven by their users (`pool.rs`), HTTP/1.1 spoken by `http1.rs`; the two dialects'
//! headers, and per-phase timeouts — connect, first event, idle gap between events —
//! never one timeout on a whole stream.

pub(crate) mod connect;
pub(crate) mod http1;
pub(crate) mod pool;

use crate::config::UpstreamConfig;
use bytes::Bytes;
use http1::{ChatRequest, RequestHead};
use pool::{Body, ChatPool, Read};
use qgate_amazonq::classify::{UpstreamFailure, classify_http_error, classify_stream_error};
use qgate_amazonq::codec::DecodeFailure;
use qgate_amazonq::{DecodeError, Dialect, Event, EventStreamDecoder, StreamError};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep_until, timeout_at};

/// Identifies the client honestly and identically for every account of a dialect
/// (no per-account variation: this is not a fingerprinting tool).
const Q_CLI_USER_AGENT: &str = "aws-sdk-rust/1.3.9 ua/2.1 api/codewhispererstreaming/0.1.11582 os/linux lang/rust/1.95.0 md/appVersion-1.19.3 app/AmazonQ-For-CLI";
const Q_CLI_AMZ_USER_AGENT: &str = "aws-sdk-rust/1.3.9 ua/2.1 api/codewhispererstreaming/0.1.11582 os/linux lang/rust/1.95.0 m/F app/AmazonQ-For-CLI";
const KIRO_USER_AGENT: &str = "aws-sdk-js/1.0.34 ua/2.1 os/linux lang/js md/nodejs api/codewhispererstreaming#1.0.34 m/E KiroIDE";
const KIRO_AMZ_USER_AGENT: &str = "aws-sdk-js/1.0.34 KiroIDE";

/// Error bodies larger than this are cut (they are only classified).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    FirstEvent,
    Idle,
}

/// Why one upstream attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("connecting to upstream failed: {0}")]
    Connect(String),
    #[error("upstream timed out waiting for the {0:?} event")]
    Timeout(Phase),
    #[error("upstream answered HTTP {status}")]
    Http {
        status: u16,
        failure: UpstreamFailure,
    },
    #[error("upstream sent an in-band error: {0}")]
    InBand(StreamError),
    #[error("upstream stream is corrupt: {0}")]
    Decode(DecodeError),
    #[error("reading the upstream body failed: {0}")]
    Body(String),
    #[error("upstream returned an empty stream")]
    Empty,
}

impl AttemptError {
    /// The classification the dispatcher and the pool act on.
    pub fn failure(&self) -> UpstreamFailure {
        match self {
            AttemptError::Http { failure, .. } => failure.clone(),
            AttemptError::InBand(e) => classify_stream_error(e),
            AttemptError::Connect(_)
            | AttemptError::Timeout(_)
            | AttemptError::Decode(_)
            | AttemptError::Body(_)
            | AttemptError::Empty => UpstreamFailure::Transient { status: None },
        }
    }

    /// Label for the seed's `amazonq_errors_total{error_type}`.
    pub fn error_type(&self) -> &'static str {
        match self {
            AttemptError::Connect(_) | AttemptError::Timeout(_) | AttemptError::Body(_) => {
                "network_error"
            }
            AttemptError::Decode(_) | AttemptError::Empty | AttemptError::InBand(_) => {
                "stream_error"
            }
            AttemptError::Http { failure, .. } => match failure {
                UpstreamFailure::Throttled { .. } => "rate_limit",
                UpstreamFailure::QuotaExhausted { .. } => "quota_exhausted",
                UpstreamFailure::Suspended => "suspended",
                UpstreamFailure::Token => "token",
                UpstreamFailure::ModelUnavailable => "model_unavailable",
                UpstreamFailure::Overloaded => "overloaded",
                UpstreamFailure::Client(_) => "client_error",
                UpstreamFailure::Transient { .. } => "http_error",
            },
        }
    }
}

/// The upstream clients. Chat calls: one pooled client per worker thread, so that a
/// request served by a worker reuses connections whose tasks run on that same worker,
/// and one shared for calls made off the workers. Token refresh, health checks and
/// webhooks: one `reqwest` client.
#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    chat: Arc<ChatPool>,
    per_worker: Arc<[Arc<ChatPool>]>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("workers", &self.per_worker.len())
            .finish_non_exhaustive()
    }
}

/// Why the upstream clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

impl UpstreamClient {
    pub fn new(cfg: &UpstreamConfig, workers: usize) -> Result<Self, ClientError> {
        let tls = connect::tls_config()?;
        let proxies = connect::proxies_from_env();
        let chat = |max_idle| {
            Arc::new(connect::chat_pool(
                tls.clone(),
                proxies.clone(),
                cfg.connect_timeout,
                max_idle,
            ))
        };
        // Without workers (`WORKERS=shared`) the shared client serves every thread of
        // tokio's pool: it keeps as many idle connections as one worker per CPU would.
        let shared_idle = if workers == 0 {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            cfg.pool_idle.saturating_mul(threads)
        } else {
            cfg.pool_idle
        };
        Ok(Self {
            http: build_http_client(cfg.connect_timeout, &tls)?,
            chat: chat(shared_idle),
            per_worker: (0..workers).map(|_| chat(cfg.pool_idle)).collect(),
        })
    }

    /// The chat client for calls made from this thread: its worker's own, else the
    /// shared one.
    fn local(&self) -> &Arc<ChatPool> {
        crate::server::workers::current()
            .and_then(|i| self.per_worker.get(i))
            .unwrap_or(&self.chat)
    }

    /// Closes the chat connections that have been idle too long, in every pool.
    pub fn close_expired(&self) {
        self.chat.close_expired();
        for pool in self.per_worker.iter() {
            pool.close_expired();
        }
    }

    /// The client for token refresh, health checks and webhooks.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends one `GenerateAssistantResponse` call; returns once the status is known.
    /// Non-200 answers are read and classified here.
    pub async fn send(
        &self,
        api_base: &str,
        dialect: Dialect,
        access_token: &str,
        body: Bytes,
        deadline: Instant,
        idle: Duration,
    ) -> Result<EventReader, AttemptError> {
        let req = chat_request(api_base, dialect, access_token, body)?;
        let pool = self.local();
        // Boxed: sending holds the request and the connections it may try (~1.5 KB),
        // room that would otherwise stay reserved in the stream's future for its whole
        // life (docs/benchmarks.md, tenth round).
        let (head, mut body) = match timeout_at(deadline, Box::pin(pool.send(&req))).await {
            Err(_) => return Err(AttemptError::Timeout(Phase::FirstEvent)),
            Ok(Err(e)) => return Err(AttemptError::Connect(error_chain(&*e))),
            Ok(Ok(r)) => r,
        };
        drop(req);
        if head.status != 200 {
            let (text, complete) = read_bounded(&mut body, deadline).await;
            if complete {
                body.give_back(pool);
            }
            let failure = classify_http_error(
                head.status,
                head.error_type.as_deref(),
                head.retry_after.as_deref(),
                &text,
            );
            return Err(AttemptError::Http {
                status: head.status,
                failure,
            });
        }
        Ok(EventReader::new(body, pool.clone(), idle))
    }
}

thread_local! {
    /// The last chat URL this thread built, by API base and dialect: every account of a
    /// pool usually shares one endpoint, and formatting and parsing the URL for each
    /// request cost ~2 k instructions (a clone of a parsed `Uri` shares its bytes).
    static CHAT_URI: std::cell::RefCell<Option<(String, Dialect, http::Uri)>> =
        const { std::cell::RefCell::new(None) };
}

/// `api_base` + the dialect's path, parsed.
fn chat_uri(api_base: &str, dialect: Dialect) -> Result<http::Uri, AttemptError> {
    CHAT_URI.with_borrow_mut(|last| {
        if let Some((base, d, uri)) = last.as_ref()
            && base == api_base
            && *d == dialect
        {
            return Ok(uri.clone());
        }
        let uri: http::Uri = format!("{}{}", api_base, dialect.path())
            .parse()
            .map_err(|e| AttemptError::Connect(format!("invalid upstream URL: {e}")))?;
        *last = Some((api_base.to_owned(), dialect, uri.clone()));
        Ok(uri)
    })
}

/// The `POST` of one chat call with the dialect's headers, written straight into the
/// request head (`http1::RequestHead`): no header map, no parsing of constant values.
fn chat_request(
    api_base: &str,
    dialect: Dialect,
    access_token: &str,
    body: Bytes,
) -> Result<ChatRequest, AttemptError> {
    let uri = chat_uri(api_base, dialect)?;
    let invalid = |e: http1::ProtocolError| AttemptError::Connect(e.to_string());
    // The headers below are ~650 bytes besides the token.
    let mut h = RequestHead::post(uri, 1024 + access_token.len()).map_err(invalid)?;
    h.value("authorization", &[b"Bearer ", access_token.as_bytes()])
        .map_err(|_| {
            AttemptError::Connect("the access token is not a valid header value".into())
        })?;
    h.constant("content-type", dialect.content_type());
    h.constant("accept", "*/*");
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    h.constant(
        "amz-sdk-invocation-id",
        uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id),
    );
    h.constant("amz-sdk-request", "attempt=1; max=1");
    h.constant("x-amzn-codewhisperer-optout", "true");
    match dialect {
        Dialect::QCli => {
            h.constant("x-amz-target", Dialect::X_AMZ_TARGET);
            h.constant("user-agent", Q_CLI_USER_AGENT);
            h.constant("x-amz-user-agent", Q_CLI_AMZ_USER_AGENT);
        }
        Dialect::Kiro => {
            h.constant("x-amzn-kiro-agent-mode", "vibe");
            h.constant("user-agent", KIRO_USER_AGENT);
            h.constant("x-amz-user-agent", KIRO_AMZ_USER_AGENT);
        }
    }
    Ok(h.finish(body))
}

/// Builds the pooled HTTP/1.1 client used for token refresh, health checks and webhooks,
/// on the chat clients' TLS settings: the system trust store is loaded once, not once
/// more by reqwest (each load parses every system certificate: ~17 M instructions and
/// the store's memory).
pub fn build_http_client(
    connect_timeout: Duration,
    tls: &rustls::ClientConfig,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .tcp_keepalive(Duration::from_secs(30))
        .build()
}

/// An error and its sources, `: `-separated (the client's own message says little:
/// "client error (Connect)"; the cause — refused, timed out, certificate — is below).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// Up to `MAX_ERROR_BODY` bytes of an error answer's body, and whether that was all of it.
async fn read_bounded(body: &mut Body, deadline: Instant) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        let read = poll_fn(|cx| body.poll_read_into(cx, &mut |b| out.extend_from_slice(b)));
        match timeout_at(deadline, read).await {
            Ok(Ok(Read::More)) => {}
            Ok(Ok(Read::End)) => return (out, true),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    (out, false)
}

/// Reads typed events from a 200 response, enforcing the idle timeout between chunks.
///
/// The idle timer is one `Sleep` per stream that is *not* re-armed per chunk: arrivals
/// only move `idle_deadline` forward, and when the timer fires early it is reset to the
/// current deadline. Re-registering a timer for every event cost ~4 % of a streamed
/// request's CPU (docs/benchmarks.md).
#[derive(Debug)]
pub struct EventReader {
    /// The body and its connection, read by this reader's polls.
    body: Body,
    /// Where the connection goes back once the body has been read to its end.
    pool: Arc<ChatPool>,
    decoder: EventStreamDecoder,
    idle: Duration,
    /// When the idle timeout fires; moved forward only when bytes arrive, so a caller
    /// that cancels and re-polls `next` (to send pings) does not reset it.
    idle_deadline: Instant,
    timer: Pin<Box<Sleep>>,
    ended: bool,
    events: u64,
    /// Time spent blocked on the upstream socket (for the gateway-overhead metric).
    waited: Duration,
}

impl EventReader {
    fn new(body: Body, pool: Arc<ChatPool>, idle: Duration) -> Self {
        let idle_deadline = Instant::now() + idle;
        EventReader {
            body,
            pool,
            decoder: EventStreamDecoder::new(),
            idle,
            idle_deadline,
            timer: Box::pin(sleep_until(idle_deadline)),
            ended: false,
            events: 0,
            waited: Duration::ZERO,
        }
    }

    /// The next event; `Ok(None)` at the end of the stream. `deadline` overrides the idle
    /// timeout (used for the first event).
    pub async fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Event>, AttemptError> {
        loop {
            if let Some(ev) = self.buffered()? {
                return Ok(Some(ev));
            }
            if self.ended {
                self.decoder.finish().map_err(AttemptError::Decode)?;
                return Ok(None);
            }
            let (at, phase) = match deadline {
                Some(d) => (d, Phase::FirstEvent),
                None => (self.idle_deadline, Phase::Idle),
            };
            if self.timer.deadline() > at {
                self.timer.as_mut().reset(at);
            }
            // Nothing left to decode: a stream waiting here keeps no buffer (a held
            // stream kept a read's worth, 4 KiB, while waiting for its first event).
            self.decoder.release_if_drained();
            let began = Instant::now();
            let (body, decoder) = (&mut self.body, &mut self.decoder);
            let read = poll_fn(|cx| body.poll_read_into(cx, &mut |b| decoder.push(b)));
            let got = tokio::select! {
                biased;
                r = read => Some(r),
                () = &mut self.timer => None,
            };
            let now = Instant::now();
            self.waited += now - began;
            match got {
                None if now >= at => return Err(AttemptError::Timeout(phase)),
                // Fired at an older deadline: data arrived since; wait for the new one.
                None => self.timer.as_mut().reset(at),
                Some(Err(e)) => return Err(AttemptError::Body(error_chain(&*e))),
                Some(Ok(Read::End)) => self.ended = true,
                Some(Ok(Read::More)) => self.idle_deadline = now + self.idle,
            }
        }
    }

    /// Takes every body chunk the connection already holds, without waiting. Returns
    /// whether anything new arrived (bytes or the end of the body). Lets the relay turn
    /// all frames that came in one read into one write to the client.
    pub fn pull_ready(&mut self) -> Result<bool, AttemptError> {
        let mut got = false;
        // No waker: whatever is not there now is waited for by `next`, which registers
        // its own.
        let mut cx = Context::from_waker(Waker::noop());
        let decoder = &mut self.decoder;
        while !self.ended {
            match self.body.poll_read_into(&mut cx, &mut |b| decoder.push(b)) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Err(AttemptError::Body(error_chain(&*e))),
                Poll::Ready(Ok(Read::End)) => {
                    self.ended = true;
                    got = true;
                }
                Poll::Ready(Ok(Read::More)) => got = true,
            }
        }
        if got && !self.ended {
            self.idle_deadline = Instant::now() + self.idle;
        }
        Ok(got)
    }

    /// The body has ended (all bytes are in the decoder).
    pub fn at_end(&self) -> bool {
        self.ended
    }

    /// An event already decoded from received bytes, without waiting for the network.
    pub fn buffered(&mut self) -> Result<Option<Event>, AttemptError> {
        match self.decoder.next_event() {
            Ok(Some(ev)) => {
                self.events += 1;
                Ok(Some(ev))
            }
            Ok(None) => Ok(None),
            Err(DecodeFailure::Stream(e)) => Err(AttemptError::InBand(e)),
            Err(DecodeFailure::Decode(e)) => Err(AttemptError::Decode(e)),
        }
    }

    /// Events yielded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Time spent blocked on the upstream socket so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        // A body read to its end leaves the connection ready for the next request; one
        // dropped before (a client that left, an error) closes with its connection.
        if self.ended {
            self.body.give_back(&self.pool);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is the test failing
    use super::*;

    /// The remembered URL is the one asked for, whichever base and dialect came before.
    #[test]
    fn chat_uri_follows_base_and_dialect() {
        let cases = [
            (
                "https://q.us-east-1.amazonaws.com",
                Dialect::QCli,
                "https://q.us-east-1.amazonaws.com/",
            ),
            (
                "https://q.us-east-1.amazonaws.com",
                Dialect::Kiro,
                "https://q.us-east-1.amazonaws.com/generateAssistantResponse",
            ),
            (
                "http://127.0.0.1:9090",
                Dialect::Kiro,
                "http://127.0.0.1:9090/generateAssistantResponse",
            ),
            (
                "http://127.0.0.1:9090",
                Dialect::Kiro,
                "http://127.0.0.1:9090/generateAssistantResponse",
            ),
            (
                "https://q.us-east-1.amazonaws.com",
                Dialect::QCli,
                "https://q.us-east-1.amazonaws.com/",
            ),
        ];
        for (base, dialect, want) in cases {
            assert_eq!(chat_uri(base, dialect).unwrap().to_string(), want);
        }
        assert!(chat_uri("not a url", Dialect::QCli).is_err());
        // A failed parse leaves the last good URL in place and correct.
        assert_eq!(
            chat_uri("http://127.0.0.1:9090", Dialect::QCli)
                .unwrap()
                .to_string(),
            "http://127.0.0.1:9090/"
        );
    }
}
