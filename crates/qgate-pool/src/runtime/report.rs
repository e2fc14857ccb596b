//! How one classified outcome changes an account: counters, latency, state, breaker,
//! per-model marks and overload backoff, returning the transitions it caused.

use super::{AccountCore, AccountRuntime, MAX_MODEL_MARKS, ModelMark};
use crate::breaker::{ProbeId, doubled};
use crate::calendar::first_of_next_month_ms;
use crate::config::PoolConfig;
use crate::outcome::{ErrorClass, Outcome};
use crate::state::{AccountState, StateKind, Transition};
use std::sync::atomic::Ordering::Relaxed;

/// Long model names (they come from the request path) are cut in reasons and marks.
const MAX_MODEL_NAME: usize = 128;

fn bounded_model(model: &str) -> String {
    match model.char_indices().nth(MAX_MODEL_NAME) {
        Some((cut, _)) => model[..cut].to_owned(),
        None => model.to_owned(),
    }
}

impl AccountRuntime {
    fn count(&self, outcome: &Outcome, now_ms: u64) {
        if let Some(class) = outcome.error_class() {
            self.errors.fetch_add(1, Relaxed);
            self.errors_by_class[class.index()].fetch_add(1, Relaxed);
            self.last_error_ms.fetch_max(now_ms, Relaxed);
        } else if matches!(outcome, Outcome::Success { .. }) {
            self.successes.fetch_add(1, Relaxed);
            self.last_success_ms.fetch_max(now_ms, Relaxed);
        } else {
            self.cancelled.fetch_add(1, Relaxed);
        }
    }

    /// Apply one outcome. `probe` is set when the reporting lease carried the breaker's
    /// half-open probe.
    pub(crate) fn apply_outcome(
        &self,
        outcome: &Outcome,
        probe: Option<ProbeId>,
        cfg: &PoolConfig,
        now_ms: u64,
    ) -> Vec<Transition> {
        self.count(outcome, now_ms);
        let mut core = self.core.lock();
        // Outcomes never change enablement, so compare the health states themselves: a
        // suspension reported for an admin-disabled account is still worth a transition.
        let before = core.health.kind_at(now_ms);
        let class = outcome.error_class();
        if class.is_some() {
            core.last_error_class = class;
        }
        let cause = class.map_or("success", ErrorClass::as_str);
        let mut out = Vec::new();
        let mut breaker_change = None;
        let mut verdict_free = true;
        match outcome {
            Outcome::Success { ttfe_ms } => {
                verdict_free = false;
                core.record_latency(*ttfe_ms, cfg.latency_ewma_alpha);
                if !core.health.in_force(now_ms) {
                    core.throttle_level = 0;
                }
                core.overload_level = 0;
                breaker_change = core.breaker.record_success(probe);
            }
            Outcome::Token | Outcome::RefreshFailed | Outcome::Transient => {
                verdict_free = false;
                breaker_change = core.breaker.record_failure(now_ms, &cfg.breaker, probe);
            }
            Outcome::ClientError | Outcome::Cancelled => {}
            Outcome::Throttled { retry_after_ms } => core.throttle(now_ms, *retry_after_ms, cfg),
            Outcome::QuotaExhausted { reset_at_ms } => core.exhaust_quota(now_ms, *reset_at_ms),
            Outcome::Suspended => core.raise(
                AccountState::Suspended {
                    since_ms: now_ms,
                    reason: "upstream reports the account suspended".to_owned(),
                },
                now_ms,
            ),
            Outcome::RefreshDenied => core.raise(
                AccountState::RefreshDenied {
                    since_ms: now_ms,
                    reason: "token refresh denied (invalid_grant); needs new credentials"
                        .to_owned(),
                },
                now_ms,
            ),
            Outcome::ModelUnavailable { model } => {
                let until_ms = now_ms.saturating_add(cfg.model_unavailable_ttl_ms);
                let model = bounded_model(model);
                if core.mark_model(&model, until_ms, now_ms) {
                    let mut t = self.transition(
                        StateKind::Active,
                        StateKind::ModelUnavailable,
                        Some(until_ms),
                        format!("upstream refused model {model} for this account"),
                    );
                    t.model = Some(model);
                    out.push(t);
                }
            }
            Outcome::Overloaded { .. } => core.overload(now_ms, cfg),
        }
        // Outcomes that say nothing about the account's health give a probe back, so
        // the next request can probe instead of the breaker staying half-open forever.
        if verdict_free && let Some(probe) = probe {
            core.breaker.release_probe(probe);
        }

        let after = core.health.kind_at(now_ms);
        if after != before {
            let reason = core.health.reason().unwrap_or("recovered").to_owned();
            let until = core.health.until_ms();
            out.insert(0, self.transition(before, after, until, reason));
        }
        if let Some(change) = breaker_change {
            out.push(self.breaker_transition(change, &core, cause));
        }
        self.sync_gates(&core);
        out
    }
}

impl AccountCore {
    fn record_latency(&mut self, ttfe_ms: u64, alpha: f64) {
        let sample = ttfe_ms as f64;
        self.ttfe_ewma_ms = Some(match self.ttfe_ewma_ms {
            None => sample,
            Some(prev) => alpha * sample + (1.0 - alpha) * prev,
        });
    }

    /// Enter `state` unless a stronger state is in force; a repeated sticky state keeps
    /// its original `since`.
    pub(super) fn raise(&mut self, state: AccountState, now_ms: u64) {
        if self.health.in_force(now_ms) {
            if self.health.severity() > state.severity() {
                return;
            }
            let sticky = matches!(
                self.health,
                AccountState::Suspended { .. } | AccountState::RefreshDenied { .. }
            );
            if sticky && self.health.kind() == state.kind() {
                return;
            }
        }
        self.set_health(state, now_ms);
    }

    fn throttle(&mut self, now_ms: u64, retry_after_ms: Option<u64>, cfg: &PoolConfig) {
        if self.health.in_force(now_ms) {
            if let AccountState::Throttled { until_ms, .. } = &mut self.health {
                // The other in-flight requests of the same burst answer 429 too; they
                // must not escalate the cooldown once each. Only a longer explicit
                // retry-after extends it.
                if let Some(ra) = retry_after_ms {
                    *until_ms = (*until_ms).max(now_ms.saturating_add(ra));
                }
            }
            // Any other state in force is at least as strong as a throttle.
            return;
        }
        let level = self.throttle_level;
        self.throttle_level = level.saturating_add(1);
        let (period, reason) = match retry_after_ms {
            Some(ra) => (ra, format!("upstream 429; retry-after {ra} ms")),
            None => {
                let period = doubled(cfg.throttle_base_ms, level, cfg.throttle_max_ms);
                let reason = format!("upstream 429; cooldown {period} ms (repeat {})", level + 1);
                (period, reason)
            }
        };
        self.set_health(
            AccountState::Throttled {
                until_ms: now_ms.saturating_add(period),
                reason,
            },
            now_ms,
        );
    }

    fn exhaust_quota(&mut self, now_ms: u64, reset_at_ms: Option<u64>) {
        let state = match reset_at_ms {
            Some(reset) if reset > now_ms => AccountState::QuotaExhausted {
                until_ms: reset,
                reason: "quota exhausted; upstream reset time".to_owned(),
            },
            Some(_) | None => AccountState::QuotaExhausted {
                until_ms: first_of_next_month_ms(now_ms),
                reason: "quota exhausted; assumed to reset on the 1st of next month (UTC)"
                    .to_owned(),
            },
        };
        self.raise(state, now_ms);
    }

    /// Returns whether the mark is new (the model was available until now).
    fn mark_model(&mut self, model: &str, until_ms: u64, now_ms: u64) -> bool {
        self.model_marks.retain(|m| now_ms < m.until_ms);
        if let Some(mark) = self.model_marks.iter_mut().find(|m| m.model == model) {
            mark.until_ms = mark.until_ms.max(until_ms);
            return false;
        }
        if self.model_marks.len() >= MAX_MODEL_MARKS
            && let Some(soonest) = self
                .model_marks
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.until_ms)
                .map(|(i, _)| i)
        {
            self.model_marks.swap_remove(soonest);
        }
        self.model_marks.push(ModelMark {
            model: model.to_owned(),
            until_ms,
        });
        true
    }

    fn overload(&mut self, now_ms: u64, cfg: &PoolConfig) {
        if now_ms < self.overload_until_ms {
            return;
        }
        let period = doubled(
            cfg.overload_backoff_base_ms,
            self.overload_level,
            cfg.overload_backoff_max_ms,
        );
        self.overload_level = self.overload_level.saturating_add(1);
        self.overload_until_ms = now_ms.saturating_add(period);
    }
}
