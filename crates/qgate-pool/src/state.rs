//! Account states and the transitions between them.
//!
//! An account is in exactly one [`AccountState`]; the breaker and per-model marks are
//! tracked beside it. Time-limited states (throttled, quota) are stored with their end
//! time and *evaluated* at read time: a throttle whose time has passed reads as `Active`
//! without anyone having to write that down. Every change worth a log line, a metric, a
//! webhook or a save to disk is returned as a [`Transition`].

use crate::id::AccountId;
use serde::{Deserialize, Serialize};

/// Where an account stands, with why and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AccountState {
    Active,
    /// Switched off in the configuration or by an admin.
    Disabled {
        reason: String,
    },
    /// 429: cooling down until `until_ms`.
    Throttled {
        until_ms: u64,
        reason: String,
    },
    /// Quota used up until `until_ms` (the upstream reset, or the 1st of next month).
    QuotaExhausted {
        until_ms: u64,
        reason: String,
    },
    /// Locked by the provider; out until an admin resets it.
    Suspended {
        since_ms: u64,
        reason: String,
    },
    /// The refresh token was rejected; out until new credentials or an admin reset.
    RefreshDenied {
        since_ms: u64,
        reason: String,
    },
}

/// The name of a state (or breaker phase, or per-model mark) in transitions and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Active,
    Disabled,
    Throttled,
    QuotaExhausted,
    Suspended,
    RefreshDenied,
    ModelUnavailable,
    BreakerClosed,
    BreakerOpen,
    BreakerHalfOpen,
}

impl StateKind {
    /// The account-level kinds, i.e. what [`AccountState::kind`] can return.
    pub const ACCOUNT: [StateKind; 6] = [
        StateKind::Active,
        StateKind::Disabled,
        StateKind::Throttled,
        StateKind::QuotaExhausted,
        StateKind::Suspended,
        StateKind::RefreshDenied,
    ];

    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Active => "active",
            StateKind::Disabled => "disabled",
            StateKind::Throttled => "throttled",
            StateKind::QuotaExhausted => "quota_exhausted",
            StateKind::Suspended => "suspended",
            StateKind::RefreshDenied => "refresh_denied",
            StateKind::ModelUnavailable => "model_unavailable",
            StateKind::BreakerClosed => "breaker_closed",
            StateKind::BreakerOpen => "breaker_open",
            StateKind::BreakerHalfOpen => "breaker_half_open",
        }
    }

    /// States that must survive a restart (see `Pool::export_persistent`).
    pub fn is_persistent(self) -> bool {
        match self {
            StateKind::Disabled
            | StateKind::QuotaExhausted
            | StateKind::Suspended
            | StateKind::RefreshDenied => true,
            StateKind::Active
            | StateKind::Throttled
            | StateKind::ModelUnavailable
            | StateKind::BreakerClosed
            | StateKind::BreakerOpen
            | StateKind::BreakerHalfOpen => false,
        }
    }
}

/// What returned an account to `Active`. Another instance's older decision is undone
/// only by a lift of its kind: an admin reset lifts anything, a successful probe only a
/// throttle (a cheap probe cannot disprove quota or a suspension), a successful refresh
/// only a refresh denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lift {
    Reset,
    Probe,
    Refresh,
}

impl Lift {
    /// Whether this lift ends `state`.
    pub fn lifts(self, state: &AccountState) -> bool {
        match self {
            Lift::Reset => true,
            Lift::Probe => matches!(state, AccountState::Throttled { .. }),
            Lift::Refresh => matches!(state, AccountState::RefreshDenied { .. }),
        }
    }
}

impl AccountState {
    pub fn kind(&self) -> StateKind {
        match self {
            AccountState::Active => StateKind::Active,
            AccountState::Disabled { .. } => StateKind::Disabled,
            AccountState::Throttled { .. } => StateKind::Throttled,
            AccountState::QuotaExhausted { .. } => StateKind::QuotaExhausted,
            AccountState::Suspended { .. } => StateKind::Suspended,
            AccountState::RefreshDenied { .. } => StateKind::RefreshDenied,
        }
    }

    pub fn until_ms(&self) -> Option<u64> {
        match self {
            AccountState::Throttled { until_ms, .. }
            | AccountState::QuotaExhausted { until_ms, .. } => Some(*until_ms),
            AccountState::Active
            | AccountState::Disabled { .. }
            | AccountState::Suspended { .. }
            | AccountState::RefreshDenied { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            AccountState::Active => None,
            AccountState::Disabled { reason }
            | AccountState::Throttled { reason, .. }
            | AccountState::QuotaExhausted { reason, .. }
            | AccountState::Suspended { reason, .. }
            | AccountState::RefreshDenied { reason, .. } => Some(reason),
        }
    }

    /// Whether a time-limited state is still in force at `now_ms`.
    pub(crate) fn in_force(&self, now_ms: u64) -> bool {
        match self.until_ms() {
            Some(until) => now_ms < until,
            None => !matches!(self, AccountState::Active),
        }
    }

    /// The kind as of `now_ms`: an elapsed throttle or quota reads as `Active`.
    pub(crate) fn kind_at(&self, now_ms: u64) -> StateKind {
        if self.in_force(now_ms) {
            self.kind()
        } else {
            StateKind::Active
        }
    }

    /// How hard a state holds: a weaker report never overrides a stronger state in force
    /// (a late 429 must not lift a suspension).
    pub(crate) fn severity(&self) -> u8 {
        match self {
            AccountState::Active => 0,
            AccountState::Throttled { .. } => 1,
            AccountState::QuotaExhausted { .. } => 2,
            AccountState::RefreshDenied { .. } => 3,
            AccountState::Suspended { .. } => 4,
            AccountState::Disabled { .. } => 5,
        }
    }

    /// Lock-free summary for selection: 0 = usable, `t` = blocked until `t`,
    /// `u64::MAX` = blocked until someone acts.
    pub(crate) fn gate(&self) -> u64 {
        match self {
            AccountState::Active => 0,
            // u64::MAX means "until someone acts"; an absurd retry-after stays timed.
            AccountState::Throttled { until_ms, .. }
            | AccountState::QuotaExhausted { until_ms, .. } => (*until_ms).min(u64::MAX - 1),
            AccountState::Disabled { .. }
            | AccountState::Suspended { .. }
            | AccountState::RefreshDenied { .. } => u64::MAX,
        }
    }
}

/// One change of an account's state, breaker phase or per-model availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub account: AccountId,
    pub from: StateKind,
    pub to: StateKind,
    /// When the new state ends by itself, if it does.
    pub until_ms: Option<u64>,
    pub reason: String,
    /// Set for `ModelUnavailable` transitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Transition {
    /// Counts toward `amazonq_circuit_breaker_opened_total` (first opening and reopening).
    pub fn is_breaker_opened(&self) -> bool {
        self.to == StateKind::BreakerOpen
    }

    /// The account's persistent state changed: time to save `export_persistent()`.
    pub fn affects_persistence(&self) -> bool {
        self.from.is_persistent() || self.to.is_persistent()
    }
}
