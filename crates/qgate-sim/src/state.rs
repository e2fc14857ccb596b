//! Everything a simulator remembers: accounts and their refresh tokens, issued access
//! tokens, OIDC client registrations and device-flow sessions, faults and counters.
//!
//! Request-path reads (bearer lookup, counters, fault check) take no exclusive lock: the
//! token map is behind a read-write lock written only by refreshes, counters are atomics,
//! and the fault table is skipped by one atomic load when empty.

use crate::config::{SimConfig, credentials};
use crate::fault::{FaultSpec, FaultTable};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

mod stats;

pub use stats::{AccountStats, SimStats};
pub(crate) use stats::{Counters, InFlight, bump};

/// Shared simulator state; cheap to clone. Mount it with [`crate::router`].
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

impl fmt::Debug for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimState")
            .field("accounts", &self.inner.accounts.read().len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: SimConfig,
    accounts: RwLock<Vec<Arc<Account>>>,
    access_tokens: RwLock<HashMap<String, Grant>>,
    /// Clients registered through `/client/register`: id → secret.
    registered_clients: Mutex<HashMap<String, String>>,
    devices: Mutex<HashMap<String, DeviceSession>>,
    faults: FaultTable,
    last_violation: Mutex<Option<String>>,
}

/// One simulated account.
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) client_id: String,
    client_secret: String,
    pub(crate) profile_arn: String,
    index: usize,
    refresh: Mutex<RefreshState>,
    pub(crate) counters: Counters,
    last_request: Mutex<Option<Bytes>>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

struct RefreshState {
    current: String,
    generation: u64,
    revoked: bool,
}

impl Account {
    fn new(index: usize, client_id: String, client_secret: String) -> Self {
        let creds = credentials(index);
        Account {
            name: creds.account,
            client_id,
            client_secret,
            profile_arn: creds.profile_arn,
            index,
            refresh: Mutex::new(RefreshState {
                current: creds.refresh_token,
                generation: 0,
                revoked: false,
            }),
            counters: Counters::default(),
            last_request: Mutex::new(None),
        }
    }

    pub(crate) fn client_matches(&self, client_id: &str, client_secret: &str) -> bool {
        self.client_id == client_id && self.client_secret == client_secret
    }

    /// Exchanges a presented refresh token: `Some(token to hand back)` when it is the
    /// current one and not revoked. With rotation the old token dies here, under the lock,
    /// so two concurrent refreshes with one token cannot both succeed.
    pub(crate) fn redeem(&self, presented: &str, rotate: bool) -> Option<String> {
        let mut state = self.refresh.lock();
        if state.revoked || state.current != presented {
            return None;
        }
        if rotate {
            state.generation += 1;
            state.current = format!("sim-refresh-{}-r{}", self.index, state.generation);
        }
        Some(state.current.clone())
    }

    pub(crate) fn current_refresh_token(&self) -> String {
        self.refresh.lock().current.clone()
    }

    pub(crate) fn remember_request(&self, body: Bytes) {
        *self.last_request.lock() = Some(body);
    }
}

struct Grant {
    account: Arc<Account>,
    expires_at: Instant,
}

/// What a bearer token is.
#[derive(Debug)]
pub(crate) enum BearerCheck {
    Valid(Arc<Account>),
    Expired(Arc<Account>),
    Unknown,
}

/// Where a device-code authorization stands.
struct DeviceSession {
    client_id: String,
    polls: u32,
    redeemed: bool,
}

/// The answer to one device-code poll.
#[derive(Debug)]
pub(crate) enum DevicePoll {
    Pending,
    Approved(Arc<Account>),
    /// Unknown code, another client's code, or a code already exchanged.
    Invalid,
}

/// Issued access tokens beyond this are pruned of long-expired ones.
const TOKEN_PRUNE_THRESHOLD: usize = 100_000;

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let accounts = (1..=config.accounts)
            .map(|i| {
                let creds = credentials(i);
                Arc::new(Account::new(i, creds.client_id, creds.client_secret))
            })
            .collect();
        let faults = FaultTable::default();
        for spec in &config.faults {
            faults.inject(spec.clone());
        }
        SimState {
            inner: Arc::new(Inner {
                config,
                accounts: RwLock::new(accounts),
                access_tokens: RwLock::new(HashMap::new()),
                registered_clients: Mutex::new(HashMap::new()),
                devices: Mutex::new(HashMap::new()),
                faults,
                last_violation: Mutex::new(None),
            }),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// A snapshot of every account's counters.
    pub fn stats(&self) -> SimStats {
        let accounts = self
            .inner
            .accounts
            .read()
            .iter()
            .map(|a| (a.name.clone(), a.counters.snapshot()))
            .collect();
        SimStats {
            accounts,
            last_violation: self.inner.last_violation.lock().clone(),
        }
    }

    pub fn inject(&self, fault: FaultSpec) {
        tracing::debug!(?fault, "sim fault injected");
        self.inner.faults.inject(fault);
    }

    pub fn clear_faults(&self) {
        self.inner.faults.clear();
    }

    /// Makes every access token issued so far expired.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for grant in self.inner.access_tokens.write().values_mut() {
            grant.expires_at = grant.expires_at.min(now);
        }
    }

    /// Makes the account's refresh token stop working; `false` for an unknown account.
    pub fn revoke_refresh_tokens(&self, account: &str) -> bool {
        match self.account_named(account) {
            Some(a) => {
                a.refresh.lock().revoked = true;
                true
            }
            None => false,
        }
    }

    /// The last chat request body the account received.
    pub fn last_request(&self, account: &str) -> Option<Bytes> {
        self.account_named(account)?.last_request.lock().clone()
    }

    /// Names of all accounts, including those created by the device flow.
    pub fn account_names(&self) -> Vec<String> {
        self.inner
            .accounts
            .read()
            .iter()
            .map(|a| a.name.clone())
            .collect()
    }

    pub(crate) fn account_named(&self, name: &str) -> Option<Arc<Account>> {
        let index: usize = name.strip_prefix("sim-")?.parse().ok()?;
        self.account_at(index)
    }

    fn account_at(&self, index: usize) -> Option<Arc<Account>> {
        let accounts = self.inner.accounts.read();
        accounts.get(index.checked_sub(1)?).cloned()
    }

    /// The account a refresh token was issued for, whether or not it is still valid
    /// (`sim-refresh-I` or its rotated form `sim-refresh-I-rG`).
    pub(crate) fn account_of_refresh_token(&self, token: &str) -> Option<Arc<Account>> {
        let rest = token.strip_prefix("sim-refresh-")?;
        let index = rest.split_once("-r").map_or(rest, |(i, _)| i);
        self.account_at(index.parse().ok()?)
    }

    /// The base account whose client this is, or `None` (registered clients included).
    pub(crate) fn client_known(&self, client_id: &str, client_secret: &str) -> bool {
        let base = client_id
            .strip_prefix("sim-client-")
            .and_then(|i| i.parse().ok())
            .and_then(|i| self.account_at(i))
            .is_some_and(|a| a.client_matches(client_id, client_secret));
        base || self
            .inner
            .registered_clients
            .lock()
            .get(client_id)
            .is_some_and(|s| s == client_secret)
    }

    pub(crate) fn account_of_client(&self, client_id: &str) -> Option<Arc<Account>> {
        self.inner
            .accounts
            .read()
            .iter()
            .find(|a| a.client_id == client_id)
            .cloned()
    }

    pub(crate) fn fire_fault(&self, account: &Account, refresh: bool) -> Option<FaultSpec> {
        let fired = self.inner.faults.fire(&account.name, refresh)?;
        bump(&account.counters.faults_fired);
        tracing::debug!(account = %account.name, kind = fired.kind.as_str(), "sim fault fired");
        Some(fired)
    }

    pub(crate) fn record_violation(&self, account: &Account, detail: &str) {
        bump(&account.counters.validation_failures);
        tracing::debug!(account = %account.name, detail, "sim refused a request");
        *self.inner.last_violation.lock() = Some(detail.to_owned());
    }

    /// A fresh opaque access token for the account, valid for the configured TTL.
    pub(crate) fn issue_access_token(&self, account: &Arc<Account>) -> String {
        let token = format!("aoaSIM{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut tokens = self.inner.access_tokens.write();
        if tokens.len() >= TOKEN_PRUNE_THRESHOLD {
            // Keep recently expired tokens so they still answer "expired", not "invalid".
            let horizon = self.inner.config.token_ttl;
            tokens.retain(|_, g| now.saturating_duration_since(g.expires_at) < horizon);
        }
        tokens.insert(
            token.clone(),
            Grant {
                account: Arc::clone(account),
                expires_at: now + self.inner.config.token_ttl,
            },
        );
        token
    }

    pub(crate) fn check_bearer(&self, token: &str) -> BearerCheck {
        let tokens = self.inner.access_tokens.read();
        match tokens.get(token) {
            None => BearerCheck::Unknown,
            Some(grant) if Instant::now() >= grant.expires_at => {
                BearerCheck::Expired(Arc::clone(&grant.account))
            }
            Some(grant) => BearerCheck::Valid(Arc::clone(&grant.account)),
        }
    }

    /// Registers an OIDC client; returns its id and secret.
    pub(crate) fn register_client(&self) -> (String, String) {
        let id = format!("sim-devclient-{}", uuid::Uuid::new_v4().simple());
        let secret = format!("sim-devsecret-{}", uuid::Uuid::new_v4().simple());
        self.inner
            .registered_clients
            .lock()
            .insert(id.clone(), secret.clone());
        (id, secret)
    }

    /// Starts a device authorization for a known client; returns the device code.
    pub(crate) fn start_device_authorization(&self, client_id: &str) -> String {
        let code = format!("sim-device-{}", uuid::Uuid::new_v4().simple());
        self.inner.devices.lock().insert(
            code.clone(),
            DeviceSession {
                client_id: client_id.to_owned(),
                polls: 0,
                redeemed: false,
            },
        );
        code
    }

    /// One poll of a device code. The simulated user approves after the first poll: the
    /// first answers pending, the second creates account `sim-{N+1}` and hands it over.
    pub(crate) fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
        client_secret: &str,
    ) -> DevicePoll {
        let mut devices = self.inner.devices.lock();
        let Some(session) = devices.get_mut(device_code) else {
            return DevicePoll::Invalid;
        };
        if session.client_id != client_id || session.redeemed {
            return DevicePoll::Invalid;
        }
        session.polls += 1;
        if session.polls == 1 {
            return DevicePoll::Pending;
        }
        session.redeemed = true;
        drop(devices);
        let mut accounts = self.inner.accounts.write();
        let account = Arc::new(Account::new(
            accounts.len() + 1,
            client_id.to_owned(),
            client_secret.to_owned(),
        ));
        accounts.push(Arc::clone(&account));
        DevicePoll::Approved(account)
    }
}
