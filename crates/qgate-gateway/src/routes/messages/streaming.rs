//! Streaming responses. One future owns the request from dispatch to the last byte
//! (`drive`); the handler polls it only until the *head decision*:
//!
//! * the first upstream content event arrives → HTTP 200 + SSE;
//! * every attempt fails before that → a plain HTTP error with the right status;
//! * a ping interval passes first → HTTP 200 + `message_start` + `ping` now (keep-alive
//!   starts before the first upstream byte), and failover continues invisibly; if it is
//!   exhausted the stream ends with one `event: error`.
//!
//! After the head the same future becomes the response body: the client connection polls
//! it for each chunk, so an upstream frame is read, translated and written in one task,
//! with no task or channel between the upstream and the client. After commit, an upstream
//! failure becomes one `event: error` and the stream ends. A client that goes away drops
//! the body, which cancels the upstream request and releases the account slot.

use super::{accounting, stream_config};
use crate::dispatch::{Committed, Dispatch, Prepared};
use crate::error::GatewayError;
use crate::relay::{RelayEnd, Sink, relay};
use crate::state::{AppState, Runtime};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::task::AtomicWaker;
use http_body::Frame;
use qgate_anthropic::StreamEvent;
use qgate_translate::response::StreamTranslator;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};
use tokio_util::task::task_tracker::TaskTrackerToken;

/// What `drive` has written and the client connection has not taken yet, and how long
/// the stream has waited on that connection. The body takes it all at each poll, so the
/// batches written while the stream ran without waiting go out in one write; a slow client
/// stops polling, which holds back the stream (and, through TCP, the upstream) instead of
/// a queue growing in memory.
#[derive(Debug, Default)]
struct Handoff(Mutex<Unsent>);

#[derive(Debug, Default)]
struct Unsent {
    bytes: Vec<u8>,
    /// Bytes of the previous chunk, to size the next buffer.
    last_len: usize,
    /// When the last chunk was handed to the connection; the time until it polls again
    /// (its write of the chunk, and any wait for a full socket) is time the stream
    /// waited on the client.
    handed: Option<Instant>,
    blocked: Duration,
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, Unsent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything written since the last call, if anything was.
    fn take(&self) -> Option<Bytes> {
        let mut p = self.lock();
        if p.bytes.is_empty() {
            return None;
        }
        p.last_len = p.bytes.len();
        p.handed = Some(Instant::now());
        Some(Bytes::from(std::mem::take(&mut p.bytes)))
    }

    /// The connection asks for more: the wait since the last chunk was the client's.
    fn resumed(&self) {
        let mut p = self.lock();
        if let Some(at) = p.handed.take() {
            p.blocked += at.elapsed();
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().bytes.is_empty()
    }
}

/// Writes SSE for the client connection to take.
struct SseSink {
    out: Arc<Handoff>,
}

impl SseSink {
    /// Time the stream waited on a slow client so far.
    fn blocked(&self) -> Duration {
        self.out.lock().blocked
    }
}

impl Sink for SseSink {
    fn emit(&mut self, events: &[StreamEvent]) {
        if events.is_empty() {
            return;
        }
        let mut p = self.out.lock();
        if p.bytes.capacity() == 0 {
            // The buffer goes out with the chunk; size the next one like the last, and at
            // least one upstream read's worth (a batch is the frames of a read), so it is
            // not grown from nothing by repeated reallocation: from 1 KiB a 20-frame
            // reply's batch grew it twice.
            let size = p.last_len.max(crate::upstream::pool::READ_CHUNK);
            p.bytes.reserve(size);
        }
        for e in events {
            e.write_sse(&mut p.bytes);
        }
    }
}

type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

pub async fn respond(state: AppState, rt: Arc<Runtime>, p: Prepared) -> Response {
    let (head_tx, mut head_rx) = oneshot::channel::<Result<(), GatewayError>>();
    let out = Arc::new(Handoff::default());
    let request_id = p.request_id.clone();
    // Keeps shutdown waiting for the stream until its body is done.
    let tracked = state.streams.token();
    let mut drive = start(&state, rt, p, head_tx, out.clone());
    // `drive` sends the decision before it writes a byte, so polling it first and then
    // the decision settles both in the same turn.
    let decided = std::future::poll_fn(|cx| {
        let ended = drive.as_mut().poll(cx).is_ready();
        match head_rx.try_recv() {
            Ok(head) => Poll::Ready(Some((head, ended))),
            Err(oneshot::error::TryRecvError::Empty) if !ended => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    })
    .await;
    match decided {
        Some((Ok(()), ended)) => sse_response(
            SseBody::new((!ended).then_some(drive), out, tracked),
            &request_id,
        ),
        Some((Err(e), _)) => e.into_response_with_id(Some(&request_id)),
        None => GatewayError::Internal("the stream ended before answering".into())
            .into_response_with_id(Some(&request_id)),
    }
}

/// The stream's future, boxed once here: a plain function, so the handler's future (which
/// axum keeps on the heap) holds only a pointer to it. It keeps the request's log context,
/// so lines logged after the head carry the request's id. `p` goes in boxed: an async fn
/// keeps room for its arguments beside its locals, so a 536-byte argument would cost the
/// future twice that for its whole life (docs/benchmarks.md, seventh round).
fn start(
    state: &AppState,
    rt: Arc<Runtime>,
    p: Prepared,
    head_tx: oneshot::Sender<Result<(), GatewayError>>,
    out: Arc<Handoff>,
) -> Drive {
    crate::logging::in_current_request(drive(state.clone(), rt, Box::new(p), head_tx, out))
}

/// The SSE body: each poll runs `drive` until it waits (on the upstream, a timer or a
/// slot) and takes what it wrote meanwhile.
///
/// The connection polls its body whenever anything wakes its task (a write completing,
/// the socket, and once more after every chunk), but `drive` is polled only when one of
/// its own wake-ups fired: re-polling a waiting upstream stream re-arms its timers and
/// polls its upstream connection for nothing.
struct SseBody {
    /// `None` once the stream has ended.
    drive: Option<Drive>,
    wake: Arc<DriveWake>,
    waker: Waker,
    out: Arc<Handoff>,
    _tracked: TaskTrackerToken,
}

/// `drive`'s own waker: records the wake-up and passes it on to the connection's task.
struct DriveWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for DriveWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl SseBody {
    fn new(drive: Option<Drive>, out: Arc<Handoff>, tracked: TaskTrackerToken) -> Self {
        // Woken to begin with: the first poll runs `drive`.
        let wake = Arc::new(DriveWake {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        SseBody {
            drive,
            waker: Waker::from(wake.clone()),
            wake,
            out,
            _tracked: tracked,
        }
    }
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        this.out.resumed();
        if let Some(drive) = this.drive.as_mut() {
            this.wake.task.register(cx.waker());
            if this.wake.woken.swap(false, Ordering::AcqRel)
                && drive
                    .as_mut()
                    .poll(&mut Context::from_waker(&this.waker))
                    .is_ready()
            {
                this.drive = None;
            }
        }
        match this.out.take() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None if this.drive.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.drive.is_none() && self.out.is_empty()
    }
}

fn sse_response(body: SseBody, request_id: &str) -> Response {
    let mut resp = Response::new(Body::new(body));
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

/// A committed stream until it ends. If it is dropped first — the client went away and
/// its connection dropped the body — the account gets a cancellation, which costs it
/// nothing, and the request its log line.
struct Live {
    c: Committed,
    rt: Arc<Runtime>,
    request_id: String,
    ended: bool,
}

impl Drop for Live {
    fn drop(&mut self) {
        if !self.ended {
            accounting::cancelled(&self.rt, &self.c);
            tracing::info!(request_id = %self.request_id, account = %self.c.account.id(),
                outcome = "client_gone", "request done");
        }
    }
}

async fn drive(
    state: AppState,
    rt: Arc<Runtime>,
    mut p: Box<Prepared>,
    head_tx: oneshot::Sender<Result<(), GatewayError>>,
    out: Arc<Handoff>,
) {
    let mut sink = SseSink { out };
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
                        let _ = h.send(Ok(()));
                        tr.start(&mut out);
                    }
                    out.push(StreamEvent::Ping);
                    sink.emit(&out);
                    next_ping = Instant::now() + ping;
                }
            }
        }
    };
    let c = match committed {
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
                    sink.emit(&out);
                }
            }
            return;
        }
    };
    let mut live = Live {
        c,
        rt: rt.clone(),
        request_id: p.request_id.clone(),
        ended: false,
    };
    if let Some(h) = head.take() {
        let _ = h.send(Ok(()));
    }
    p.release_body();
    let first_content = p.received.elapsed();
    state.metrics.observe_ttft(&p.client_model, first_content);

    // Phase 2: committed. Errors from here on are one `event: error`.
    let end = relay(&mut live.c, &mut tr, &mut sink, Some(ping), &state.metrics).await;
    live.ended = true;
    let c = &live.c;
    match end {
        RelayEnd::Completed => {
            accounting::succeeded(&state, &rt, &p, c, &tr, &d, sink.blocked());
        }
        RelayEnd::Failed(err) => {
            let failure = accounting::failed_after_commit(&state, &rt, &p, c, &err);
            let e = GatewayError::StreamInterrupted { failure };
            accounting::rejected(&state, &p, &e);
            let mut out = Vec::with_capacity(1);
            tr.fail(&e.to_api_error(), &mut out);
            sink.emit(&out);
        }
    }
}
