//! [`GuardedBody`]: a response body that owns a [`ClientGuard`], so the key's concurrency
//! slot is released when the body is finished or dropped (client gone), not when the
//! handler returns its head.

use super::ClientGuard;
use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// `inner`, plus a guard that lives until the last frame is sent.
#[derive(Debug)]
pub struct GuardedBody {
    inner: Body,
    guard: Option<ClientGuard>,
}

impl GuardedBody {
    pub fn new(inner: Body, guard: ClientGuard) -> Self {
        GuardedBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // The response is complete: free the slot now rather than whenever hyper
            // gets around to dropping the body.
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
