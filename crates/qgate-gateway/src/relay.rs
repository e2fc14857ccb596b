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
    let mut next_ping = Instant::now() + interval;
    loop {
        let first = tokio::select! {
            r = c.reader.next(None) => r,
            _ = sleep_until(next_ping), if ping.is_some() => {
                if sink.emit(&[StreamEvent::Ping]).await.is_err() {
                    return RelayEnd::ClientGone;
                }
                next_ping = Instant::now() + interval;
                continue;
            }
            _ = sink.closed() => return RelayEnd::ClientGone,
        };
        let arrived = Instant::now();
        let mut ended = None;
        match first {
            Ok(Some(ev)) => {
                tr.on_event(ev, &mut out);
                // Everything else already decoded from the same chunk goes in one batch.
                loop {
                    match c.reader.buffered() {
                        Ok(Some(ev)) => tr.on_event(ev, &mut out),
                        Ok(None) => break,
                        Err(e) => {
                            ended = Some(e);
                            break;
                        }
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
            metrics.observe_chunk_relay(arrived.elapsed());
            next_ping = Instant::now() + interval;
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
