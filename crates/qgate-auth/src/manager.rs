//! [`TokenManager`]: one account's access token, kept fresh.
//!
//! Invariants:
//! - **Single flight.** At most one refresh per account is in flight. Callers that wait
//!   for it get *its* result (token or error) instead of starting another one, so 100
//!   requests on an expired token, or 50 requests that all saw the same 403, cost one
//!   HTTP refresh — and a revoked account costs one, not a storm.
//! - **Rotation is durable before use.** A rotated refresh token is saved through the
//!   [`TokenStore`] before the new access token is handed out. If saving fails the token
//!   is kept in memory and saving is retried by the next refresh or [`TokenManager::persist`].
//! - **Refreshes are not cancelled by callers.** The HTTP exchange runs in its own task
//!   holding the refresh lock, so a client disconnecting mid-refresh cannot lose a
//!   rotated refresh token the service already issued.
//! - **Denied is sticky.** After a permanent refusal every call fails fast with the same
//!   error, until [`TokenManager::set_credentials`] or [`TokenManager::refresh_now`].
//! - **One refresh per account across instances** when the store is shared
//!   ([`TokenStore::is_shared`]): the refresh takes the store's fenced lock; an instance
//!   that finds it held polls the stored token and adopts the holder's result instead of
//!   refreshing (see `manager/flight.rs`).
//!
//! Locking: `state` is a small sync lock never held across `.await`; `refresh_lock` is the
//! async lock that serialises refreshes and saves.

mod flight;
mod state;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use qgate_store::{CachedToken, StoreError, TokenStore};
use secrecy::{ExposeSecret, SecretString};

use crate::{AuthEndpoints, Credentials, RefreshError};
use flight::Inner;
use state::Want;

/// An access token as handed to the data plane. Cheap to clone; `Debug` is redacted.
///
/// The generation orders tokens of one account: [`TokenManager::force_refresh`] uses it to
/// tell whether the token the upstream rejected is still the current one.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<SecretString>,
    generation: u64,
    expires_at: Option<Timestamp>,
}

impl AccessToken {
    /// The bearer value, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[REDACTED]")
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Timing of refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshOptions {
    /// Refresh when the token expires within this (the original used 5 minutes).
    pub skew: Duration,
    /// Whole-request timeout of one refresh call.
    pub timeout: Duration,
    /// Lifetime assumed when the response has no `expiresIn`.
    pub default_expires_in: Duration,
    /// After a transient failure, callers within this window get that failure (or a
    /// still-valid token) instead of a new attempt, so a down token service is not
    /// hammered by every request.
    pub failure_backoff: Duration,
    /// Shared token store only: how long the cross-instance refresh lock lasts. Longer
    /// than `timeout`, so a live holder never loses it mid-refresh; a holder that dies
    /// delays the others by at most this much.
    pub lock_ttl: Duration,
    /// Shared token store only: how often an instance waiting for another's refresh
    /// re-reads the stored token.
    pub lock_poll: Duration,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            skew: Duration::from_secs(5 * 60),
            timeout: Duration::from_secs(15),
            default_expires_in: Duration::from_secs(3600),
            failure_backoff: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(20),
            lock_poll: Duration::from_millis(50),
        }
    }
}

/// Refresh history of one account, for the admin API and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshStats {
    /// Successful refreshes.
    pub ok: u64,
    /// Failed refreshes (transient or denied).
    pub failed: u64,
    /// Tokens taken over from another instance's refresh (shared store) instead of
    /// refreshing here.
    pub adopted: u64,
    /// [`RefreshError::code`] of the latest attempt when it failed; `None` after a success.
    pub last_error_code: Option<String>,
    /// When the latest successful refresh completed.
    pub last_refresh_at: Option<Timestamp>,
    /// When the latest failed refresh completed.
    pub last_failure_at: Option<Timestamp>,
}

/// Keeps one account's access token fresh. `Send + Sync`; share it as `Arc<TokenManager>`.
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("TokenManager")
            .field("account", &self.inner.account_id)
            .field("credentials", &state.credentials.kind())
            .field("generation", &state.access.as_ref().map(|t| t.generation))
            .field(
                "expires_at",
                &state.access.as_ref().and_then(|t| t.expires_at),
            )
            .field("denied", &state.denied.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    pub fn new(
        account_id: &str,
        creds: Credentials,
        endpoints: Arc<AuthEndpoints>,
        http: reqwest::Client,
        store: Arc<dyn TokenStore>,
        opts: RefreshOptions,
    ) -> Self {
        TokenManager {
            inner: Arc::new(Inner::new(account_id, creds, endpoints, http, store, opts)),
        }
    }

    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// At start: adopt the cached refresh token (possibly a rotated one the configuration
    /// does not know) even when the cached access token has expired, and the cached
    /// access token only while it is still valid. If the adopted refresh token is later
    /// denied and differs from the configured one, the configured one is tried once.
    pub async fn load_cached(&self) -> Result<(), StoreError> {
        let _refreshes_paused = self.inner.refresh_lock.lock().await;
        let Some(cached) = self.inner.store.load(&self.inner.account_id).await? else {
            return Ok(());
        };
        let mut state = self.inner.state.lock();
        let adopted_refresh_token = state.adopt_cached(cached, Timestamp::now());
        tracing::info!(
            account = %self.inner.account_id,
            adopted_refresh_token,
            access_token_valid = state.access.is_some(),
            "loaded cached token"
        );
        Ok(())
    }

    /// A token valid for at least `skew`, refreshing first if needed (single flight).
    /// If a refresh fails transiently while the current token has not yet expired, the
    /// current token is returned: it still works, and the next call tries again.
    pub async fn access_token(&self) -> Result<AccessToken, RefreshError> {
        self.inner
            .obtain(Want::valid_for(self.inner.options.skew).degrade_to_unexpired())
            .await
    }

    /// The upstream rejected `rejected`. Refresh, unless the current token is already newer
    /// than it (another request got here first), so N requests that all saw a 403 with the
    /// same token cause one refresh.
    pub async fn force_refresh(&self, rejected: &AccessToken) -> Result<AccessToken, RefreshError> {
        self.inner
            .obtain(Want::valid_for(self.inner.options.skew).newer_than(rejected.generation))
            .await
    }

    /// Admin "refresh now": forget a previous denial and backoff, and refresh even if the
    /// current token is fresh.
    pub async fn refresh_now(&self) -> Result<AccessToken, RefreshError> {
        {
            let mut state = self.inner.state.lock();
            state.denied = None;
            state.last_transient_failure = None;
        }
        self.inner.obtain(Want::fresh_refresh()).await
    }

    /// Refresh if the token expires within `ahead` (the background refresher's call).
    /// Reports the real outcome: no fallback to the still-valid token.
    pub async fn refresh_if_expiring_within(&self, ahead: Duration) -> Result<(), RefreshError> {
        self.inner.obtain(Want::valid_for(ahead)).await.map(drop)
    }

    /// Expiry of the current access token, if there is one.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.inner
            .state
            .lock()
            .access
            .as_ref()
            .and_then(|t| t.expires_at)
    }

    /// True when there is no access token or it expires within `ahead`.
    pub fn needs_refresh_within(&self, ahead: Duration) -> bool {
        let state = self.inner.state.lock();
        state
            .usable(Want::valid_for(ahead), Timestamp::now())
            .is_none()
    }

    /// True after a permanent refusal, until new credentials or `refresh_now`.
    pub fn is_denied(&self) -> bool {
        self.inner.state.lock().denied.is_some()
    }

    /// `profileArn` from the latest Kiro refresh, if the service sent one.
    pub fn profile_arn(&self) -> Option<String> {
        self.inner.state.lock().profile_arn.clone()
    }

    /// The operator gave new credentials: drop the current token, any denial and backoff;
    /// the next call refreshes with them. A refresh in flight with the old credentials
    /// is discarded when it completes. Call [`TokenManager::persist`] to save them now.
    pub fn set_credentials(&self, creds: Credentials) {
        self.inner.state.lock().replace_credentials(creds);
        tracing::info!(account = %self.inner.account_id, "credentials replaced");
    }

    /// Save the current refresh token (and access token) through the store, e.g. at
    /// shutdown. Waits for a refresh in flight so its result is what gets saved.
    pub async fn persist(&self) -> Result<(), StoreError> {
        let _refreshes_paused = self.inner.refresh_lock.lock().await;
        let snapshot: CachedToken = self.inner.state.lock().to_cached();
        let saved = self
            .inner
            .store
            .save(&self.inner.account_id, &snapshot)
            .await;
        self.inner
            .state
            .lock()
            .note_persisted(&self.inner.account_id, &saved);
        saved
    }

    pub fn stats(&self) -> RefreshStats {
        self.inner.state.lock().stats.clone()
    }
}
