//! Gateway configuration: defaults → TOML file (`--config`) → environment (the seed's
//! variable names are the public interface), parsed into raw structs and then converted
//! into validated types that report *every* problem at once, naming the variable or key.
//!
//! Secrets stay wrapped in `SecretString` from the moment they are read.

mod cluster;
mod env;
mod file;
#[cfg(test)]
mod tests;

pub use cluster::ClusterConfig;
pub use env::EnvSource;
pub(crate) use env::account_from_section;
pub(crate) use file::AccountSection;
pub use file::FileConfig;

use qgate_amazonq::Dialect;
use qgate_auth::Credentials;
use qgate_pool::{AccountId, AccountSettings, PoolConfig};
use qgate_translate::model_map::ModelMap;
use secrecy::SecretString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default Amazon Q API base (Q-CLI dialect; region from the account when set).
pub const DEFAULT_API_ENDPOINT: &str = "https://q.us-east-1.amazonaws.com";
/// Default AWS SSO OIDC token endpoint.
pub const DEFAULT_TOKEN_ENDPOINT: &str = "https://oidc.us-east-1.amazonaws.com/token";
/// Idle upstream connections kept per worker by default: enough for the ups and downs
/// of a few dozen streams per worker without reconnecting; a burst of thousands leaves
/// at most this many per worker open afterwards (docs/benchmarks.md, eighth round).
pub const DEFAULT_POOL_IDLE: usize = 32;
/// Default Kiro social-login refresh endpoint.
pub const DEFAULT_KIRO_AUTH_ENDPOINT: &str =
    "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub pool: PoolConfig,
    pub dispatch: DispatchConfig,
    pub models: ModelMap,
    pub accounts: Vec<AccountConfig>,
    pub token_cache_dir: PathBuf,
    pub health_check_interval: Duration,
    pub security: SecurityConfig,
    /// Where the config came from (for reload).
    pub config_file: Option<PathBuf>,
    /// Webhook receivers of account and pool alerts (`WEBHOOK_URLS`, `webhooks = [...]`).
    pub webhooks: Vec<String>,
    /// What `load` read, so a reload reads the same sources again.
    pub source: Option<std::sync::Arc<LoadSource>>,
    /// Multi-instance mode (`REDIS_URL`); `None` runs on local state alone.
    pub cluster: Option<ClusterConfig>,
}

/// The inputs of [`load`], kept for reloads. `Debug` shows none of the values: the
/// environment holds credentials.
#[derive(Clone)]
pub struct LoadSource {
    pub env: EnvSource,
    pub overrides: Overrides,
}

impl fmt::Debug for LoadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadSource")
            .field("config_file", &self.overrides.config_file)
            .finish_non_exhaustive()
    }
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// Longest silence allowed while a request body is being received (408 after it).
    pub body_read_timeout: Duration,
    pub ping_interval: Duration,
    /// How accepted connections are spread over threads (`WORKERS`).
    pub workers: Workers,
}

/// The threading layout of the listener (`WORKERS`: `auto`, a number, or `shared`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Every connection runs on the runtime that called `start`: tokio's work-stealing
    /// pool, the layout before worker threads existed.
    Shared,
    /// This many single-threaded workers (default: one per CPU). Each accepted connection
    /// is handed to the worker with the fewest open connections and stays there; each
    /// worker has its own upstream connection pool, so a request, its stream and its
    /// upstream connection never change threads.
    Threads(std::num::NonZeroUsize),
}

/// Most worker threads accepted (a typo like `10000` should not start 10 000 threads).
pub const MAX_WORKERS: usize = 256;

impl Workers {
    /// One worker per CPU the process may use.
    pub fn auto() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Workers::Threads(
            std::num::NonZeroUsize::new(cpus.min(MAX_WORKERS))
                .unwrap_or(std::num::NonZeroUsize::MIN),
        )
    }

    /// Worker threads the listener starts (0 for [`Workers::Shared`]).
    pub fn threads(self) -> usize {
        match self {
            Workers::Shared => 0,
            Workers::Threads(n) => n.get(),
        }
    }
}

impl std::str::FromStr for Workers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Workers::auto()),
            "shared" => Ok(Workers::Shared),
            n => match n.parse::<std::num::NonZeroUsize>() {
                Ok(k) if k.get() <= MAX_WORKERS => Ok(Workers::Threads(k)),
                _ => Err(format!(
                    "`{s}` is not `auto`, `shared` or a number of worker threads from 1 to {MAX_WORKERS}"
                )),
            },
        }
    }
}

/// Upstream endpoints and per-phase timeouts (never one timeout on a whole stream).
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub api_endpoint: Option<String>,
    pub token_endpoint: String,
    pub kiro_auth_endpoint: String,
    pub connect_timeout: Duration,
    pub first_event_timeout: Duration,
    pub idle_timeout: Duration,
    /// Idle upstream connections each worker's pool keeps for reuse (`UPSTREAM_POOL_IDLE`).
    /// More are closed when they come back, so a burst of streams does not leave
    /// thousands of open connections and their buffers behind.
    pub pool_idle: usize,
}

/// Attempts, backoff and the wait queue.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub queue_timeout: Duration,
    pub queue_max: usize,
    pub retry_after_cap: Duration,
    /// Models (substring, word-bounded) that report `input_tokens: 0` (seed's
    /// `ZERO_INPUT_TOKEN_MODELS`).
    pub zero_input_token_models: Vec<String>,
}

/// Client and admin authentication.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    pub admin_api_key: Option<SecretString>,
    pub api_keys: Vec<ClientKey>,
    pub insecure_no_auth: bool,
    /// `/metrics` without the admin key even when one is set (`METRICS_PUBLIC`).
    pub metrics_public: bool,
    /// `API_KEYS_FILE`: more client keys, re-read on reload.
    pub api_keys_file: Option<PathBuf>,
}

/// A client API key with optional limits.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub name: String,
    pub key: SecretString,
    pub rpm_limit: Option<u32>,
    pub max_concurrency: Option<u32>,
}

/// One upstream account.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub settings: AccountSettings,
    pub dialect: Dialect,
    pub credentials: Credentials,
    pub profile_arn: Option<String>,
    pub region: Option<String>,
    /// Explicit API base for this account (else derived from region / global endpoint).
    pub api_endpoint: Option<String>,
}

impl AccountConfig {
    pub fn id(&self) -> &AccountId {
        &self.settings.id
    }

    /// The API base URL this account talks to.
    pub fn api_base(&self, upstream: &UpstreamConfig) -> String {
        if let Some(e) = &self.api_endpoint {
            return e.trim_end_matches('/').to_owned();
        }
        if let Some(e) = &upstream.api_endpoint {
            return e.trim_end_matches('/').to_owned();
        }
        let region = self
            .region
            .clone()
            .or_else(|| self.profile_arn.as_deref().and_then(region_of_arn))
            .unwrap_or_else(|| "us-east-1".to_owned());
        format!("https://q.{region}.amazonaws.com")
    }
}

/// `arn:aws:codewhisperer:<region>:...` → region.
fn region_of_arn(arn: &str) -> Option<String> {
    let region = arn.split(':').nth(3)?;
    (!region.is_empty()).then(|| region.to_owned())
}

/// One configuration problem, naming where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub source: String,
    pub message: String,
}

/// All problems found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {}: {}", p.source, p.message)?;
        }
        Ok(())
    }
}

/// Collects problems while converting.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, source: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            source: source.into(),
            message: message.into(),
        });
    }

    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}

/// Options from the command line that override file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
    pub insecure_no_auth: bool,
}

/// Loads defaults → file → environment → command line, validating everything.
pub fn load(env: &EnvSource, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let file_path = overrides
        .config_file
        .clone()
        .or_else(|| env.get("QGATE_CONFIG").map(PathBuf::from));
    let file = match &file_path {
        Some(p) => FileConfig::read(p)?,
        None => FileConfig::default(),
    };
    let mut cfg = env::build(&file, env)?;
    if let Some(h) = overrides.host {
        cfg.server.host = h;
    }
    if let Some(p) = overrides.port {
        cfg.server.port = p;
    }
    cfg.security.insecure_no_auth |= overrides.insecure_no_auth;
    cfg.config_file = file_path;
    cfg.source = Some(std::sync::Arc::new(LoadSource {
        env: env.clone(),
        overrides: overrides.clone(),
    }));
    Ok(cfg)
}
