//! Multi-instance mode settings: `REDIS_URL` / `redis_url` switches it on, `REDIS_PREFIX`
//! / `redis_prefix` names the keys, `REDIS_TIMEOUT` / `redis_timeout` bounds each
//! request-path operation, `QGATE_ENCRYPTION_KEY` (environment only: a key does not
//! belong in a config file that gets copied around) allows secrets in Redis.

use super::Problems;
use super::env::EnvSource;
use super::file::FileConfig;
use qgate_store::redis::{DEFAULT_PREFIX, EncryptionKey, redact_url};
use secrecy::{ExposeSecret, SecretString};

/// Validated multi-instance settings. `Debug` shows neither the URL's password nor the key.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `redis://`, `rediss://`, `redis+unix://` or `unix://`.
    pub redis_url: SecretString,
    pub prefix: String,
    /// Bound of each request-path operation (default 250 ms); past it the request goes on
    /// with local behaviour.
    pub op_timeout: std::time::Duration,
    /// Without it, tokens and admin account changes (which hold credentials) stay local
    /// to each instance; everything else is still shared.
    pub encryption_key: Option<EncryptionKey>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &redact_url(self.redis_url.expose_secret()))
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .field("encryption_key", &self.encryption_key.is_some())
            .finish()
    }
}

const SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];

/// `None` when no Redis URL is configured (single-instance mode: nothing changes).
pub(super) fn from_sources(
    env: &EnvSource,
    file: &FileConfig,
    problems: &mut Problems,
) -> Option<ClusterConfig> {
    let (source, url) = match (env.get("REDIS_URL"), &file.redis_url) {
        (Some(url), _) => ("REDIS_URL", url.to_owned()),
        (None, Some(url)) if !url.trim().is_empty() => ("redis_url", url.trim().to_owned()),
        (None, _) => {
            if env.get("QGATE_ENCRYPTION_KEY").is_some() {
                tracing::debug!("QGATE_ENCRYPTION_KEY is set but REDIS_URL is not; it is unused");
            }
            return None;
        }
    };
    if !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        problems.push(
            source,
            format!(
                "`{}` is not a Redis URL (expected redis://, rediss://, redis+unix:// or unix://)",
                redact_url(&url)
            ),
        );
    }
    let prefix = env
        .get("REDIS_PREFIX")
        .map(str::to_owned)
        .or_else(|| file.redis_prefix.clone())
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.push(
            "REDIS_PREFIX",
            "must be non-empty, without spaces or control characters",
        );
    }
    let op_timeout = match (env.get("REDIS_TIMEOUT"), &file.redis_timeout) {
        (Some(text), _) => Some(("REDIS_TIMEOUT", text.to_owned())),
        (None, Some(text)) => Some(("redis_timeout", text.clone())),
        (None, None) => None,
    }
    .map_or(qgate_store::redis::DEFAULT_OP_TIMEOUT, |(source, text)| {
        match humantime::parse_duration(text.trim()) {
            Ok(timeout) if !timeout.is_zero() => timeout,
            _ => {
                problems.push(
                    source,
                    format!("`{text}` is not a duration like `250ms` or `1s`"),
                );
                qgate_store::redis::DEFAULT_OP_TIMEOUT
            }
        }
    });
    let encryption_key = match env.get("QGATE_ENCRYPTION_KEY") {
        Some(text) => match EncryptionKey::parse(text) {
            Ok(key) => Some(key),
            Err(err) => {
                problems.push("QGATE_ENCRYPTION_KEY", err.to_string());
                None
            }
        },
        None => None,
    };
    Some(ClusterConfig {
        redis_url: SecretString::from(url),
        prefix,
        op_timeout,
        encryption_key,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)], file: FileConfig) -> (Option<ClusterConfig>, Problems) {
        let env = EnvSource::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)));
        let mut problems = Problems::default();
        (from_sources(&env, &file, &mut problems), problems)
    }

    #[test]
    fn unset_url_means_single_instance_mode() {
        let (cfg, problems) = parse(
            &[("QGATE_ENCRYPTION_KEY", &"ab".repeat(32))],
            FileConfig::default(),
        );
        assert!(cfg.is_none());
        assert!(problems.0.is_empty());
    }

    #[test]
    fn env_url_prefix_and_key_are_read_and_never_shown() {
        let key = "00".repeat(32);
        let (cfg, problems) = parse(
            &[
                ("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0"),
                ("REDIS_PREFIX", "blue:"),
                ("REDIS_TIMEOUT", "1s"),
                ("QGATE_ENCRYPTION_KEY", &key),
            ],
            FileConfig::default(),
        );
        assert!(problems.0.is_empty(), "{:?}", problems.0);
        let cfg = cfg.unwrap();
        assert_eq!(cfg.prefix, "blue:");
        assert_eq!(cfg.op_timeout, std::time::Duration::from_secs(1));
        assert!(cfg.encryption_key.is_some());
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(&key),
            "{shown}"
        );
    }

    #[test]
    fn file_url_is_used_when_the_environment_has_none() {
        let file = FileConfig {
            redis_url: Some("redis+unix:///run/redis.sock".into()),
            ..FileConfig::default()
        };
        let (cfg, problems) = parse(&[], file);
        assert!(problems.0.is_empty());
        let cfg = cfg.unwrap();
        assert_eq!(cfg.prefix, "qgate:");
        assert_eq!(cfg.op_timeout, std::time::Duration::from_millis(250));
        assert!(cfg.encryption_key.is_none());
    }

    #[test]
    fn bad_url_and_bad_key_are_reported_without_secrets() {
        let (_, problems) = parse(
            &[
                ("REDIS_URL", "http://:hunter2@host/"),
                ("REDIS_TIMEOUT", "soon"),
                ("QGATE_ENCRYPTION_KEY", "too-short"),
            ],
            FileConfig::default(),
        );
        let sources: Vec<&str> = problems.0.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(
            sources,
            vec!["REDIS_URL", "REDIS_TIMEOUT", "QGATE_ENCRYPTION_KEY"]
        );
        for p in &problems.0 {
            assert!(!p.message.contains("hunter2") && !p.message.contains("too-short"));
        }
    }
}
