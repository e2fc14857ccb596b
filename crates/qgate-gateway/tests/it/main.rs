//! The gateway's integration tests: the real gateway on port 0 in front of the real
//! simulator on port 0, driven over HTTP. Parallel-safe (no fixed ports, a temp dir each).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin;
mod admin_changes;
mod admin_reload;
mod basics;
mod chaos;
mod clients;
mod cluster;
mod crash;
mod crash_admin;
mod crash_process;
mod crash_proxy;
mod fidelity;
mod hostile;
mod hostile_conn;
mod hostile_sizes;
mod limits;
mod logs;
mod metrics;
mod pool;
mod security;
mod security_files;
mod security_ids;
mod security_routes;
mod security_secrets;
mod upstream_head;
mod upstream_pool;
mod upstream_tls;
mod webhooks;
mod workers;
