//! qgate-auth against a mock token service on loopback: refresh, rotation, single flight,
//! classification, redaction and the background refresher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod mock;
mod redaction;
mod refresh;
mod refresher;
mod shared_store;
mod single_flight;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use qgate_auth::{Credentials, RefreshOptions, TokenManager};
use qgate_store::{CachedToken, FileTokenStore, TokenStore};
use tempfile::TempDir;

use mock::{MockTokenService, Reply};

pub const CONFIGURED_REFRESH: &str = "aor-configured-refresh-token-0001";
pub const CLIENT_SECRET: &str = "client-secret-value-0001";

/// A mock service, a token store in a temp dir, and a way to build managers on them.
#[derive(Debug)]
pub struct Harness {
    pub mock: MockTokenService,
    pub store: Arc<FileTokenStore>,
    _dir: TempDir,
    http: reqwest::Client,
}

impl Harness {
    pub async fn start(fallback: Reply) -> Self {
        // reqwest is built without a default TLS provider; the gateway installs one at
        // start, tests do it here (loopback is plain HTTP, but the client needs a provider).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        Harness {
            mock: MockTokenService::start(fallback).await,
            store: Arc::new(FileTokenStore::new(dir.path().join("cache")).unwrap()),
            _dir: dir,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    pub fn manager(&self, account: &str, creds: Credentials) -> Arc<TokenManager> {
        self.manager_with(account, creds, RefreshOptions::default())
    }

    pub fn manager_with(
        &self,
        account: &str,
        creds: Credentials,
        opts: RefreshOptions,
    ) -> Arc<TokenManager> {
        Arc::new(TokenManager::new(
            account,
            creds,
            Arc::new(self.mock.endpoints()),
            self.http.clone(),
            self.store.clone(),
            opts,
        ))
    }

    /// A manager on another store (e.g. a second instance's view of a shared one).
    pub fn manager_on(
        &self,
        store: Arc<dyn TokenStore>,
        account: &str,
        creds: Credentials,
        opts: RefreshOptions,
    ) -> Arc<TokenManager> {
        Arc::new(TokenManager::new(
            account,
            creds,
            Arc::new(self.mock.endpoints()),
            self.http.clone(),
            store,
            opts,
        ))
    }

    pub fn cache_file(&self, account: &str) -> PathBuf {
        self.store.path_for(account).unwrap()
    }

    /// The refresh token currently in `account`'s cache file.
    pub fn cached_refresh_token(&self, account: &str) -> String {
        let bytes = std::fs::read(self.cache_file(account)).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["refresh_token"].as_str().unwrap().to_owned()
    }

    /// Put a cache entry for `account` whose access token expires `in_secs` from now
    /// (negative: already expired).
    pub async fn seed_cache(&self, account: &str, access: &str, refresh: &str, in_secs: i64) {
        let expires_at = Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(in_secs))
            .unwrap();
        let token = CachedToken {
            access_token: Some(access.into()),
            refresh_token: refresh.into(),
            expires_at: Some(expires_at),
        };
        self.store.save(account, &token).await.unwrap();
    }
}

pub fn oidc_creds() -> Credentials {
    Credentials::Oidc {
        client_id: "client-id-0001".to_owned(),
        client_secret: CLIENT_SECRET.into(),
        refresh_token: CONFIGURED_REFRESH.into(),
    }
}

pub fn kiro_creds() -> Credentials {
    Credentials::KiroSocial {
        refresh_token: CONFIGURED_REFRESH.into(),
    }
}

/// Poll `condition` every few milliseconds for at most `limit`; the bound keeps a broken
/// implementation from hanging the suite, nothing asserts how long it took.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let step = Duration::from_millis(10);
    let rounds = (limit.as_millis() / step.as_millis()).max(1);
    for _ in 0..rounds {
        if condition() {
            return true;
        }
        tokio::time::sleep(step).await;
    }
    condition()
}

/// Await spawned calls in order.
pub async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}
