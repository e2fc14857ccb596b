//! Pool configuration: per-account settings, pool-wide tuning and the strategy names.
//!
//! Defaults follow the seed where it had them (weight 10, breaker threshold 5, recovery
//! 300 s, `weighted_round_robin`); the rest are ours. `validate` collects every problem
//! before failing, so an operator fixes a config in one pass. No secrets live here: the
//! pool never sees tokens.

use crate::id::AccountId;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// What the pool needs to know about one account. Credentials live elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    pub id: AccountId,
    /// Share under `weighted_round_robin`; 0 = only used when no weighted account is left.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Tier, 0 = highest. Lower tiers serve only when every higher-tier account is unusable.
    #[serde(default)]
    pub priority: u32,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub rpm_limit: Option<u32>,
    /// Upstream model ids this account may be asked for; `None` = any.
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

pub const DEFAULT_WEIGHT: u32 = 10;

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

fn default_true() -> bool {
    true
}

impl AccountSettings {
    /// Settings with every default: weight 10, tier 0, no limits, any model, enabled.
    pub fn new(id: AccountId) -> AccountSettings {
        AccountSettings {
            id,
            weight: DEFAULT_WEIGHT,
            priority: 0,
            max_concurrency: None,
            rpm_limit: None,
            allowed_models: None,
            enabled: true,
        }
    }
}

/// How an account is picked within a priority tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    RoundRobin,
    #[default]
    WeightedRoundRobin,
    LeastUsed,
    Random,
    Latency,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::RoundRobin,
        Strategy::WeightedRoundRobin,
        Strategy::LeastUsed,
        Strategy::Random,
        Strategy::Latency,
    ];

    /// The seed's spelling (`LOAD_BALANCE_STRATEGY`), plus `latency`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::WeightedRoundRobin => "weighted_round_robin",
            Strategy::LeastUsed => "least_used",
            Strategy::Random => "random",
            Strategy::Latency => "latency",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is not one of [`Strategy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown load-balancing strategy {given:?}; expected one of: round_robin, weighted_round_robin, least_used, random, latency"
)]
pub struct UnknownStrategy {
    pub given: String,
}

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Strategy::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownStrategy {
                given: s.to_owned(),
            })
    }
}

/// Per-account circuit breaker tuning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Consecutive account-attributable failures that open the breaker.
    pub error_threshold: u32,
    /// First open period; doubled after each failed half-open probe.
    pub recovery_timeout_ms: u64,
    /// Cap for the doubled open period.
    pub max_recovery_timeout_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            error_threshold: 5,
            recovery_timeout_ms: 300_000,
            max_recovery_timeout_ms: 3_600_000,
        }
    }
}

/// Pool-wide tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolConfig {
    pub strategy: Strategy,
    pub breaker: BreakerConfig,
    /// First 429 cooldown when upstream gives no retry-after; doubles per repeat.
    pub throttle_base_ms: u64,
    pub throttle_max_ms: u64,
    /// How long an (account, model) pair stays out after `INVALID_MODEL_ID`.
    pub model_unavailable_ttl_ms: u64,
    /// Soft de-preference after a global overload answer; doubles per repeat.
    pub overload_backoff_base_ms: u64,
    pub overload_backoff_max_ms: u64,
    /// Session → account binding lifetime, renewed on use; `None` disables stickiness.
    pub sticky_ttl_ms: Option<u64>,
    /// Most sessions remembered; the least recently used binding is evicted beyond it.
    pub sticky_max_sessions: usize,
    /// Weight of the newest time-to-first-event sample in the latency average.
    pub latency_ewma_alpha: f64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            strategy: Strategy::default(),
            breaker: BreakerConfig::default(),
            throttle_base_ms: 30_000,
            throttle_max_ms: 600_000,
            model_unavailable_ttl_ms: 1_800_000,
            overload_backoff_base_ms: 5_000,
            overload_backoff_max_ms: 60_000,
            sticky_ttl_ms: Some(3_600_000),
            sticky_max_sessions: 65_536,
            latency_ewma_alpha: 0.2,
        }
    }
}

/// One thing wrong with a pool configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("account id {0} is configured more than once")]
    DuplicateId(AccountId),
    #[error("account {0}: max_concurrency 0 would never admit a request")]
    ZeroConcurrency(AccountId),
    #[error("account {0}: rpm_limit 0 would never admit a request")]
    ZeroRpmLimit(AccountId),
    #[error("account {0}: allowed_models is empty or holds an empty name")]
    EmptyModelList(AccountId),
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
}

impl PoolConfig {
    /// Every problem with this config and these accounts; empty when usable.
    pub fn problems(&self, accounts: &[AccountSettings]) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut invalid = |ok: bool, field, problem| {
            if !ok {
                problems.push(ConfigProblem::Invalid { field, problem });
            }
        };
        let b = &self.breaker;
        invalid(
            b.error_threshold >= 1,
            "breaker.error_threshold",
            "must be at least 1",
        );
        invalid(
            b.recovery_timeout_ms >= 1,
            "breaker.recovery_timeout_ms",
            "must be positive",
        );
        invalid(
            b.max_recovery_timeout_ms >= b.recovery_timeout_ms,
            "breaker.max_recovery_timeout_ms",
            "must not be below recovery_timeout_ms",
        );
        invalid(
            self.throttle_base_ms >= 1,
            "throttle_base_ms",
            "must be positive",
        );
        invalid(
            self.throttle_max_ms >= self.throttle_base_ms,
            "throttle_max_ms",
            "must not be below throttle_base_ms",
        );
        invalid(
            self.overload_backoff_max_ms >= self.overload_backoff_base_ms,
            "overload_backoff_max_ms",
            "must not be below overload_backoff_base_ms",
        );
        invalid(
            self.sticky_ttl_ms != Some(0),
            "sticky_ttl_ms",
            "must be positive (use none to disable)",
        );
        invalid(
            self.sticky_ttl_ms.is_none() || self.sticky_max_sessions >= 1,
            "sticky_max_sessions",
            "must be at least 1 when sticky sessions are on",
        );
        invalid(
            self.latency_ewma_alpha.is_finite()
                && self.latency_ewma_alpha > 0.0
                && self.latency_ewma_alpha <= 1.0,
            "latency_ewma_alpha",
            "must be in (0, 1]",
        );

        let mut seen = HashSet::new();
        for a in accounts {
            if !seen.insert(a.id.as_str()) {
                problems.push(ConfigProblem::DuplicateId(a.id.clone()));
            }
            if a.max_concurrency == Some(0) {
                problems.push(ConfigProblem::ZeroConcurrency(a.id.clone()));
            }
            if a.rpm_limit == Some(0) {
                problems.push(ConfigProblem::ZeroRpmLimit(a.id.clone()));
            }
            if let Some(models) = &a.allowed_models
                && (models.is_empty() || models.iter().any(|m| m.trim().is_empty()))
            {
                problems.push(ConfigProblem::EmptyModelList(a.id.clone()));
            }
        }
        problems
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }

    #[test]
    fn strategy_parses_the_seed_names_and_latency() {
        for st in Strategy::ALL {
            assert_eq!(st.as_str().parse::<Strategy>(), Ok(st));
        }
        assert_eq!(" Least_Used ".parse(), Ok(Strategy::LeastUsed));
        let err = "fastest".parse::<Strategy>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"fastest\""), "{msg}");
        for st in Strategy::ALL {
            assert!(msg.contains(st.as_str()), "{msg} lacks {st}");
        }
    }

    #[test]
    fn defaults_match_the_seed() {
        let cfg = PoolConfig::default();
        assert_eq!(cfg.strategy, Strategy::WeightedRoundRobin);
        assert!(cfg.breaker.enabled);
        assert_eq!(cfg.breaker.error_threshold, 5);
        assert_eq!(cfg.breaker.recovery_timeout_ms, 300_000);
        let s: AccountSettings = serde_json::from_str(r#"{"id":"primary"}"#).unwrap();
        assert_eq!(s, AccountSettings::new(id("primary")));
        assert!(cfg.problems(&[s]).is_empty());
    }

    #[test]
    fn problems_are_all_collected() {
        let cfg = PoolConfig {
            breaker: BreakerConfig {
                error_threshold: 0,
                ..BreakerConfig::default()
            },
            latency_ewma_alpha: 0.0,
            ..PoolConfig::default()
        };
        let mut dup = AccountSettings::new(id("a"));
        dup.max_concurrency = Some(0);
        let mut models = AccountSettings::new(id("b"));
        models.allowed_models = Some(vec![]);
        models.rpm_limit = Some(0);
        let problems = cfg.problems(&[AccountSettings::new(id("a")), dup, models]);
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems.contains(&ConfigProblem::DuplicateId(id("a"))));
        assert!(problems.contains(&ConfigProblem::ZeroConcurrency(id("a"))));
        assert!(problems.contains(&ConfigProblem::ZeroRpmLimit(id("b"))));
        assert!(problems.contains(&ConfigProblem::EmptyModelList(id("b"))));
    }
}
