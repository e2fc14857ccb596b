//! Streaming responses. A task owns the request from dispatch to the last byte; the
//! handler waits only for the *head decision*:
//!
//! * the first upstream content event arrives → HTTP 200 + SSE;
//! * every attempt fails before that → a plain HTTP error with the right status;
//! * a ping interval passes first → HTTP 200 + `message_start` + `ping` now (keep-alive
//!   starts before the first upstream byte), and failover continues invisibly; if it is
//!   exhausted the stream ends with one `event: error`.
//!
//! After commit, an upstream failure becomes one `event: error` and the stream ends. A
//! client that goes away cancels the upstream request and releases the account slot.

use super::{accounting, stream_config};
use crate::dispatch::{Dispatch, Prepared};
use crate::error::GatewayError;
use crate::relay::{ClientGone, RelayEnd, Sink, relay};
use crate::state::{AppState, Runtime};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::BytesMut;
use qgate_anthropic::StreamEvent;
use qgate_translate::response::StreamTranslator;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

/// Bytes to the client connection.
struct SseSink {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    /// Bytes of the previous batch.
    last_len: usize,
    blocked: Duration,
}

impl Sink for SseSink {
    async fn emit(&mut self, events: &[StreamEvent]) -> Result<(), ClientGone> {
        if events.is_empty() {
            return Ok(());
        }
        // The buffer goes out with the chunk; size the next one like the last batch, so
        // it is not grown from nothing by repeated reallocation.
        self.buf.reserve(self.last_len.max(256));
        for e in events {
            e.write_sse(&mut self.buf);
        }
        self.last_len = self.buf.len();
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        let began = Instant::now();
        let r = self.tx.send(chunk).await.map_err(|_| ClientGone);
        self.blocked += began.elapsed();
        r
    }

    async fn closed(&self) {
        self.tx.closed().await
    }

    fn blocked(&self) -> Duration {
        self.blocked
    }
}

pub async fn respond(state: AppState, rt: Arc<Runtime>, p: Prepared) -> Response {
    let (head_tx, head_rx) = oneshot::channel::<Result<(), GatewayError>>();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let request_id = p.request_id.clone();
    spawn_drive(&state, rt, p, head_tx, tx);
    match head_rx.await {
        Ok(Ok(())) => sse_response(rx, &request_id),
        Ok(Err(e)) => e.into_response_with_id(Some(&request_id)),
        Err(_) => GatewayError::Internal("stream task ended before answering".into())
            .into_response_with_id(Some(&request_id)),
    }
}

/// Starts the task that owns the stream. A plain function, so the handler's future (which
/// lives until the head decision, and axum keeps on the heap) holds no room for the
/// task's much larger one.
fn spawn_drive(
    state: &AppState,
    rt: Arc<Runtime>,
    p: Prepared,
    head_tx: oneshot::Sender<Result<(), GatewayError>>,
    tx: mpsc::Sender<Bytes>,
) {
    // The task keeps the request's log context, so lines logged after commit carry its
    // id. Boxed once here: the 2.6 KB future is otherwise copied on each move into the task
    // and once more when the task records its end (docs/benchmarks.md, sixth round).
    // `p` goes in boxed: an async fn keeps room for its arguments beside its locals, so a
    // 536-byte argument costs the task twice that for its whole life (seventh round).
    let fut = drive(state.clone(), rt, Box::new(p), head_tx, tx);
    state.streams.spawn(crate::logging::in_current_request(fut));
}

fn sse_response(rx: mpsc::Receiver<Bytes>, request_id: &str) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let first = rx.recv().await?;
        // A slow client connection gets whatever queued up in one write.
        let chunk = match rx.try_recv() {
            Err(_) => first,
            Ok(second) => {
                let mut joined = BytesMut::with_capacity(first.len() + second.len() * 2);
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&second);
                while let Ok(more) = rx.try_recv() {
                    joined.extend_from_slice(&more);
                }
                joined.freeze()
            }
        };
        Some((Ok::<_, Infallible>(chunk), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    resp
}

async fn drive(
    state: AppState,
    rt: Arc<Runtime>,
    mut p: Box<Prepared>,
    head_tx: oneshot::Sender<Result<(), GatewayError>>,
    tx: mpsc::Sender<Bytes>,
) {
    let watch = tx.clone();
    let mut sink = SseSink {
        tx,
        buf: Vec::new(),
        last_len: 1024,
        blocked: Duration::ZERO,
    };
    let mut tr = StreamTranslator::new(stream_config(&p));
    let mut head = Some(head_tx);
    let ping = state.server.ping_interval;
    let mut d = Dispatch::new(state.clone(), rt.clone(), p.client_model.clone());

    // Phase 1: until commit, failover is invisible to the client.
    let committed = {
        // On the heap and gone at commit: inline, its room (the largest part of this
        // future) would stay reserved for the whole relay.
        let mut connect = Box::pin(d.connect(&mut p));
        let mut next_ping = Instant::now() + ping;
        loop {
            tokio::select! {
                r = &mut connect => break r,
                _ = sleep_until(next_ping) => {
                    let mut out = Vec::with_capacity(2);
                    if let Some(h) = head.take() {
                        if h.send(Ok(())).is_err() {
                            return;
                        }
                        tr.start(&mut out);
                    }
                    out.push(StreamEvent::Ping);
                    if sink.emit(&out).await.is_err() {
                        return;
                    }
                    next_ping = Instant::now() + ping;
                }
                _ = watch.closed() => return,
            }
        }
    };
    let mut c = match committed {
        Ok(c) => c,
        Err(e) => {
            accounting::rejected(&state, &p, &e);
            match head.take() {
                Some(h) => {
                    let _ = h.send(Err(e));
                }
                None => {
                    let mut out = Vec::with_capacity(1);
                    tr.fail(&e.to_api_error(), &mut out);
                    let _ = sink.emit(&out).await;
                }
            }
            return;
        }
    };
    if let Some(h) = head.take()
        && h.send(Ok(())).is_err()
    {
        accounting::cancelled(&rt, &c);
        return;
    }
    p.release_body();
    let first_content = p.received.elapsed();
    state.metrics.observe_ttft(&p.client_model, first_content);

    // Phase 2: committed. Errors from here on are one `event: error`.
    match relay(&mut c, &mut tr, &mut sink, Some(ping), &state.metrics).await {
        RelayEnd::Completed => {
            accounting::succeeded(&state, &rt, &p, &c, &tr, &d, sink.blocked());
        }
        RelayEnd::Failed(err) => {
            let failure = accounting::failed_after_commit(&state, &rt, &p, &c, &err);
            let e = GatewayError::StreamInterrupted { failure };
            accounting::rejected(&state, &p, &e);
            let mut out = Vec::with_capacity(1);
            tr.fail(&e.to_api_error(), &mut out);
            let _ = sink.emit(&out).await;
        }
        RelayEnd::ClientGone => {
            accounting::cancelled(&rt, &c);
            tracing::info!(request_id = %p.request_id, account = %c.account.id(),
                outcome = "client_gone", "request done");
        }
    }
}
