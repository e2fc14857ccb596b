//! A minimal OIDC `/token` + Kiro `/refreshToken` service on 127.0.0.1:0 with request
//! counters, recorded requests and scripted answers. Deliberately tiny: the project's
//! simulator is the full-fidelity fake.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use qgate_auth::AuthEndpoints;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// A successful token response; `expires_in: None` omits the field.
    pub fn token(access: &str, expires_in: Option<u64>, rotated: Option<&str>) -> Self {
        let mut body = serde_json::json!({ "accessToken": access, "tokenType": "Bearer" });
        if let Some(seconds) = expires_in {
            body["expiresIn"] = seconds.into();
        }
        if let Some(refresh) = rotated {
            body["refreshToken"] = refresh.into();
        }
        Reply::json(200, &body.to_string())
    }

    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn html(status: u16, body: &str) -> Self {
        Reply {
            content_type: "text/html",
            ..Reply::json(status, body)
        }
    }

    pub fn invalid_grant() -> Self {
        Reply::json(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#,
        )
    }

    /// Answer only after `delay`, so concurrent callers really overlap the refresh.
    pub fn after(self, delay: Duration) -> Self {
        Reply { delay, ..self }
    }
}

/// What the service received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: &'static str,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

#[derive(Debug)]
struct Shared {
    hits: AtomicUsize,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    recorded: Mutex<Vec<Recorded>>,
}

#[derive(Debug)]
pub struct MockTokenService {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockTokenService {
    /// Starts answering every request with `fallback` unless a scripted reply is queued.
    pub async fn start(fallback: Reply) -> Self {
        let shared = Arc::new(Shared {
            hits: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(fallback),
            recorded: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", post(oidc))
            .route("/refreshToken", post(kiro))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockTokenService { addr, shared }
    }

    pub fn endpoints(&self) -> AuthEndpoints {
        AuthEndpoints {
            oidc_token_url: format!("http://{}/token", self.addr),
            kiro_refresh_url: format!("http://{}/refreshToken", self.addr),
        }
    }

    /// Answer the next request with `reply` (before falling back).
    pub fn push(&self, reply: Reply) {
        self.shared.script.lock().push_back(reply);
    }

    pub fn set_fallback(&self, reply: Reply) {
        *self.shared.fallback.lock() = reply;
    }

    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().clone()
    }

    /// `refreshToken` values received, in order.
    pub fn refresh_tokens_sent(&self) -> Vec<String> {
        self.recorded()
            .iter()
            .map(|request| {
                request.body["refreshToken"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }
}

async fn oidc(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    answer(&shared, "/token", headers, &body).await
}

async fn kiro(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    answer(&shared, "/refreshToken", headers, &body).await
}

async fn answer(shared: &Shared, path: &'static str, headers: HeaderMap, body: &str) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared.recorded.lock().push(Recorded {
        path,
        headers,
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    });
    let reply = shared
        .script
        .lock()
        .pop_front()
        .unwrap_or_else(|| shared.fallback.lock().clone());
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    (status, [("content-type", reply.content_type)], reply.body).into_response()
}
