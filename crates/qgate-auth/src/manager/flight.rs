//! The machinery behind [`TokenManager`](super::TokenManager): per-account state, the
//! rule for when the current token is good enough ([`Want`]), and the single-flight
//! refresh that runs detached from its callers.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use parking_lot::Mutex;
use qgate_store::{CachedToken, StoreError, TokenStore};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::{AccessToken, RefreshOptions, RefreshStats};
use crate::exchange::{Grant, exchange};
use crate::{AuthEndpoints, Credentials, RefreshError};

/// What a caller needs from the current token before it may skip a refresh.
#[derive(Debug, Clone, Copy)]
pub(super) struct Want {
    min_validity: Duration,
    /// Only a token of a later generation will do (the upstream rejected this one).
    newer_than: Option<u64>,
    /// On a transient failure, accept the current token if it has not expired yet.
    degrade: bool,
    /// Never accept the current token; only a refresh (ours or a concurrent one) will do.
    force: bool,
}

impl Want {
    pub(super) fn valid_for(min_validity: Duration) -> Self {
        Want {
            min_validity,
            newer_than: None,
            degrade: false,
            force: false,
        }
    }

    pub(super) fn fresh_refresh() -> Self {
        Want {
            force: true,
            ..Want::valid_for(Duration::ZERO)
        }
    }

    pub(super) fn newer_than(self, generation: u64) -> Self {
        Want {
            newer_than: Some(generation),
            ..self
        }
    }

    pub(super) fn degrade_to_unexpired(self) -> Self {
        Want {
            degrade: true,
            ..self
        }
    }
}

pub(super) struct State {
    pub(super) credentials: Credentials,
    /// Bumped by `set_credentials`; a refresh started under an older epoch is discarded.
    pub(super) credentials_epoch: u64,
    /// The refresh token in use: configured, adopted from the cache, or rotated.
    refresh_token: SecretString,
    pub(super) access: Option<AccessToken>,
    pub(super) next_generation: u64,
    /// Completed refresh attempts; a waiter that sees it change shares that outcome.
    attempts: u64,
    last_outcome: Option<Result<AccessToken, RefreshError>>,
    pub(super) last_transient_failure: Option<(Instant, RefreshError)>,
    pub(super) denied: Option<RefreshError>,
    pub(super) profile_arn: Option<String>,
    persist_failure_logged: bool,
    pub(super) stats: RefreshStats,
}

impl State {
    fn new(credentials: Credentials) -> Self {
        State {
            refresh_token: credentials.refresh_token().clone(),
            credentials,
            credentials_epoch: 0,
            access: None,
            next_generation: 1,
            attempts: 0,
            last_outcome: None,
            last_transient_failure: None,
            denied: None,
            profile_arn: None,
            persist_failure_logged: false,
            stats: RefreshStats::default(),
        }
    }

    /// Start over with new credentials; counters that must stay monotonic (generations,
    /// attempts) and the history in `stats` carry over.
    pub(super) fn replace_credentials(&mut self, credentials: Credentials) {
        self.refresh_token = credentials.refresh_token().clone();
        self.credentials = credentials;
        self.credentials_epoch += 1;
        self.access = None;
        self.last_outcome = None;
        self.last_transient_failure = None;
        self.denied = None;
        self.profile_arn = None;
    }

    pub(super) fn adopt_cached(&mut self, cached: CachedToken, now: Timestamp) -> bool {
        let adopted_refresh =
            cached.refresh_token.expose_secret() != self.refresh_token.expose_secret();
        if adopted_refresh {
            self.refresh_token = cached.refresh_token;
        }
        if let (Some(token), Some(expires_at)) = (cached.access_token, cached.expires_at) {
            let newer_than_current = self
                .access
                .as_ref()
                .is_none_or(|current| current.expires_at < Some(expires_at));
            if expires_at > now && newer_than_current {
                let generation = self.mint_generation();
                self.access = Some(AccessToken {
                    secret: Arc::new(token),
                    generation,
                    expires_at: Some(expires_at),
                });
            }
        }
        adopted_refresh
    }

    pub(super) fn usable(&self, want: Want, now: Timestamp) -> Option<AccessToken> {
        if want.force {
            return None;
        }
        let token = self.access.as_ref()?;
        if want
            .newer_than
            .is_some_and(|rejected| token.generation <= rejected)
        {
            return None;
        }
        let valid_until = later_by(now, want.min_validity);
        (token.expires_at? > valid_until).then(|| token.clone())
    }

    /// `err`, or the current token when the caller accepts any unexpired token and the
    /// failure may heal.
    fn degrade(
        &self,
        want: Want,
        err: RefreshError,
        now: Timestamp,
    ) -> Result<AccessToken, RefreshError> {
        let fallback = (want.degrade && !err.is_permanent())
            .then(|| self.usable(Want::valid_for(Duration::ZERO), now))
            .flatten();
        fallback.ok_or(err)
    }

    pub(super) fn to_cached(&self) -> CachedToken {
        CachedToken {
            access_token: self.access.as_ref().map(|token| (*token.secret).clone()),
            refresh_token: self.refresh_token.clone(),
            expires_at: self.access.as_ref().and_then(|token| token.expires_at),
        }
    }

    /// Log a failed save once per failure streak: it repeats on every refresh otherwise.
    pub(super) fn note_persisted(&mut self, account: &str, saved: &Result<(), StoreError>) {
        match saved {
            Ok(()) if self.persist_failure_logged => {
                self.persist_failure_logged = false;
                tracing::info!(account, "token cache saved again");
            }
            Ok(()) => {}
            Err(err) if !self.persist_failure_logged => {
                self.persist_failure_logged = true;
                tracing::warn!(account, error = %err, "could not save the token cache; keeping the token in memory and retrying on the next refresh");
            }
            Err(err) => tracing::debug!(account, error = %err, "token cache still not saved"),
        }
    }

    fn mint_generation(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    fn install(
        &mut self,
        grant: Grant,
        refresh_token: SecretString,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> AccessToken {
        let token = AccessToken {
            secret: Arc::new(grant.access_token),
            generation: self.mint_generation(),
            expires_at: Some(expires_at),
        };
        self.refresh_token = refresh_token;
        self.access = Some(token.clone());
        if grant.profile_arn.is_some() {
            self.profile_arn = grant.profile_arn;
        }
        self.attempts += 1;
        self.last_outcome = Some(Ok(token.clone()));
        self.last_transient_failure = None;
        self.stats.refreshes_ok += 1;
        self.stats.last_error_code = None;
        self.stats.last_refresh_at = Some(now);
        token
    }

    fn record_failure(&mut self, err: &RefreshError, now: Timestamp) {
        self.attempts += 1;
        self.last_outcome = Some(Err(err.clone()));
        self.stats.refreshes_failed += 1;
        self.stats.last_error_code = Some(err.code().to_owned());
        self.stats.last_failure_at = Some(now);
        if err.is_permanent() {
            self.denied = Some(err.clone());
        } else {
            self.last_transient_failure = Some((Instant::now(), err.clone()));
        }
    }
}

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

fn later_by(now: Timestamp, by: Duration) -> Timestamp {
    now.saturating_add(by).unwrap_or(Timestamp::MAX)
}
