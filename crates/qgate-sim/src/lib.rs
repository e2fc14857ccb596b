//! A stand-in for Amazon Q Developer (the CodeWhisperer streaming service's
//! `GenerateAssistantResponse`) and its AWS SSO-OIDC token service, on loopback.
//!
//! The gateway's integration tests, the benchmarks and `qgate demo` run against it, so it
//! answers with the real service's bodies, errors and validation
//! ([`qgate_amazonq::validate`]), and it is cheap enough per request not to be the
//! bottleneck of a benchmark. Behaviour is steered per request by `[[sim ...]]` directives
//! in the prompt and per account by injected faults; see `README.md` beside this crate.
//!
//! Map:
//! - [`config`]: [`SimConfig`] and the fixed credentials of the simulated accounts.
//! - [`fault`]: fault kinds, how they are triggered, and the table of active faults.
//! - [`state`]: accounts, access tokens, device-flow sessions, counters ([`SimStats`]).
//! - `oidc`: `/token`, `/client/register`, `/device_authorization`, `/refreshToken`.
//! - `chat`: the two chat dialects: checks in the service's order, then the reply.
//! - `script` and `reply`: what a reply says, and its event-stream frames.
//! - `body`: streams the frames with the requested pacing, or breaks off.
//! - `wire`: the service's error bodies.
//! - `usage`: `GET /getUsageLimits`, the cheap call health checks use.
//! - `admin`: the `/_sim/*` control endpoints.
//! - `server`: the accept loop and [`SimHandle`].

mod admin;
mod body;
mod chat;
pub mod config;
pub mod fault;
mod oidc;
mod reply;
mod script;
mod server;
pub mod state;
mod usage;
mod wire;

pub use chat::KNOWN_MODELS;
pub use config::{SimConfig, SimCredentials, credentials};
pub use fault::{FaultKind, FaultSpec, FaultTrigger};
pub use server::{SimHandle, start};
pub use state::{AccountStats, SimState, SimStats};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// Request bodies above this are refused before parsing. Ten 10 MiB images in base64 fit.
pub const MAX_BODY_BYTES: usize = 160 * 1024 * 1024;

/// All simulator routes, for serving with [`start`] or mounting in-process.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/", post(chat::q_cli))
        .route("/generateAssistantResponse", post(chat::kiro))
        .route("/token", post(oidc::create_token))
        .route("/client/register", post(oidc::register_client))
        .route("/device_authorization", post(oidc::device_authorization))
        .route("/refreshToken", post(oidc::kiro_refresh))
        .route("/getUsageLimits", get(usage::get_usage_limits))
        .route("/_sim/faults", post(admin::inject).delete(admin::clear))
        .route("/_sim/expire-tokens", post(admin::expire_tokens))
        .route("/_sim/revoke", post(admin::revoke))
        .route("/_sim/stats", get(admin::stats))
        .route("/_sim/last-request", get(admin::last_request))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(wire::stamp_request_id))
        .with_state(state)
}
