//! qgate-pool: the pool of Amazon Q accounts behind the gateway — which account serves
//! the next attempt, and how each account's health follows from what happened to its
//! attempts.
//!
//! Pure and synchronous: no async runtime, no I/O, no clock, no secrets. Every entry point
//! takes `now_ms` (Unix milliseconds), so each rule — breaker timeouts, throttle
//! cooldowns, quota resets, sticky-session TTLs — is tested without sleeping. Reading
//! (`snapshot`, `status`, `health`) never changes state; transitions happen in `select`
//! (handing out a half-open probe) and `report`, and come back as [`Transition`]s.
//!
//! Map:
//! - [`id`]: `AccountId`, validated because ids become file names and metric labels.
//! - [`config`]: `AccountSettings`, `PoolConfig`, `Strategy` and config problems.
//! - [`outcome`]: the classified result of an attempt — the only input health reacts to.
//! - `breaker`: per-account circuit breaker (closed / open / half-open with one probe).
//! - [`state`]: account states, their kinds, transitions.
//! - `runtime`: per-account live state shared across config reloads (atomics and one
//!   small mutex per account); `runtime/report.rs` applies outcomes.
//! - `select`: the per-request filter, slot reservation and `NoAccount` diagnosis.
//! - `strategy`: the five strategies; `strategy/rotation.rs` holds the (weighted) round
//!   robin schedules.
//! - `sticky`: bounded session → account bindings.
//! - [`lease`]: the RAII in-flight slot a selection hands out.
//! - `status`, [`persist`]: read-only views; what survives restarts and crosses instances.
//! - `pool`: `Pool`, tying it together; `pool/admin.rs` holds admin actions.

mod breaker;
mod calendar;
pub mod config;
mod error;
pub mod id;
pub mod lease;
pub mod outcome;
pub mod persist;
mod pool;
mod rpm;
mod runtime;
mod select;
pub mod state;
mod status;
mod sticky;
mod strategy;

pub use breaker::{BreakerPhase, BreakerRecord};
pub use calendar::first_of_next_month_ms;
pub use config::{
    AccountSettings, BreakerConfig, ConfigProblem, PoolConfig, Strategy, UnknownStrategy,
};
pub use error::{NoAccount, PoolError};
pub use id::{AccountId, InvalidAccountId};
pub use lease::Lease;
pub use outcome::{ErrorClass, Outcome};
pub use persist::{PersistedState, SharedState};
pub use pool::{Pool, ReportTarget};
pub use runtime::ModelMark;
pub use select::SelectRequest;
pub use state::{AccountState, StateKind, Transition};
pub use status::{AccountStatus, BreakerStatus, PoolHealth};
