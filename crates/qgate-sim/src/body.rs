//! Streams a reply's frames with its pacing: frames that go with the head (the Q-CLI
//! `initial-response`) at once, then a pause before the first paced frame, a pause
//! between frames, and optionally a dropped connection at the end instead of a clean one.
//!
//! Each frame is its own body chunk, so when pauses are set every frame is flushed on its
//! own; without pauses hyper may coalesce ready frames into one write, which is what makes
//! the no-delay case cheap.

use crate::reply::{Ending, PlannedFrame, ReplyPlan};
use crate::state::InFlight;
use bytes::Bytes;
use futures_util::Stream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

#[derive(Debug)]
pub(crate) struct ReplyBody {
    frames: std::vec::IntoIter<PlannedFrame>,
    /// Frames still to send before pacing starts.
    unpaced: usize,
    first_delay: Duration,
    delay: Duration,
    ending: Ending,
    started: bool,
    /// The pause before the next frame, once started.
    pause: Option<Pin<Box<Sleep>>>,
    /// Set when the pause before the next frame has already been served.
    paused: bool,
    flushed_before_reset: bool,
    /// Keeps the request counted as in flight until the body is done or dropped.
    _in_flight: InFlight,
}

impl ReplyBody {
    pub(crate) fn new(plan: ReplyPlan, in_flight: InFlight) -> Self {
        ReplyBody {
            frames: plan.frames.into_iter(),
            unpaced: plan.unpaced,
            first_delay: plan.first_delay,
            delay: plan.delay,
            ending: plan.ending,
            started: false,
            pause: None,
            paused: false,
            flushed_before_reset: false,
            _in_flight: in_flight,
        }
    }
}

impl Stream for ReplyBody {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(pause) = this.pause.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.pause = None;
                this.paused = true;
            }
            if this.frames.as_slice().is_empty() {
                return Poll::Ready(match this.ending {
                    Ending::Complete => None,
                    Ending::Reset if !this.flushed_before_reset => {
                        // hyper drops its unsent buffer when a body fails; pausing once
                        // lets it flush the frames so far, so the client sees them first.
                        this.flushed_before_reset = true;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Ending::Reset => {
                        // hyper aborts the connection on a body error, leaving the
                        // chunked body unterminated: what a reset looks like to a client.
                        this.ending = Ending::Complete;
                        Some(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "simulated connection reset",
                        )))
                    }
                });
            }
            let wait = if this.unpaced > 0 {
                Duration::ZERO
            } else if this.started {
                this.delay
            } else {
                this.first_delay
            };
            if !this.paused && !wait.is_zero() {
                this.pause = Some(Box::pin(tokio::time::sleep(wait)));
                continue;
            }
            this.paused = false;
            // Pacing starts after the frames that go with the head.
            if this.unpaced > 0 {
                this.unpaced -= 1;
            } else {
                this.started = true;
            }
            return Poll::Ready(this.frames.next().map(|frame| Ok(frame.into_bytes())));
        }
    }
}
