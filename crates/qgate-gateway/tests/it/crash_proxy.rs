//! A recording pass-through in front of the simulator, for tests of a gateway that runs
//! in another process: it sees every token exchange (which refresh token was presented,
//! which refresh and access tokens came back) and the bearer token of every upstream call.
//! From that, tests know the simulator's current refresh token per account, every secret
//! ever issued, and whether an access token was used — which is what "a rotated refresh
//! token is persisted before it is used" can be checked against.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What the proxy saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Account index → refresh tokens issued, in order (rotations).
    pub issued_refresh: BTreeMap<usize, Vec<String>>,
    /// Access token → (account index, refresh generation that minted it).
    pub access: BTreeMap<String, (usize, u64)>,
    /// Bearer tokens presented on chat and usage calls.
    pub used_bearers: HashSet<String>,
    /// Account index → when its latest rotation was handed to the gateway.
    pub last_rotation_at: BTreeMap<usize, std::time::Instant>,
}

impl Seen {
    /// The highest refresh generation whose access token was used upstream.
    pub fn highest_used_generation(&self, account: usize) -> Option<u64> {
        self.access
            .iter()
            .filter(|(token, (a, _))| *a == account && self.used_bearers.contains(*token))
            .map(|(_, (_, generation))| *generation)
            .max()
    }

    /// Every refresh and access token the token service handed out.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.issued_refresh
            .values()
            .flatten()
            .cloned()
            .chain(self.access.keys().cloned())
            .collect()
    }
}

/// `sim-refresh-3` → (3, 0); `sim-refresh-3-r7` → (3, 7).
pub fn refresh_generation(token: &str) -> Option<(usize, u64)> {
    let rest = token.strip_prefix("sim-refresh-")?;
    match rest.split_once("-r") {
        Some((account, generation)) => Some((account.parse().ok()?, generation.parse().ok()?)),
        None => Some((rest.parse().ok()?, 0)),
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Seen>>,
    exchanges: Arc<std::sync::atomic::AtomicUsize>,
}

/// A running proxy.
pub struct RecordingProxy {
    pub base: String,
    pub seen: Arc<Mutex<Seen>>,
    /// Token exchanges forwarded and not yet recorded.
    exchanges: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RecordingProxy {
    /// Forwards everything to `upstream` (the simulator's base URL).
    pub async fn start(upstream: String) -> RecordingProxy {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let exchanges = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let proxy = Proxy {
            upstream,
            http: reqwest::Client::new(),
            seen: seen.clone(),
            exchanges: exchanges.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(proxy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RecordingProxy {
            base,
            seen,
            exchanges,
            task,
        }
    }

    /// Waits (5 s at most) until no token exchange is in flight: a refresh the gateway
    /// sent just before it was killed still reaches the token service (which rotates),
    /// and must be recorded before the disk is judged.
    pub async fn quiesce(&self) {
        for _ in 0..500 {
            if self.exchanges.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("a token exchange stayed in flight for 5 s");
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return status(400);
    };
    let path = parts.uri.path().to_owned();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if let Some(bearer) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        proxy.seen.lock().used_bearers.insert(bearer.to_owned());
    }
    let mut outgoing = proxy
        .http
        .request(parts.method, format!("{}{path}{query}", proxy.upstream))
        .body(body.clone());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let is_token_exchange = path == "/token" || path == "/refreshToken";
    if is_token_exchange {
        // Run to the end even if the gateway is killed meanwhile (dropping this handler),
        // so every rotation the token service makes is recorded.
        proxy
            .exchanges
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let exchanges = proxy.exchanges.clone();
        let seen = proxy.seen.clone();
        let exchange = tokio::spawn(async move {
            let result = async {
                let answer = outgoing.send().await.ok()?;
                let code = answer.status().as_u16();
                let bytes = answer.bytes().await.ok()?;
                record_exchange(&seen, &body, &bytes);
                Some((code, bytes))
            }
            .await;
            exchanges.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            result
        });
        return match exchange.await.ok().flatten() {
            Some((code, bytes)) => Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .unwrap_or_else(|_| status(500)),
            None => status(502),
        };
    }
    let Ok(answer) = outgoing.send().await else {
        return status(502);
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    let body = Body::from_stream(answer.bytes_stream());
    response.body(body).unwrap_or_else(|_| status(500))
}

fn record_exchange(seen: &Mutex<Seen>, request: &[u8], response: &[u8]) {
    let (Ok(request), Ok(response)) = (
        serde_json::from_slice::<Value>(request),
        serde_json::from_slice::<Value>(response),
    ) else {
        return;
    };
    let Some(presented) = request["refreshToken"].as_str() else {
        return;
    };
    let Some((account, presented_generation)) = refresh_generation(presented) else {
        return;
    };
    let mut seen = seen.lock();
    let generation = match response["refreshToken"].as_str() {
        Some(rotated) => {
            seen.issued_refresh
                .entry(account)
                .or_default()
                .push(rotated.to_owned());
            seen.last_rotation_at
                .insert(account, std::time::Instant::now());
            refresh_generation(rotated).map_or(presented_generation, |(_, g)| g)
        }
        None => presented_generation,
    };
    if let Some(access) = response["accessToken"].as_str() {
        seen.access.insert(access.to_owned(), (account, generation));
    }
}

fn status(code: u16) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap_or_default()
}
