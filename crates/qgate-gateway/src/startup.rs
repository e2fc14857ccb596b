//! Assembling a running gateway from a validated [`Config`]: token store, HTTP client,
//! accounts, pool (with persisted states), metrics, router, listener and background
//! tasks — and taking it down again in order. With `REDIS_URL` also the cluster side:
//! the shared token store, the admin changes and pool states other instances decided,
//! and the tasks that keep them in sync.

use crate::accounts::{AccountDeps, build_accounts};
use crate::background::{PersistFile, spawn_all};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::{Metrics, RedisCollector, StateCollector};
use crate::middleware::KeyRing;
use crate::state::{AppState, Runtime, Shared};
use crate::upstream::UpstreamClient;
use arc_swap::ArcSwap;
use qgate_auth::{AuthEndpoints, RefreshOptions};
use qgate_pool::Pool;
use qgate_store::redis::{RedisConfig, RedisStore, RedisTokenStore};
use qgate_store::{FileTokenStore, StateFile, TokenStore};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the gateway refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no Amazon Q account is configured.\n\
         Set AMAZONQ_REFRESH_TOKEN, AMAZONQ_CLIENT_ID and AMAZONQ_CLIENT_SECRET (one account, \
         optionally AMAZONQ_PROFILE_ARN), or AMAZONQ_ACCOUNT_COUNT with \
         AMAZONQ_ACCOUNT_{{i}}_REFRESH_TOKEN / _CLIENT_ID / _CLIENT_SECRET for several, or \
         [[accounts]] in a --config file.\n\
         To try qgate without an account, run `qgate demo` (built-in Amazon Q simulator)."
    )]
    NoAccounts,
    #[error(
        "refusing to listen on {0} without client API keys: anyone who can reach it could use \
         your accounts. Set API_KEYS (or [[keys]] in the config file), bind to 127.0.0.1, or \
         pass --insecure-no-auth if you really mean it."
    )]
    InsecureBind(SocketAddr),
    #[error("token cache directory: {0}")]
    Store(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("account pool: {0}")]
    Pool(String),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    background: TaskTracker,
    workers: Option<Arc<crate::server::workers::WorkerPool>>,
}

impl GatewayHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Tasks alive on the gateway's worker threads (0 without workers); the rest of its
    /// tasks are counted by the runtime that called [`start`].
    pub fn worker_tasks(&self) -> usize {
        self.workers
            .as_ref()
            .map_or(0, |w| w.stats().iter().map(|s| s.tasks).sum())
    }

    /// Stops accepting, drains in-flight streams, stops background work (saving state).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.state.streams.close();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.state.streams.wait()).await;
        self.background.close();
        self.background.wait().await;
    }

    /// Waits until the server stops (after `shutdown` is triggered elsewhere).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Installs the process-wide rustls crypto provider (ring). Idempotent; call it before
/// building any `reqwest` client.
pub fn init_tls() {
    // Installing twice returns an error that means "already installed": fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether the state file holds accounts added through the admin API (a gateway whose
/// accounts all came from the API may start with none configured).
async fn has_saved_accounts(cfg: &Config) -> bool {
    StateFile::<PersistFile>::new(cfg.token_cache_dir.join("_qgate-state.json"))
        .load()
        .await
        .ok()
        .flatten()
        .is_some_and(|doc| !doc.accounts.added.is_empty())
}

/// Multi-instance mode: the connection (made lazily: a gateway starts while Redis is
/// down) and what is shared without an encryption key.
fn connect_cluster(cfg: &Config) -> Result<Option<Arc<Cluster>>, StartError> {
    let Some(cluster_cfg) = &cfg.cluster else {
        return Ok(None);
    };
    let redis = RedisStore::connect(&RedisConfig {
        url: cluster_cfg.redis_url.expose_secret().to_owned(),
        prefix: cluster_cfg.prefix.clone(),
        op_timeout: cluster_cfg.op_timeout,
        slow_op_timeout: qgate_store::redis::DEFAULT_SLOW_OP_TIMEOUT.max(cluster_cfg.op_timeout),
    })
    .map_err(|e| StartError::Redis(e.to_string()))?;
    let cluster = Arc::new(Cluster::new(redis, cluster_cfg.encryption_key.clone()));
    tracing::info!(redis = %cluster.redis().shown_url(), prefix = %cluster_cfg.prefix,
        instance = %cluster.instance(), shared_tokens = cluster.shares_secrets(),
        "multi-instance mode: pool state, limits, sticky sessions and counters are shared through redis");
    if !cluster.shares_secrets() {
        tracing::warn!(
            "QGATE_ENCRYPTION_KEY is not set, so no secret is stored in redis: access and refresh tokens stay in each instance's local cache (each instance refreshes for itself) and accounts added or patched through the admin API stay on the instance that made the change. Set a 32-byte key (64 hex digits or base64) on every instance to share them."
        );
    }
    Ok(Some(cluster))
}

/// Starts the gateway on `listener`.
pub async fn start(cfg: Config, listener: TcpListener) -> Result<GatewayHandle, StartError> {
    init_tls();
    let addr = listener.local_addr()?;
    let cluster = connect_cluster(&cfg)?;
    // Another instance's admin changes are the newest truth about the account set.
    let shared_changes = match &cluster {
        Some(c) => c.load_admin_changes().await,
        None => None,
    };
    let shared_accounts = shared_changes
        .as_ref()
        .is_some_and(|changes| !changes.added.is_empty());
    if cfg.accounts.is_empty() && !shared_accounts && !has_saved_accounts(&cfg).await {
        return Err(StartError::NoAccounts);
    }
    if !addr.ip().is_loopback()
        && cfg.security.api_keys.is_empty()
        && !cfg.security.insecure_no_auth
    {
        return Err(StartError::InsecureBind(addr));
    }
    let upstream = UpstreamClient::new(&cfg.upstream, cfg.server.workers.threads())
        .map_err(|e| StartError::Http(e.to_string()))?;
    let local_store = FileTokenStore::new(cfg.token_cache_dir.clone())
        .map_err(|e| StartError::Store(e.to_string()))?;
    let store: Arc<dyn TokenStore> = match (&cluster, cfg.cluster.as_ref()) {
        (Some(c), Some(cc)) => match &cc.encryption_key {
            Some(key) => Arc::new(RedisTokenStore::new(
                local_store,
                c.redis().clone(),
                key.clone(),
            )),
            None => Arc::new(local_store),
        },
        _ => Arc::new(local_store),
    };
    let deps = AccountDeps {
        http: upstream.http().clone(),
        endpoints: Arc::new(AuthEndpoints {
            oidc_token_url: cfg.upstream.token_endpoint.clone(),
            kiro_refresh_url: cfg.upstream.kiro_auth_endpoint.clone(),
        }),
        store,
        refresh: RefreshOptions::default(),
    };
    let state_file = Arc::new(StateFile::<PersistFile>::new(
        cfg.token_cache_dir.join("_qgate-state.json"),
    ));
    let saved = match state_file.load().await {
        Ok(doc) => doc.unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "reading saved pool state failed; starting fresh");
            PersistFile::default()
        }
    };
    // Accounts added, removed or patched through the admin API are layered over the
    // configuration, as at every reload.
    let mut changes = shared_changes.unwrap_or(saved.accounts);
    let superseded = changes.reconcile(&cfg);
    if !superseded.is_empty() {
        tracing::warn!(accounts = ?superseded, "the configuration now defines accounts added through the admin API; the configuration wins");
    }
    let effective = changes.effective(&cfg).map_err(|problems| {
        StartError::Pool(
            problems
                .iter()
                .map(|p| format!("{}: {}", p.source, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let (accounts, fresh) = build_accounts(&effective, &cfg.upstream, &deps, None);
    for t in fresh {
        if let Err(e) = t.load_cached().await {
            tracing::warn!(error = %e, "reading a token cache failed; the account will refresh");
        }
    }
    let pool = Pool::new(
        cfg.pool.clone(),
        effective.iter().map(|a| a.settings.clone()).collect(),
    )
    .map_err(|e| StartError::Pool(e.to_string()))?;
    pool.import_persistent(saved.states, crate::dispatch::now_ms());
    let runtime = Arc::new(ArcSwap::from_pointee(Runtime {
        pool: Arc::new(pool),
        accounts,
        models: Arc::new(cfg.models.clone()),
        dispatch: cfg.dispatch.clone(),
        upstream: cfg.upstream.clone(),
    }));
    let workers = match cfg.server.workers.threads() {
        0 => None,
        n => Some(Arc::new(
            crate::server::workers::WorkerPool::start(n)
                .map_err(|e| std::io::Error::other(format!("starting worker threads: {e}")))?,
        )),
    };
    let mut metrics = Metrics::new();
    if let Some(pool) = &workers {
        metrics
            .registry
            .register_collector(Box::new(crate::metrics::WorkerCollector::new(pool.clone())));
    }
    metrics.register_collector(StateCollector::new(
        runtime.clone(),
        metrics.retired_refreshes(),
    ));
    let key_book = Arc::new(crate::keys::KeyBook::new());
    metrics.attach_key_book(key_book.clone());
    let (webhooks, webhook_queue) =
        crate::webhooks::WebhookHub::new(metrics.webhook_dropped_counter());
    metrics.attach_transition_sink(webhooks);
    if let Some(c) = &cluster {
        metrics.attach_cluster(c.clone());
        metrics
            .registry
            .register_collector(Box::new(RedisCollector::new(c.redis().clone())));
    }
    let shutdown = CancellationToken::new();
    let state = AppState(Arc::new(Shared {
        runtime,
        keys: ArcSwap::from_pointee(KeyRing::new(&cfg.security.api_keys)),
        key_book,
        account_admin: crate::reload::AccountAdmin::new(deps, state_file, changes),
        server: cfg.server.clone(),
        config: ArcSwap::from_pointee(cfg.clone()),
        upstream,
        metrics: Arc::new(metrics),
        slot_released: tokio::sync::Notify::new(),
        queued: Default::default(),
        calibration: Default::default(),
        shutdown: shutdown.clone(),
        streams: TaskTracker::new(),
        cluster: cluster.clone(),
    }));
    if let Some(c) = &cluster {
        c.initial_sync(&state).await;
    }
    let app = crate::routes::app(state.clone());
    let server_cfg = cfg.server.clone();
    let server_shutdown = shutdown.clone();
    let server_workers = workers.clone();
    let server = tokio::spawn(async move {
        crate::server::serve(
            listener,
            app,
            &server_cfg,
            server_workers,
            server_shutdown,
            Duration::from_secs(30),
        )
        .await;
    });
    let background = TaskTracker::new();
    spawn_all(&state, &background, webhook_queue, shutdown.clone());
    if let Some(c) = &cluster {
        c.spawn(&state, &background, shutdown.clone());
    }
    tracing::info!(
        %addr,
        accounts = cfg.accounts.len(),
        workers = cfg.server.workers.threads(),
        "qgate listening"
    );
    Ok(GatewayHandle {
        addr,
        state,
        shutdown,
        server,
        background,
        workers,
    })
}
