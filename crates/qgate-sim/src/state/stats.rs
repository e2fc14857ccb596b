//! Per-account counters (atomics on the request path) and their JSON snapshot.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Account;

/// What `GET /_sim/stats` answers: how load and failures were spread over accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    pub accounts: BTreeMap<String, AccountStats>,
    /// Detail of the last request the validator refused.
    pub last_violation: Option<String>,
}

impl SimStats {
    /// One account's counters (all zero for an unknown name).
    pub fn account(&self, name: &str) -> AccountStats {
        self.accounts.get(name).cloned().unwrap_or_default()
    }

    /// Chat requests over all accounts.
    pub fn total_chat_requests(&self) -> u64 {
        self.accounts.values().map(|a| a.chat_requests).sum()
    }
}

/// One account's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStats {
    /// Chat requests whose bearer token belonged to this account (valid or expired).
    pub chat_requests: u64,
    /// Of those, answered 200 with an event stream (a mid-stream fault still counts here).
    pub chat_ok: u64,
    /// Of those, answered with an HTTP error.
    pub chat_errors: u64,
    /// Successful token refreshes (OIDC and Kiro).
    pub token_refreshes: u64,
    /// Refused or failed refreshes attributable to this account.
    pub refresh_failures: u64,
    /// Chat requests the validator refused.
    pub validation_failures: u64,
    /// Chat requests being served now (until their body ends).
    pub in_flight: u64,
    /// The most chat requests this account served at once.
    pub max_in_flight: u64,
    /// Injected faults (including `[[sim error=...]]`) that fired.
    pub faults_fired: u64,
    /// `GET /getUsageLimits` calls whose bearer token belonged to this account.
    #[serde(default)]
    pub usage_checks: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) chat_requests: AtomicU64,
    pub(crate) chat_ok: AtomicU64,
    pub(crate) chat_errors: AtomicU64,
    pub(crate) token_refreshes: AtomicU64,
    pub(crate) refresh_failures: AtomicU64,
    pub(crate) validation_failures: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    pub(crate) faults_fired: AtomicU64,
    pub(crate) usage_checks: AtomicU64,
}

/// Adds one to a counter. Relaxed: counters are read as a snapshot, never to synchronise.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AccountStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AccountStats {
            chat_requests: get(&self.chat_requests),
            chat_ok: get(&self.chat_ok),
            chat_errors: get(&self.chat_errors),
            token_refreshes: get(&self.token_refreshes),
            refresh_failures: get(&self.refresh_failures),
            validation_failures: get(&self.validation_failures),
            in_flight: get(&self.in_flight),
            max_in_flight: get(&self.max_in_flight),
            faults_fired: get(&self.faults_fired),
            usage_checks: get(&self.usage_checks),
        }
    }
}

/// Counts a chat request as in flight while it lives; the reply body owns it, so a
/// streaming request stays counted until its last frame is sent or the client leaves.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Account>);

impl InFlight {
    pub(crate) fn enter(account: Arc<Account>) -> Self {
        let now = account.counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        account
            .counters
            .max_in_flight
            .fetch_max(now, Ordering::Relaxed);
        InFlight(account)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
