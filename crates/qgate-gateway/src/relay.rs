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
    let mut last_batch = Instant::now();
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
                // client `writev` per frame).
                // The HTTP client decodes one body chunk per poll on its connection task,
                // so after taking what is ready, yield once to the runtime, which polls
                // the sockets before it runs this again: the connection task then reads
                // and decodes what arrived meanwhile, and it joins this batch. Only when a
                // yield brings nothing is the batch sent. (Yielding to the run queue alone
                // is not enough: the relay runs in the client connection's task, so it
                // comes back before the upstream's next frame has been read, and each
                // frame went out in a write of its own — 21 per 20-chunk reply instead
                // of 2, docs/benchmarks.md, ninth round.) A frame that comes alone, long
                // after the last batch — a model's tokens, milliseconds apart — is sent
                // at once: waiting a turn for company that is not coming costs it the
                // runtime's socket poll.
                let mut yielded = !in_burst(arrived, last_batch);
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
                                tokio::task::yield_now().await;
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
            last_batch = done;
            next_ping = done + interval;
            out.clear();
        }
    }
}

/// Frames closer than this to the previous batch are taken as part of a burst (a reply
/// the upstream had ready, sent frame after frame), worth a runtime turn to gather.
const BURST_GAP: Duration = Duration::from_millis(1);

fn in_burst(arrived: Instant, last_batch: Instant) -> bool {
    arrived.saturating_duration_since(last_batch) < BURST_GAP
}

fn finish_emit<S: Sink>(sink: &mut S, out: &[StreamEvent]) -> RelayEnd {
    sink.emit(out);
    RelayEnd::Completed
}
