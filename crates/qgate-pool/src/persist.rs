//! What crosses a process boundary: [`PersistedState`] (saved at shutdown / on change,
//! restored at startup: the states a restart must not forget) and [`SharedState`] (the
//! full shareable health of one account, for instances that coordinate through a shared
//! store). Counters are deliberately in neither: they are per-process statistics.

use crate::breaker::BreakerRecord;
use crate::id::AccountId;
use crate::runtime::ModelMark;
use crate::state::AccountState;
use serde::{Deserialize, Serialize};

/// One account's restart-surviving state: suspended, refresh-denied, out of quota (with
/// its end) and an admin's enable/disable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    pub account: AccountId,
    /// `Some(false)`: disabled by an admin; `Some(true)`: enabled by an admin against
    /// the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AccountState>,
}

/// Everything about one account's health another instance needs to route the same way.
/// Produced by `Pool::shared_state`, consumed by `Pool::apply_remote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedState {
    pub account: AccountId,
    #[serde(default)]
    pub admin_enabled: Option<bool>,
    /// The stored state (a throttle may have elapsed already; readers evaluate it).
    pub state: AccountState,
    /// When `state` was entered (ms since the epoch; 0 = never changed).
    #[serde(default)]
    pub state_since_ms: u64,
    /// For `Active`: the lift that entered it (absent in records of older versions and
    /// for the initial state: treated as an admin reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift: Option<crate::state::Lift>,
    pub breaker: BreakerRecord,
    #[serde(default)]
    pub unavailable_models: Vec<ModelMark>,
    #[serde(default)]
    pub throttle_level: u32,
    #[serde(default)]
    pub overload_level: u32,
    #[serde(default)]
    pub overload_until_ms: u64,
}
