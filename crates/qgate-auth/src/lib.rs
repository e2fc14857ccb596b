//! Access tokens for Amazon Q accounts: refresh through AWS SSO OIDC or Kiro social login,
//! single-flight per account, rotated refresh tokens persisted through `qgate-store`.
//!
//! The map:
//! - [`Credentials`] / [`AuthEndpoints`]: what an account refreshes with, and where.
//! - `exchange`: one HTTP refresh in the right dialect; `classify`: which failures are
//!   permanent ([`RefreshError::Denied`]) and which may heal ([`RefreshError::Transient`]).
//! - [`TokenManager`]: one per account; hands out [`AccessToken`]s, refreshes when they
//!   near expiry or the upstream rejects one, and keeps the token cache current.
//! - [`run_refresher`]: the background task refreshing ahead of expiry.
//!
//! Secrets (refresh tokens, client secrets, access tokens) never appear in `Debug`,
//! `Display` or logs; upstream error bodies are reduced to their OAuth code and a short
//! redacted description.

mod classify;
mod credentials;
mod error;
mod exchange;
mod manager;
mod refresher;

pub use credentials::{AuthEndpoints, Credentials};
pub use error::RefreshError;
pub use manager::{AccessToken, RefreshOptions, RefreshStats, TokenManager};
pub use refresher::{RefresherConfig, run_refresher};
