//! The qgate service: an Anthropic Messages API in front of a pool of Amazon Q accounts.
//!
//! Map of this crate:
//! * [`config`] — defaults → TOML file → environment, validated all at once.
//! * [`routes`] — axum handlers: `/v1/messages` (streaming and not), `count_tokens`,
//!   `models`, probes, metrics, and the admin API (`routes/admin`, OpenAPI-documented).
//! * [`dispatch`] — the attempt loop and its commit point; the only place that reports
//!   outcomes to the pool.
//! * [`relay`] — committed upstream stream → translator → SSE bytes or a message.
//! * [`upstream`] — the pooled HTTP client to Amazon Q with per-phase timeouts.
//! * [`accounts`] — per-account endpoint data and token managers.
//! * [`error`] — the one mapping from failures to Anthropic errors.
//! * [`metrics`] — every metric name.
//! * [`server`] — accept loop, `TCP_NODELAY`, header timeout, connection limit, drain.
//! * [`background`] — token refresher, health checks, webhooks and state persistence,
//!   owned and awaited on shutdown.
//! * [`reload`] — config reload and runtime account add / remove / patch, persisted.
//! * [`health_check`] — pool status (healthy/degraded/unhealthy) and active probes.
//! * [`webhooks`] — account and pool alerts to configured URLs, with retries.
//! * [`keys`] — client keys file, per-key RPM/concurrency limits and usage.
//! * [`cluster`] — multi-instance mode: pool state, limits, sticky sessions, counters and
//!   admin changes shared through Redis (`REDIS_URL`).
//! * [`state`] — `AppState` and the hot-swappable `Runtime` snapshot.

pub mod accounts;
pub mod background;
pub mod cluster;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod health_check;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod relay;
pub mod reload;
pub mod routes;
pub mod server;
pub mod state;
pub mod upstream;
pub mod webhooks;

mod startup;

pub use startup::{GatewayHandle, StartError, init_tls, start};
