//! The upstream connection as production uses it: HTTPS, verified against the machine's
//! trust store, optionally through an HTTP `CONNECT` proxy taken from the environment.
//!
//! The simulator speaks plain HTTP, so these tests put a TLS front in front of it (a test
//! CA in `tls/`, a `localhost` / `127.0.0.1` certificate signed by it) and run the real
//! `qgate` binary with `SSL_CERT_FILE` pointing at that CA, which is how a deployment adds
//! a private root. The gateway is a separate process because the trust store and the
//! proxy settings are read from its environment.

use crate::crash_process::Gateway;
use crate::support::{eventually, hello, post_json, streamed_text};
use parking_lot::Mutex;
use qgate_sim::SimConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tls")
}

/// Terminates TLS on a loopback port and relays each connection to `backend` (the
/// simulator). Returns its port.
async fn tls_front(backend: std::net::SocketAddr) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    qgate_gateway::init_tls();
    let certs = CertificateDer::pem_file_iter(tls_dir().join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_dir().join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate fails the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    port
}

/// A minimal HTTP `CONNECT` proxy on loopback that records each tunnel's target.
async fn connect_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(tcp);
                let mut request_line = String::new();
                if client.read_line(&mut request_line).await.is_err() {
                    return;
                }
                // Skip the request's header lines.
                loop {
                    let mut line = String::new();
                    match client.read_line(&mut line).await {
                        Ok(n) if n > 2 => continue,
                        _ => break,
                    }
                }
                let mut parts = request_line.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
                    let _ = client
                        .get_mut()
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                };
                record.lock().push(target.to_owned());
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client
                        .get_mut()
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                };
                if client
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, seen)
}

struct Setup {
    sim: qgate_sim::SimHandle,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// A simulator with one account behind a TLS front; the gateway's chat calls go to
/// `https://localhost:<front>`, token refresh straight to the simulator.
async fn setup() -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = qgate_sim::start(
        SimConfig {
            accounts: 1,
            ..Default::default()
        },
        listener,
    )
    .await
    .unwrap();
    let front = tls_front(sim.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let c = qgate_sim::credentials(1);
    let env = vec![
        (
            "AMAZONQ_API_ENDPOINT".to_owned(),
            format!("https://localhost:{front}"),
        ),
        ("AMAZONQ_TOKEN_ENDPOINT".to_owned(), format!("{base}/token")),
        (
            "KIRO_AUTH_ENDPOINT".to_owned(),
            format!("{base}/refreshToken"),
        ),
        (
            "TOKEN_CACHE_DIR".to_owned(),
            dir.path().join("cache").display().to_string(),
        ),
        ("API_KEYS".to_owned(), "test".to_owned()),
        ("UPSTREAM_FIRST_EVENT_TIMEOUT".to_owned(), "5s".to_owned()),
        ("AMAZONQ_ACCOUNT_COUNT".to_owned(), "1".to_owned()),
        ("AMAZONQ_ACCOUNT_1_ID".to_owned(), c.account),
        (
            "AMAZONQ_ACCOUNT_1_REFRESH_TOKEN".to_owned(),
            c.refresh_token,
        ),
        ("AMAZONQ_ACCOUNT_1_CLIENT_ID".to_owned(), c.client_id),
        (
            "AMAZONQ_ACCOUNT_1_CLIENT_SECRET".to_owned(),
            c.client_secret,
        ),
    ];
    Setup { sim, dir, env }
}

fn with(env: &[(String, String)], extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

fn ca_file() -> String {
    tls_dir().join("ca.pem").display().to_string()
}

async fn ask(gw: &Gateway, stream: bool) -> (u16, String) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut body = hello("over tls");
    body["stream"] = Value::Bool(stream);
    let resp = post_json(&http, &gw.url("/v1/messages"), &body).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, text)
}

/// A request fails with an Anthropic-shaped server error, never a reply over an
/// unverified connection, because the certificate was refused, as the gateway's log says.
async fn assert_refused_certificate(gw: &Gateway) {
    let (status, text) = ask(gw, false).await;
    assert!(status >= 500, "{status} {text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["type"], "error", "{text}");
    let refused = eventually(Duration::from_secs(5), || async {
        gw.output
            .lock()
            .iter()
            .any(|line| line.to_lowercase().contains("certificate"))
    })
    .await;
    assert!(refused, "{:#?}", gw.output.lock());
}

#[tokio::test]
async fn chat_calls_go_over_verified_tls_and_fail_without_the_root() {
    let s = setup().await;
    let trusted = with(&s.env, &[("SSL_CERT_FILE", ca_file())]);
    let gw = Gateway::start(s.dir.path(), &trusted)
        .await
        .expect("gateway starts");
    let (status, text) = ask(&gw, false).await;
    assert_eq!(status, 200, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert!(!reply["content"][0]["text"].as_str().unwrap().is_empty());
    let (status, text) = ask(&gw, true).await;
    assert_eq!(status, 200, "{text}");
    let events = crate::support::parse_sse(&text);
    assert!(!streamed_text(&events).is_empty(), "{text}");
    gw.stop().await;

    // The same front is not trusted without the test root: the handshake fails and the
    // client gets an Anthropic-shaped error, never a reply over an unverified connection.
    let untrusted = with(
        &s.env,
        &[(
            "SSL_CERT_FILE",
            tls_dir().join("server.pem").display().to_string(),
        )],
    );
    let gw = Gateway::start(s.dir.path(), &untrusted)
        .await
        .expect("gateway starts");
    assert_refused_certificate(&gw).await;
    gw.stop().await;
}

/// `env` with each of `vars` set to its new value (added when absent).
fn replacing(env: &[(String, String)], vars: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.retain(|(k, _)| vars.iter().all(|(name, _)| k != name));
    with(&env, vars)
}

/// `s.env` with the token service behind the TLS front and chat calls straight to the
/// simulator, so only token refresh depends on the trust store; tokens cached under
/// `dir`.
fn token_over_tls(s: &Setup, cert_file: String, dir: &Path) -> Vec<(String, String)> {
    let front = s
        .env
        .iter()
        .find(|(k, _)| k == "AMAZONQ_API_ENDPOINT")
        .map(|(_, v)| v.clone())
        .unwrap();
    replacing(
        &s.env,
        &[
            ("AMAZONQ_API_ENDPOINT", s.sim.base_url()),
            ("AMAZONQ_TOKEN_ENDPOINT", format!("{front}/token")),
            ("SSL_CERT_FILE", cert_file),
            ("TOKEN_CACHE_DIR", dir.join("cache").display().to_string()),
        ],
    )
}

#[tokio::test]
async fn token_refresh_goes_over_the_same_verified_tls() {
    // The token client shares the chat clients' TLS settings (one trust store): a private
    // root added with `SSL_CERT_FILE` is trusted by both, and a refused certificate is
    // refused by both.
    let s = setup().await;
    let env = token_over_tls(&s, ca_file(), s.dir.path());
    let gw = Gateway::start(s.dir.path(), &env)
        .await
        .expect("gateway starts");
    let (status, text) = ask(&gw, false).await;
    assert_eq!(status, 200, "{text}");
    gw.stop().await;

    // A fresh cache: no access token from the run above, so refresh is needed.
    let untrusted = tempfile::tempdir().unwrap();
    let cert = tls_dir().join("server.pem").display().to_string();
    let gw = Gateway::start(
        untrusted.path(),
        &token_over_tls(&s, cert, untrusted.path()),
    )
    .await
    .expect("gateway starts");
    assert_refused_certificate(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn chat_calls_tunnel_through_the_https_proxy_from_the_environment() {
    let s = setup().await;
    let (proxy, seen) = connect_proxy().await;
    let env = with(
        &s.env,
        &[
            ("SSL_CERT_FILE", ca_file()),
            ("HTTPS_PROXY", format!("http://127.0.0.1:{proxy}")),
            // The token service is plain HTTP on loopback: not through the proxy.
            ("NO_PROXY", "127.0.0.1".to_owned()),
        ],
    );
    let gw = Gateway::start(s.dir.path(), &env)
        .await
        .expect("gateway starts");
    let (status, text) = ask(&gw, true).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = ask(&gw, false).await;
    assert_eq!(status, 200, "{text}");
    let targets = seen.lock().clone();
    assert!(!targets.is_empty(), "no tunnel was opened");
    assert!(
        targets.iter().all(|t| t.starts_with("localhost:")),
        "{targets:?}"
    );
    gw.stop().await;
}

/// Accepts TCP connections and never answers: a TLS handshake that never completes.
async fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    port
}

#[tokio::test]
async fn a_handshake_that_never_completes_is_given_up_after_the_connect_timeout() {
    let s = setup().await;
    let silent = silent_listener().await;
    let env = replacing(
        &s.env,
        &[
            ("SSL_CERT_FILE", ca_file()),
            ("UPSTREAM_CONNECT_TIMEOUT", "1s".to_owned()),
            ("MAX_ATTEMPTS", "1".to_owned()),
            // Longer than the client below waits: only the connect timeout can end the
            // attempt.
            ("UPSTREAM_FIRST_EVENT_TIMEOUT", "120s".to_owned()),
            (
                "AMAZONQ_API_ENDPOINT",
                format!("https://localhost:{silent}"),
            ),
        ],
    );
    let gw = Gateway::start(s.dir.path(), &env)
        .await
        .expect("gateway starts");
    // The TCP connection is accepted, so nothing but the whole-connection timeout can end
    // the attempt before the first-event timeout (120 s); `ask` gives up after 30 s.
    let began = std::time::Instant::now();
    let (status, text) = ask(&gw, false).await;
    assert!(status >= 500, "{status} {text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["type"], "error", "{text}");
    assert!(began.elapsed() < Duration::from_secs(30));
    gw.stop().await;
}
