//! Serving: an HTTP/1.1 accept loop (keep-alive, `TCP_NODELAY`) and [`SimHandle`].
//!
//! The loop owns its connections, so stopping it (shutdown or dropping the handle) also
//! drops every open connection, including streams paused by a `slow_first_byte` fault;
//! a graceful drain would wait out those pauses.

use crate::config::SimConfig;
use crate::fault::FaultSpec;
use crate::state::{SimState, SimStats};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::Service;

/// A running simulator. Dropping it, or [`SimHandle::shutdown`], stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    state: SimState,
    task: JoinHandle<()>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL of both the chat and the token endpoints.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state, for anything the handle does not wrap.
    pub fn state(&self) -> &SimState {
        &self.state
    }

    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    pub fn inject(&self, fault: FaultSpec) {
        self.state.inject(fault);
    }

    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    pub fn expire_access_tokens(&self) {
        self.state.expire_access_tokens();
    }

    /// Makes the account's refresh token stop working (unknown accounts are ignored).
    pub fn revoke_refresh_tokens(&self, account: &str) {
        self.state.revoke_refresh_tokens(account);
    }

    /// Stops accepting, drops every connection, and waits until the loop is gone.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // Only the cancellation can come back: the loop itself never returns.
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves a simulator with `cfg` on `listener` until the handle is dropped or shut down.
pub async fn start(cfg: SimConfig, listener: TcpListener) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    let state = SimState::new(cfg);
    let router = crate::router(state.clone());
    let task = tokio::spawn(accept_loop(listener, router));
    tracing::info!(%addr, "amazon q simulator listening");
    Ok(SimHandle { addr, state, task })
}

async fn accept_loop(listener: TcpListener, router: axum::Router) {
    let mut connections = JoinSet::new();
    let mut builder = http1::Builder::new();
    // No header-read timeout: hyper's default (30 s) also closes idle keep-alive
    // connections, and under a test's paused clock that fires at once, racing the
    // client's reuse of pooled connections. Idle connections end with their client or
    // with the simulator.
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(None);
    loop {
        // Reap finished connections so the set does not grow over a long benchmark.
        while connections.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                router.clone().call(request)
            }),
        );
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "simulator connection ended with an error");
            }
        });
    }
}
