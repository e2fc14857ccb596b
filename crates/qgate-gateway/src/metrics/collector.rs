//! Scrape-time gauges mirroring live pool and token state (the seed's per-account
//! availability and count gauges, our state and routable-pool gauges, and token refresh
//! counts kept by each token manager). Computed from the state itself, so a scrape never
//! sees a stale value.

use super::{AccountLabel, AccountStatus, RetiredRefreshes};
use crate::dispatch::now_ms;
use crate::state::Runtime;
use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    account_id: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    account_id: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateOnly {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusOnly {
    status: String,
}

/// Reads the current runtime on every scrape.
#[derive(Debug)]
pub struct StateCollector {
    runtime: Arc<ArcSwap<Runtime>>,
    retired: RetiredRefreshes,
}

impl StateCollector {
    /// `retired` holds refresh counts of token managers no longer in the runtime
    /// ([`super::Metrics::retired_refreshes`]).
    pub fn new(runtime: Arc<ArcSwap<Runtime>>, retired: RetiredRefreshes) -> Self {
        StateCollector { runtime, retired }
    }
}

pub(super) fn emit<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &M,
) -> Result<(), std::fmt::Error> {
    let me = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(me)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rt = self.runtime.load_full();
        let now = now_ms();
        let available = Family::<AccountLabel, Gauge>::default();
        let req = Family::<AccountLabel, Gauge>::default();
        let err = Family::<AccountLabel, Gauge>::default();
        let ok = Family::<AccountLabel, Gauge>::default();
        let state = Family::<StateLabels, Gauge>::default();
        let refresh = Family::<AccountStatus, Counter>::default();
        let breaker = Family::<PhaseLabels, Gauge>::default();
        let expiry = Family::<AccountLabel, Gauge>::default();
        for s in rt.pool.snapshot(now) {
            breaker
                .get_or_create(&PhaseLabels {
                    account_id: s.id.to_string(),
                    phase: s.breaker.phase.as_str().to_owned(),
                })
                .set(1);
            let l = AccountLabel {
                account_id: s.id.shared(),
            };
            available.get_or_create(&l).set(i64::from(s.available));
            req.get_or_create(&l).set(s.request_count as i64);
            err.get_or_create(&l).set(s.error_count as i64);
            ok.get_or_create(&l).set(s.success_count as i64);
            state
                .get_or_create(&StateLabels {
                    account_id: s.id.to_string(),
                    state: s.state.kind().as_str().to_owned(),
                })
                .set(1);
        }
        let add_refreshes = |account: &str, ok: u64, failed: u64| {
            for (status, n) in [("success", ok), ("error", failed)] {
                refresh
                    .get_or_create(&AccountStatus {
                        account_id: Arc::from(account),
                        status,
                    })
                    .inc_by(n);
            }
        };
        for (account, (ok, failed)) in self.retired.lock().iter() {
            add_refreshes(account, *ok, *failed);
        }
        let now_s = jiff::Timestamp::now().as_second();
        for (id, account) in &rt.accounts {
            let stats = account.tokens.stats();
            add_refreshes(id.as_str(), stats.ok, stats.failed);
            if let Some(at) = account.tokens.expires_at() {
                expiry
                    .get_or_create(&AccountLabel {
                        account_id: id.shared(),
                    })
                    .set(at.as_second() - now_s);
            }
        }
        let health = rt.pool.health(now);
        let routable = Gauge::<i64>::default();
        routable.set(health.routable as i64);
        let by_state = Family::<StateOnly, Gauge>::default();
        for (kind, n) in &health.by_state {
            by_state
                .get_or_create(&StateOnly {
                    state: kind.as_str().to_owned(),
                })
                .set(*n as i64);
        }
        let status = Family::<StatusOnly, Gauge>::default();
        status
            .get_or_create(&StatusOnly {
                status: crate::health_check::PoolStatus::of(&health)
                    .as_str()
                    .to_owned(),
            })
            .set(1);

        emit(
            &mut encoder,
            "amazonq_account_available",
            "1 when the account can take requests now",
            &available,
        )?;
        emit(
            &mut encoder,
            "amazonq_account_request_count",
            "Requests sent through the account",
            &req,
        )?;
        emit(
            &mut encoder,
            "amazonq_account_error_count",
            "Failed attempts on the account",
            &err,
        )?;
        emit(
            &mut encoder,
            "amazonq_account_success_count",
            "Successful requests on the account",
            &ok,
        )?;
        emit(
            &mut encoder,
            "amazonq_token_refresh",
            "Token refreshes per account by status",
            &refresh,
        )?;
        emit(
            &mut encoder,
            "qgate_account_state",
            "1 for the account's current state",
            &state,
        )?;
        emit(
            &mut encoder,
            "qgate_pool_routable_accounts",
            "Accounts that can take a request now",
            &routable,
        )?;
        emit(
            &mut encoder,
            "qgate_account_breaker",
            "1 for the account's current circuit breaker phase (closed|open|half_open)",
            &breaker,
        )?;
        emit(
            &mut encoder,
            "qgate_account_token_expiry_seconds",
            "Seconds until the account's access token expires (negative: expired)",
            &expiry,
        )?;
        emit(
            &mut encoder,
            "qgate_pool_accounts",
            "Accounts per state",
            &by_state,
        )?;
        emit(
            &mut encoder,
            "qgate_pool_status",
            "1 for the pool's current status (healthy|degraded|unhealthy)",
            &status,
        )?;
        Ok(())
    }
}
