//! Injected faults: which kinds exist, how often they fire, and the table of active ones.
//!
//! A chat fault fires on chat requests of its account (known from the bearer token); a
//! refresh fault on refreshes of its account (known from the refresh token or client id).
//! The table is checked on every request, so the no-fault case is a single atomic load.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 `ThrottlingException`, reason `USER_REQUEST_RATE_EXCEEDED`.
    Throttle,
    /// 429 `ThrottlingException`, reason `MONTHLY_REQUEST_COUNT`.
    MonthlyQuota,
    /// 402 `ServiceQuotaExceededException`, reason `MONTHLY_REQUEST_COUNT`.
    #[serde(rename = "quota_402")]
    Quota402,
    /// 403 `AccessDeniedException`, reason `TEMPORARILY_SUSPENDED`.
    Suspended,
    /// 403 `ExpiredTokenException`.
    ExpiredToken,
    /// 400 `ValidationException`, reason `INVALID_MODEL_ID`.
    InvalidModel,
    /// 500 `InternalServerException`, reason `MODEL_TEMPORARILY_UNAVAILABLE`.
    Overloaded,
    /// 503 `ServiceUnavailableException`.
    Unavailable,
    /// 200 and headers, then nothing for the fault's delay (default 30 s), then the reply.
    SlowFirstByte,
    /// A few events, then an `InternalServerException` exception frame.
    MidstreamException,
    /// A few events, then the connection is dropped inside the body.
    MidstreamReset,
    /// A few events, then a frame whose message CRC is wrong.
    BadCrc,
    /// Refreshes answer 400 `invalid_grant`.
    RefreshInvalidGrant,
    /// Refreshes answer 500.
    #[serde(rename = "refresh_5xx")]
    Refresh5xx,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Throttle,
        FaultKind::MonthlyQuota,
        FaultKind::Quota402,
        FaultKind::Suspended,
        FaultKind::ExpiredToken,
        FaultKind::InvalidModel,
        FaultKind::Overloaded,
        FaultKind::Unavailable,
        FaultKind::SlowFirstByte,
        FaultKind::MidstreamException,
        FaultKind::MidstreamReset,
        FaultKind::BadCrc,
        FaultKind::RefreshInvalidGrant,
        FaultKind::Refresh5xx,
    ];

    /// The name used in JSON and in `[[sim error=...]]`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::MonthlyQuota => "monthly_quota",
            FaultKind::Quota402 => "quota_402",
            FaultKind::Suspended => "suspended",
            FaultKind::ExpiredToken => "expired_token",
            FaultKind::InvalidModel => "invalid_model",
            FaultKind::Overloaded => "overloaded",
            FaultKind::Unavailable => "unavailable",
            FaultKind::SlowFirstByte => "slow_first_byte",
            FaultKind::MidstreamException => "midstream_exception",
            FaultKind::MidstreamReset => "midstream_reset",
            FaultKind::BadCrc => "bad_crc",
            FaultKind::RefreshInvalidGrant => "refresh_invalid_grant",
            FaultKind::Refresh5xx => "refresh_5xx",
        }
    }

    /// Whether the fault hits token refreshes rather than chat requests.
    pub const fn hits_refresh(self) -> bool {
        match self {
            FaultKind::RefreshInvalidGrant | FaultKind::Refresh5xx => true,
            FaultKind::Throttle
            | FaultKind::MonthlyQuota
            | FaultKind::Quota402
            | FaultKind::Suspended
            | FaultKind::ExpiredToken
            | FaultKind::InvalidModel
            | FaultKind::Overloaded
            | FaultKind::Unavailable
            | FaultKind::SlowFirstByte
            | FaultKind::MidstreamException
            | FaultKind::MidstreamReset
            | FaultKind::BadCrc => false,
        }
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind {0:?}")]
pub struct UnknownFaultKind(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFaultKind(s.to_owned()))
    }
}

/// How often an active fault fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultTrigger {
    /// On every matching request until faults are cleared.
    UntilCleared,
    /// On the next `n` matching requests, then it is gone.
    Count(u32),
    /// On each matching request with this probability (0.0–1.0).
    Probability(f64),
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// `sim-i`; `None` hits every account.
    pub account: Option<String>,
    pub kind: FaultKind,
    pub trigger: FaultTrigger,
    /// For `slow_first_byte`: how long the body stays silent (default 30 s).
    pub delay: Option<Duration>,
}

impl FaultSpec {
    /// A fault on one account, firing until cleared.
    pub fn new(account: impl Into<String>, kind: FaultKind) -> Self {
        FaultSpec {
            account: Some(account.into()),
            kind,
            trigger: FaultTrigger::UntilCleared,
            delay: None,
        }
    }

    /// A fault on every account, firing until cleared.
    pub fn every_account(kind: FaultKind) -> Self {
        FaultSpec {
            account: None,
            kind,
            trigger: FaultTrigger::UntilCleared,
            delay: None,
        }
    }

    /// Fire on the next `n` matching requests only.
    pub fn times(mut self, n: u32) -> Self {
        self.trigger = FaultTrigger::Count(n);
        self
    }

    /// Fire on each matching request with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.trigger = FaultTrigger::Probability(p);
        self
    }

    /// The silence of a `slow_first_byte` fault.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    fn applies_to(&self, account: &str, refresh: bool) -> bool {
        self.kind.hits_refresh() == refresh && self.account.as_deref().is_none_or(|a| a == account)
    }
}

/// The active faults of one simulator.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    active: Mutex<Vec<FaultSpec>>,
    /// Mirrors `active.len()` so requests skip the lock when nothing is injected.
    len: AtomicUsize,
}

impl FaultTable {
    pub(crate) fn inject(&self, spec: FaultSpec) {
        let mut active = self.active.lock();
        active.push(spec);
        self.len.store(active.len(), Ordering::Release);
    }

    pub(crate) fn clear(&self) {
        let mut active = self.active.lock();
        active.clear();
        self.len.store(0, Ordering::Release);
    }

    /// The first active fault for this account and request type that decides to fire now;
    /// counted faults are used up by firing.
    pub(crate) fn fire(&self, account: &str, refresh: bool) -> Option<FaultSpec> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut active = self.active.lock();
        let mut fired = None;
        for spec in active.iter_mut() {
            if !spec.applies_to(account, refresh) {
                continue;
            }
            let fires = match &mut spec.trigger {
                FaultTrigger::UntilCleared => true,
                FaultTrigger::Count(0) => false,
                FaultTrigger::Count(n) => {
                    *n -= 1;
                    true
                }
                FaultTrigger::Probability(p) => rand::random::<f64>() < *p,
            };
            if fires {
                fired = Some(spec.clone());
                break;
            }
        }
        active.retain(|s| s.trigger != FaultTrigger::Count(0));
        self.len.store(active.len(), Ordering::Release);
        fired
    }
}
