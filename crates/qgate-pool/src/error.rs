//! The pool's two error boundaries: building or administering a pool ([`PoolError`]) and
//! finding no account for a request ([`NoAccount`], which carries the hint the gateway
//! turns into a status code and `Retry-After`).

use crate::config::ConfigProblem;

/// Building a pool or addressing an account in it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("invalid pool configuration: {}", join(.problems))]
    InvalidConfig { problems: Vec<ConfigProblem> },
    #[error("no account with id {id:?} in the pool")]
    UnknownAccount { id: String },
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why `select` found no account, with the soonest recovery (ms from now) where known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoAccount {
    /// Every candidate is throttled or out of quota: answer 429 with this retry hint.
    #[error("every account is throttled or out of quota (retry in {retry_after_ms} ms)")]
    AllThrottled { retry_after_ms: u64 },
    /// Some candidate is only at its concurrency or RPM cap: worth waiting briefly.
    #[error("every account is at its concurrency or rate limit")]
    AllBusy,
    /// Breakers open, suspended, disabled, ...: 529.
    #[error("no account is available")]
    Unavailable { retry_after_ms: Option<u64> },
    /// No account allows or currently supports the requested model.
    #[error("no account supports the requested model")]
    ModelNotSupported,
    /// Every account that could serve this model was already tried for this request.
    #[error("every account was already tried for this request")]
    AllExcluded,
    /// The pool has no accounts at all.
    #[error("no accounts are configured")]
    Empty,
}
