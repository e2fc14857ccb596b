//! The load client: one bare HTTP/1.1 keep-alive connection per worker (`TCP_NODELAY`),
//! requests in either protocol, and what a response tells us (status, first content,
//! per-chunk stamps, errors).
//!
//! hyper's connection-level client keeps the measured path short: no pool lookups, no
//! redirects, no decompression. Times are CLOCK_MONOTONIC nanoseconds ([`now_ns`]), the
//! clock the simulator stamps chunks with.

mod reading;

pub use reading::{ErrorKind, Observation};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// CLOCK_MONOTONIC in nanoseconds.
pub fn now_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let nanos = i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec);
    u64::try_from(nanos).unwrap_or(0)
}

/// How a target is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// The simulator's Kiro dialect: `POST /generateAssistantResponse`, event-stream reply.
    AmazonQ,
    /// `POST /v1/messages`, SSE or JSON reply.
    Anthropic,
}

/// What a request carries besides its body.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    /// `Authorization: Bearer ...` for the simulator's protocol.
    pub bearer: Option<String>,
}

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub body: &'a Bytes,
    pub stream: bool,
    /// Fails the request if the whole exchange takes longer.
    pub timeout: Duration,
}

/// One open connection.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Without it, keep-alive requests stall ~40 ms on Nagle + delayed ACK.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when its sender is dropped or the peer closes; a failed
            // request reports the error itself.
            let _ = connection.await;
        });
        Ok(Connection { sender })
    }

    /// Whether another request can go on this connection.
    pub fn is_usable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `call` and reads the whole reply. `started_ns` is when the request counts as
    /// sent (the intended send time in open-loop runs).
    pub async fn call(
        &mut self,
        endpoint: &Endpoint,
        call: Call<'_>,
        started_ns: u64,
    ) -> Observation {
        let request = match build_request(endpoint, call.body) {
            Ok(request) => request,
            Err(_) => return Observation::failed(started_ns, ErrorKind::Transport),
        };
        let exchange = async {
            if self.sender.ready().await.is_err() {
                return Observation::failed(started_ns, ErrorKind::Transport);
            }
            match self.sender.send_request(request).await {
                Ok(response) => {
                    reading::read(response, endpoint.protocol, call.stream, started_ns).await
                }
                Err(_) => Observation::failed(started_ns, ErrorKind::Transport),
            }
        };
        match tokio::time::timeout(call.timeout, exchange).await {
            Ok(observation) => observation,
            Err(_) => Observation::failed(started_ns, ErrorKind::Timeout),
        }
    }

    /// A plain GET, for control endpoints; returns status and body.
    pub async fn get(&mut self, addr: SocketAddr, path: &str) -> Result<(u16, Bytes)> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))?;
        self.exchange(request).await
    }

    /// A JSON POST, for control endpoints; returns status and body.
    pub async fn post_json(
        &mut self,
        addr: SocketAddr,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes)> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        self.exchange(request).await
    }

    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes)> {
        use http_body_util::BodyExt;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

fn build_request(endpoint: &Endpoint, body: &Bytes) -> Result<Request<Full<Bytes>>> {
    let builder = Request::builder()
        .method(Method::POST)
        .header(header::HOST, endpoint.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json");
    let builder = match endpoint.protocol {
        Protocol::AmazonQ => {
            let builder = builder.uri("/generateAssistantResponse");
            match &endpoint.bearer {
                Some(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
                None => builder,
            }
        }
        Protocol::Anthropic => builder
            .uri("/v1/messages")
            .header("anthropic-version", "2023-06-01"),
    };
    Ok(builder.body(Full::new(body.clone()))?)
}
