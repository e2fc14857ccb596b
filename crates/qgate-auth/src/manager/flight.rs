//! The single-flight refresh behind [`TokenManager`](super::TokenManager): callers queue
//! on one async lock, the refresh runs detached from them, and waiters share its outcome.

use std::sync::Arc;

use jiff::Timestamp;
use parking_lot::Mutex;
use qgate_store::{CachedToken, TokenStore};
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
        let refresh = tokio::spawn(async move { inner.refresh_holding(refresh_turn).await });
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
    ) -> Result<AccessToken, RefreshError> {
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
            Ok(grant) => self.complete(grant, used, epoch).await,
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
        let saved = self.store.save(&self.account_id, &cached).await;

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

fn credentials_replaced() -> RefreshError {
    RefreshError::transient(None, "credentials were replaced during the refresh")
}
