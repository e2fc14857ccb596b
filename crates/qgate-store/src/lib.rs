//! Where qgate keeps what must survive a restart — per-account token caches and one JSON
//! state document (pool states, admin changes) — and, in multi-instance mode, what several
//! gateways share through Redis.
//!
//! The map:
//! - [`TokenStore`] is the seam: the token manager in `qgate-auth` only ever talks to this
//!   trait, so the shared (Redis) backend replaces the local files without touching
//!   callers. It returns boxed futures so `Arc<dyn TokenStore>` works, and offers a
//!   cross-instance refresh lock ([`RefreshLock`], [`Fence`]; always granted locally).
//! - [`FileTokenStore`] is the local backend. It reads and writes the original Python
//!   gateway's cache files byte-compatibly (`~/.amazonq_token_cache/{account}.json`, the
//!   legacy `~/.amazonq_token_cache.json` for `default`), see `seed_format`.
//! - [`StateFile`] is one JSON document saved atomically.
//! - [`redis`] is the shared engine of multi-instance mode: token records with a fenced
//!   refresh lock ([`redis::RedisTokenStore`], layered over the local files), pool-state
//!   records and events, cross-instance limits, sticky bindings, counters and admin
//!   records, with encryption of secrets and connection health.
//! - [`write_atomic`] / [`ensure_private_dir`] are the crash-safety and permission
//!   primitives both are built on: a reader sees either the old or the new complete file.
//!
//! Unix only: file modes (0600 / 0700) are part of the contract.

mod atomic;
mod error;
pub mod redis;
mod seed_format;
mod state_file;
mod token;
mod token_file;

use std::future::Future;
use std::pin::Pin;

pub use atomic::{ensure_private_dir, write_atomic};
pub use error::StoreError;
pub use state_file::StateFile;
pub use token::{CachedToken, Fence, RefreshLock, TokenStore, check_account_id};
pub use token_file::FileTokenStore;

/// A `Send` future boxed so traits returning it stay dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Blocking file I/O off the async workers.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(StoreError::TaskFailed)?
}
