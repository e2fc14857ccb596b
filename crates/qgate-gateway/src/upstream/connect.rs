//! How chat connections are opened: TCP with `TCP_NODELAY` and keep-alive probes, TLS by rustls
//! verified against the platform's trust store (`rustls-platform-verifier`, as reqwest
//! does), and HTTP `CONNECT` tunnels through the proxy the environment names
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, as curl and reqwest read them).
//!
//! Chat calls used reqwest, which wraps hyper's pooled client: its redirect and retry layers,
//! URL re-parsing and header-map copies cost ~60 k instructions per call, an eighth of a
//! streamed request (docs/benchmarks.md, sixth round). Token refresh, health checks and
//! webhooks still use reqwest; they are not on the per-request path.

use super::pool::ChatPool;
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TLS settings shared by every chat client (loading the trust store once).
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
    // ALPN is hyper-rustls's to set (HTTP/1.1 only).
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// How long an idle upstream connection stays in its pool: one older is never used, and
/// the background memory task closes it within a check interval.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A chat connection pool (at most `max_idle` idle connections per destination); its
/// connections are driven by the requests that use them (`pool.rs`).
pub fn chat_pool(
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<Matcher>,
    connect_timeout: Duration,
    max_idle: usize,
) -> ChatPool {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    tcp.set_keepalive(Some(Duration::from_secs(30)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(Connector { tcp, proxies });
    let connector = Timed {
        inner: https,
        limit: connect_timeout,
    };
    ChatPool::new(connector, max_idle)
}

/// The proxy settings of this process's environment.
pub fn proxies_from_env() -> Arc<Matcher> {
    Arc::new(Matcher::from_env())
}

/// TCP to the destination, or through a `CONNECT` tunnel when the environment names a
/// proxy for it. TLS, when the destination is `https`, is added on top by the caller.
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    proxies: Arc<Matcher>,
}

impl Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let Some(proxy) = self.proxies.intercept(&dst) else {
            return Box::pin(async move { tcp.call(dst).await.map_err(Into::into) });
        };
        let mut tunnel = Tunnel::new(proxy.uri().clone(), tcp);
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move {
            let dst = with_port(dst)?;
            tunnel.call(dst).await.map_err(Into::into)
        })
    }
}

/// Bounds a whole connection set-up — TCP, proxy tunnel and TLS handshake — by the
/// connect timeout, so a host that accepts TCP and then stalls is given up on as quickly
/// as one that does not answer (the TCP connector's own timeout covers only the first
/// step), and the attempt moves on to another account.
#[derive(Clone)]
pub struct Timed<C> {
    inner: C,
    limit: Duration,
}

impl<C> Service<Uri> for Timed<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(done) => done.map_err(Into::into),
                Err(_) => Err(format!(
                    "connection set-up (TCP, proxy, TLS) took longer than {limit:?}"
                )
                .into()),
            }
        })
    }
}

/// `dst` with its scheme's default port written out: a tunnel to a URI without a port
/// would otherwise always ask for 443.
fn with_port(dst: Uri) -> Result<Uri, BoxError> {
    if dst.port().is_some() {
        return Ok(dst);
    }
    let port = if dst.scheme_str() == Some("http") {
        80
    } else {
        443
    };
    let host = dst.host().ok_or("destination without a host")?;
    let mut parts = dst.clone().into_parts();
    parts.authority = Some(format!("{host}:{port}").parse()?);
    Ok(Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tunnel_asks_for_the_schemes_default_port_when_none_is_written() {
        let port = |s: &str| with_port(s.parse().unwrap()).unwrap().port_u16();
        assert_eq!(port("https://q.us-east-1.amazonaws.com/"), Some(443));
        assert_eq!(port("http://example.test/x"), Some(80));
        assert_eq!(port("https://localhost:8443/"), Some(8443));
    }
}
