//! The shared engine for multi-instance mode: typed operations on one Redis server that
//! several gateways use to act as one.
//!
//! The map:
//! - [`Keys`] (`redis/keys.rs`): the key layout, in one place, under a configurable prefix.
//! - [`EncryptionKey`] (`redis/crypto.rs`): AES-256-GCM for secrets; without a key no
//!   secret is ever written to Redis.
//! - [`Health`] (`redis/health.rs`): up/down as seen by the operations, logged once per
//!   change, and an error counter.
//! - `redis/tokens.rs`: token records, the fenced refresh lock, and [`RedisTokenStore`],
//!   the [`TokenStore`](crate::TokenStore) layered over the local files.
//! - `redis/shared.rs`: pool-state records, the `events` channel ([`Subscription`]),
//!   sticky bindings, cluster-wide counters and the admin record.
//! - `redis/limits.rs`: per-account concurrency and requests-per-minute across instances
//!   (atomic Lua).
//! - `redis/scripts.rs`: every Lua script.
//! - `redis/test_server.rs` (feature `test-support`): a private `redis-server` on a unix
//!   socket for tests.
//!
//! **Failure semantics.** Every operation runs under a short timeout (default 250 ms) and
//! returns a [`RedisError`] instead of waiting for a dead server; callers fall back to
//! local behaviour. The connection reconnects by itself in the background.

mod crypto;
mod health;
mod keys;
mod limits;
mod scripts;
mod shared;
#[cfg(any(test, feature = "test-support"))]
pub mod test_server;
mod tokens;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use crypto::{CryptoError, EncryptionKey, Purpose};
pub use health::Health;
pub use keys::{DEFAULT_PREFIX, Keys, session_hash};
pub use limits::{Acquire, LeaseRef};
pub use shared::{AdminRecord, ClusterEvent, Counts, StateRecord, Subscription};
pub use tokens::{RedisTokenStore, StoredToken};

/// Default per-operation timeout of request-path operations.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(250);
/// Default timeout of token and admin operations. Longer: they sit on the refresh path
/// (already seconds long), and giving up early there means an uncoordinated refresh,
/// which with rotating refresh tokens can revoke another instance's token.
pub const DEFAULT_SLOW_OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is and how the keys are named.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (TLS) or `redis+unix://` (also `unix://`). May hold a
    /// password, so `Debug` redacts it.
    pub url: String,
    pub prefix: String,
    pub op_timeout: Duration,
    /// Token records, the refresh lock and the admin record.
    pub slow_op_timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            slow_op_timeout: DEFAULT_SLOW_OP_TIMEOUT,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .field("slow_op_timeout", &self.slow_op_timeout)
            .finish()
    }
}

/// `scheme://user:password@host/...` → `scheme://***@host/...`; for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The one error of the Redis boundary. Never carries secrets: no URL password, no
/// plaintext, no key material.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("REDIS_URL {shown} is not usable: {reason}")]
    InvalidUrl { shown: String, reason: String },
    #[error("redis {op} timed out after {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("redis {op} failed: {source}")]
    Command {
        op: &'static str,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("redis {op}: stored record for {account:?} is malformed")]
    Malformed { op: &'static str, account: String },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl RedisError {
    /// The server could not be reached in time (as opposed to answering with an error).
    pub fn is_outage(&self) -> bool {
        match self {
            RedisError::Timeout { .. } => true,
            RedisError::Command { source, .. } => !answered(source),
            RedisError::InvalidUrl { .. }
            | RedisError::Malformed { .. }
            | RedisError::Crypto(_) => false,
        }
    }
}

/// Whether an error is the server's reply (so the server is there).
fn answered(err: &::redis::RedisError) -> bool {
    matches!(
        err.kind(),
        ::redis::ErrorKind::Server(_)
            | ::redis::ErrorKind::Extension
            | ::redis::ErrorKind::UnexpectedReturnType
            | ::redis::ErrorKind::Parse
    )
}

/// A handle on one Redis server. Cheap to clone; every clone shares the connection,
/// the health and the scripts.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: ::redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    op_timeout: Duration,
    slow_op_timeout: Duration,
    health: Health,
    scripts: scripts::Scripts,
    shown_url: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.shown_url)
            .field("prefix", &self.inner.keys.prefix())
            .field("health", &self.inner.health)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Parse the URL and set up a connection that is made lazily and re-made in the
    /// background after a failure: a gateway starts even while Redis is down. Must be
    /// called inside a tokio runtime.
    pub fn connect(cfg: &RedisConfig) -> Result<Self, RedisError> {
        let shown_url = redact_url(&cfg.url);
        let invalid = |reason: String| RedisError::InvalidUrl {
            shown: shown_url.clone(),
            reason,
        };
        let client = ::redis::Client::open(cfg.url.as_str()).map_err(|e| invalid(e.to_string()))?;
        let manager_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.op_timeout))
            .set_response_timeout(Some(cfg.op_timeout.max(cfg.slow_op_timeout)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_cfg)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                conn,
                keys: Keys::new(cfg.prefix.clone()),
                op_timeout: cfg.op_timeout,
                slow_op_timeout: cfg.slow_op_timeout,
                health: Health::new(),
                scripts: scripts::Scripts::new(),
                shown_url,
            }),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    pub fn op_timeout(&self) -> Duration {
        self.inner.op_timeout
    }

    /// The URL with any password replaced by `***`.
    pub fn shown_url(&self) -> &str {
        &self.inner.shown_url
    }

    /// One round trip; marks the health up or down like every other operation.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.conn();
        self.run("ping", async move {
            ::redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    pub(crate) fn scripts(&self) -> &scripts::Scripts {
        &self.inner.scripts
    }

    pub(crate) fn client(&self) -> &::redis::Client {
        &self.inner.client
    }

    /// Run one request-path operation under the short timeout, recording the outcome in
    /// [`Health`].
    pub(crate) async fn run<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        self.run_within(self.inner.op_timeout, op, work).await
    }

    /// [`RedisStore::run`] for token and admin operations (the slow timeout).
    pub(crate) async fn run_slow<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        self.run_within(self.inner.slow_op_timeout, op, work).await
    }

    async fn run_within<T>(
        &self,
        timeout: Duration,
        op: &'static str,
        work: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        let health = &self.inner.health;
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(value)) => {
                health.record_ok();
                Ok(value)
            }
            Ok(Err(source)) => {
                health.record_error(op, answered(&source), &source);
                Err(RedisError::Command { op, source })
            }
            Err(_elapsed) => {
                health.record_error(op, false, &format_args!("no answer within {timeout:?}"));
                Err(RedisError::Timeout { op, timeout })
            }
        }
    }
}

#[cfg(test)]
mod tests;
