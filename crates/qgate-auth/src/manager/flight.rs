//! The single-flight refresh behind [`TokenManager`](super::TokenManager): callers queue
//! on one async lock, the refresh runs detached from them, and waiters share its outcome.
//!
//! With a shared store the flight spans instances (`coordinate`): the refresh takes the
//! store's lock, whose fencing token also guards the save; an instance that finds the
//! lock held polls the stored token (every `lock_poll`) and adopts the holder's token as
//! soon as it appears. If the holder dies, its lock expires (`lock_ttl`) and the next
//! poll takes it. A store that cannot coordinate grants the lock uncoordinated: each
//! instance then refreshes for itself, as without a shared store — except that a refusal
//! of the refresh token is then transient, not a denial: with rotating refresh tokens the
//! refusal may only mean that another instance rotated it during the outage (its new
//! token reaches the store when the store is back: `TokenStore::resync`); the same holds
//! for a few seconds after the store returns (`TokenStore::recently_unreachable`).

use std::sync::Arc;

use jiff::Timestamp;
use parking_lot::Mutex;
use qgate_store::{CachedToken, Fence, RefreshLock, TokenStore};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OwnedMutexGuard;

use super::state::{State, Want, later_by};
use super::{AccessToken, RefreshOptions};
use crate::exchange::{Grant, exchange};
use crate::{AuthEndpoints, Credentials, RefreshError};

pub(super) struct Inner {
    pub(super) account_id: Arc<str>,
    endpoints: Arc<AuthEndpoints>,
    http: reqwest::Client,
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) options: RefreshOptions,
    pub(super) state: Mutex<State>,
    /// Held by the refresh task for the whole exchange + save, and by `persist`.
    pub(super) refresh_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Inner {
    pub(super) fn new(
        account_id: &str,
        credentials: Credentials,
        endpoints: Arc<AuthEndpoints>,
        http: reqwest::Client,
        store: Arc<dyn TokenStore>,
        options: RefreshOptions,
    ) -> Self {
        Inner {
            account_id: account_id.into(),
            endpoints,
            http,
            store,
            options,
            state: Mutex::new(State::new(credentials)),
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(super) async fn obtain(self: &Arc<Self>, want: Want) -> Result<AccessToken, RefreshError> {
        let observed_attempts = {
            let state = self.state.lock();
            if let Some(denied) = &state.denied {
                return Err(denied.clone());
            }
            if let Some(token) = state.usable(want, Timestamp::now()) {
                return Ok(token);
            }
            state.attempts
        };

        let refresh_turn = Arc::clone(&self.refresh_lock).lock_owned().await;
        {
            let now = Timestamp::now();
            let state = self.state.lock();
            if let Some(denied) = &state.denied {
                return Err(denied.clone());
            }
            if let Some(token) = state.usable(want, now) {
                return Ok(token);
            }
            if state.attempts != observed_attempts {
                // A refresh completed while we queued: its outcome is ours too.
                match state.last_outcome.clone() {
                    Some(Ok(token)) => return Ok(token),
                    Some(Err(err)) => return state.degrade(want, err, now),
                    None => {}
                }
            }
            if let Some((failed_at, err)) = &state.last_transient_failure
                && !want.force
                && failed_at.elapsed() < self.options.failure_backoff
            {
                return state.degrade(want, err.clone(), now);
            }
        }

        let inner = Arc::clone(self);
        let refresh = tokio::spawn(async move { inner.refresh_holding(refresh_turn, want).await });
        let outcome = refresh.await.unwrap_or_else(|_| {
            Err(RefreshError::transient(
                None,
                "refresh task ended unexpectedly",
            ))
        });
        outcome.or_else(|err| self.state.lock().degrade(want, err, Timestamp::now()))
    }

    /// One refresh, holding the refresh lock until the result is saved and published.
    async fn refresh_holding(
        self: Arc<Self>,
        _refresh_turn: OwnedMutexGuard<()>,
        want: Want,
    ) -> Result<AccessToken, RefreshError> {
        let fence = if self.store.is_shared() {
            match self.coordinate(want).await {
                Coordination::Adopted(token) => return Ok(token),
                Coordination::Refresh(fence) => fence,
            }
        } else {
            Fence::UNCOORDINATED
        };
        let outcome = self.refresh_fenced(fence).await;
        if fence.value().is_some() {
            self.store.unlock_refresh(&self.account_id, fence).await;
        }
        outcome
    }

    /// Become the instance that refreshes, or adopt what the one that did stored.
    async fn coordinate(&self, want: Want) -> Coordination {
        let ttl = self.options.lock_ttl;
        // A live holder finishes within `ttl` and a dead one's lock expires by then; past
        // twice that the store is misbehaving, and refreshing alone is the lesser evil.
        let give_up_at = tokio::time::Instant::now() + ttl.saturating_mul(2);
        loop {
            match self.store.lock_refresh(&self.account_id, ttl).await {
                RefreshLock::Granted(fence) => {
                    // The previous holder may have saved between our last read and our lock.
                    if let Some(token) = self.adopt_stored(want).await {
                        self.store.unlock_refresh(&self.account_id, fence).await;
                        return Coordination::Adopted(token);
                    }
                    return Coordination::Refresh(fence);
                }
                RefreshLock::Busy => {
                    if let Some(token) = self.adopt_stored(want).await {
                        return Coordination::Adopted(token);
                    }
                    if tokio::time::Instant::now() >= give_up_at {
                        tracing::warn!(account = %self.account_id, "the shared refresh lock stayed taken past twice its ttl; refreshing without it");
                        return Coordination::Refresh(Fence::UNCOORDINATED);
                    }
                    tokio::time::sleep(self.options.lock_poll).await;
                }
            }
        }
    }

    /// Take over a token another instance stored, if it is newer than ours; returns it
    /// when it also satisfies `want`.
    async fn adopt_stored(&self, want: Want) -> Option<AccessToken> {
        let stored = match self.store.load(&self.account_id).await {
            Ok(stored) => stored?,
            Err(err) => {
                tracing::debug!(account = %self.account_id, error = %err, "could not read the shared token");
                return None;
            }
        };
        let adopted = self
            .state
            .lock()
            .adopt_shared(stored, want, Timestamp::now());
        if let Some(token) = &adopted {
            tracing::info!(
                account = %self.account_id,
                generation = token.generation,
                "adopted the access token another instance refreshed"
            );
        }
        adopted
    }

    async fn refresh_fenced(&self, fence: Fence) -> Result<AccessToken, RefreshError> {
        let (credentials, in_use, epoch) = {
            let state = self.state.lock();
            (
                state.credentials.clone(),
                state.refresh_token.clone(),
                state.credentials_epoch,
            )
        };
        let configured = credentials.refresh_token().clone();
        let mut used = in_use;
        let mut result = self.exchange_with(&credentials, &used).await;
        let cached_token_denied = matches!(result, Err(RefreshError::Denied { .. }))
            && used.expose_secret() != configured.expose_secret();
        if cached_token_denied {
            // The cache may hold a token the operator has since replaced in the config.
            tracing::info!(account = %self.account_id, "cached refresh token was denied; trying the configured one");
            used = configured;
            result = self.exchange_with(&credentials, &used).await;
        }
        match result {
            Ok(grant) => self.complete(grant, used, epoch, fence).await,
            Err(RefreshError::Denied { code })
                if self.store.is_shared()
                    && (fence.value().is_none() || self.store.recently_unreachable()) =>
            {
                // Refreshing without the shared lock, or just after the store came
                // back: another instance may have rotated this refresh token during the
                // outage, and its new one is not readable here yet. Not a verdict on the
                // account; asked again once the store has settled.
                tracing::info!(account = %self.account_id, code = %code, "refresh token refused while the shared store was unreachable; treated as transient");
                Err(self.fail(
                    RefreshError::transient(
                        Some(400),
                        "refresh token refused while the shared token store was unreachable",
                    ),
                    epoch,
                ))
            }
            Err(err) => Err(self.fail(err, epoch)),
        }
    }

    async fn exchange_with(
        &self,
        credentials: &Credentials,
        refresh_token: &SecretString,
    ) -> Result<Grant, RefreshError> {
        exchange(
            &self.http,
            &self.endpoints,
            credentials,
            refresh_token,
            &self.options,
        )
        .await
    }

    /// Save first, then publish: a rotated refresh token must be durable before the access
    /// token that came with it is used.
    async fn complete(
        &self,
        grant: Grant,
        used: SecretString,
        epoch: u64,
        fence: Fence,
    ) -> Result<AccessToken, RefreshError> {
        let now = Timestamp::now();
        let expires_at = later_by(now, grant.expires_in);
        let rotated = grant
            .rotated_refresh_token
            .as_ref()
            .is_some_and(|new| new.expose_secret() != used.expose_secret());
        let refresh_token = grant.rotated_refresh_token.clone().unwrap_or(used);
        let cached = CachedToken {
            access_token: Some(grant.access_token.clone()),
            refresh_token: refresh_token.clone(),
            expires_at: Some(expires_at),
        };
        let saved = self
            .store
            .save_fenced(&self.account_id, &cached, fence)
            .await;

        let mut state = self.state.lock();
        state.note_persisted(&self.account_id, &saved);
        if state.credentials_epoch != epoch {
            return Err(credentials_replaced());
        }
        let token = state.install(grant, refresh_token, expires_at, now);
        tracing::info!(
            account = %self.account_id,
            generation = token.generation,
            expires_at = %expires_at,
            rotated,
            "access token refreshed"
        );
        Ok(token)
    }

    fn fail(&self, err: RefreshError, epoch: u64) -> RefreshError {
        let mut state = self.state.lock();
        if state.credentials_epoch != epoch {
            // Not a verdict on the new credentials; waiters will refresh with those.
            return credentials_replaced();
        }
        state.record_failure(&err, Timestamp::now());
        if err.is_permanent() {
            tracing::warn!(account = %self.account_id, code = err.code(), "token refresh denied; the account needs new credentials");
        } else {
            tracing::warn!(account = %self.account_id, code = err.code(), error = %err, "token refresh failed");
        }
        err
    }
}

enum Coordination {
    /// Another instance refreshed; its token is ours now.
    Adopted(AccessToken),
    /// Refresh here, saving under this fence.
    Refresh(Fence),
}

fn credentials_replaced() -> RefreshError {
    RefreshError::transient(None, "credentials were replaced during the refresh")
}
