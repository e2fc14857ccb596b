//! Environment variables (the seed's names exactly, plus ours) layered over the file,
//! converted into the validated [`Config`].

use super::file::{AccountSection, FileConfig};
use super::{
    AccountConfig, ClientKey, Config, ConfigErrors, DEFAULT_KIRO_AUTH_ENDPOINT, DEFAULT_POOL_IDLE,
    DEFAULT_TOKEN_ENDPOINT, DispatchConfig, Problems, SecurityConfig, ServerConfig, UpstreamConfig,
    Workers,
};
use qgate_amazonq::Dialect;
use qgate_auth::Credentials;
use qgate_pool::{AccountId, AccountSettings, BreakerConfig, PoolConfig, Strategy};
use qgate_translate::model_map::ModelMap;
use secrecy::SecretString;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A snapshot of environment variables (tests build one from a map).
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    vars: BTreeMap<String, String>,
}

impl EnvSource {
    /// The process environment. Empty values count as unset, as in the seed.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        EnvSource { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|s| s.trim())
    }

    /// Whether any account is configured through the environment.
    pub fn has_accounts(&self) -> bool {
        self.get("AMAZONQ_ACCOUNT_COUNT")
            .is_some_and(|c| c.parse::<u32>().is_ok_and(|n| n > 0))
            || self.get("AMAZONQ_REFRESH_TOKEN").is_some()
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Seconds as an integer (the seed's form) or a humantime duration (`30s`, `5m`).
fn parse_duration(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(v).ok()
}

/// Reads typed values, recording a problem (naming the variable) when one is malformed.
struct Reader<'a> {
    env: &'a EnvSource,
    problems: Problems,
}

impl Reader<'_> {
    fn string(&self, var: &str, file: Option<&String>) -> Option<String> {
        self.env
            .get(var)
            .map(str::to_owned)
            .or_else(|| file.cloned())
    }

    fn parsed<T: FromStr>(&mut self, var: &str, file: Option<T>, what: &str) -> Option<T> {
        match self.env.get(var) {
            Some(v) => match v.parse::<T>() {
                Ok(x) => Some(x),
                Err(_) => {
                    self.problems.push(var, format!("`{v}` is not {what}"));
                    None
                }
            },
            None => file,
        }
    }

    fn bool(&mut self, var: &str, file: Option<bool>) -> Option<bool> {
        match self.env.get(var) {
            Some(v) => {
                let b = parse_bool(v);
                if b.is_none() {
                    self.problems
                        .push(var, format!("`{v}` is not a boolean (true/false)"));
                }
                b
            }
            None => file,
        }
    }

    fn workers(&mut self, file: Option<&super::file::WorkersSetting>) -> Workers {
        let (source, raw) = match (self.env.get("WORKERS"), file) {
            (Some(v), _) => ("WORKERS", v.to_owned()),
            (None, Some(f)) => ("server.workers", f.as_text()),
            (None, None) => return Workers::auto(),
        };
        raw.parse().unwrap_or_else(|e: String| {
            self.problems.push(source, e);
            Workers::auto()
        })
    }

    fn duration(&mut self, var: &str, key: &str, file: Option<&String>) -> Option<Duration> {
        let (source, raw) = match (self.env.get(var), file) {
            (Some(v), _) => (var, v.to_owned()),
            (None, Some(f)) => (key, f.clone()),
            (None, None) => return None,
        };
        let d = parse_duration(&raw);
        if d.is_none() {
            self.problems.push(
                source,
                format!("`{raw}` is not a duration (seconds, or like `30s`, `5m`)"),
            );
        }
        d
    }
}

pub(super) fn build(file: &FileConfig, env: &EnvSource) -> Result<Config, ConfigErrors> {
    let mut r = Reader {
        env,
        problems: Problems::default(),
    };

    // --- server
    let host = match r.string("HOST", file.server.host.as_ref()) {
        Some(h) => match h.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) if h == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Err(_) => {
                r.problems
                    .push("HOST", format!("`{h}` is not an IP address"));
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
        },
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let port = r
        .parsed("PORT", file.server.port, "a port number")
        .unwrap_or(8080);
    let server = ServerConfig {
        host,
        port,
        max_body_bytes: r
            .parsed("MAX_BODY_BYTES", file.server.max_body_bytes, "a byte count")
            .unwrap_or(32 * 1024 * 1024),
        max_connections: r
            .parsed("MAX_CONNECTIONS", file.server.max_connections, "a number")
            .unwrap_or(20_000),
        body_read_timeout: r
            .duration(
                "BODY_READ_TIMEOUT",
                "server.body_read_timeout",
                file.server.body_read_timeout.as_ref(),
            )
            .unwrap_or(Duration::from_secs(30)),
        header_read_timeout: r
            .duration(
                "HEADER_READ_TIMEOUT",
                "server.header_read_timeout",
                file.server.header_read_timeout.as_ref(),
            )
            .unwrap_or(Duration::from_secs(10)),
        ping_interval: r
            .duration(
                "PING_INTERVAL",
                "server.ping_interval",
                file.server.ping_interval.as_ref(),
            )
            .unwrap_or(Duration::from_secs(10)),
        workers: r.workers(file.server.workers.as_ref()),
    };

    // --- upstream
    let u = &file.upstream;
    let upstream = UpstreamConfig {
        api_endpoint: r.string("AMAZONQ_API_ENDPOINT", u.api_endpoint.as_ref()),
        token_endpoint: r
            .string("AMAZONQ_TOKEN_ENDPOINT", u.token_endpoint.as_ref())
            .unwrap_or_else(|| DEFAULT_TOKEN_ENDPOINT.to_owned()),
        kiro_auth_endpoint: r
            .string("KIRO_AUTH_ENDPOINT", u.kiro_auth_endpoint.as_ref())
            .unwrap_or_else(|| DEFAULT_KIRO_AUTH_ENDPOINT.to_owned()),
        connect_timeout: r
            .duration(
                "UPSTREAM_CONNECT_TIMEOUT",
                "upstream.connect_timeout",
                u.connect_timeout.as_ref(),
            )
            .unwrap_or(Duration::from_secs(5)),
        first_event_timeout: r
            .duration(
                "UPSTREAM_FIRST_EVENT_TIMEOUT",
                "upstream.first_event_timeout",
                u.first_event_timeout.as_ref(),
            )
            .unwrap_or(Duration::from_secs(90)),
        idle_timeout: r
            .duration(
                "UPSTREAM_IDLE_TIMEOUT",
                "upstream.idle_timeout",
                u.idle_timeout.as_ref(),
            )
            .unwrap_or(Duration::from_secs(120)),
        pool_idle: r
            .parsed("UPSTREAM_POOL_IDLE", u.pool_idle, "a number")
            .unwrap_or(DEFAULT_POOL_IDLE),
    };
    for (var, url) in [
        ("AMAZONQ_API_ENDPOINT", upstream.api_endpoint.as_deref()),
        (
            "AMAZONQ_TOKEN_ENDPOINT",
            Some(upstream.token_endpoint.as_str()),
        ),
        (
            "KIRO_AUTH_ENDPOINT",
            Some(upstream.kiro_auth_endpoint.as_str()),
        ),
    ] {
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            r.problems
                .push(var, format!("`{url}` is not an http(s) URL"));
        }
    }

    let dispatch = DispatchConfig {
        max_attempts: r
            .parsed("MAX_ATTEMPTS", u.max_attempts, "a number")
            .unwrap_or(3)
            .max(1),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(2),
        queue_timeout: r
            .duration(
                "QUEUE_TIMEOUT",
                "upstream.queue_timeout",
                u.queue_timeout.as_ref(),
            )
            .unwrap_or(Duration::from_secs(30)),
        queue_max: r
            .parsed("QUEUE_MAX", u.queue_max, "a number")
            .unwrap_or(1024),
        // Clients sleep exactly this long (Python's SDK has no cap of its own), so keep
        // it small: a pool that recovers sooner is retried sooner.
        retry_after_cap: r
            .duration("RETRY_AFTER_MAX", "upstream.retry_after_max", None)
            .unwrap_or(Duration::from_secs(10)),
        zero_input_token_models: env
            .get("ZERO_INPUT_TOKEN_MODELS")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };

    // --- pool (seed names and defaults)
    let p = &file.pool;
    let strategy = match r.string("LOAD_BALANCE_STRATEGY", p.strategy.as_ref()) {
        Some(s) => match s.parse::<Strategy>() {
            Ok(s) => s,
            Err(e) => {
                r.problems.push("LOAD_BALANCE_STRATEGY", e.to_string());
                Strategy::default()
            }
        },
        None => Strategy::default(),
    };
    let breaker_defaults = BreakerConfig::default();
    let breaker = BreakerConfig {
        enabled: r
            .bool("CIRCUIT_BREAKER_ENABLED", p.circuit_breaker_enabled)
            .unwrap_or(true),
        error_threshold: r
            .parsed(
                "CIRCUIT_BREAKER_ERROR_THRESHOLD",
                p.circuit_breaker_error_threshold,
                "a number",
            )
            .unwrap_or(5)
            .max(1),
        recovery_timeout_ms: r
            .duration(
                "CIRCUIT_BREAKER_RECOVERY_TIMEOUT",
                "pool.circuit_breaker_recovery_timeout",
                p.circuit_breaker_recovery_timeout.as_ref(),
            )
            .map_or(300_000, |d| d.as_millis() as u64),
        ..breaker_defaults
    };
    let sticky = r.bool("STICKY_SESSIONS", p.sticky_sessions).unwrap_or(true);
    let sticky_ttl = r
        .duration("STICKY_TTL", "pool.sticky_ttl", p.sticky_ttl.as_ref())
        .unwrap_or(Duration::from_secs(3600));
    let pool = PoolConfig {
        strategy,
        breaker,
        sticky_ttl_ms: sticky.then_some(sticky_ttl.as_millis() as u64),
        ..PoolConfig::default()
    };
    let health_check_interval = r
        .duration(
            "HEALTH_CHECK_INTERVAL",
            "pool.health_check_interval",
            p.health_check_interval.as_ref(),
        )
        .unwrap_or(Duration::from_secs(300));

    // --- models
    let models = match &file.models {
        Some(m) => ModelMap::from_config(m),
        None => Ok(ModelMap::builtin()),
    }
    .and_then(|m| m.with_env(env.get("MODEL_MAP"), env.get("DEFAULT_MODEL")));
    let models = match models {
        Ok(m) => m,
        Err(errs) => {
            for e in errs {
                r.problems
                    .push("models (MODEL_MAP / DEFAULT_MODEL / [models])", e);
            }
            ModelMap::builtin()
        }
    };

    // --- accounts
    let mut accounts = Vec::new();
    for (i, a) in file.accounts.iter().enumerate() {
        if let Some(acc) = file_account(a, &format!("accounts[{i}]"), &mut r.problems) {
            accounts.push(acc);
        }
    }
    env_accounts(env, &mut accounts, &mut r);
    let mut seen = HashSet::new();
    for a in &accounts {
        if !seen.insert(a.id().to_string()) {
            r.problems
                .push(format!("account `{}`", a.id()), "duplicate account id");
        }
    }

    // --- security
    let mut api_keys = Vec::new();
    if let Some(list) = env.get("API_KEYS") {
        for (i, k) in list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
        {
            api_keys.push(ClientKey {
                name: format!("key{}", i + 1),
                key: SecretString::from(k.to_owned()),
                rpm_limit: None,
                max_concurrency: None,
            });
        }
    }
    for k in &file.keys {
        if k.key.trim().is_empty() {
            r.problems.push(format!("keys `{}`", k.name), "empty key");
            continue;
        }
        api_keys.push(ClientKey {
            name: k.name.clone(),
            key: SecretString::from(k.key.clone()),
            rpm_limit: k.rpm_limit,
            max_concurrency: k.max_concurrency,
        });
    }
    let api_keys_file = r
        .string("API_KEYS_FILE", file.api_keys_file.as_ref())
        .map(PathBuf::from);
    if let Some(path) = &api_keys_file {
        match crate::keys::read_keys_file(path) {
            Ok(keys) => api_keys.extend(keys),
            Err(problems) => {
                for (line, message) in problems {
                    r.problems
                        .push(format!("API_KEYS_FILE {}:{line}", path.display()), message);
                }
            }
        }
    }
    let mut names = HashSet::new();
    for k in &api_keys {
        if !names.insert(k.name.clone()) {
            r.problems
                .push(format!("client key `{}`", k.name), "duplicate key name");
        }
    }
    let security = SecurityConfig {
        admin_api_key: r
            .string("ADMIN_API_KEY", file.admin_api_key.as_ref())
            .map(SecretString::from),
        api_keys,
        insecure_no_auth: false,
        metrics_public: r
            .bool("METRICS_PUBLIC", file.metrics_public)
            .unwrap_or(false),
        api_keys_file,
    };
    let webhooks: Vec<String> = match env.get("WEBHOOK_URLS") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        None => file.webhooks.clone(),
    };
    for url in &webhooks {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            r.problems.push(
                "WEBHOOK_URLS / webhooks",
                format!("`{url}` is not an http(s) URL"),
            );
        }
    }

    let token_cache_dir = r
        .string("TOKEN_CACHE_DIR", file.token_cache_dir.as_ref())
        .map(|d| expand_home(&d))
        .unwrap_or_else(qgate_store::FileTokenStore::default_dir);
    let cluster = super::cluster::from_sources(env, file, &mut r.problems);

    r.problems.finish(Config {
        server,
        upstream,
        pool,
        dispatch,
        models,
        accounts,
        token_cache_dir,
        health_check_interval,
        security,
        config_file: None,
        webhooks,
        source: None,
        cluster,
    })
}

/// `~/x` → `$HOME/x` (`.env` files are not expanded by a shell).
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn parse_id(raw: &str, source: &str, problems: &mut Problems) -> Option<AccountId> {
    match AccountId::new(raw) {
        Ok(id) => Some(id),
        Err(e) => {
            problems.push(source, format!("invalid account id: {e}"));
            None
        }
    }
}

/// One `[[accounts]]` entry (or an account added through the admin API, which uses the
/// same shape) converted and validated.
pub(crate) fn account_from_section(
    a: &AccountSection,
    source: &str,
    problems: &mut Problems,
) -> Option<AccountConfig> {
    file_account(a, source, problems)
}

fn file_account(
    a: &AccountSection,
    source: &str,
    problems: &mut Problems,
) -> Option<AccountConfig> {
    let id = parse_id(&a.id, &format!("{source}.id"), problems);
    let dialect = match a.dialect.as_deref() {
        None | Some("q_cli") | Some("cli") => Dialect::QCli,
        Some("kiro") => Dialect::Kiro,
        Some(other) => {
            problems.push(
                format!("{source}.dialect"),
                format!("`{other}` is not one of q_cli, kiro"),
            );
            Dialect::QCli
        }
    };
    let refresh = a.refresh_token.clone().filter(|t| !t.trim().is_empty());
    if refresh.is_none() {
        problems.push(format!("{source}.refresh_token"), "is required");
    }
    let auth = a.auth.as_deref().unwrap_or(if a.client_id.is_some() {
        "oidc"
    } else if dialect == Dialect::Kiro {
        "kiro_social"
    } else {
        "oidc"
    });
    let credentials = match auth {
        "oidc" => {
            if a.client_id.is_none() {
                problems.push(format!("{source}.client_id"), "is required for oidc auth");
            }
            if a.client_secret.is_none() {
                problems.push(
                    format!("{source}.client_secret"),
                    "is required for oidc auth",
                );
            }
            Credentials::Oidc {
                client_id: a.client_id.clone().unwrap_or_default(),
                client_secret: SecretString::from(a.client_secret.clone().unwrap_or_default()),
                refresh_token: SecretString::from(refresh.clone().unwrap_or_default()),
            }
        }
        "kiro_social" => Credentials::KiroSocial {
            refresh_token: SecretString::from(refresh.clone().unwrap_or_default()),
        },
        other => {
            problems.push(
                format!("{source}.auth"),
                format!("`{other}` is not one of oidc, kiro_social"),
            );
            return None;
        }
    };
    let settings = AccountSettings {
        id: id?,
        weight: a.weight.unwrap_or(10),
        priority: a.priority.unwrap_or(0),
        max_concurrency: a.max_concurrency,
        rpm_limit: a.rpm_limit,
        allowed_models: a.allowed_models.clone(),
        enabled: a.enabled.unwrap_or(true),
    };
    refresh?;
    Some(AccountConfig {
        settings,
        dialect,
        credentials,
        profile_arn: a.profile_arn.clone(),
        region: a.region.clone(),
        api_endpoint: a.api_endpoint.clone(),
    })
}

/// `AMAZONQ_ACCOUNT_COUNT` + `AMAZONQ_ACCOUNT_{i}_*`, or the single-account fallback.
fn env_accounts(env: &EnvSource, out: &mut Vec<AccountConfig>, r: &mut Reader<'_>) {
    let count = r
        .parsed::<u32>("AMAZONQ_ACCOUNT_COUNT", None, "a number")
        .unwrap_or(0);
    if count == 0 {
        if env.get("AMAZONQ_REFRESH_TOKEN").is_none()
            && env.get("AMAZONQ_CLIENT_ID").is_none()
            && env.get("AMAZONQ_CLIENT_SECRET").is_none()
        {
            return;
        }
        if let Some(acc) = seed_account(env, r, "default", "AMAZONQ_", 10, true) {
            out.push(acc);
        }
        return;
    }
    for i in 1..=count {
        let prefix = format!("AMAZONQ_ACCOUNT_{i}_");
        let id = env
            .get(&format!("{prefix}ID"))
            .map_or_else(|| format!("account_{i}"), str::to_owned);
        let weight = r
            .parsed(&format!("{prefix}WEIGHT"), Some(10), "a number")
            .unwrap_or(10);
        let enabled = r
            .bool(&format!("{prefix}ENABLED"), Some(true))
            .unwrap_or(true);
        if let Some(acc) = seed_account(env, r, &id, &prefix, weight, enabled) {
            out.push(acc);
        }
    }
}

fn seed_account(
    env: &EnvSource,
    r: &mut Reader<'_>,
    id: &str,
    prefix: &str,
    weight: u32,
    enabled: bool,
) -> Option<AccountConfig> {
    let var = |s: &str| format!("{prefix}{s}");
    let mut missing = false;
    let mut need = |name: &str| -> String {
        match env.get(&var(name)) {
            Some(v) => v.to_owned(),
            None => {
                r.problems.push(var(name), "is required");
                missing = true;
                String::new()
            }
        }
    };
    let refresh_token = need("REFRESH_TOKEN");
    let client_id = need("CLIENT_ID");
    let client_secret = need("CLIENT_SECRET");
    let id = parse_id(id, &var("ID"), &mut r.problems)?;
    if missing {
        return None;
    }
    Some(AccountConfig {
        settings: AccountSettings {
            id,
            weight,
            priority: 0,
            max_concurrency: None,
            rpm_limit: None,
            allowed_models: None,
            enabled,
        },
        dialect: Dialect::QCli,
        credentials: Credentials::Oidc {
            client_id,
            client_secret: SecretString::from(client_secret),
            refresh_token: SecretString::from(refresh_token),
        },
        profile_arn: env.get(&var("PROFILE_ARN")).map(str::to_owned),
        region: None,
        api_endpoint: None,
    })
}
