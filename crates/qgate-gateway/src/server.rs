//! The listener: an accept loop over hyper's HTTP/1.1 server with `TCP_NODELAY` on every
//! accepted socket, a header-read timeout (slow-loris clients are dropped), a connection
//! limit, and graceful shutdown that stops accepting, lets in-flight responses — streams
//! included — finish, and aborts what is left after the drain timeout. With worker
//! threads ([`workers`]) the loop only accepts; each connection runs on one worker.

pub mod workers;

use crate::config::ServerConfig;
use crate::middleware::RequestContext;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use workers::WorkerPool;

/// What every connection is served by (`routes::app`).
pub type App = RequestContext<Router>;

/// Largest request head (request line + headers) accepted; larger gets 431.
const MAX_HEAD_BYTES: usize = 128 * 1024;

/// Accept queue length asked of the kernel (capped by `net.core.somaxconn`). The usual
/// 1024 overflowed when thousands of clients connected at once: dropped SYNs are retried
/// by clients only after a second, which turned a burst into a slow ramp.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds a listener with `SO_REUSEADDR` and a deep accept queue.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` until `shutdown` fires, then drains for up to `drain`. With `workers`,
/// each connection is handed to a worker thread; the pool is stopped once drained.
pub async fn serve(
    listener: TcpListener,
    app: App,
    cfg: &ServerConfig,
    workers: Option<Arc<WorkerPool>>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let limit = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let Some(pool) = &workers else {
            tokio::spawn(serve_one(builder.clone(), stream, service, watcher, permit));
            continue;
        };
        // The socket is registered with this runtime's reactor; it moves to the worker's.
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "handing a connection to a worker failed");
                continue;
            }
        };
        let (worker, placed) = pool.place();
        let builder = builder.clone();
        worker.spawn(async move {
            let _placed = placed;
            match TcpStream::from_std(std_stream) {
                Ok(stream) => serve_one(builder, stream, service, watcher, permit).await,
                Err(e) => tracing::warn!(error = %e, "a worker could not take a connection"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(drain) => tracing::warn!("drain timeout; closing remaining connections"),
    }
    if let Some(pool) = workers {
        pool.stop();
    }
}

/// Serves one accepted connection until it ends, under the graceful-shutdown watch; its
/// connection-limit permit is held until then.
async fn serve_one(
    builder: http1::Builder,
    stream: TcpStream,
    service: TowerToHyperService<App>,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
) {
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
