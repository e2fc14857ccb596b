//! Runs a committed upstream stream through the translator into a sink: SSE bytes to
//! the client (streaming) or a message accumulator (non-streaming). One loop serves both,
//! so both modes see exactly the same events.
//!
//! Every batch of events decoded from one network chunk is handed to the sink at once
//! (no extra buffering); pings go out when nothing else was sent for a ping interval.

use crate::dispatch::Committed;
use crate::metrics::Metrics;
use crate::upstream::AttemptError;
use qgate_anthropic::StreamEvent;
use qgate_translate::response::StreamTranslator;
use std::future::Future;
use std::time::Duration;
use tokio::time::{Instant, sleep_until};

/// The client went away.
#[derive(Debug, Clone, Copy)]
pub struct ClientGone;

/// Where translated events go.
pub trait Sink {
    /// Hands events to the client; returns when they are queued on its connection.
    fn emit(
        &mut self,
        events: &[StreamEvent],
    ) -> impl Future<Output = Result<(), ClientGone>> + Send;
    /// Resolves when the client has gone away (never, for non-streaming).
    fn closed(&self) -> impl Future<Output = ()> + Send;
    /// Time spent blocked on a slow client so far.
    fn blocked(&self) -> Duration;
}

/// How a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// The upstream finished (normally or at its output limit) and the message is complete.
    Completed,
    /// The upstream failed after commit.
    Failed(AttemptError),
    ClientGone,
}

/// Relays `c` until it ends.
pub async fn relay<S: Sink + Send>(
    c: &mut Committed,
    tr: &mut StreamTranslator,
    sink: &mut S,
    ping: Option<Duration>,
    metrics: &Metrics,
) -> RelayEnd {
    let mut out: Vec<StreamEvent> = Vec::with_capacity(8);
    tr.start(&mut out);
    for ev in c.pending.drain(..) {
        tr.on_event(ev, &mut out);
    }
    if c.output_limit {
        tr.on_output_limit(&mut out);
        return finish_emit(sink, &out).await;
    }
    if sink.emit(&out).await.is_err() {
        return RelayEnd::ClientGone;
    }
    out.clear();
    let interval = ping.unwrap_or(Duration::from_secs(3600));
    // One ping timer per stream, moved lazily like the upstream idle timer: content sent
    // only pushes `next_ping` forward; the timer is re-armed when it fires early.
    let mut next_ping = Instant::now() + interval;
    let mut ping_timer = Box::pin(sleep_until(next_ping));
    loop {
        let first = tokio::select! {
            r = c.reader.next(None) => r,
            () = &mut ping_timer, if ping.is_some() => {
                let now = Instant::now();
                if now >= next_ping {
                    if sink.emit(&[StreamEvent::Ping]).await.is_err() {
                        return RelayEnd::ClientGone;
                    }
                    next_ping = Instant::now() + interval;
                }
                ping_timer.as_mut().reset(next_ping);
                continue;
            }
            () = sink.closed() => return RelayEnd::ClientGone,
        };
        let arrived = Instant::now();
        let mut ended = None;
        match first {
            Ok(Some(ev)) => {
                tr.on_event(ev, &mut out);
                // Everything that already arrived goes out in one batch: events decoded
                // from this read, and further chunks the connection already holds (the
                // upstream sends one HTTP chunk per frame; writing each separately cost a
                // client `writev` per frame).
                // The HTTP client decodes one body chunk per poll on its connection task,
                // so after taking what is ready, yield once: that task then decodes the
                // chunks already read from the socket, and they join this batch. Only when
                // a yield brings nothing is the batch sent.
                let mut yielded = false;
                loop {
                    match c.reader.buffered() {
                        Ok(Some(ev)) => {
                            tr.on_event(ev, &mut out);
                            yielded = false;
                        }
                        Ok(None) => match c.reader.pull_ready() {
                            Ok(true) => {}
                            Ok(false) if !yielded && !c.reader.at_end() => {
                                yielded = true;
                                requeue().await;
                            }
                            Ok(false) => break,
                            Err(e) => {
                                ended = Some(e);
                                break;
                            }
                        },
                        Err(e) => {
                            ended = Some(e);
                            break;
                        }
                    }
                }
                if ended.is_none() && c.reader.at_end() {
                    // The body is complete: finish in the same batch.
                    match c.reader.next(None).await {
                        Ok(None) => {
                            tr.finish(&mut out);
                            return finish_emit(sink, &out).await;
                        }
                        Ok(Some(ev)) => tr.on_event(ev, &mut out),
                        Err(e) => ended = Some(e),
                    }
                }
            }
            Ok(None) => {
                tr.finish(&mut out);
                return finish_emit(sink, &out).await;
            }
            Err(e) => ended = Some(e),
        }
        match ended {
            None => {}
            Some(AttemptError::InBand(e)) if e.is_output_limit() => {
                tr.on_output_limit(&mut out);
                return finish_emit(sink, &out).await;
            }
            Some(e) => {
                // Deliver what arrived before the failure, then report it.
                if !out.is_empty() && sink.emit(&out).await.is_err() {
                    return RelayEnd::ClientGone;
                }
                return RelayEnd::Failed(e);
            }
        }
        if !out.is_empty() {
            if sink.emit(&out).await.is_err() {
                return RelayEnd::ClientGone;
            }
            let done = Instant::now();
            metrics.observe_chunk_relay(done - arrived);
            next_ping = done + interval;
            out.clear();
        }
    }
}

async fn finish_emit<S: Sink>(sink: &mut S, out: &[StreamEvent]) -> RelayEnd {
    match sink.emit(out).await {
        Ok(()) => RelayEnd::Completed,
        Err(ClientGone) => RelayEnd::ClientGone,
    }
}

/// Puts the task at the back of its worker's run queue once, so tasks already woken run
/// first — here the upstream connection's, which decodes the body chunks it has already
/// read. Unlike `tokio::task::yield_now`, which waits for the runtime's next poll of the
/// I/O driver (an `epoll_wait` per frame when frames arrive one by one), nothing else is
/// waited for.
async fn requeue() {
    let mut requeued = false;
    std::future::poll_fn(|cx| {
        if requeued {
            std::task::Poll::Ready(())
        } else {
            requeued = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}
