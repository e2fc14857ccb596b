//! `Pool`: one immutable arrangement of accounts (settings, tiers, strategy state) over
//! per-account runtimes that outlive it. The gateway keeps a pool in an `Arc`/`ArcSwap`
//! and, on config reload, swaps in `old.rebuild(..)`, which adopts the runtimes (counters,
//! states, breakers, in-flight counts) and the sticky map of every id it keeps.
//!
//! Locking: selection takes no pool-wide lock. Strategy state is an atomic cursor (round
//! robin, weighted round robin) or nothing at all (least used, random, latency); a
//! per-account mutex is touched only for probes, per-model marks and RPM accounting.

use crate::config::{AccountSettings, PoolConfig, Strategy};
use crate::error::{NoAccount, PoolError};
use crate::id::AccountId;
use crate::lease::Lease;
use crate::outcome::Outcome;
use crate::runtime::AccountRuntime;
use crate::select::{Ctx, SelectRequest};
use crate::state::Transition;
use crate::sticky::StickyMap;
use crate::strategy::Picker;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

mod admin;

pub(crate) struct Slot {
    pub settings: AccountSettings,
    pub runtime: Arc<AccountRuntime>,
}

impl Slot {
    pub fn allows(&self, model: &str) -> bool {
        self.settings
            .allowed_models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == model))
    }
}

/// Accounts of one priority, in configured order, with the strategy's state for them.
pub(crate) struct Tier {
    pub members: Box<[usize]>,
    /// `members`' runtimes, densely, for strategies that scan the whole tier.
    pub runtimes: Box<[Arc<AccountRuntime>]>,
    pub picker: Picker,
}

pub struct Pool {
    pub(crate) cfg: PoolConfig,
    pub(crate) slots: Box<[Slot]>,
    index: HashMap<AccountId, usize>,
    tiers: Box<[Tier]>,
    sticky: Option<Arc<StickyMap>>,
}

/// Whom an outcome is about: the lease that ran the attempt (preferred: it carries the
/// probe permit and settles the lease) or just an account id (e.g. a background token
/// refresh that was denied).
#[derive(Debug)]
pub enum ReportTarget<'a> {
    Lease(Lease),
    LeaseRef(&'a Lease),
    Account(&'a str),
}

impl From<Lease> for ReportTarget<'_> {
    fn from(lease: Lease) -> Self {
        ReportTarget::Lease(lease)
    }
}

impl<'a> From<&'a Lease> for ReportTarget<'a> {
    fn from(lease: &'a Lease) -> Self {
        ReportTarget::LeaseRef(lease)
    }
}

impl<'a> From<&'a str> for ReportTarget<'a> {
    fn from(id: &'a str) -> Self {
        ReportTarget::Account(id)
    }
}

impl<'a> From<&'a AccountId> for ReportTarget<'a> {
    fn from(id: &'a AccountId) -> Self {
        ReportTarget::Account(id.as_str())
    }
}

impl Pool {
    /// A pool over `accounts` (in this order). Every configuration problem is reported
    /// at once.
    pub fn new(cfg: PoolConfig, accounts: Vec<AccountSettings>) -> Result<Pool, PoolError> {
        Pool::build(cfg, accounts, |_| None, None)
    }

    /// A pool with new settings that keeps the runtime state (counters, states, breakers,
    /// in-flight, sticky bindings) of every id that remains.
    pub fn rebuild(
        &self,
        cfg: PoolConfig,
        accounts: Vec<AccountSettings>,
    ) -> Result<Pool, PoolError> {
        let sticky = self.sticky.clone();
        Pool::build(
            cfg,
            accounts,
            |id| self.index.get(id).map(|&i| self.slots[i].runtime.clone()),
            sticky,
        )
    }

    fn build(
        cfg: PoolConfig,
        accounts: Vec<AccountSettings>,
        existing: impl Fn(&AccountId) -> Option<Arc<AccountRuntime>>,
        sticky: Option<Arc<StickyMap>>,
    ) -> Result<Pool, PoolError> {
        let problems = cfg.problems(&accounts);
        if !problems.is_empty() {
            return Err(PoolError::InvalidConfig { problems });
        }
        let slots: Box<[Slot]> = accounts
            .into_iter()
            .map(|settings| {
                let runtime = existing(&settings.id).unwrap_or_else(|| {
                    Arc::new(AccountRuntime::new(settings.id.clone(), settings.enabled))
                });
                runtime.set_config_enabled(settings.enabled);
                Slot { settings, runtime }
            })
            .collect();
        let index = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.settings.id.clone(), i))
            .collect();

        let mut by_priority: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, slot) in slots.iter().enumerate() {
            by_priority
                .entry(slot.settings.priority)
                .or_default()
                .push(i);
        }
        let tiers = by_priority
            .into_values()
            .map(|members| {
                let weights: Vec<u32> = members.iter().map(|&i| slots[i].settings.weight).collect();
                let runtimes: Box<[Arc<AccountRuntime>]> =
                    members.iter().map(|&i| slots[i].runtime.clone()).collect();
                Tier {
                    picker: Picker::new(cfg.strategy, &weights, &runtimes),
                    runtimes,
                    members: members.into_boxed_slice(),
                }
            })
            .collect();

        let sticky = cfg.sticky_ttl_ms.map(|_| match sticky {
            Some(map) if map.capacity() == cfg.sticky_max_sessions => map,
            Some(_) | None => Arc::new(StickyMap::new(cfg.sticky_max_sessions)),
        });
        Ok(Pool {
            cfg,
            slots,
            index,
            tiers,
            sticky,
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    pub fn strategy(&self) -> Strategy {
        self.cfg.strategy
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Configured account ids, in order.
    pub fn account_ids(&self) -> impl Iterator<Item = &AccountId> {
        self.slots.iter().map(|s| &s.settings.id)
    }

    pub(crate) fn slot_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub(crate) fn slot(&self, id: &str) -> Result<&Slot, PoolError> {
        self.slot_index(id)
            .map(|i| &self.slots[i])
            .ok_or_else(|| PoolError::UnknownAccount { id: id.to_owned() })
    }

    /// Pick an account for one attempt and reserve its slot. The returned lease must be
    /// reported (or dropped) when the attempt ends.
    pub fn select(&self, req: &SelectRequest<'_>, now_ms: u64) -> Result<Lease, NoAccount> {
        if self.slots.is_empty() {
            return Err(NoAccount::Empty);
        }
        let ctx = Ctx::new(self, req, now_ms);
        let sticky = match (&self.sticky, self.cfg.sticky_ttl_ms, req.session) {
            (Some(map), Some(ttl), Some(session)) => Some((map, ttl, map.key(session))),
            _ => None,
        };
        if let Some((map, ttl, key)) = sticky
            && let Some(bound) = map.lookup_key(key, ttl, now_ms)
            && let Some(idx) = self.slot_index(bound.as_str())
            && ctx.fit(idx).is_some()
            && let Some(lease) = ctx.take(idx)
        {
            map.bind_key(key, &bound, now_ms);
            return Ok(lease);
        }
        for tier in &self.tiers {
            if let Some(lease) = tier.picker.pick(&ctx, tier) {
                if let Some((map, _, key)) = sticky {
                    map.bind_key(key, lease.account(), now_ms);
                }
                return Ok(lease);
            }
        }
        Err(ctx.no_account())
    }

    /// Apply one attempt's outcome. Returns the transitions it caused (for logs, metrics,
    /// webhooks and persistence). Reporting a lease twice, or an unknown id, changes
    /// nothing. A lease passed by reference keeps its in-flight slot until it is dropped.
    pub fn report<'a>(
        &self,
        target: impl Into<ReportTarget<'a>>,
        outcome: Outcome,
        now_ms: u64,
    ) -> Vec<Transition> {
        match target.into() {
            ReportTarget::Lease(lease) => self.report_lease(&lease, &outcome, now_ms),
            ReportTarget::LeaseRef(lease) => self.report_lease(lease, &outcome, now_ms),
            ReportTarget::Account(id) => match self.slot_index(id) {
                Some(i) => self.slots[i]
                    .runtime
                    .apply_outcome(&outcome, None, &self.cfg, now_ms),
                None => Vec::new(),
            },
        }
    }

    fn report_lease(&self, lease: &Lease, outcome: &Outcome, now_ms: u64) -> Vec<Transition> {
        match lease.settle() {
            Some((runtime, probe)) => runtime.apply_outcome(outcome, probe, &self.cfg, now_ms),
            None => Vec::new(),
        }
    }

    /// The account `session` is currently bound to, if any (admin/debug view).
    pub fn sticky_binding(&self, session: &str, now_ms: u64) -> Option<AccountId> {
        let ttl = self.cfg.sticky_ttl_ms?;
        self.sticky.as_ref()?.lookup(session, ttl, now_ms)
    }

    /// Sessions currently remembered (expired ones included until evicted).
    pub fn sticky_sessions(&self) -> usize {
        self.sticky.as_ref().map_or(0, |m| m.len())
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("strategy", &self.cfg.strategy)
            .field("accounts", &self.slots.len())
            .field("tiers", &self.tiers.len())
            .field("sticky", &self.sticky.is_some())
            .finish()
    }
}
