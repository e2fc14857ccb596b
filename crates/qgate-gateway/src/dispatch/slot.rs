//! An account slot held by one request: the pool lease plus the side effects that must
//! happen exactly when it is taken and released (the `amazonq_active_requests` gauge,
//! waking one request waiting in the queue, and in multi-instance mode the account's
//! cross-instance lease).

use crate::state::AppState;
use qgate_pool::{AccountId, Lease};

/// RAII: dropping it releases the account's in-flight slot.
#[derive(Debug)]
pub struct Slot {
    /// Always `Some` until `drop`, which releases the lease *before* waking a waiter.
    lease: Option<Lease>,
    account: AccountId,
    state: AppState,
    /// Released (after the local lease) when the slot drops.
    cluster_lease: Option<crate::cluster::ClusterLease>,
}

impl Slot {
    pub fn new(lease: Lease, state: AppState) -> Self {
        let account = lease.account().clone();
        state.metrics.active_inc(&account);
        Slot {
            lease: Some(lease),
            account,
            state,
            cluster_lease: None,
        }
    }

    /// The request was also admitted across instances; give that back with the slot.
    pub fn attach_cluster_lease(&mut self, lease: crate::cluster::ClusterLease) {
        self.cluster_lease = Some(lease);
    }

    pub fn lease(&self) -> &Lease {
        match &self.lease {
            Some(l) => l,
            None => unreachable!("a slot's lease is only taken in drop"),
        }
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.lease.take());
        self.state.metrics.active_dec(&self.account);
        self.state.slot_released.notify_one();
    }
}
