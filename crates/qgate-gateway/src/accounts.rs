//! The non-pool half of an account: where it sends requests (dialect, API base, profile
//! ARN) and its token manager. Built from config; token managers are reused across
//! reloads when an account's credentials did not change, so a reload never forces
//! refreshes.

use crate::config::{AccountConfig, UpstreamConfig};
use qgate_amazonq::Dialect;
use qgate_auth::{AuthEndpoints, Credentials, RefreshOptions, TokenManager};
use qgate_pool::AccountId;
use qgate_store::TokenStore;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Arc;

/// One upstream account as the dispatcher sees it.
#[derive(Debug)]
pub struct Account {
    pub config: AccountConfig,
    pub api_base: String,
    pub tokens: Arc<TokenManager>,
}

impl Account {
    pub fn id(&self) -> &AccountId {
        self.config.id()
    }

    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    pub fn profile_arn(&self) -> Option<&str> {
        self.config.profile_arn.as_deref()
    }
}

/// What the account builder needs besides the config.
#[derive(Debug, Clone)]
pub struct AccountDeps {
    pub http: reqwest::Client,
    pub endpoints: Arc<AuthEndpoints>,
    pub store: Arc<dyn TokenStore>,
    pub refresh: RefreshOptions,
}

/// Two credential sets are the same login when every field matches.
pub fn same_credentials(a: &Credentials, b: &Credentials) -> bool {
    match (a, b) {
        (
            Credentials::Oidc {
                client_id: ca,
                client_secret: sa,
                refresh_token: ra,
            },
            Credentials::Oidc {
                client_id: cb,
                client_secret: sb,
                refresh_token: rb,
            },
        ) => {
            ca == cb
                && sa.expose_secret() == sb.expose_secret()
                && ra.expose_secret() == rb.expose_secret()
        }
        (
            Credentials::KiroSocial { refresh_token: ra },
            Credentials::KiroSocial { refresh_token: rb },
        ) => ra.expose_secret() == rb.expose_secret(),
        (Credentials::Oidc { .. }, Credentials::KiroSocial { .. })
        | (Credentials::KiroSocial { .. }, Credentials::Oidc { .. }) => false,
    }
}

/// Builds the account map, reusing token managers of unchanged accounts.
/// Returns the map and the accounts whose managers are new (their caches must be loaded).
pub fn build_accounts(
    configs: &[AccountConfig],
    upstream: &UpstreamConfig,
    deps: &AccountDeps,
    previous: Option<&HashMap<AccountId, Arc<Account>>>,
) -> (HashMap<AccountId, Arc<Account>>, Vec<Arc<TokenManager>>) {
    let mut out = HashMap::with_capacity(configs.len());
    let mut fresh = Vec::new();
    for cfg in configs {
        let reused = previous
            .and_then(|p| p.get(cfg.id()))
            .filter(|old| same_credentials(&old.config.credentials, &cfg.credentials))
            .map(|old| old.tokens.clone());
        let tokens = match reused {
            Some(t) => t,
            None => {
                let t = Arc::new(TokenManager::new(
                    cfg.id().as_str(),
                    cfg.credentials.clone(),
                    deps.endpoints.clone(),
                    deps.http.clone(),
                    deps.store.clone(),
                    deps.refresh.clone(),
                ));
                fresh.push(t.clone());
                t
            }
        };
        out.insert(
            cfg.id().clone(),
            Arc::new(Account {
                api_base: cfg.api_base(upstream),
                config: cfg.clone(),
                tokens,
            }),
        );
    }
    (out, fresh)
}
