//! Changing the running account set without a restart: config reload (`SIGHUP`,
//! `POST /admin/reload`) and the admin API's add / remove / patch, all through one path
//! ([`install`]) that builds a new [`Runtime`] — `Pool::rebuild` keeps every remaining
//! account's live state, `build_accounts` keeps every unchanged token manager — and swaps
//! it in. Requests in flight keep the snapshot they started with, so nothing they hold
//! goes away under them.
//!
//! Admin changes are persisted with the pool states in `_qgate-state.json`
//! ([`AccountAdmin::save`]), atomically and 0600, and re-applied over the configuration at
//! every start and reload.

mod changes;

pub use changes::{AccountChanges, AccountPatch, NewAccount, Origin};

use crate::accounts::{AccountDeps, build_accounts};
use crate::background::PersistFile;
use crate::config::{self, Config, Problem};
use crate::middleware::KeyRing;
use crate::state::{AppState, Runtime};
use parking_lot::Mutex;
use qgate_pool::AccountId;
use qgate_store::StateFile;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Version of the state document written now (1 had only pool states).
const STATE_VERSION: u32 = 2;

/// What the admin side of the account set needs: how to build token managers, the state
/// file, the persisted changes, and the locks that order changes and saves.
#[derive(Debug)]
pub struct AccountAdmin {
    pub deps: AccountDeps,
    file: Arc<StateFile<PersistFile>>,
    changes: Mutex<AccountChanges>,
    draining: Mutex<HashSet<AccountId>>,
    /// One account-set change at a time (admin calls and reloads).
    pub(crate) apply: tokio::sync::Mutex<()>,
    /// Build-and-write of the state document as one step, so saves never go backwards.
    save: tokio::sync::Mutex<()>,
}

/// Why a change was refused; the running account set is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the change is invalid")]
    Invalid(Vec<Problem>),
    #[error("saving the state file failed: {0}")]
    Save(String),
}

impl AccountAdmin {
    pub fn new(
        deps: AccountDeps,
        file: Arc<StateFile<PersistFile>>,
        changes: AccountChanges,
    ) -> Self {
        AccountAdmin {
            deps,
            file,
            changes: Mutex::new(changes),
            draining: Mutex::new(HashSet::new()),
            apply: tokio::sync::Mutex::new(()),
            save: tokio::sync::Mutex::new(()),
        }
    }

    pub fn changes(&self) -> AccountChanges {
        self.changes.lock().clone()
    }

    pub fn is_draining(&self, id: &str) -> bool {
        self.draining.lock().contains(id)
    }

    /// Writes pool states and account changes as they are now.
    pub async fn save(&self, rt: &Runtime) -> Result<(), ChangeError> {
        let _ordered = self.save.lock().await;
        let doc = PersistFile {
            version: STATE_VERSION,
            states: rt.pool.export_persistent(),
            accounts: self.changes(),
        };
        self.file
            .save(&doc)
            .await
            .map_err(|e| ChangeError::Save(e.to_string()))
    }
}

/// Builds and swaps in the runtime for `cfg` with `changes` over it, then stores both.
/// Nothing changes if the result would be invalid.
pub async fn install(
    state: &AppState,
    cfg: Arc<Config>,
    changes: AccountChanges,
) -> Result<(), ChangeError> {
    let admin = &state.account_admin;
    let accounts = changes.effective(&cfg).map_err(ChangeError::Invalid)?;
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for a in &accounts {
        if !seen.insert(a.id().clone()) {
            problems.push(Problem {
                source: format!("account `{}`", a.id()),
                message: "duplicate account id".into(),
            });
        }
    }
    if accounts.is_empty() {
        problems.push(Problem {
            source: "accounts".into(),
            message: "at least one account is required".into(),
        });
    }
    if !problems.is_empty() {
        return Err(ChangeError::Invalid(problems));
    }
    let old = state.runtime();
    let pool = old
        .pool
        .rebuild(
            cfg.pool.clone(),
            accounts.iter().map(|a| a.settings.clone()).collect(),
        )
        .map_err(|e| {
            ChangeError::Invalid(vec![Problem {
                source: "pool".into(),
                message: e.to_string(),
            }])
        })?;
    let (map, fresh) = build_accounts(&accounts, &cfg.upstream, &admin.deps, Some(&old.accounts));
    for t in fresh {
        if let Err(e) = t.load_cached().await {
            tracing::warn!(error = %e, "reading a token cache failed; the account will refresh");
        }
    }
    for (id, previous) in &old.accounts {
        let kept = map
            .get(id)
            .is_some_and(|now| Arc::ptr_eq(&now.tokens, &previous.tokens));
        if !kept {
            let stats = previous.tokens.stats();
            state
                .metrics
                .retire_token_stats(id.as_str(), stats.ok, stats.failed);
        }
    }
    state.runtime.store(Arc::new(Runtime {
        pool: Arc::new(pool),
        accounts: map,
        models: Arc::new(cfg.models.clone()),
        dispatch: cfg.dispatch.clone(),
        upstream: cfg.upstream.clone(),
    }));
    state
        .keys
        .store(Arc::new(KeyRing::new(&cfg.security.api_keys)));
    state.config.store(cfg);
    *admin.changes.lock() = changes;
    state.slot_released.notify_waiters();
    Ok(())
}

/// Applies one change to the persisted account changes, installs the result, shares it
/// with the other instances and saves it. `edit` sees the current changes and the configuration; an error from it refuses
/// the change.
pub async fn change_accounts(
    state: &AppState,
    edit: impl FnOnce(&mut AccountChanges, &Config) -> Result<(), ChangeError>,
) -> Result<(), ChangeError> {
    let admin = &state.account_admin;
    let _one_at_a_time = admin.apply.lock().await;
    let cfg = state.config.load_full();
    let mut changes = admin.changes();
    edit(&mut changes, &cfg)?;
    install(state, cfg, changes).await?;
    // Marked while the change still holds the lock: an install of another instance's
    // document waits for it and then sees the change as unpublished, so merges it in
    // instead of overwriting it.
    if let Some(cluster) = &state.cluster {
        cluster.admin_changed();
    }
    admin.save(&state.runtime()).await
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    pub accounts: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Accounts the admin API had added whose ids the file now defines (the file wins).
    pub superseded: Vec<String>,
    /// Settings that changed in the file but only take effect after a restart.
    pub restart_required: Vec<String>,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the gateway was not started from a loadable configuration")]
    NoSource,
    #[error("{0}")]
    Invalid(config::ConfigErrors),
    #[error("{0}")]
    Apply(ChangeError),
}

/// What of the multi-instance settings a reload can see change (the connection is made
/// once at start). The key is compared by presence only: its bytes are never copied.
fn cluster_settings(
    c: &Option<config::ClusterConfig>,
) -> Option<(String, String, std::time::Duration, bool)> {
    use secrecy::ExposeSecret;
    c.as_ref().map(|c| {
        (
            c.redis_url.expose_secret().to_owned(),
            c.prefix.clone(),
            c.op_timeout,
            c.encryption_key.is_some(),
        )
    })
}

/// Re-reads the configuration (file and the environment captured at start) and installs
/// it. A bad file changes nothing and lists every problem.
pub async fn reload(state: &AppState) -> Result<ReloadReport, ReloadError> {
    let result = reload_inner(state).await;
    match &result {
        Ok(r) => {
            state.metrics.record_reload("success");
            tracing::info!(accounts = r.accounts, added = ?r.added, removed = ?r.removed,
                restart_required = ?r.restart_required, "configuration reloaded");
        }
        Err(e) => {
            state.metrics.record_reload("rejected");
            tracing::error!(error = %e, "configuration reload rejected; keeping the running configuration");
        }
    }
    result
}

async fn reload_inner(state: &AppState) -> Result<ReloadReport, ReloadError> {
    let admin = &state.account_admin;
    let source = state
        .config
        .load()
        .source
        .clone()
        .ok_or(ReloadError::NoSource)?;
    let new = config::load(&source.env, &source.overrides).map_err(ReloadError::Invalid)?;
    let _one_at_a_time = admin.apply.lock().await;
    let old_cfg = state.config.load_full();
    let mut restart_required = Vec::new();
    let s = (&old_cfg.server, &new.server);
    if s.0.host != s.1.host || s.0.port != s.1.port {
        restart_required.push("listen address (HOST/PORT)".to_owned());
    }
    if s.0.max_body_bytes != s.1.max_body_bytes
        || s.0.max_connections != s.1.max_connections
        || s.0.header_read_timeout != s.1.header_read_timeout
        || s.0.body_read_timeout != s.1.body_read_timeout
        || s.0.ping_interval != s.1.ping_interval
    {
        restart_required.push("server limits".to_owned());
    }
    if s.0.workers != s.1.workers {
        restart_required.push("worker threads (WORKERS)".to_owned());
    }
    if old_cfg.token_cache_dir != new.token_cache_dir {
        restart_required.push("TOKEN_CACHE_DIR".to_owned());
    }
    if cluster_settings(&old_cfg.cluster) != cluster_settings(&new.cluster) {
        restart_required
            .push("multi-instance settings (REDIS_URL, REDIS_PREFIX, REDIS_TIMEOUT, QGATE_ENCRYPTION_KEY)".to_owned());
    }
    let before: HashSet<AccountId> = state.runtime().accounts.keys().cloned().collect();
    let mut changes = admin.changes();
    let superseded = changes.reconcile(&new);
    install(state, Arc::new(new), changes)
        .await
        .map_err(ReloadError::Apply)?;
    let rt = state.runtime();
    if let Err(e) = admin.save(&rt).await {
        tracing::error!(error = %e, "saving state after reload failed");
    }
    let after: HashSet<AccountId> = rt.accounts.keys().cloned().collect();
    let mut added: Vec<String> = after.difference(&before).map(|i| i.to_string()).collect();
    let mut removed: Vec<String> = before.difference(&after).map(|i| i.to_string()).collect();
    added.sort();
    removed.sort();
    Ok(ReloadReport {
        accounts: after.len(),
        added,
        removed,
        superseded,
        restart_required,
    })
}

/// What a drained removal found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RemoveReport {
    pub account: String,
    /// Requests still in flight when the account was taken out of rotation.
    pub in_flight_at_start: u32,
    /// Requests still in flight when it was removed (0 unless the drain timed out; they
    /// finish anyway on the snapshot they started with).
    pub in_flight_at_removal: u32,
    pub drained_ms: u64,
}

/// Drain, then remove: out of rotation at once (so no new request picks it), wait up to
/// `timeout` for its in-flight requests to finish, then remove it from the account set.
pub async fn remove_account(
    state: &AppState,
    id: &AccountId,
    timeout: Duration,
) -> Result<RemoveReport, ChangeError> {
    let admin = &state.account_admin;
    let started = std::time::Instant::now();
    admin.draining.lock().insert(id.clone());
    let in_flight = |state: &AppState| {
        state
            .runtime()
            .pool
            .status(id.as_str(), crate::dispatch::now_ms())
            .map_or(0, |s| s.in_flight)
    };
    let rt = state.runtime();
    let transitions = rt.pool.disable(id.as_str()).unwrap_or_default();
    state.metrics.record_transitions(&transitions);
    let at_start = in_flight(state);
    let deadline = tokio::time::Instant::now() + timeout;
    while in_flight(state) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let at_removal = in_flight(state);
    let removed = change_accounts(state, |changes, cfg| {
        changes.added.retain(|a| a.id != id.as_str());
        if cfg.accounts.iter().any(|a| a.id() == id) && !changes.removed.contains(id) {
            changes.removed.push(id.clone());
        }
        changes.patched.remove(id);
        Ok(())
    })
    .await;
    admin.draining.lock().remove(id);
    if removed.is_err() {
        // Put it back the way it was before the drain.
        let _ = state.runtime().pool.clear_admin_override(id.as_str());
    }
    removed?;
    // Its cached tokens are credentials nobody will use any more.
    if let Err(e) = admin.deps.store.remove(id.as_str()).await {
        tracing::warn!(account = %id, error = %e, "removing the token cache failed");
    }
    Ok(RemoveReport {
        account: id.to_string(),
        in_flight_at_start: at_start,
        in_flight_at_removal: at_removal,
        drained_ms: started.elapsed().as_millis() as u64,
    })
}
