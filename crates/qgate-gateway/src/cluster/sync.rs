//! Pool state across instances: the publisher (this instance's decisions are stored in
//! `state:{id}` and announced on `events`), the subscriber (others' announcements go to
//! `Pool::apply_remote`) and the reconcile loop (every 500 ms, and at once after a
//! reconnect: re-read every state, so a lost message cannot leave this instance stale;
//! also counters, lease heartbeats and the admin version).
//!
//! Last writer wins per account, by stamp. A stamp is the decision time, but never older
//! than what the deciding instance had seen for the account (see `Cluster::transitions`).

use super::{Cluster, LEASE_TTL, RECONCILE_EVERY};
use crate::dispatch::now_ms;
use crate::state::AppState;
use qgate_pool::{AccountId, SharedState};
use qgate_store::redis::{ClusterEvent, StateRecord};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Heartbeat leases every this many reconcile ticks (a third of their lifetime).
const HEARTBEAT_EVERY_TICKS: u64 = 20;

pub(super) async fn run_publisher(
    state: AppState,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                // Last decisions of a stopping instance still count.
                cluster.publish_pending(&state).await;
                return;
            }
            () = cluster.wake_publisher.notified() => {}
        }
        cluster.publish_pending(&state).await;
    }
}

pub(super) async fn run_subscriber(
    state: AppState,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = tokio::select! {
            () = shutdown.cancelled() => return,
            subscribed = cluster.redis.subscribe() => subscribed,
        };
        if let Ok(mut subscription) = subscribed {
            backoff = Duration::from_millis(100);
            // Announcements sent while we were not listening are gone: re-read now.
            cluster.wake_reconciler.notify_one();
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = subscription.next::<SharedState>() => event,
                };
                match event {
                    Some(event) => cluster.on_event(&state, event).await,
                    None => break,
                }
            }
            tracing::debug!("lost the redis events subscription; re-subscribing");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

pub(super) async fn run_reconciler(
    state: AppState,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) {
    let mut health = cluster.redis.health().watch();
    let mut ticker = tokio::time::interval(RECONCILE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        let recovered = tokio::select! {
            () = shutdown.cancelled() => {
                cluster.flush_counts(&state).await;
                return;
            }
            _ = ticker.tick() => false,
            () = cluster.wake_reconciler.notified() => false,
            changed = health.changed() => changed.is_ok() && *health.borrow_and_update(),
        };
        if recovered {
            cluster.republish_known();
            cluster.republish_admin_if_lost().await;
            // A Redis restarted without persistence lost every token record: offer ours
            // again (a newer one stored meanwhile is kept).
            let rt = state.runtime();
            let ids: Vec<&str> = rt.pool.account_ids().map(|id| id.as_str()).collect();
            state.account_admin.deps.store.mark_unsynced(&ids);
        }
        // Tokens saved only locally while Redis was unreachable (nothing when none were).
        state.account_admin.deps.store.resync().await;
        cluster.reconcile(&state).await;
        ticks += 1;
        if ticks.is_multiple_of(HEARTBEAT_EVERY_TICKS) {
            cluster.heartbeat().await;
        }
        cluster.flush_counts(&state).await;
        if !cluster.dirty.lock().is_empty()
            || cluster.admin_dirty.load(Ordering::Acquire)
            || cluster.admin_refill.load(Ordering::Acquire)
        {
            cluster.wake_publisher.notify_one();
        }
    }
}

impl Cluster {
    /// Publish every pending decision; an outage leaves the rest pending for later.
    pub(super) async fn publish_pending(&self, state: &AppState) {
        let pending: Vec<(AccountId, u64)> = self
            .dirty
            .lock()
            .iter()
            .map(|(id, stamp)| (id.clone(), *stamp))
            .collect();
        let rt = state.runtime();
        for (id, stamp) in pending {
            let Some(shared) = rt.pool.shared_state(id.as_str()) else {
                self.dirty.lock().remove(&id);
                continue;
            };
            let record = StateRecord {
                origin: self.instance.clone(),
                stamp_ms: stamp,
                state: shared,
            };
            match self.redis.publish_state(id.as_str(), &record).await {
                Ok(_) => {
                    self.note_seen(&id, stamp);
                    let mut dirty = self.dirty.lock();
                    if dirty.get(&id) == Some(&stamp) {
                        dirty.remove(&id);
                    }
                }
                Err(err) if err.is_outage() => return,
                Err(err) => {
                    tracing::warn!(account = %id, error = %err, "could not publish the account state");
                    self.dirty.lock().remove(&id);
                }
            }
        }
        self.publish_admin(state).await;
    }

    /// After an outage: what we decided or adopted may be missing from Redis (a restarted
    /// server without persistence has nothing), so offer it again; newer records win.
    pub(super) fn republish_known(&self) {
        let seen = self.seen.lock();
        let mut dirty = self.dirty.lock();
        for (id, stamp) in seen.iter() {
            dirty.entry(id.clone()).or_insert(*stamp);
        }
        drop((seen, dirty));
        self.wake_publisher.notify_one();
    }

    /// After an outage: a Redis that lost its data has no admin document; offer ours
    /// again (the versions it hands out now start above every earlier one).
    async fn republish_admin_if_lost(&self) {
        if self.key.is_none() || self.admin_version.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Ok(0) = self.redis.admin_version().await {
            tracing::info!("redis lost the admin account changes; sharing ours again");
            self.admin_refill.store(true, Ordering::Release);
            self.wake_publisher.notify_one();
        }
    }

    /// Re-read every account's state and the admin version; apply what is newer.
    pub(super) async fn reconcile(&self, state: &AppState) {
        let rt = state.runtime();
        let ids: Vec<&str> = rt.pool.account_ids().map(AccountId::as_str).collect();
        let Ok(records) = self.redis.read_states::<SharedState>(&ids).await else {
            return;
        };
        for (_, record) in records {
            self.consider(state, record);
        }
        if self.key.is_some()
            && let Ok(version) = self.redis.admin_version().await
            && version > self.admin_version.load(Ordering::Acquire)
        {
            self.apply_admin(state).await;
        }
    }

    pub(super) async fn on_event(&self, state: &AppState, event: ClusterEvent<SharedState>) {
        match event {
            ClusterEvent::State { record, .. } => self.consider(state, record),
            ClusterEvent::Admin { origin, version } => {
                if origin != self.instance && version > self.admin_version.load(Ordering::Acquire) {
                    self.apply_admin(state).await;
                }
            }
        }
    }

    /// Apply another instance's decision if it is the newest we know of.
    fn consider(&self, state: &AppState, record: StateRecord<SharedState>) {
        let id = record.state.account.clone();
        {
            let mut seen = self.seen.lock();
            let last = seen.get(&id).copied().unwrap_or(0);
            if record.origin == self.instance || record.stamp_ms <= last {
                return;
            }
            // Our own pending decision is newer: it is about to replace this one.
            if self
                .dirty
                .lock()
                .get(&id)
                .is_some_and(|mine| *mine >= record.stamp_ms)
            {
                return;
            }
            seen.insert(id.clone(), record.stamp_ms);
        }
        let rt = state.runtime();
        let transitions = rt.pool.apply_remote(&record.state, now_ms());
        for t in &transitions {
            tracing::info!(account = %t.account, from = t.from.as_str(), to = t.to.as_str(),
                until_ms = ?t.until_ms, origin = %record.origin, "account transition from another instance");
        }
        // The merge kept our state (decided here while the other instance had not heard
        // of it): publish it again, so the other instance merges it too.
        if rt
            .pool
            .shared_state(id.as_str())
            .is_some_and(|mine| mine.state_since_ms != record.state.state_since_ms)
        {
            let stamp = now_ms().max(record.stamp_ms + 1);
            self.dirty.lock().insert(id, stamp);
            self.wake_publisher.notify_one();
        }
    }

    fn note_seen(&self, id: &AccountId, stamp: u64) {
        let mut seen = self.seen.lock();
        let entry = seen.entry(id.clone()).or_insert(0);
        *entry = (*entry).max(stamp);
    }

    async fn heartbeat(&self) {
        let held: Vec<(String, AccountId)> = self
            .leases
            .lock()
            .iter()
            .map(|(lease, id)| (lease.clone(), id.clone()))
            .collect();
        let refs: Vec<qgate_store::redis::LeaseRef<'_>> = held
            .iter()
            .map(|(lease, id)| qgate_store::redis::LeaseRef {
                account: id.as_str(),
                lease_id: lease,
            })
            .collect();
        let until = now_ms() + LEASE_TTL.as_millis() as u64;
        if let Err(err) = self.redis.extend_leases(&refs, until, LEASE_TTL).await {
            tracing::debug!(error = %err, "could not extend leases; they expire unless redis returns");
        }
    }
}
