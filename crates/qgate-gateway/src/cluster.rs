//! Multi-instance mode: several gateways behind one load balancer act as one pool by
//! sharing state through Redis (`qgate_store::redis`). Off unless `REDIS_URL` is set;
//! with it off nothing here runs and nothing on the request path changes.
//!
//! What is shared, and where it is wired in:
//! - **Tokens** (with `QGATE_ENCRYPTION_KEY`): the token managers' store is a
//!   `RedisTokenStore`, so refreshes take a fenced lock and other instances adopt the
//!   result (`qgate-auth`). Set up in `startup`.
//! - **Pool state** (`cluster/sync.rs`): every transition the request path, background
//!   tasks or the admin API report is also handed here (`Metrics::record_transitions`);
//!   a publisher stores the account's `SharedState` and announces it; a subscriber and a
//!   500 ms reconcile loop apply other instances' states with `Pool::apply_remote`.
//! - **Limits and sticky sessions** (`cluster/limits.rs`): after the local pool picks an
//!   account, a Lua script admits the request under the account's concurrency cap and
//!   RPM limit across instances, or the account is excluded and selection runs again.
//! - **Counters** (`cluster/counts.rs`): per-account request/success/error deltas are
//!   added to Redis by the reconcile loop, off the request path.
//! - **Admin changes** (`cluster/admin.rs`): add/remove/patch write the account changes
//!   (sealed: they hold credentials) and every instance installs them.
//!
//! **Outage.** Every Redis call is bounded (250 ms) and every caller falls back to local
//! behaviour on failure: local token refresh, local limits, local state. The store's
//! health logs the outage once and the recovery once; on recovery this instance
//! republishes what it decided meanwhile and re-reads everyone else's.

mod admin;
mod counts;
mod limits;
mod sync;

pub use limits::{ClusterLease, select_slot, sticky_hint};

use crate::dispatch::now_ms;
use crate::state::AppState;
use parking_lot::Mutex;
use qgate_pool::{AccountId, Transition};
use qgate_store::redis::{Counts, EncryptionKey, RedisStore};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a cross-instance lease lives without a heartbeat (a dead instance's leases
/// free themselves after this).
const LEASE_TTL: Duration = Duration::from_secs(30);
/// Reconcile period: the bound on how stale a missed announcement can leave an instance.
const RECONCILE_EVERY: Duration = Duration::from_millis(500);

/// This instance's side of the shared state.
pub struct Cluster {
    redis: RedisStore,
    /// Unique per process start; instances ignore their own announcements.
    instance: String,
    key: Option<EncryptionKey>,
    /// Leases this instance holds in Redis (lease id → account), for the heartbeat.
    leases: Mutex<HashMap<String, AccountId>>,
    /// Accounts whose state changed here and is not published yet, with the stamp to use.
    dirty: Mutex<HashMap<AccountId, u64>>,
    /// Newest state stamp seen per account (published or applied).
    seen: Mutex<HashMap<AccountId, u64>>,
    admin_dirty: AtomicBool,
    /// Redis lost the admin record: offer ours, unless another instance did first.
    admin_refill: AtomicBool,
    admin_version: AtomicU64,
    /// The admin documents this instance last published or installed, by version
    /// (newest last): the common ancestors for merging with another instance's document.
    admin_history: Mutex<std::collections::VecDeque<(u64, crate::reload::AccountChanges)>>,
    /// One admin write or install at a time: a write must never pair the version just
    /// read with a document that does not include it yet.
    admin_turn: tokio::sync::Mutex<()>,
    /// Counters already added to Redis, per account.
    flushed: Mutex<HashMap<AccountId, Counts>>,
    /// Serialises counter flushes so a delta is never added twice.
    flush_turn: tokio::sync::Mutex<()>,
    wake_publisher: Notify,
    wake_reconciler: Notify,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("instance", &self.instance)
            .field("redis", &self.redis)
            .field("shares_secrets", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn new(redis: RedisStore, key: Option<EncryptionKey>) -> Self {
        Cluster {
            redis,
            instance: uuid::Uuid::new_v4().to_string(),
            key,
            leases: Mutex::default(),
            dirty: Mutex::default(),
            seen: Mutex::default(),
            admin_dirty: AtomicBool::new(false),
            admin_refill: AtomicBool::new(false),
            admin_version: AtomicU64::new(0),
            admin_history: Mutex::default(),
            admin_turn: tokio::sync::Mutex::new(()),
            flushed: Mutex::default(),
            flush_turn: tokio::sync::Mutex::new(()),
            wake_publisher: Notify::new(),
            wake_reconciler: Notify::new(),
        }
    }

    pub fn redis(&self) -> &RedisStore {
        &self.redis
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether tokens and admin account changes are shared (an encryption key is set).
    pub fn shares_secrets(&self) -> bool {
        self.key.is_some()
    }

    pub fn is_redis_up(&self) -> bool {
        self.redis.health().is_up()
    }

    /// Account transitions decided here: publish the accounts' states. Called by
    /// `Metrics::record_transitions`, i.e. wherever transitions are reported.
    pub fn transitions(&self, transitions: &[Transition]) {
        if transitions.is_empty() {
            return;
        }
        let now = now_ms();
        {
            let seen = self.seen.lock();
            let mut dirty = self.dirty.lock();
            for t in transitions {
                // Decided after everything seen so far, whatever the clocks say, so it
                // wins over what it reacted to.
                let after_seen = seen.get(&t.account).map_or(0, |s| s + 1);
                dirty.insert(t.account.clone(), now.max(after_seen));
            }
        }
        self.wake_publisher.notify_one();
    }

    /// An admin change to the account set was made here: share it.
    pub fn admin_changed(&self) {
        if self.key.is_some() {
            self.admin_dirty.store(true, Ordering::Release);
            self.wake_publisher.notify_one();
        }
    }

    /// Starts the publisher, subscriber and reconcile loop on `tracker`.
    pub fn spawn(
        self: &Arc<Self>,
        state: &AppState,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        tracker.spawn(sync::run_publisher(
            state.clone(),
            self.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(sync::run_subscriber(
            state.clone(),
            self.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(sync::run_reconciler(state.clone(), self.clone(), shutdown));
    }

    /// Adopt what the other instances decided, before serving (startup).
    pub async fn initial_sync(&self, state: &AppState) {
        self.reconcile(state).await;
    }
}
