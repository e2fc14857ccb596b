//! The gateway's integration tests: the real gateway on port 0 in front of the real
//! simulator on port 0, driven over HTTP. Parallel-safe (no fixed ports, a temp dir each).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin;
mod admin_changes;
mod admin_reload;
mod basics;
mod clients;
mod cluster;
mod fidelity;
mod hostile;
mod limits;
mod logs;
mod metrics;
mod pool;
mod security;
mod webhooks;
