//! Upstream chat connections, pooled and driven by the request that uses them.
//!
//! A connection is a socket (TCP, TLS, or a tunnel through a proxy; `connect.rs`) on
//! which this module speaks HTTP/1.1 itself (`http1.rs`): the request head and body are
//! written, the response head is read, and the body is read by the stream that asks for
//! it (`EventReader`), in its own poll, into a buffer on the stack whose content goes
//! straight to the event decoder. No task exists per connection and no buffer is kept
//! between reads, so a stream waiting on the upstream holds its socket and nothing else
//! here (docs/benchmarks.md, eleventh round).
//!
//! **Pooling.** An idle connection is polled by nobody. When taken, one read with a no-op
//! waker checks that the server has neither closed it nor sent anything meanwhile, and
//! one older than [`POOL_IDLE_TIMEOUT`] is dropped unused. `close_expired` (called by the
//! background memory task) closes those nobody asked for. A connection goes back only
//! after its response body was read to the end, and only when the response allows reuse
//! (HTTP/1.1, no `Connection: close`, a delimited body with nothing after it); one
//! dropped mid-body is closed. Most recently used first, at most `max_idle` per
//! destination.
//!
//! **A request on a connection the server just closed.** One that could not be written
//! at all goes out once on a new connection; a request of which anything was written is
//! never resent.

use super::connect::{Connector, POOL_IDLE_TIMEOUT, Timed};
use super::http1::{self, BodyDecoder, ChatRequest, Head, Parsed, ProtocolError};
use http::Uri;
use http::uri::{Authority, Scheme};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::future::poll_fn;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::Service;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Io = TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>;
pub(crate) type Connect = Timed<HttpsConnector<Connector>>;

/// How much one read takes from the socket, into the stack of the poll that reads.
pub(crate) const READ_CHUNK: usize = 4096;

/// One HTTP/1.1 connection to the upstream.
pub struct Conn {
    /// Boxed (~1.7 KB with TLS): a `Conn` moves through the futures that send and read,
    /// which would each reserve its full size.
    io: Pin<Box<Io>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Open, with nothing unasked-for to read: judged without waiting.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [MaybeUninit::<u8>::uninit(); 1];
        let mut buf = ReadBuf::uninit(&mut probe);
        self.io.as_mut().poll_read(&mut cx, &mut buf).is_pending()
    }

    /// Reads once, into a buffer on this poll's stack, and hands what was read to `f`
    /// (an empty slice when the server closed the connection).
    fn poll_read_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Poll<std::io::Result<T>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        ready!(self.io.as_mut().poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(f(buf.filled())))
    }

    /// Writes the request head and body; `NotSent` if the connection took none of it.
    async fn write_request(&mut self, head: &[u8], body: &[u8]) -> Result<(), Failed> {
        let total = head.len() + body.len();
        let mut written = 0;
        poll_fn(|cx| {
            while written < total {
                let slices = if written < head.len() {
                    [IoSlice::new(&head[written..]), IoSlice::new(body)]
                } else {
                    [
                        IoSlice::new(&body[written - head.len()..]),
                        IoSlice::new(&[]),
                    ]
                };
                match ready!(self.io.as_mut().poll_write_vectored(cx, &slices)) {
                    Ok(0) => return Poll::Ready(Err(closed_while_writing(written))),
                    Ok(n) => written += n,
                    Err(e) if written == 0 => {
                        tracing::trace!("upstream: writing a request failed: {e}");
                        return Poll::Ready(Err(Failed::NotSent));
                    }
                    Err(e) => return Poll::Ready(Err(Failed::Error(e.into()))),
                }
            }
            self.io
                .as_mut()
                .poll_flush(cx)
                .map_err(|e| Failed::Error(e.into()))
        })
        .await
    }

    /// Reads up to the final response head; returns it with the bytes read after it.
    async fn read_head(&mut self) -> Result<(Head, Vec<u8>), BoxError> {
        // A head split between reads is gathered here (rare: a head is one segment).
        let mut partial: Vec<u8> = Vec::new();
        poll_fn(|cx| {
            loop {
                let found = ready!(self.poll_read_with(cx, |data| {
                    if data.is_empty() {
                        return Err("the upstream connection closed before answering".into());
                    }
                    let buf: &[u8] = if partial.is_empty() {
                        data
                    } else {
                        partial.extend_from_slice(data);
                        &partial
                    };
                    let mut at = 0;
                    loop {
                        match http1::parse_head(&buf[at..])? {
                            Parsed::Interim(n) => at += n,
                            Parsed::Head(head, n) => {
                                return Ok(Some((head, buf[at + n..].to_vec())));
                            }
                            Parsed::Partial => break,
                        }
                    }
                    partial = buf[at..].to_vec();
                    Ok::<_, BoxError>(None)
                }))??;
                if let Some(answer) = found {
                    return Poll::Ready(Ok(answer));
                }
            }
        })
        .await
    }
}

fn closed_while_writing(written: usize) -> Failed {
    if written == 0 {
        Failed::NotSent
    } else {
        Failed::Error("the upstream connection closed while the request was written".into())
    }
}

enum Failed {
    /// Nothing was written: safe to send elsewhere.
    NotSent,
    Error(BoxError),
}

/// Where a connection leads: requests to the same scheme and authority share them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
}

impl Destination {
    fn of(uri: &Uri) -> Destination {
        Destination {
            scheme: uri.scheme().cloned(),
            authority: uri.authority().cloned(),
        }
    }
}

struct Idle {
    to: Destination,
    conn: Conn,
    since: Instant,
}

/// The chat connections of one worker (or the shared set): idle ones wait here.
pub struct ChatPool {
    connect: Connect,
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for ChatPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatPool")
            .field("max_idle", &self.max_idle)
            .field("idle", &self.idle.try_lock().map(|idle| idle.len()))
            .finish_non_exhaustive()
    }
}

/// What one read of a body gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Bytes arrived (possibly only framing); the body goes on.
    More,
    /// The body has ended.
    End,
}

/// A response body and the connection it comes through, read by its user's polls.
#[derive(Debug)]
pub struct Body {
    decoder: BodyDecoder,
    /// Bytes read with the head, not yet decoded.
    pending: Vec<u8>,
    /// `None` once the connection has closed.
    conn: Option<Conn>,
    keep_alive: bool,
    to: Destination,
}

impl Body {
    /// Reads what the connection has and hands the body's content to `out`. `Pending`
    /// when nothing has arrived (the waker is then registered with the socket).
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut impl FnMut(&[u8]),
    ) -> Poll<Result<Read, BoxError>> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            return Poll::Ready(decode(
                &mut self.decoder,
                &mut self.keep_alive,
                &pending,
                out,
            ));
        }
        if self.decoder.is_done() {
            return Poll::Ready(Ok(Read::End));
        }
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(Err(ProtocolError::Truncated.into()));
        };
        let decoder = &mut self.decoder;
        let keep_alive = &mut self.keep_alive;
        let read = ready!(conn.poll_read_with(cx, |data| {
            if data.is_empty() {
                let end = decoder.closed().map(|()| Read::End);
                (true, end.map_err(BoxError::from))
            } else {
                (false, decode(decoder, keep_alive, data, out))
            }
        }));
        match read {
            Ok((closed, result)) => {
                if closed {
                    self.conn = None;
                }
                Poll::Ready(result)
            }
            Err(e) => {
                self.conn = None;
                Poll::Ready(Err(e.into()))
            }
        }
    }

    /// Returns the connection to `pool`: only a body read to its end, on a connection
    /// the response left reusable.
    pub fn give_back(&mut self, pool: &ChatPool) {
        if self.decoder.is_done()
            && self.keep_alive
            && let Some(conn) = self.conn.take()
        {
            pool.give_back(conn, self.to.clone());
        }
    }
}

/// Decodes `data` into `out`; a connection whose body was malformed, or followed by
/// bytes, is not trusted with another request.
fn decode(
    decoder: &mut BodyDecoder,
    keep_alive: &mut bool,
    data: &[u8],
    out: &mut impl FnMut(&[u8]),
) -> Result<Read, BoxError> {
    let used = decoder
        .decode(data, out)
        .inspect_err(|_| *keep_alive = false)?;
    if used < data.len() {
        *keep_alive = false;
    }
    Ok(if decoder.is_done() {
        Read::End
    } else {
        Read::More
    })
}

impl ChatPool {
    pub(crate) fn new(connect: Connect, max_idle: usize) -> ChatPool {
        ChatPool {
            connect,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `req` on an idle connection to its destination, or a new one; returns the
    /// response head and its body, which holds the connection.
    pub async fn send(&self, req: &ChatRequest) -> Result<(Head, Body), BoxError> {
        let to = Destination::of(&req.uri);
        if let Some(conn) = self.checkout(&to) {
            tracing::trace!("upstream: reusing an idle connection");
            match exchange(conn, req.head(), &req.body, &to).await {
                Ok(answer) => return Ok(answer),
                Err(Failed::NotSent) => {
                    tracing::debug!("upstream: the idle connection closed; sending on a new one");
                }
                Err(Failed::Error(e)) => return Err(e),
            }
        }
        // Boxed: opening holds the new stream by value (~1.7 KB with TLS), room the
        // wait for the answer need not keep.
        let conn = Box::pin(self.open(&req.uri)).await?;
        tracing::trace!("upstream: opened a connection");
        match exchange(conn, req.head(), &req.body, &to).await {
            Ok(answer) => Ok(answer),
            Err(Failed::NotSent) => {
                Err("the new upstream connection closed before the request was sent".into())
            }
            Err(Failed::Error(e)) => Err(e),
        }
    }

    async fn open(&self, uri: &Uri) -> Result<Conn, BoxError> {
        let io = self.connect.clone().call(uri.clone()).await?;
        Ok(Conn {
            io: Box::pin(TokioIo::new(io)),
        })
    }

    /// The most recently used idle connection to `to` that is still open.
    fn checkout(&self, to: &Destination) -> Option<Conn> {
        let now = Instant::now();
        let mut idle = self.idle.lock();
        while let Some(pos) = idle.iter().rposition(|i| i.to == *to) {
            let mut found = idle.remove(pos);
            if now.duration_since(found.since) < POOL_IDLE_TIMEOUT && found.conn.usable() {
                return Some(found.conn);
            }
        }
        None
    }

    /// Takes back a connection whose response was read to the end.
    fn give_back(&self, mut conn: Conn, to: Destination) {
        if self.max_idle == 0 || !conn.usable() {
            return;
        }
        let mut idle = self.idle.lock();
        let same = idle.iter().filter(|i| i.to == to).count();
        if same >= self.max_idle
            && let Some(oldest) = idle.iter().position(|i| i.to == to)
        {
            idle.remove(oldest);
        }
        idle.push(Idle {
            to,
            conn,
            since: Instant::now(),
        });
    }

    /// Closes the connections idle for [`POOL_IDLE_TIMEOUT`] or longer.
    pub fn close_expired(&self) {
        let now = Instant::now();
        self.idle
            .lock()
            .retain(|i| now.duration_since(i.since) < POOL_IDLE_TIMEOUT);
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }
}

/// Sends the request on `conn` and reads the response head.
async fn exchange(
    mut conn: Conn,
    head: &[u8],
    body: &[u8],
    to: &Destination,
) -> Result<(Head, Body), Failed> {
    conn.write_request(head, body).await?;
    let (head, pending) = conn.read_head().await.map_err(Failed::Error)?;
    let body = Body {
        decoder: BodyDecoder::new(head.framing),
        pending,
        conn: Some(conn),
        keep_alive: head.keep_alive,
        to: to.clone(),
    };
    Ok((head, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::connect;
    use bytes::Bytes;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback HTTP/1.1 server answering `ok` to each request on a connection, which it
    /// closes after `per_conn` answers. Counts the connections it accepted.
    async fn server(per_conn: usize) -> (Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/chat", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..per_conn {
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        let text = String::from_utf8_lossy(&seen).to_lowercase();
                        // origin form on the request line, the host in its own header
                        let answer = if text.starts_with("post /chat http/1.1\r\n")
                            && text.contains("\r\nhost: 127.0.0.1:")
                        {
                            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                        } else {
                            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
                        };
                        if sock.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (uri, accepted)
    }

    fn pool(max_idle: usize) -> ChatPool {
        let tls = connect::tls_config().unwrap();
        connect::chat_pool(
            tls,
            connect::proxies_from_env(),
            Duration::from_secs(5),
            max_idle,
        )
    }

    fn request(uri: &Uri) -> ChatRequest {
        http1::RequestHead::post(uri.clone(), 0)
            .unwrap()
            .finish(Bytes::from_static(b"{}"))
    }

    /// Reads a response's body to the end, then gives its connection back. Returns the
    /// status and the body.
    async fn finish(pool: &ChatPool, head: Head, mut body: Body) -> (u16, Vec<u8>) {
        let mut out = Vec::new();
        while poll_fn(|cx| body.poll_read_into(cx, &mut |b| out.extend_from_slice(b)))
            .await
            .unwrap()
            == Read::More
        {}
        body.give_back(pool);
        (head.status, out)
    }

    /// One request, read to the end; its connection goes back to the pool.
    async fn call(pool: &ChatPool, uri: &Uri) -> (u16, Vec<u8>) {
        let (head, body) = pool.send(&request(uri)).await.unwrap();
        finish(pool, head, body).await
    }

    #[tokio::test]
    async fn a_connection_is_reused_and_one_the_server_closed_is_replaced() {
        let (uri, accepted) = server(2).await;
        let pool = pool(4);
        assert_eq!(call(&pool, &uri).await, (200, b"ok".to_vec()));
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(call(&pool, &uri).await, (200, b"ok".to_vec()));
        assert_eq!(
            accepted.load(SeqCst),
            1,
            "the second request reused the connection"
        );
        // The server closed that connection after its second answer. Whether the pool
        // sees the close when it takes the connection or only when the request fails to
        // go out, the request is answered, on a new connection.
        for _ in 0..3 {
            assert_eq!(call(&pool, &uri).await, (200, b"ok".to_vec()));
        }
        assert_eq!(accepted.load(SeqCst), 3);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn a_connection_whose_body_was_not_read_is_not_pooled_and_idle_ones_expire() {
        let (uri, accepted) = server(100).await;
        let pool = pool(1);
        // a response dropped unread closes its connection
        let (head, body) = pool.send(&request(&uri)).await.unwrap();
        drop((head, body));
        assert_eq!(pool.idle_count(), 0);
        // at most `max_idle` kept per destination
        let (h1, b1) = pool.send(&request(&uri)).await.unwrap();
        let (h2, b2) = pool.send(&request(&uri)).await.unwrap();
        assert_eq!(accepted.load(SeqCst), 3);
        for (head, body) in [(h1, b1), (h2, b2)] {
            finish(&pool, head, body).await;
        }
        assert_eq!(pool.idle_count(), 1);
        // expired connections are closed, and never handed out
        tokio::time::pause();
        tokio::time::advance(POOL_IDLE_TIMEOUT + Duration::from_secs(1)).await;
        tokio::time::resume();
        assert_eq!(pool.checkout(&Destination::of(&uri)).map(|_| ()), None);
        assert_eq!(call(&pool, &uri).await.0, 200);
        assert_eq!(accepted.load(SeqCst), 4);
        assert_eq!(pool.idle_count(), 1);
        tokio::time::pause();
        tokio::time::advance(POOL_IDLE_TIMEOUT).await;
        tokio::time::resume();
        pool.close_expired();
        assert_eq!(pool.idle_count(), 0);
    }
}
