//! What happened to one attempt, as classified by the gateway. The pool reacts only to
//! these values, never to raw HTTP statuses, so the question "does this failure count
//! against the account?" is answered in exactly one place ([`ErrorClass::is_breaker_failure`]).

use serde::{Deserialize, Serialize};

/// The classified result of one upstream attempt on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The stream completed; `ttfe_ms` is the time to the first upstream event.
    Success { ttfe_ms: u64 },
    /// The request's own fault: counts as a request, no effect on health.
    ClientError,
    /// The client went away: no effect on health.
    Cancelled,
    /// The access token was rejected even after a refresh: a breaker failure.
    Token,
    /// 429 for this account: the account cools down; not a breaker failure.
    Throttled { retry_after_ms: Option<u64> },
    /// Monthly (or daily) quota used up; out until the upstream reset time.
    QuotaExhausted { reset_at_ms: Option<u64> },
    /// 403 `TEMPORARILY_SUSPENDED`: out until an admin resets the account.
    Suspended,
    /// Token refresh answered `invalid_grant`: out until new credentials or a reset.
    RefreshDenied,
    /// Token refresh failed transiently: a breaker failure.
    RefreshFailed,
    /// `INVALID_MODEL_ID`: this account may not use `model` for a while.
    ModelUnavailable { model: String },
    /// The model is overloaded for everyone: soft, short de-preference only.
    Overloaded { model: String },
    /// 5xx, network, timeout, bad frames, mid-stream failure: a breaker failure.
    Transient,
}

/// The kind of a failed attempt, for counters and the admin view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Client,
    Token,
    Throttled,
    QuotaExhausted,
    Suspended,
    RefreshDenied,
    RefreshFailed,
    ModelUnavailable,
    Overloaded,
    Transient,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::Client,
        ErrorClass::Token,
        ErrorClass::Throttled,
        ErrorClass::QuotaExhausted,
        ErrorClass::Suspended,
        ErrorClass::RefreshDenied,
        ErrorClass::RefreshFailed,
        ErrorClass::ModelUnavailable,
        ErrorClass::Overloaded,
        ErrorClass::Transient,
    ];

    /// Stable label for metrics (`error_type`) and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Client => "client",
            ErrorClass::Token => "token",
            ErrorClass::Throttled => "throttled",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::Suspended => "suspended",
            ErrorClass::RefreshDenied => "refresh_denied",
            ErrorClass::RefreshFailed => "refresh_failed",
            ErrorClass::ModelUnavailable => "model_unavailable",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Transient => "transient",
        }
    }

    /// Only failures that say something about *this account's* ability to serve feed the
    /// breaker. Client errors and global overload never do (peers that counted them
    /// emptied healthy pools), and throttle/quota/suspension have states of their own.
    pub fn is_breaker_failure(self) -> bool {
        match self {
            ErrorClass::Token | ErrorClass::RefreshFailed | ErrorClass::Transient => true,
            ErrorClass::Client
            | ErrorClass::Throttled
            | ErrorClass::QuotaExhausted
            | ErrorClass::Suspended
            | ErrorClass::RefreshDenied
            | ErrorClass::ModelUnavailable
            | ErrorClass::Overloaded => false,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            ErrorClass::Client => 0,
            ErrorClass::Token => 1,
            ErrorClass::Throttled => 2,
            ErrorClass::QuotaExhausted => 3,
            ErrorClass::Suspended => 4,
            ErrorClass::RefreshDenied => 5,
            ErrorClass::RefreshFailed => 6,
            ErrorClass::ModelUnavailable => 7,
            ErrorClass::Overloaded => 8,
            ErrorClass::Transient => 9,
        }
    }
}

impl Outcome {
    /// `None` for outcomes that are not failed attempts (success, cancellation).
    pub fn error_class(&self) -> Option<ErrorClass> {
        match self {
            Outcome::Success { .. } | Outcome::Cancelled => None,
            Outcome::ClientError => Some(ErrorClass::Client),
            Outcome::Token => Some(ErrorClass::Token),
            Outcome::Throttled { .. } => Some(ErrorClass::Throttled),
            Outcome::QuotaExhausted { .. } => Some(ErrorClass::QuotaExhausted),
            Outcome::Suspended => Some(ErrorClass::Suspended),
            Outcome::RefreshDenied => Some(ErrorClass::RefreshDenied),
            Outcome::RefreshFailed => Some(ErrorClass::RefreshFailed),
            Outcome::ModelUnavailable { .. } => Some(ErrorClass::ModelUnavailable),
            Outcome::Overloaded { .. } => Some(ErrorClass::Overloaded),
            Outcome::Transient => Some(ErrorClass::Transient),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_indices_are_dense_and_distinct() {
        for (i, class) in ErrorClass::ALL.into_iter().enumerate() {
            assert_eq!(class.index(), i, "{class:?}");
        }
    }

    #[test]
    fn only_account_attributable_failures_feed_the_breaker() {
        let feeding: Vec<_> = ErrorClass::ALL
            .into_iter()
            .filter(|c| c.is_breaker_failure())
            .collect();
        assert_eq!(
            feeding,
            [
                ErrorClass::Token,
                ErrorClass::RefreshFailed,
                ErrorClass::Transient
            ]
        );
    }
}
