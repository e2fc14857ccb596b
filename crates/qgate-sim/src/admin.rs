//! The `/_sim/*` control endpoints: inject and clear faults, expire access tokens, revoke
//! refresh tokens, read counters and the last request an account received.
//!
//! They answer plain JSON (`{"error": ...}` on bad input) and are not part of any real
//! service; a gateway under test never calls them.

use crate::fault::{FaultKind, FaultSpec, FaultTrigger};
use crate::state::SimState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

/// The body of `POST /_sim/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    /// Absent: every account.
    account: Option<String>,
    fault: String,
    count: Option<u32>,
    probability: Option<f64>,
    delay_ms: Option<u64>,
}

impl FaultRequest {
    fn into_spec(self) -> Result<FaultSpec, String> {
        let kind: FaultKind = self.fault.parse().map_err(|e| format!("{e}"))?;
        let trigger = match (self.count, self.probability) {
            (Some(_), Some(_)) => return Err("give count or probability, not both".to_owned()),
            (Some(n), None) => FaultTrigger::Count(n),
            (None, Some(p)) if (0.0..=1.0).contains(&p) => FaultTrigger::Probability(p),
            (None, Some(p)) => return Err(format!("probability {p} is not within 0..=1")),
            (None, None) => FaultTrigger::UntilCleared,
        };
        Ok(FaultSpec {
            account: self.account,
            kind,
            trigger,
            delay: self.delay_ms.map(Duration::from_millis),
        })
    }
}

/// `POST /_sim/faults`.
pub(crate) async fn inject(State(state): State<SimState>, body: Bytes) -> Response {
    let request: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("bad fault request: {e}")),
    };
    match request.into_spec() {
        Ok(spec) => {
            state.inject(spec);
            ok()
        }
        Err(message) => bad_request(message),
    }
}

/// `DELETE /_sim/faults`.
pub(crate) async fn clear(State(state): State<SimState>) -> Response {
    state.clear_faults();
    ok()
}

/// `POST /_sim/expire-tokens`.
pub(crate) async fn expire_tokens(State(state): State<SimState>) -> Response {
    state.expire_access_tokens();
    ok()
}

#[derive(Debug, Deserialize)]
pub(crate) struct AccountRequest {
    account: String,
}

/// `POST /_sim/revoke` `{"account": "sim-2"}`.
pub(crate) async fn revoke(State(state): State<SimState>, body: Bytes) -> Response {
    let request: AccountRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("bad revoke request: {e}")),
    };
    if state.revoke_refresh_tokens(&request.account) {
        ok()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no account {}", request.account)})),
        )
            .into_response()
    }
}

/// `GET /_sim/stats`.
pub(crate) async fn stats(State(state): State<SimState>) -> Response {
    Json(state.stats()).into_response()
}

/// `GET /_sim/last-request?account=sim-1`: the body exactly as received.
pub(crate) async fn last_request(
    State(state): State<SimState>,
    Query(query): Query<AccountRequest>,
) -> Response {
    match state.last_request(&query.account) {
        Some(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("{} has received no chat request", query.account)})),
        )
            .into_response(),
    }
}
