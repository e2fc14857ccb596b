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
use std::time::Duration;
use tokio::time::{Instant, sleep_until};

/// Where translated events go. A client that goes away is not reported here: the relay
/// runs inside the client's request (its handler, then its response body), so it is
/// dropped with it.
pub trait Sink {
    /// Hands events to the client: SSE bytes for its connection to take at its next poll,
    /// or events folded into the message.
    fn emit(&mut self, events: &[StreamEvent]);
}

/// How a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// The upstream finished (normally or at its output limit) and the message is complete.
    Completed,
    /// The upstream failed after commit.
    Failed(AttemptError),
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
        return finish_emit(sink, &out);
    }
    sink.emit(&out);
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
                    sink.emit(&[StreamEvent::Ping]);
                    next_ping = Instant::now() + interval;
                }
                ping_timer.as_mut().reset(next_ping);
                continue;
            }
        };
        let arrived = Instant::now();
        let mut ended = None;
        match first {
            Ok(Some(ev)) => {
                tr.on_event(ev, &mut out);
                // Everything that already arrived goes out in one batch: events decoded
                // from this read, and further chunks the connection already holds (the
                // upstream sends one HTTP chunk per frame; writing each separately cost a
                // client `writev` per frame). The stream drives its upstream connection
                // itself (`upstream/pool.rs`), so taking what is ready also reads what the
                // socket holds: nothing is waited for, and nothing that had arrived is
                // left for a later write.
                loop {
                    match c.reader.buffered() {
                        Ok(Some(ev)) => tr.on_event(ev, &mut out),
                        Ok(None) => match c.reader.pull_ready() {
                            Ok(true) => {}
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
                            return finish_emit(sink, &out);
                        }
                        Ok(Some(ev)) => tr.on_event(ev, &mut out),
                        Err(e) => ended = Some(e),
                    }
                }
            }
            Ok(None) => {
                tr.finish(&mut out);
                return finish_emit(sink, &out);
            }
            Err(e) => ended = Some(e),
        }
        match ended {
            None => {}
            Some(AttemptError::InBand(e)) if e.is_output_limit() => {
                tr.on_output_limit(&mut out);
                return finish_emit(sink, &out);
            }
            Some(e) => {
                // Deliver what arrived before the failure, then report it.
                if !out.is_empty() {
                    sink.emit(&out);
                }
                return RelayEnd::Failed(e);
            }
        }
        if !out.is_empty() {
            sink.emit(&out);
            let done = Instant::now();
            metrics.observe_chunk_relay(done - arrived);
            next_ping = done + interval;
            out.clear();
        }
    }
}

fn finish_emit<S: Sink>(sink: &mut S, out: &[StreamEvent]) -> RelayEnd {
    sink.emit(out);
    RelayEnd::Completed
}
