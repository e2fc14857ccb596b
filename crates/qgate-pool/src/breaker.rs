//! Per-account circuit breaker as a pure state machine, time passed in.
//!
//! Closed → Open after `error_threshold` *consecutive* account-attributable failures.
//! Open → (after the open period) eligible for exactly one probe; handing the probe out is
//! what moves it to HalfOpen, so reading never changes anything. The probe's success
//! closes the breaker and resets the open period; its failure reopens it with the period
//! doubled (capped). A probe that ends without a verdict (cancelled, throttled, ...) is
//! given back, and the next request may probe instead.
//!
//! Only the probe decides: outcomes of requests that were already in flight when the
//! breaker opened update the failure count but cannot close or re-extend it (the seed let
//! late errors push the open period out indefinitely).

use crate::config::BreakerConfig;
use serde::{Deserialize, Serialize};

/// Identifies one handed-out probe, so a stale probe (from before a reset or a remote
/// update) can never settle a later half-open episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        until_ms: u64,
    },
    HalfOpen {
        probe: ProbeId,
        eligible_since_ms: u64,
    },
}

/// The breaker's phase as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPhase {
    Closed,
    Open,
    /// The open period has elapsed: the next request is (or already is) the probe.
    HalfOpen,
}

impl BreakerPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerPhase::Closed => "closed",
            BreakerPhase::Open => "open",
            BreakerPhase::HalfOpen => "half_open",
        }
    }
}

/// Whether a request may use the account, as far as the breaker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Pass,
    Probe(ProbeId),
    Reject,
}

/// A phase change worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerChange {
    /// Closed → Open.
    Opened { until_ms: u64 },
    /// HalfOpen → Open: the probe failed.
    Reopened { until_ms: u64 },
    /// HalfOpen → Closed: the probe succeeded.
    Closed,
}

/// The breaker's persistent shape, for sharing between instances. A half-open breaker is
/// recorded as open-and-elapsed: probes are local to the instance that handed them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRecord {
    /// `Some(t)`: open until `t` (probe-eligible once `t` has passed).
    pub open_until_ms: Option<u64>,
    pub consecutive_failures: u32,
    /// Failed probes since the breaker last closed (the open period is base × 2^level).
    pub level: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Breaker {
    phase: Phase,
    consecutive_failures: u32,
    level: u32,
    opened_total: u64,
    next_probe: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            phase: Phase::Closed,
            consecutive_failures: 0,
            level: 0,
            opened_total: 0,
            next_probe: 0,
        }
    }
}

/// `base × 2^level`, capped, without overflow for any level.
pub(crate) fn doubled(base_ms: u64, level: u32, max_ms: u64) -> u64 {
    let factor = 1u64.checked_shl(level).unwrap_or(u64::MAX);
    base_ms.saturating_mul(factor).min(max_ms)
}

impl Breaker {
    pub fn phase_at(&self, now_ms: u64) -> BreakerPhase {
        match self.phase {
            Phase::Closed => BreakerPhase::Closed,
            Phase::Open { until_ms } if now_ms < until_ms => BreakerPhase::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerPhase::HalfOpen,
        }
    }

    /// When the current (or last elapsed) open period ends.
    pub fn open_until_ms(&self) -> Option<u64> {
        match self.phase {
            Phase::Closed => None,
            Phase::Open { until_ms } => Some(until_ms),
            Phase::HalfOpen {
                eligible_since_ms, ..
            } => Some(eligible_since_ms),
        }
    }

    pub fn probe_in_flight(&self) -> bool {
        matches!(self.phase, Phase::HalfOpen { .. })
    }

    /// The open period the breaker uses (or would use) now.
    pub fn timeout_ms(&self, cfg: &BreakerConfig) -> u64 {
        doubled(
            cfg.recovery_timeout_ms,
            self.level,
            cfg.max_recovery_timeout_ms,
        )
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub fn opened_total(&self) -> u64 {
        self.opened_total
    }

    /// Lock-free summary for selection: 0 = closed, `t` = open until `t` (a probe may be
    /// taken from then on), `u64::MAX` = a probe is out.
    pub fn gate(&self) -> u64 {
        match self.phase {
            Phase::Closed => 0,
            // u64::MAX is reserved for "probe out".
            Phase::Open { until_ms } => until_ms.min(u64::MAX - 1),
            Phase::HalfOpen { .. } => u64::MAX,
        }
    }

    pub fn admit(&mut self, now_ms: u64) -> Admission {
        match self.phase {
            Phase::Closed => Admission::Pass,
            Phase::Open { until_ms } if now_ms >= until_ms => {
                let probe = ProbeId(self.next_probe);
                self.next_probe += 1;
                self.phase = Phase::HalfOpen {
                    probe,
                    eligible_since_ms: until_ms,
                };
                Admission::Probe(probe)
            }
            Phase::Open { .. } | Phase::HalfOpen { .. } => Admission::Reject,
        }
    }

    fn is_current_probe(&self, probe: Option<ProbeId>) -> bool {
        matches!((self.phase, probe), (Phase::HalfOpen { probe: p, .. }, Some(q)) if p == q)
    }

    pub fn record_success(&mut self, probe: Option<ProbeId>) -> Option<BreakerChange> {
        self.consecutive_failures = 0;
        if self.is_current_probe(probe) {
            self.phase = Phase::Closed;
            self.level = 0;
            return Some(BreakerChange::Closed);
        }
        None
    }

    pub fn record_failure(
        &mut self,
        now_ms: u64,
        cfg: &BreakerConfig,
        probe: Option<ProbeId>,
    ) -> Option<BreakerChange> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.is_current_probe(probe) {
            self.level = self.level.saturating_add(1);
            let until_ms = now_ms.saturating_add(self.timeout_ms(cfg));
            self.phase = Phase::Open { until_ms };
            self.opened_total += 1;
            return Some(BreakerChange::Reopened { until_ms });
        }
        let trips = cfg.enabled && self.consecutive_failures >= cfg.error_threshold;
        if matches!(self.phase, Phase::Closed) && trips {
            self.level = 0;
            let until_ms = now_ms.saturating_add(self.timeout_ms(cfg)).max(1);
            self.phase = Phase::Open { until_ms };
            self.opened_total += 1;
            return Some(BreakerChange::Opened { until_ms });
        }
        None
    }

    /// The probe ended without saying anything about the account: let another request probe.
    pub fn release_probe(&mut self, probe: ProbeId) {
        if let Phase::HalfOpen {
            probe: p,
            eligible_since_ms,
        } = self.phase
            && p == probe
        {
            self.phase = Phase::Open {
                until_ms: eligible_since_ms,
            };
        }
    }

    /// Admin reset: closed, counters zeroed, open period back to base. Returns whether the
    /// phase changed.
    pub fn reset(&mut self) -> bool {
        let was_closed = matches!(self.phase, Phase::Closed);
        self.phase = Phase::Closed;
        self.consecutive_failures = 0;
        self.level = 0;
        !was_closed
    }

    pub fn record(&self) -> BreakerRecord {
        BreakerRecord {
            open_until_ms: self.open_until_ms(),
            consecutive_failures: self.consecutive_failures,
            level: self.level,
        }
    }

    /// Adopt a breaker decided elsewhere. A local probe in flight is forgotten (its
    /// report will not match any more).
    pub fn adopt(&mut self, record: &BreakerRecord) {
        self.phase = match record.open_until_ms {
            None => Phase::Closed,
            Some(until_ms) => Phase::Open {
                until_ms: until_ms.max(1),
            },
        };
        self.consecutive_failures = record.consecutive_failures;
        self.level = record.level;
    }
}

#[cfg(test)]
mod tests;
