//! Shared gateway state: one cloneable [`AppState`]; the hot-swappable part (pool,
//! accounts, model map, dispatch settings) is a [`Runtime`] behind `ArcSwap`, and each
//! request takes one snapshot of it.

use crate::accounts::Account;
use crate::config::{Config, DispatchConfig, ServerConfig, UpstreamConfig};
use crate::metrics::Metrics;
use crate::upstream::UpstreamClient;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use qgate_pool::{AccountId, Pool};
use qgate_translate::model_map::ModelMap;
use qgate_translate::tokens::Calibration;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One consistent view of everything a request needs.
#[derive(Debug)]
pub struct Runtime {
    pub pool: Arc<Pool>,
    pub accounts: HashMap<AccountId, Arc<Account>>,
    pub models: Arc<ModelMap>,
    pub dispatch: DispatchConfig,
    pub upstream: UpstreamConfig,
}

/// Everything shared by handlers and background tasks.
#[derive(Debug)]
pub struct Shared {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub config: ArcSwap<Config>,
    pub server: ServerConfig,
    pub upstream: UpstreamClient,
    pub metrics: Arc<Metrics>,
    /// Client API keys (swapped on reload).
    pub keys: ArcSwap<crate::middleware::KeyRing>,
    /// Per-key limits and usage, by key name (survives reloads).
    pub key_book: Arc<crate::keys::KeyBook>,
    /// Runtime account changes: token-manager deps, persisted admin changes, state file.
    pub account_admin: crate::reload::AccountAdmin,
    /// Woken whenever an account slot is released (requests waiting for a free account).
    pub slot_released: Notify,
    pub queued: AtomicUsize,
    /// Per upstream model: how our estimate relates to the upstream's own count.
    pub calibration: Mutex<HashMap<String, Calibration>>,
    pub shutdown: CancellationToken,
    /// In-flight streams, so shutdown can drain them.
    pub streams: TaskTracker,
    /// Multi-instance mode (`REDIS_URL`): the shared side of pool, limits and admin.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Cheap to clone; handlers and tasks hold one.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The current runtime snapshot.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Applies the model's calibration to an estimate.
    pub fn calibrated(&self, upstream_model: &str, estimate: u64) -> u64 {
        self.calibration
            .lock()
            .get(upstream_model)
            .map_or(estimate, |c| c.apply(estimate))
    }

    /// Feeds an upstream measurement of input tokens into the model's calibration.
    pub fn observe_input_tokens(&self, upstream_model: &str, estimate: u64, actual: u64) {
        if estimate == 0 || actual == 0 {
            return;
        }
        self.calibration
            .lock()
            .entry(upstream_model.to_owned())
            .or_default()
            .observe(estimate, actual);
    }
}
