//! The TOML config file (`--config` / `QGATE_CONFIG`): raw serde structs with
//! `deny_unknown_fields`, for what environment variables express badly (per-account
//! dialect, region, priority, limits, allowed models, the model map, client keys).

use super::{ConfigErrors, Problem};
use qgate_translate::model_map::ModelMapConfig;
use serde::Deserialize;
use std::path::Path;

/// The whole file. Every section is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub pool: PoolSection,
    #[serde(default)]
    pub models: Option<ModelMapConfig>,
    #[serde(default)]
    pub accounts: Vec<AccountSection>,
    #[serde(default)]
    pub keys: Vec<KeySection>,
    #[serde(default)]
    pub token_cache_dir: Option<String>,
    #[serde(default)]
    pub admin_api_key: Option<String>,
    #[serde(default)]
    pub webhooks: Vec<String>,
    #[serde(default)]
    pub metrics_public: Option<bool>,
    /// Client keys file: `name:key[:rpm[:concurrency]]` per line.
    #[serde(default)]
    pub api_keys_file: Option<String>,
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Key prefix in Redis (`REDIS_PREFIX`), default `qgate:`.
    #[serde(default)]
    pub redis_prefix: Option<String>,
    /// Bound of each request-path Redis operation (`REDIS_TIMEOUT`), default `250ms`.
    #[serde(default)]
    pub redis_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub max_body_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_read_timeout: Option<String>,
    pub body_read_timeout: Option<String>,
    pub ping_interval: Option<String>,
    /// `auto`, `shared` or a number (`WORKERS`).
    pub workers: Option<WorkersSetting>,
}

/// `workers = 4` or `workers = "auto"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WorkersSetting {
    Count(u64),
    Word(String),
}

impl WorkersSetting {
    pub fn as_text(&self) -> String {
        match self {
            WorkersSetting::Count(n) => n.to_string(),
            WorkersSetting::Word(w) => w.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub api_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub kiro_auth_endpoint: Option<String>,
    pub connect_timeout: Option<String>,
    pub first_event_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub pool_idle: Option<usize>,
    pub max_attempts: Option<u32>,
    pub queue_timeout: Option<String>,
    pub queue_max: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    pub strategy: Option<String>,
    pub sticky_sessions: Option<bool>,
    pub sticky_ttl: Option<String>,
    pub circuit_breaker_enabled: Option<bool>,
    pub circuit_breaker_error_threshold: Option<u32>,
    pub circuit_breaker_recovery_timeout: Option<String>,
    pub health_check_interval: Option<String>,
}

/// `[[accounts]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    pub id: String,
    /// `q_cli` (default) or `kiro`.
    pub dialect: Option<String>,
    /// `oidc` (default when client_id is set) or `kiro_social`.
    pub auth: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub profile_arn: Option<String>,
    pub region: Option<String>,
    pub api_endpoint: Option<String>,
    pub weight: Option<u32>,
    pub priority: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub rpm_limit: Option<u32>,
    pub allowed_models: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// `[[keys]]`: client API keys with optional limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    pub name: String,
    pub key: String,
    pub rpm_limit: Option<u32>,
    pub max_concurrency: Option<u32>,
}

impl FileConfig {
    /// Reads and parses the file; syntax and unknown-key errors name the file.
    pub fn read(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![Problem {
                source: path.display().to_string(),
                message: format!("cannot read config file: {e}"),
            }])
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigErrors> {
        toml::from_str(text).map_err(|e| {
            ConfigErrors(vec![Problem {
                source: source.to_owned(),
                message: e.to_string().trim().to_owned(),
            }])
        })
    }
}
