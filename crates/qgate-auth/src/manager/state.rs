//! Per-account token state and the rule for when the current token is good enough
//! ([`Want`]). Plain data behind a sync lock: nothing here awaits.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use qgate_store::{CachedToken, StoreError};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{AccessToken, RefreshStats};
use crate::exchange::Grant;
use crate::{Credentials, RefreshError};

/// What a caller needs from the current token before it may skip a refresh.
#[derive(Debug, Clone, Copy)]
pub(super) struct Want {
    min_validity: Duration,
    /// Only a token of a later generation will do (the upstream rejected this one).
    newer_than: Option<u64>,
    /// On a transient failure, accept the current token if it has not expired yet.
    degrade: bool,
    /// Never accept the current token; only a refresh (ours or a concurrent one) will do.
    pub(super) force: bool,
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
    pub(super) refresh_token: SecretString,
    pub(super) access: Option<AccessToken>,
    pub(super) next_generation: u64,
    /// Completed refresh attempts; a waiter that sees it change shares that outcome.
    pub(super) attempts: u64,
    pub(super) last_outcome: Option<Result<AccessToken, RefreshError>>,
    pub(super) last_transient_failure: Option<(Instant, RefreshError)>,
    pub(super) denied: Option<RefreshError>,
    pub(super) profile_arn: Option<String>,
    persist_failure_logged: bool,
    pub(super) stats: RefreshStats,
}

impl State {
    pub(super) fn new(credentials: Credentials) -> Self {
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

    /// A token another instance stored (shared store). When its access token expires
    /// later than ours it is the newer record: its refresh token replaces ours (the other
    /// instance may have rotated it), and its access token is installed as a new
    /// generation if it is good enough for `want`, which is then returned.
    pub(super) fn adopt_shared(
        &mut self,
        stored: CachedToken,
        want: Want,
        now: Timestamp,
    ) -> Option<AccessToken> {
        let stored_expiry = stored.access_token.as_ref().and(stored.expires_at);
        let our_expiry = self.access.as_ref().and_then(|token| token.expires_at);
        if stored_expiry.is_none() || stored_expiry <= our_expiry {
            return None;
        }
        if stored.refresh_token.expose_secret() != self.refresh_token.expose_secret() {
            self.refresh_token = stored.refresh_token;
        }
        let (Some(secret), Some(expires_at)) = (stored.access_token, stored_expiry) else {
            return None;
        };
        if want.force || expires_at <= later_by(now, want.min_validity) {
            return None;
        }
        let token = AccessToken {
            secret: Arc::new(secret),
            generation: self.mint_generation(),
            expires_at: Some(expires_at),
        };
        self.access = Some(token.clone());
        self.attempts += 1;
        self.last_outcome = Some(Ok(token.clone()));
        self.last_transient_failure = None;
        self.stats.adopted += 1;
        Some(token)
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
    pub(super) fn degrade(
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

    pub(super) fn install(
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
        self.stats.ok += 1;
        self.stats.last_error_code = None;
        self.stats.last_refresh_at = Some(now);
        token
    }

    pub(super) fn record_failure(&mut self, err: &RefreshError, now: Timestamp) {
        self.attempts += 1;
        self.last_outcome = Some(Err(err.clone()));
        self.stats.failed += 1;
        self.stats.last_error_code = Some(err.code().to_owned());
        self.stats.last_failure_at = Some(now);
        if err.is_permanent() {
            self.denied = Some(err.clone());
        } else {
            self.last_transient_failure = Some((Instant::now(), err.clone()));
        }
    }
}

pub(super) fn later_by(now: Timestamp, by: Duration) -> Timestamp {
    now.saturating_add(by).unwrap_or(Timestamp::MAX)
}
