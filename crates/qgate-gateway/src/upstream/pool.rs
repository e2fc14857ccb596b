//! Upstream chat connections, pooled and driven by the request that uses them.
//!
//! hyper-util's pooled client (`legacy::Client`) spawns a task per connection: the task
//! reads the socket and passes each HTTP chunk through a one-slot channel to the task
//! that reads the body. Every upstream frame then cost a task switch, and gathering a
//! burst of frames into one client write took a yield to the runtime per frame (ninth
//! round in docs/benchmarks.md). Here hyper's connection (`client::conn::http1`) is
//! polled by its user: `roundtrip` drives it while waiting for the response head, and the
//! stream (`EventReader`) drives it before each read of the body, so a chunk already in
//! the socket is decoded in the same turn that asks for it.
//!
//! **Pooling.** An idle connection is polled by nobody. It is checked when taken: one
//! poll with a no-op waker lets hyper see a close or an error the server sent meanwhile
//! (the connection then resolves and is dropped), and one older than
//! [`POOL_IDLE_TIMEOUT`] is dropped unused. `close_expired` (called by the background
//! memory task) closes those nobody asked for. A connection goes back only after its
//! response body was read to the end; one dropped mid-body is closed, as hyper does.
//! Most recently used first, at most `max_idle` per destination.
//!
//! **A request on a connection the server just closed.** hyper hands the request back
//! when it was never written; it is then sent once on a new connection (as
//! `legacy::Client` did). A request that was written is not resent.

use super::connect::{Connector, POOL_IDLE_TIMEOUT, Timed};
use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
type Body = Full<Bytes>;
pub(crate) type Connect = Timed<HttpsConnector<Connector>>;

/// One HTTP/1.1 connection: the handle requests are sent on and the connection itself,
/// which makes progress only while someone polls it.
pub struct Conn {
    tx: SendRequest<Body>,
    /// Boxed (~1.8 KB, most of it the TLS stream's room): a `Conn` moves through the
    /// futures that send and read, which would each reserve its full size.
    conn: Box<Connection<Io, Body>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Drives the connection's reads and writes; `Ready` once it has closed (the body
    /// being read, if any, then holds its outcome: the rest of the data, or the error).
    pub fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut *self.conn).poll(cx).map(|_| ())
    }

    /// Open and ready for a request, judged without waiting.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_drive(&mut cx).is_pending() && self.tx.is_ready()
    }

    /// Sends `req` and drives the connection until the response head arrives.
    async fn roundtrip(&mut self, req: Request<Body>) -> Result<Response<Incoming>, Failed> {
        let mut sent = pin!(self.tx.try_send_request(req));
        let conn = &mut *self.conn;
        let mut closed = false;
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the answer, which
            // completes `sent`.
            if !closed && Pin::new(&mut *conn).poll(cx).is_ready() {
                closed = true;
            }
            match sent.as_mut().poll(cx) {
                Poll::Ready(Ok(resp)) => Poll::Ready(Ok(resp)),
                Poll::Ready(Err(mut e)) => Poll::Ready(Err(match e.take_message() {
                    Some(req) => Failed::NotSent(Box::new(req)),
                    None => Failed::Error(e.into_error().into()),
                })),
                Poll::Pending if closed => Poll::Ready(Err(Failed::Error(
                    "the upstream connection closed before answering".into(),
                ))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

enum Failed {
    /// Never written: safe to send elsewhere.
    NotSent(Box<Request<Body>>),
    Error(BoxError),
}

/// `req` as written on a connection of its own: the path alone on the request line, the
/// host in `Host` (its port only when not the scheme's default), as `legacy::Client`
/// writes it.
fn origin_form(mut req: Request<Body>) -> Result<Request<Body>, BoxError> {
    let uri = req.uri();
    let authority = uri.authority().ok_or("an upstream URL without a host")?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    };
    // From the host and port alone: user information in the URL never goes out here.
    let host = match authority.port_u16() {
        Some(port) if port != default_port => {
            HeaderValue::try_from(format!("{}:{port}", authority.host()))?
        }
        _ => HeaderValue::from_str(authority.host())?,
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| PathAndQuery::from_static("/"), Clone::clone);
    *req.uri_mut() = Uri::from(path);
    req.headers_mut().insert(HOST, host);
    Ok(req)
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
    builder: http1::Builder,
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
}

/// A connection on loan to the stream that reads a response from it.
#[derive(Debug)]
pub struct Lent {
    pub conn: Conn,
    to: Destination,
}

impl std::fmt::Debug for ChatPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatPool")
            .field("max_idle", &self.max_idle)
            .field("idle", &self.idle.try_lock().map(|idle| idle.len()))
            .finish_non_exhaustive()
    }
}

impl ChatPool {
    pub(crate) fn new(connect: Connect, builder: http1::Builder, max_idle: usize) -> ChatPool {
        ChatPool {
            connect,
            builder,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `req` on an idle connection to its destination, or a new one; returns the
    /// response head and the connection its body comes through.
    pub async fn send(&self, req: Request<Body>) -> Result<(Response<Incoming>, Lent), BoxError> {
        let uri = req.uri().clone();
        let to = Destination::of(&uri);
        let mut req = origin_form(req)?;
        if let Some(mut conn) = self.checkout(&to) {
            tracing::trace!("upstream: reusing an idle connection");
            match conn.roundtrip(req).await {
                Ok(resp) => return Ok((resp, Lent { conn, to })),
                Err(Failed::NotSent(back)) => {
                    tracing::debug!("upstream: the idle connection closed; sending on a new one");
                    req = *back;
                }
                Err(Failed::Error(e)) => return Err(e),
            }
        }
        // Boxed: opening holds the new stream by value (~1.7 KB with TLS), room the
        // wait for the answer need not keep.
        let mut conn = Box::pin(self.open(&uri)).await?;
        tracing::trace!("upstream: opened a connection");
        match conn.roundtrip(req).await {
            Ok(resp) => Ok((resp, Lent { conn, to })),
            Err(Failed::NotSent(_)) => {
                Err("the new upstream connection closed before the request was sent".into())
            }
            Err(Failed::Error(e)) => Err(e),
        }
    }

    async fn open(&self, uri: &Uri) -> Result<Conn, BoxError> {
        let io = self.connect.clone().call(uri.clone()).await?;
        let (tx, conn) = self.builder.handshake(io).await?;
        Ok(Conn {
            tx,
            conn: Box::new(conn),
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
    pub fn give_back(&self, mut lent: Lent) {
        if self.max_idle == 0 || !lent.conn.usable() {
            return;
        }
        let mut idle = self.idle.lock();
        let same = idle.iter().filter(|i| i.to == lent.to).count();
        if same >= self.max_idle
            && let Some(oldest) = idle.iter().position(|i| i.to == lent.to)
        {
            idle.remove(oldest);
        }
        idle.push(Idle {
            to: lent.to,
            conn: lent.conn,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::connect;
    use http_body::Body as _;
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

    fn request(uri: &Uri) -> Request<Body> {
        Request::post(uri.clone())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    /// Reads a response's body to the end, driving its connection, then gives the
    /// connection back. Returns the status and the body.
    async fn finish(pool: &ChatPool, resp: Response<Incoming>, mut lent: Lent) -> (u16, Vec<u8>) {
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(frame) = poll_fn(|cx| {
            let _ = lent.conn.poll_drive(cx);
            Pin::new(&mut body).poll_frame(cx)
        })
        .await
        {
            out.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        pool.give_back(lent);
        (status, out)
    }

    /// One request, read to the end; its connection goes back to the pool.
    async fn call(pool: &ChatPool, uri: &Uri) -> (u16, Vec<u8>) {
        let (resp, lent) = pool.send(request(uri)).await.unwrap();
        finish(pool, resp, lent).await
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
        let (resp, lent) = pool.send(request(&uri)).await.unwrap();
        drop((resp, lent));
        assert_eq!(pool.idle_count(), 0);
        // at most `max_idle` kept per destination
        let (r1, l1) = pool.send(request(&uri)).await.unwrap();
        let (r2, l2) = pool.send(request(&uri)).await.unwrap();
        assert_eq!(accepted.load(SeqCst), 3);
        for (resp, lent) in [(r1, l1), (r2, l2)] {
            finish(&pool, resp, lent).await;
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

    #[test]
    fn requests_go_out_in_origin_form_with_the_host_header() {
        let form = |uri: &str| {
            let req = origin_form(request(&uri.parse().unwrap())).unwrap();
            (
                req.uri().to_string(),
                req.headers()[HOST].to_str().unwrap().to_owned(),
            )
        };
        assert_eq!(
            form("https://q.us-east-1.amazonaws.com/generateAssistantResponse"),
            (
                "/generateAssistantResponse".to_owned(),
                "q.us-east-1.amazonaws.com".to_owned()
            )
        );
        assert_eq!(
            form("https://q.example:443/x?y=1"),
            ("/x?y=1".to_owned(), "q.example".to_owned())
        );
        assert_eq!(
            form("http://127.0.0.1:8123/x"),
            ("/x".to_owned(), "127.0.0.1:8123".to_owned())
        );
        assert_eq!(
            form("http://127.0.0.1:80"),
            ("/".to_owned(), "127.0.0.1".to_owned())
        );
        assert_eq!(
            form("http://user:secret@127.0.0.1:8123/x"),
            ("/x".to_owned(), "127.0.0.1:8123".to_owned())
        );
    }
}
